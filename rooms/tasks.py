"""Celery tasks of rooms: load by id, call a service, nothing else."""

from __future__ import annotations

from typing import Any

from celery import shared_task
from django.db import OperationalError

from rooms import services
from rooms.services import stats


@shared_task(ignore_result=True)
def flash_sales_sweep_task() -> int:
    """Beat, every second: end due and sold-out flash sales (see flash_sales_sweep)."""
    return services.flash_sales_sweep()


@shared_task(acks_late=True, autoretry_for=(OperationalError,), retry_backoff=True, max_retries=8)
def room_stats_report_task(room_id: int, figures: dict[str, Any] | None = None) -> bool:
    """Write an ended room's audience report from the figures read at its end."""
    return stats.room_stats_report_write(room_id=room_id, figures=stats.AudienceFigures(**figures) if figures else None)


@shared_task(ignore_result=True)
def room_stats_reports_sweep_task() -> int:
    """Beat, every minute: reports of ended rooms whose task was lost."""
    return stats.room_stats_reports_sweep()


@shared_task(ignore_result=True)
def room_counters_checkpoint_task() -> int:
    """Beat, every few seconds: keep the live rooms' counters where a Redis restart can't reach."""
    return stats.room_counters_checkpoint()


@shared_task(ignore_result=True)
def giveaways_sweep_task() -> tuple[int, int]:
    """Beat, every second: draw giveaways at their close, forfeit prizes not claimed in time."""
    return services.giveaways_sweep()


@shared_task(ignore_result=True)
def comments_retention_task() -> dict[str, object]:
    """Beat, hourly: next months' comment partitions made, months past COMMENT_RETENTION_DAYS dropped."""
    from dataclasses import asdict

    from rooms.services.retention import comments_retention_apply

    return asdict(comments_retention_apply())
