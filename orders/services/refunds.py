"""Refunds, full and partial: reserved under the order's lock, executed at Stripe, applied once.

A refund is created `pending` with its amount reserved against the order (so racing
refunds never give back more than was paid), then sent to Stripe with the refund's id
as idempotency key, outside any transaction. Its result (Stripe's answer, or a later
`charge.refunded`/`refund.updated` webhook; localstripe sends none, so the answer
counts too) is applied once: a compare-and-set on the refund's status, the order's
`refunded_amount`, and ledger entries that reverse the payment's split in proportion.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from django.db import transaction
from django.db.models import F, Sum
from django.utils import timezone

from liveshop.errors import Conflict, Invalid
from liveshop.models import User
from notifications.models import Notification
from notifications.triggers import order_changed
from orders import stripe_api
from orders.models import LedgerAccount, LedgerTransaction, Order, Refund, RefundClaim
from orders.services import ledger

logger = logging.getLogger(__name__)

# A pending refund that never reached Stripe (an outage) is sent again after this long.
RETRY_AFTER_S = 60


def refund_request(*, order: Order, reason: str, requested_by: User, amount: int | None = None) -> Refund:
    """Reserve a refund of `amount` (default: all that is left) on a paid order."""
    with transaction.atomic():
        locked = Order.objects.select_for_update().get(pk=order.pk)
        if locked.status not in (*Order.REFUNDABLE, Order.Status.REFUNDED):
            raise Conflict("Only a paid order can be refunded.")
        reserved = locked.refunds.filter(status=Refund.Status.PENDING).aggregate(total=Sum("amount"))["total"] or 0
        left = locked.total - locked.refunded_amount - int(reserved)
        if amount is None:
            amount = left
        if left <= 0:
            raise Invalid("Nothing is left to refund on this order.", fields={"amount": ["Nothing is left."]})
        if amount > left:
            raise Invalid(f"At most {left} is left to refund.", fields={"amount": [f"At most {left}."]})
        return Refund.objects.create(
            order=locked, amount=amount, reason=reason, requested_by=requested_by, kind=Refund.Kind.REQUESTED
        )


def refund_execute(*, refund_id: int) -> Refund:
    """Send a pending refund to Stripe and apply its answer. Safe to run again.

    A network failure leaves it pending; `refunds_retry_pending` sends it again.
    """
    refund = Refund.objects.select_related("order__payment").get(pk=refund_id)
    if refund.status != Refund.Status.PENDING or refund.stripe_refund_id:
        return refund
    try:
        result = stripe_api.refund_create(
            payment_intent_id=refund.order.payment.payment_intent_id,
            amount=refund.amount,
            refund_id=refund.pk,
            reason=refund.reason,
        )
    except stripe_api.StripeRequestRefused as exc:
        logger.warning("Stripe refused refund %s: %s", refund.pk, exc)
        refund_apply_result(refund_id=refund.pk, stripe_refund_id=None, status="failed", failure=str(exc))
    except stripe_api.StripeError as exc:
        logger.warning("Stripe unreachable for refund %s (will retry): %s", refund.pk, exc)
    else:
        refund_apply_result(refund_id=refund.pk, stripe_refund_id=result.id, status=result.status)
    refund.refresh_from_db()
    return refund


def refunds_retry_pending(*, older_than_s: int = RETRY_AFTER_S) -> int:
    """The beat sweeper: send again refunds that never reached Stripe."""
    from orders.tasks import refund_execute_task

    stuck = list(
        Refund.objects.filter(
            status=Refund.Status.PENDING,
            stripe_refund_id__isnull=True,
            created_at__lt=timezone.now() - timedelta(seconds=older_than_s),
        ).values_list("pk", flat=True)[:500]
    )
    for refund_id in stuck:
        refund_execute_task.delay(refund_id)
    return len(stuck)


def _split_share(part: int, total: int, before: int, amount: int) -> int:
    """This refund's share of a payment's `part` (fee, commission), exact over all refunds:
    the shares of successive refunds add up to `part` once everything is refunded."""
    if total <= 0:
        return 0
    return (before + amount) * part // total - before * part // total


def _ledger_refund(order: Order, refund: Refund, refunded_before: int) -> None:
    currency = order.currency
    processor = ledger.ledger_account(kind=LedgerAccount.Kind.PROCESSOR, currency=currency)
    if refund.kind == Refund.Kind.LATE_PAYMENT:
        unallocated = ledger.ledger_account(kind=LedgerAccount.Kind.UNALLOCATED, currency=currency)
        ledger.ledger_post(
            key=f"refund:{refund.pk}",
            kind=LedgerTransaction.Kind.UNALLOCATED_REFUND,
            postings=[(unallocated, refund.amount), (processor, -refund.amount)],
            order=order,
            refund=refund,
            memo=f"late payment of {order.number} refunded",
        )
        return
    fee = _split_share(order.platform_fee, order.total, refunded_before, refund.amount)
    commission = _split_share(order.host_commission, order.total, refunded_before, refund.amount)
    # Before the order's shares were released to the payees, the refund comes out of what
    # is pending; after, out of what is payable (negative if it was paid out already: the
    # next payout nets it). The order's row lock, held by the caller, orders the two.
    released = order.released_at is not None
    seller_kind = LedgerAccount.Kind.PAYABLE if released else LedgerAccount.Kind.SELLER
    host_kind = LedgerAccount.Kind.PAYABLE if released else LedgerAccount.Kind.HOST_COMMISSION
    postings: list[ledger.Posting] = [
        (processor, -refund.amount),
        (ledger.ledger_account(kind=LedgerAccount.Kind.PLATFORM_FEES, currency=currency), fee),
        (
            ledger.ledger_account(kind=seller_kind, currency=currency, shop_id=order.shop_id),
            refund.amount - fee - commission,
        ),
    ]
    if commission:
        assert order.room is not None
        postings.append(
            (ledger.ledger_account(kind=host_kind, currency=currency, user_id=order.room.host.user_id), commission)
        )
    ledger.ledger_post(
        key=f"refund:{refund.pk}",
        kind=LedgerTransaction.Kind.ORDER_REFUND,
        postings=postings,
        order=order,
        refund=refund,
        memo=f"refund {refund.pk} of order {order.number}",
    )


def refund_apply_result(*, refund_id: int, stripe_refund_id: str | None, status: str, failure: str = "") -> str:
    """Apply what Stripe says of a refund, once: succeeded, failed, or still pending."""
    with transaction.atomic():
        order_id = Refund.objects.values_list("order_id", flat=True).get(pk=refund_id)
        # The order's lock first, as everywhere that changes an order's money.
        order = (
            Order.objects.select_for_update(of=("self",)).select_related("shop", "room__host__user").get(pk=order_id)
        )
        refund = Refund.objects.select_for_update().get(pk=refund_id)
        if stripe_refund_id and not refund.stripe_refund_id:
            Refund.objects.filter(pk=refund.pk).update(stripe_refund_id=stripe_refund_id)
        if refund.status != Refund.Status.PENDING:
            return f"refund {refund.pk} already {refund.status}"
        now = timezone.now()
        if status == "succeeded":
            Refund.objects.filter(pk=refund.pk, status=Refund.Status.PENDING).update(
                status=Refund.Status.SUCCEEDED, completed_at=now
            )
            refunded_before = order.refunded_amount
            Order.objects.filter(pk=order.pk).update(refunded_amount=F("refunded_amount") + refund.amount)
            if refunded_before + refund.amount >= order.total and order.status in Order.REFUNDABLE:
                Order.objects.filter(pk=order.pk).update(status=Order.Status.REFUNDED)
            _ledger_refund(order, refund, refunded_before)
            RefundClaim.objects.filter(order_id=order.pk, status=RefundClaim.Status.OPEN).update(
                status=RefundClaim.Status.REFUNDED, resolved_at=now
            )
            if refund.kind != Refund.Kind.LATE_PAYMENT:  # a late payment's refund: the order never was theirs
                order_changed(
                    order=order, kind=Notification.Kind.ORDER_REFUNDED, key=f"refund:{refund.pk}", amount=refund.amount
                )
            return f"refund {refund.pk} succeeded"
        if status in ("failed", "canceled"):
            Refund.objects.filter(pk=refund.pk, status=Refund.Status.PENDING).update(
                status=Refund.Status.FAILED, completed_at=now, failure_reason=(failure or status)[:500]
            )
            return f"refund {refund.pk} failed"
        return f"refund {refund.pk} {status}"


def refund_claim_open(*, order: Order, reason: str) -> tuple[RefundClaim, bool]:
    """The buyer asks for a refund of a paid order (shipped or delivered too) with money
    left to give back; asking again returns the first claim. 409 `conflict` otherwise."""
    with transaction.atomic():
        locked = Order.objects.select_for_update(of=("self",)).get(pk=order.pk)
        existing = RefundClaim.objects.filter(order=locked).first()
        if existing is not None:
            return existing, False
        if locked.status not in (Order.Status.PAID, Order.Status.SHIPPED, Order.Status.DELIVERED):
            raise Conflict("Only a paid order can be refunded.")
        if locked.refunded_amount >= locked.total:
            raise Conflict("This order has been refunded in full.")
        return RefundClaim.objects.create(order=locked, reason=reason), True
