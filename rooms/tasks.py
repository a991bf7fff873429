"""Celery tasks of rooms: load by id, call a service, nothing else."""

from __future__ import annotations

from celery import shared_task

from rooms import services


@shared_task(ignore_result=True)
def flash_sales_sweep_task() -> int:
    """Beat, every second: end due and sold-out flash sales (see flash_sales_sweep)."""
    return services.flash_sales_sweep()


@shared_task(ignore_result=True)
def giveaways_sweep_task() -> tuple[int, int]:
    """Beat, every second: draw giveaways at their close, forfeit prizes not claimed in time."""
    return services.giveaways_sweep()
