from __future__ import annotations

from celery import shared_task
from django.db import OperationalError

from payouts import reconcile as reconciliation
from payouts.services import balances, payouts


@shared_task(acks_late=True, autoretry_for=(OperationalError,), retry_backoff=True, max_retries=8)
def payout_send_task(payout_id: int) -> str:
    return payouts.payout_send(payout_id=payout_id)


@shared_task(ignore_result=True)
def payouts_sweep_task() -> dict[str, int]:
    """Beat, every 10 minutes: release the orders whose hold passed, build the payouts of
    the period that ended (once each), and send again what a lost task left unsent."""
    released = balances.orders_release_due()
    built = payouts.payouts_build()
    retried = payouts.payouts_send_lost()
    return {"released": released, "built": len(built), "retried": retried}


@shared_task(ignore_result=True)
def reconcile_task() -> bool:
    """Nightly: the reconciliation, stored for staff (admin: Money out > Reconciliations)."""
    return reconciliation.reconcile().is_clean
