"""Payments that settlement refuses to apply: the amount or currency is not what was asked.

A PaymentIntent can be changed after we create it (by a compromised key, a dashboard
edit, a bug): one changed to 300 USD once "paid" a 19,800 CNY order. Settlement compares
what the intent received with what the order or top-up asked for; on a mismatch nothing
settles, the payment is flagged here for staff, and what was received is refunded in full.
The money's path in the ledger: processor -> unallocated when it arrives, back when the
refund succeeds, in the currency it came in.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from django.db import transaction
from django.utils import timezone

from orders import stripe_api
from orders.models import FlaggedPayment, LedgerAccount, LedgerTransaction, Order, TopUp
from orders.services import ledger

logger = logging.getLogger(__name__)

RETRY_AFTER_S = 60


def intent_received(intent: dict[str, Any]) -> tuple[int, str]:
    """(amount received, lower-case currency) of a succeeded PaymentIntent."""
    received = intent.get("amount_received")
    amount = received if type(received) is int and received > 0 else intent["amount"]
    return int(amount), str(intent.get("currency") or "").lower()


def payment_mismatch(intent: dict[str, Any], *, amount: int, currency: str) -> str | None:
    """Why the intent's money is not the `amount` in `currency` asked for, or None."""
    received, received_currency = intent_received(intent)
    if received_currency != currency.lower():
        return f"paid in {received_currency or 'no currency'}, not {currency.lower()}"
    if received != amount:
        return f"received {received}, not {amount}"
    return None


def payment_flag(
    *, intent: dict[str, Any], reason: str, amount: int, currency: str, order: Order | None = None,
    top_up: TopUp | None = None,
) -> str:  # fmt: skip
    """Record a mismatched payment (once per intent) and refund it in full after commit.

    Call in the settling transaction, instead of settling. Returns the event's outcome.
    """
    from orders.tasks import flagged_payment_refund_task

    received, received_currency = intent_received(intent)
    flagged, created = FlaggedPayment.objects.get_or_create(
        payment_intent_id=intent["id"],
        defaults={
            "order": order,
            "top_up": top_up,
            "expected_amount": amount,
            "expected_currency": currency.lower(),
            "received_amount": received,
            "received_currency": received_currency[:3],
            "reason": reason[:200],
        },
    )
    if not created:
        return "duplicate: payment already flagged"
    logger.error("payment %s flagged and refunded: %s", intent["id"], reason)
    processor = ledger.ledger_account(kind=LedgerAccount.Kind.PROCESSOR, currency=flagged.received_currency)
    unallocated = ledger.ledger_account(kind=LedgerAccount.Kind.UNALLOCATED, currency=flagged.received_currency)
    ledger.ledger_post(
        key=f"flagged:{flagged.pk}",
        kind=LedgerTransaction.Kind.PAYMENT_UNALLOCATED,
        postings=[(processor, received), (unallocated, -received)],
        order=order,
        memo=f"flagged payment {intent['id']}: {reason}"[:200],
    )
    flagged_id = flagged.pk
    transaction.on_commit(lambda: flagged_payment_refund_task.delay(flagged_id), robust=True)
    return f"flagged: {reason}; refunding"


def flagged_payment_refund(*, flagged_id: int) -> FlaggedPayment:
    """Give a flagged payment's money back, once. A network failure leaves it pending for
    the sweeper; Stripe's idempotency key makes a second send the same refund."""
    flagged = FlaggedPayment.objects.get(pk=flagged_id)
    if flagged.refund_status != FlaggedPayment.RefundStatus.PENDING:
        return flagged
    try:
        if flagged.stripe_refund_id:
            found = [
                refund
                for refund in stripe_api.refunds_of_payment_intent(payment_intent_id=flagged.payment_intent_id)
                if refund["id"] == flagged.stripe_refund_id
            ]
            status = str(found[0]["status"]) if found else "pending"
            refund_id = flagged.stripe_refund_id
        else:
            result = stripe_api.refund_create(
                payment_intent_id=flagged.payment_intent_id,
                amount=flagged.received_amount,
                refund_id=flagged.pk,
                reason=f"flagged payment: {flagged.reason}",
                idempotency_key=f"flagged-refund-{flagged.pk}",
            )
            status, refund_id = result.status, result.id
    except stripe_api.StripeRequestRefused as exc:
        logger.error("Stripe refused the refund of flagged payment %s: %s", flagged.pk, exc)
        status, refund_id = "failed", flagged.stripe_refund_id or ""
        FlaggedPayment.objects.filter(pk=flagged.pk).update(failure_reason=str(exc)[:500])
    except stripe_api.StripeError as exc:
        logger.warning("Stripe unreachable for flagged payment %s (will retry): %s", flagged.pk, exc)
        return flagged
    _refund_apply(flagged=flagged, stripe_refund_id=refund_id, status=status)
    flagged.refresh_from_db()
    return flagged


def _refund_apply(*, flagged: FlaggedPayment, stripe_refund_id: str, status: str) -> None:
    with transaction.atomic():
        pending = FlaggedPayment.objects.filter(pk=flagged.pk, refund_status=FlaggedPayment.RefundStatus.PENDING)
        if stripe_refund_id:
            pending.update(stripe_refund_id=stripe_refund_id)
        if status == "succeeded":
            if pending.update(refund_status=FlaggedPayment.RefundStatus.SUCCEEDED, refunded_at=timezone.now()):
                currency, amount = flagged.received_currency, flagged.received_amount
                unallocated = ledger.ledger_account(kind=LedgerAccount.Kind.UNALLOCATED, currency=currency)
                processor = ledger.ledger_account(kind=LedgerAccount.Kind.PROCESSOR, currency=currency)
                ledger.ledger_post(
                    key=f"flagged:{flagged.pk}:refund",
                    kind=LedgerTransaction.Kind.UNALLOCATED_REFUND,
                    postings=[(unallocated, amount), (processor, -amount)],
                    order=flagged.order,
                    memo=f"flagged payment {flagged.payment_intent_id} refunded",
                )
        elif status in ("failed", "canceled"):
            # Staff act on it from the admin: the money is still ours to give back.
            pending.update(refund_status=FlaggedPayment.RefundStatus.FAILED)


def flagged_payments_refund_pending(*, older_than_s: int = RETRY_AFTER_S) -> int:
    """The sweeper: send again (or ask Stripe about) refunds of flagged payments still pending."""
    from orders.tasks import flagged_payment_refund_task

    cutoff = timezone.now() - timedelta(seconds=older_than_s)
    stuck = list(
        FlaggedPayment.objects.filter(
            refund_status=FlaggedPayment.RefundStatus.PENDING, created_at__lt=cutoff
        ).values_list("pk", flat=True)[:500]
    )
    for flagged_id in stuck:
        flagged_payment_refund_task.delay(flagged_id)
    return len(stuck)
