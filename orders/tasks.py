"""Celery tasks of orders: load by id, call a service, nothing else.

Every task is safe to run twice (acks_late: a task whose worker died runs again).
"""

from __future__ import annotations

from celery import Task, shared_task
from django.db import OperationalError

from liveshop.idempotency import idempotency_records_purge
from orders import stripe_api
from orders.services import flagged, orders, payments, refunds

# Database hiccups (and Stripe outages, where Stripe is called) are retried with
# backoff; the sweepers catch whatever still slips through.


@shared_task(acks_late=True, autoretry_for=(OperationalError,), retry_backoff=True, max_retries=8)
def stripe_event_process_task(event_id: str) -> int:
    """Settle a stored Stripe event (the webhook's outbox row), and others pending with it."""
    return len(payments.stripe_events_process(event_id=event_id))


@shared_task(acks_late=True, autoretry_for=(OperationalError,), retry_backoff=True, max_retries=8)
def stripe_events_drain_task(slot: int, token: str) -> int:
    """A settlement drainer's turn: stored Stripe events, batch after batch (payments.settlement_wake)."""
    return payments.stripe_events_drain(slot=slot, token=token)


@shared_task(bind=True, acks_late=True, autoretry_for=(OperationalError,), retry_backoff=True, max_retries=None)
def order_payment_prepare_task(self: Task, order_id: int, slot_taken: bool = True) -> None:
    """Create a "preparing" order's PaymentIntent in its reserved write slot (Stripe's rate
    limit); runs again, in a later slot, while Stripe is unreachable or refusing with 429.
    Ends when the order has its intent or is no longer waiting for payment."""
    wait = payments.order_payment_prepare(order_id=order_id, slot_taken=slot_taken, attempt=self.request.retries)
    if wait > 0:
        raise self.retry(args=(order_id, True), countdown=wait)


@shared_task(
    acks_late=True, autoretry_for=(OperationalError, stripe_api.StripeError), retry_backoff=True, max_retries=8
)
def order_payment_cancel_task(order_id: int) -> None:
    payments.order_payment_cancel(order_id=order_id)


@shared_task(acks_late=True, autoretry_for=(OperationalError,), retry_backoff=True, max_retries=8)
def refund_execute_task(refund_id: int) -> None:
    refunds.refund_execute(refund_id=refund_id)


@shared_task(acks_late=True, autoretry_for=(OperationalError,), retry_backoff=True, max_retries=8)
def flagged_payment_refund_task(flagged_id: int) -> None:
    flagged.flagged_payment_refund(flagged_id=flagged_id)


@shared_task(ignore_result=True)
def orders_expire_due_task() -> int:
    """Beat, every second: expire unpaid orders past their deadline."""
    return orders.orders_expire_due()


@shared_task(ignore_result=True)
def orders_deliver_due_task() -> int:
    """Beat, hourly: shipped orders nobody confirmed are delivered AUTO_DELIVER_DAYS after shipping."""
    from orders.services.orders import orders_deliver_due

    return orders_deliver_due()


@shared_task(ignore_result=True)
def stripe_events_requeue_task() -> int:
    """Beat, every 30 s: the outbox sweeper (events, refunds and PaymentIntent cancels not
    done within a minute)."""
    return (
        payments.stripe_events_requeue()
        + refunds.refunds_retry_pending()
        + payments.order_payments_cancel_lost()
        + payments.order_payments_prepare_lost()
        + flagged.flagged_payments_refund_pending()
    )


@shared_task(ignore_result=True)
def idempotency_records_purge_task() -> int:
    return idempotency_records_purge()
