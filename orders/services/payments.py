"""Payments: PaymentIntents, the webhook outbox, and settlement exactly once.

The order turns `paid` only from a verified `payment_intent.succeeded` event, never
from the client's word (and a wallet top-up's coins are credited the same way:
orders/services/wallet.py). The webhook stores the event (unique on Stripe's id) in its
own transaction and enqueues processing on commit; processing runs in a Celery worker,
as one transaction per event: a compare-and-set on the order's status, ledger entries
under a unique key, the event marked processed. Running it twice changes nothing;
delivering events twice, or in any order, settles an order once.
"""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F, QuerySet
from django.db.models.functions import Greatest
from django.utils import timezone

from liveshop.errors import Invalid, ServiceUnavailable
from liveshop.redis_client import REDIS_UNAVAILABLE, redis_key, redis_sync
from notifications.models import Notification
from notifications.triggers import order_changed
from orders import stripe_api
from orders.models import LedgerAccount, LedgerTransaction, Order, OrderItem, Payment, Refund, StripeEvent
from orders.services import flagged, ledger, wallet
from orders.services.orders import PAYMENT_PREPARE_MAX, order_close, order_units_hold_again
from orders.stripe_limiter import stripe_write_slot
from rooms import broadcast

logger = logging.getLogger(__name__)

# Events not processed this long after their last enqueueing are enqueued again.
OUTBOX_RETRY_AFTER_S = 60


# --- PaymentIntents -------------------------------------------------------------------------


def order_payment_start(*, order: Order, created_now: bool = False, asked_again: bool = False) -> Payment | None:
    """The order's PaymentIntent, created once (after the order's transaction committed).

    Idempotent: an existing Payment is returned, and Stripe dedupes the creation by the
    order number. None for an order that is no longer waiting for payment, and for one
    whose intent must wait for Stripe's rate limit (orders/stripe_limiter.py): a worker
    creates it as the limit allows (`order_payment_prepare`); meanwhile its payment is
    "preparing". A flash sale's winner never waits for Stripe in its request: its intent
    always comes from the worker, in the next slot (a call to Stripe holds one of the web
    process's request threads for Stripe's ~300 ms, and a burst's winners would queue
    behind each other's). Raises ServiceUnavailable when Stripe cannot be reached (the order keeps
    its hold; a retry with the same Idempotency-Key resumes here), and Invalid when Stripe
    refuses the payment outright (the order is then cancelled). `asked_again` (the buyer's
    POST /orders/{id}/payment/, maybe polled): its intent was already scheduled, so it is
    created now only if a write is free now, and nothing more is scheduled.
    """
    # An order created by this very request has no payment yet: skip the look-up.
    existing = None if created_now else Payment.objects.filter(order=order).first()
    if existing is not None:
        return existing
    if order.status != Order.Status.PENDING_PAYMENT:
        return None
    wait = stripe_write_slot(reserve=not asked_again)
    if wait > 0 or (order.placed_in_flash_sale and settings.STRIPE_WRITE_RATE > 0):
        if not asked_again:  # the slot is reserved: the worker creates the intent then
            _prepare_later(order.pk, after_s=wait)
        return None
    return _payment_create(order)


def _payment_create(order: Order) -> Payment:
    try:
        intent = stripe_api.payment_intent_create(
            order_number=order.number,
            amount=order.total,
            currency=order.currency,
            metadata={"liveshop_order": order.number, "liveshop_order_id": str(order.pk)},
        )
    except stripe_api.StripeRequestRefused as exc:
        logger.warning("Stripe refused the PaymentIntent of order %s: %s", order.number, exc)
        order_close(order_id=order.pk, status=Order.Status.CANCELLED, only_if_due=False)
        raise Invalid(f"The payment provider refused this order: {exc.user_message or exc}") from None
    except stripe_api.StripeError as exc:
        logger.warning("Stripe unreachable creating the PaymentIntent of order %s: %s", order.number, exc)
        raise ServiceUnavailable("The payment provider is unreachable; retry with the same Idempotency-Key.") from None
    try:
        # Autocommit: one statement, and a unique violation leaves no transaction to repair.
        return Payment.objects.create(
            order=order,
            payment_intent_id=intent.id,
            client_secret=intent.client_secret,
            amount=intent.amount,
            currency=intent.currency,
        )
    except IntegrityError:  # a concurrent retry stored it first (Stripe gave both the same intent)
        return Payment.objects.get(order=order)


def _prepare_later(order_id: int, *, after_s: float) -> None:
    from orders.tasks import order_payment_prepare_task

    Order.objects.filter(pk=order_id, payment_prepare_until__isnull=True).update(
        payment_prepare_until=timezone.now() + PAYMENT_PREPARE_MAX
    )
    transaction.on_commit(lambda: order_payment_prepare_task.apply_async((order_id,), countdown=after_s), robust=True)


PREPARE_RETRY_S = (1, 2, 4, 8, 15, 30)


def order_payment_prepare(*, order_id: int, slot_taken: bool = True, attempt: int = 0) -> float:
    """The worker's half of a "preparing" payment: create the order's PaymentIntent in the
    write slot reserved for it (`slot_taken`), or in the next free one. Returns the seconds
    after which to run again, in a slot reserved by then (none was free yet, or Stripe was
    unreachable or answered 429), or 0 when there is nothing left to do.

    The buyer gets the whole payment window from now on (the deadline restarts), and the
    buyer's sockets in the order's room hear `order.payment_ready`.
    """
    order = Order.objects.filter(pk=order_id).first()
    if order is None or order.status != Order.Status.PENDING_PAYMENT or Payment.objects.filter(order=order).exists():
        return 0.0
    if not slot_taken and (wait := stripe_write_slot()) > 0:
        return wait
    try:
        _payment_create(order)
    except ServiceUnavailable:
        return max(float(PREPARE_RETRY_S[min(attempt, len(PREPARE_RETRY_S) - 1)]), stripe_write_slot())
    except Invalid:
        return 0.0  # refused outright: the order is cancelled
    now = timezone.now()
    window = order.expires_at - order.created_at
    Order.objects.filter(pk=order.pk, status=Order.Status.PENDING_PAYMENT).update(
        expires_at=Greatest(F("expires_at"), now + window), payment_prepare_until=None
    )
    if order.room_id is not None:
        broadcast.room_user_send(
            order.room_id, order.buyer_id, {"type": "order.payment_ready", "data": {"order": order.pk}}
        )
    return 0.0


def order_payments_prepare_lost(*, older_than_s: int = OUTBOX_RETRY_AFTER_S, batch: int = 500) -> int:
    """The beat sweeper: enqueue again the "preparing" orders whose task was lost (a process
    that died between its commit and the enqueueing). Returns how many."""
    from orders.tasks import order_payment_prepare_task

    now = timezone.now()
    lost = list(
        Order.objects.filter(
            status=Order.Status.PENDING_PAYMENT,
            payment__isnull=True,
            payment_prepare_until__gt=now,
            created_at__lt=now - timedelta(seconds=older_than_s),
        )
        .order_by("pk")
        .values_list("pk", flat=True)[:batch]
    )
    for order_id in lost:
        order_payment_prepare_task.delay(order_id, slot_taken=False)
    return len(lost)


def order_payment_cancel(*, order_id: int) -> None:
    """Cancel the PaymentIntent of an order that closed unpaid (a network call: no locks held).

    If the buyer paid at the last moment, Stripe refuses the cancel; the succeeded
    webhook then settles the payment as a late one.
    """
    payment = Payment.objects.filter(order_id=order_id).first()
    if payment is None or payment.status in (Payment.Status.SUCCEEDED, Payment.Status.CANCELED):
        return
    status = stripe_api.payment_intent_cancel(payment_intent_id=payment.payment_intent_id)
    if status == "canceled":
        Payment.objects.filter(pk=payment.pk).exclude(status=Payment.Status.SUCCEEDED).update(
            status=Payment.Status.CANCELED
        )


def order_payment_cancel_on_commit(*, order: Order) -> None:
    from orders.tasks import order_payment_cancel_task

    order_id = order.pk
    transaction.on_commit(lambda: order_payment_cancel_task.delay(order_id), robust=True)


# Cancels are sent again for orders closed this long: after that, an intent Stripe will
# not cancel (paid at the last moment, its webhook still to come) is left alone.
CANCEL_RETRY_WINDOW = timedelta(days=1)


def order_payments_cancel_lost(*, older_than_s: int = OUTBOX_RETRY_AFTER_S, batch: int = 500) -> int:
    """The beat sweeper: cancel the PaymentIntents of orders closed unpaid over a minute
    ago whose cancel never completed. The task enqueued on the close's commit is lost
    when the process dies between the commit and the enqueueing, or the broker refuses
    it; the intent would stay payable. Returns how many cancels were enqueued."""
    from orders.tasks import order_payment_cancel_task

    now = timezone.now()
    lost = list(
        Payment.objects.filter(
            status__in=Payment.NOT_FINAL,
            order__status__in=(Order.Status.EXPIRED, Order.Status.CANCELLED),
            order__closed_at__lt=now - timedelta(seconds=older_than_s),
            order__closed_at__gte=now - CANCEL_RETRY_WINDOW,
        )
        .order_by("order_id")
        .values_list("order_id", flat=True)[:batch]
    )
    for order_id in lost:
        order_payment_cancel_task.delay(order_id)
    return len(lost)


# --- The webhook outbox ---------------------------------------------------------------------

# Events that change something here (the others are answered 200 and dropped), with the
# `object` each carries in `data.object`.
_EVENT_OBJECTS = {
    "payment_intent.succeeded": "payment_intent",
    "payment_intent.payment_failed": "payment_intent",
    "payment_intent.canceled": "payment_intent",
    "charge.refunded": "charge",
    "charge.refund.updated": "refund",
    "refund.created": "refund",
    "refund.updated": "refund",
    "refund.failed": "refund",
}


def _event_object(payload: dict[str, Any]) -> dict[str, Any] | None:
    """The event's `data.object`, or None if the event is not shaped as Stripe's are."""
    data = payload.get("data")
    obj = data.get("object") if isinstance(data, dict) else None
    if not isinstance(obj, dict) or not isinstance(obj.get("id"), str) or not obj["id"]:
        return None
    kind = _EVENT_OBJECTS.get(str(payload.get("type", "")))
    if kind is None or obj.get("object") != kind:
        return None
    if kind == "payment_intent" and not (type(obj.get("amount")) is int and isinstance(obj.get("currency"), str)):
        return None
    return obj


def stripe_event_record(*, event: dict[str, Any]) -> bool:
    """Store a verified event as an outbox row and enqueue its processing on commit.

    Returns False for a duplicate delivery or an ignored type (nothing stored), and for a
    signed event not shaped as Stripe's are: that one is recorded as rejected (for staff
    to see; a redelivery is then a duplicate) and never processed, so it cannot stop the
    events behind it. Stripe retries anything but a 2xx for days, so it is answered 200.
    """
    if event["type"] not in _EVENT_OBJECTS:
        return False
    event_id = event["id"]
    if _event_object(event) is None:
        logger.error("Stripe event %s (%s) is malformed; recorded and skipped", event_id, event["type"])
        StripeEvent.objects.get_or_create(
            event_id=event_id,
            defaults={
                "type": event["type"],
                "payload": event,
                "enqueued_at": timezone.now(),
                "processed_at": timezone.now(),
                "outcome": "rejected: malformed event",
            },
        )
        return False
    with transaction.atomic():
        _, created = StripeEvent.objects.get_or_create(
            event_id=event_id,
            defaults={"type": event["type"], "payload": event, "enqueued_at": timezone.now()},
        )
        if created:
            # robust: a broker outage must not turn Stripe's delivery into a 500 (the
            # event is stored; the outbox sweeper enqueues it within a minute).
            transaction.on_commit(lambda: settlement_wake(event_id=event_id), robust=True)
    return created


def stripe_events_requeue(*, older_than_s: int = OUTBOX_RETRY_AFTER_S, batch: int = 1000) -> int:
    """The beat sweeper: enqueue again events not processed within a minute of their
    last enqueueing (a lost broker message, a crashed worker, a deferred event)."""
    from orders.tasks import stripe_event_process_task

    cutoff = timezone.now() - timedelta(seconds=older_than_s)
    stale = list(
        StripeEvent.objects.filter(processed_at__isnull=True, enqueued_at__lt=cutoff)
        .order_by("enqueued_at")
        .values_list("pk", "event_id")[:batch]
    )
    for pk, event_id in stale:
        # Claim the re-enqueueing so that two sweepers do not both send it.
        if StripeEvent.objects.filter(pk=pk, enqueued_at__lt=cutoff).update(enqueued_at=timezone.now()):
            stripe_event_process_task.delay(event_id)
    return len(stale)


class Deferred(Exception):
    """The event cannot be applied yet (it arrived before the one it depends on)."""


class _Redo(Exception):
    """An event of a batch applied without savepoints failed: apply the batch again with them."""


# Events applied per transaction. A burst of webhooks becomes a few transactions (one
# commit each) instead of one per event, so settlement keeps up with the intake.
BATCH_SIZE = 50


def _intent_id_of(event: StripeEvent) -> str:
    """The PaymentIntent an event is about: events are applied in this order in a batch."""
    obj = _event_object(event.payload) or {}
    return str(obj.get("payment_intent") or obj.get("id") or "")


@dataclass
class _Preloaded:
    """What a batch's `payment_intent.succeeded` events read, in a few queries, with the
    batch's orders locked up front in key order (so batches never deadlock): their
    Payments by intent id (with order, shop, room and host, buyer) and order lines."""

    payments: dict[str, Payment]
    lines: dict[int, list[OrderItem]]

    @classmethod
    def load(cls, events: list[StripeEvent]) -> _Preloaded:
        intent_ids = [_intent_id_of(event) for event in events if event.type == "payment_intent.succeeded"]
        if not intent_ids:
            return cls({}, {})
        order_ids = sorted(Payment.objects.filter(payment_intent_id__in=intent_ids).values_list("order_id", flat=True))
        # The orders' row locks order this batch against expiry, cancels and other batches;
        # what is read next is read under them.
        list(Order.objects.select_for_update().filter(pk__in=order_ids).order_by("pk").values_list("pk", flat=True))
        payments = {
            payment.payment_intent_id: payment
            for payment in Payment.objects.filter(order_id__in=order_ids).select_related(
                "order__shop", "order__room__host", "order__buyer"
            )
        }
        lines: dict[int, list[OrderItem]] = {order_id: [] for order_id in order_ids}
        for line in (
            OrderItem.objects.filter(order_id__in=order_ids).select_related("sku__product", "offer").order_by("pk")
        ):
            lines[line.order_id].append(line)
        return cls(payments, lines)


def stripe_events_process(*, event_id: str | None = None, batch: int = BATCH_SIZE) -> dict[str, str]:
    """Apply pending events, once each: `event_id` and up to `batch - 1` others, in one transaction.

    Events another worker holds are skipped (it applies them). A batch is applied without
    savepoints; if an event fails, the transaction is rolled back and the batch applied
    again with each event in a savepoint: one that fails is left for the outbox sweeper,
    the others commit. An event that depends on one not applied yet is retried after the
    rest of the batch, then left to the sweeper. Returns {event id: outcome}.
    """
    try:
        return _events_apply(event_id=event_id, batch=batch, savepoints=False)
    except _Redo:
        return _events_apply(event_id=event_id, batch=batch, savepoints=True)


def _pending() -> QuerySet[StripeEvent]:
    """Events not applied yet, skipping those another worker holds."""
    return StripeEvent.objects.select_for_update(skip_locked=True).filter(processed_at__isnull=True)


def _claimable() -> QuerySet[StripeEvent]:
    # Deferred and failed events wait for their own retry (the sweeper's), so a poison
    # event does not slow every batch down.
    return _pending().exclude(outcome__startswith="deferred").exclude(outcome__startswith="error")


def _events_claim(event_id: str | None, batch: int) -> list[StripeEvent]:
    events = list(_pending().filter(event_id=event_id)) if event_id else []
    if batch > len(events):
        others = _claimable().exclude(event_id=event_id or "")
        events += list(others.order_by("received_at")[: batch - len(events)])
    events.sort(key=_intent_id_of)
    return events


def _events_apply(*, event_id: str | None, batch: int, savepoints: bool) -> dict[str, str]:
    outcomes: dict[str, str] = {}
    with transaction.atomic():
        events = _events_claim(event_id, batch)
        preloaded = _Preloaded.load(events)
        deferred = [event for event in events if not _apply(event, preloaded, outcomes, savepoint=savepoints)]
        for event in deferred:  # a refund seen before its payment, both in this batch
            _apply(event, preloaded, outcomes, savepoint=savepoints)
        StripeEvent.objects.bulk_update(events, ["attempts", "outcome", "processed_at"])
    return outcomes


def _apply(event: StripeEvent, preloaded: _Preloaded, outcomes: dict[str, str], *, savepoint: bool) -> bool:
    """Apply one locked event (in a savepoint if asked); record its outcome on the event
    (saved with the batch's). False if deferred. Without a savepoint, any failure (a
    deferral too: its handler may have written) raises _Redo."""
    handler = _HANDLERS.get(event.type)
    obj = _event_object(event.payload)
    event.attempts += 1
    try:
        if handler is None or obj is None:
            # Stored before its shape was checked at the door: it can never apply.
            outcome = "rejected: malformed event"
        elif savepoint:
            with transaction.atomic():
                outcome = handler(obj, preloaded)
        else:
            try:
                outcome = handler(obj, preloaded)
            except Exception as exc:
                raise _Redo from exc
    except Deferred as exc:
        event.outcome = outcomes[event.event_id] = f"deferred: {exc}"[:200]
        return False
    except _Redo:
        raise
    except Exception as exc:
        # A bug or a database error in this event only: keep it for the sweeper.
        logger.exception("Stripe event %s failed; it will be retried", event.event_id)
        event.outcome = outcomes[event.event_id] = f"error: {type(exc).__name__}"
        return True
    outcomes[event.event_id] = outcome
    event.outcome = outcome[:200]
    event.processed_at = timezone.now()
    return True


# --- Waking the settlement -------------------------------------------------------------------

# A stored event wakes a drainer, not a task of its own: up to SETTLEMENT_DRAINERS tasks
# apply batch after batch while events come, so a flood of webhooks costs a few tasks
# instead of one each (most of which would find their event already applied). A drainer
# holds its slot (a Redis key with its token) while it works, hands over to a fresh task
# of its own after a turn (the worker serves other tasks between turns), and after it
# lets go it looks once more for events to apply: an event stored while every slot was
# taken is never left waiting for the sweeper.
DRAIN_SLOT_TTL_MS = 30_000
DRAIN_TURN_S = 5.0
# Keep the slot: still ours, or free again (it expired while this drainer's task waited
# to be delivered again after a crash): 1; another drainer's: 0.
_SLOT_KEEP_LUA = """
local holder = redis.call('GET', KEYS[1])
if holder == ARGV[1] or not holder then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
return 0
"""
_SLOT_FREE_LUA = "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0"


def _drain_slot(slot: int) -> str:
    return redis_key("settlement", "drainer", slot)


def settlement_wake(*, event_id: str = "") -> None:
    """Make sure a drainer will apply the events stored so far (after their commit).

    Takes a free drainer slot and starts a drainer; with every slot taken, a running
    drainer applies the event. Without Redis (the embedded default) or with it down,
    one task per event, as the sweeper would send.
    """
    from orders.tasks import stripe_event_process_task, stripe_events_drain_task

    client = redis_sync()
    if client is None:
        stripe_event_process_task.delay(event_id)
        return
    token = secrets.token_hex(8)
    try:
        for slot in range(max(1, settings.SETTLEMENT_DRAINERS)):
            if client.set(_drain_slot(slot), token, nx=True, px=DRAIN_SLOT_TTL_MS):
                try:
                    stripe_events_drain_task.delay(slot, token)
                except Exception:
                    client.eval(_SLOT_FREE_LUA, 1, _drain_slot(slot), token)  # no drainer: free its slot
                    raise
                return
    except REDIS_UNAVAILABLE:
        stripe_event_process_task.delay(event_id)


def stripe_events_drain(*, slot: int, token: str) -> int:
    """A drainer: apply batches while there are events, for one turn. Returns how many."""
    from orders.tasks import stripe_events_drain_task

    client = redis_sync()
    key = _drain_slot(slot)
    applied = 0
    turn_ends = time.monotonic() + DRAIN_TURN_S
    while outcomes := stripe_events_process():
        applied += len(outcomes)
        if client is not None and not client.eval(_SLOT_KEEP_LUA, 1, key, token, DRAIN_SLOT_TTL_MS):
            return applied  # the slot expired and another drainer took it: it goes on
        if time.monotonic() > turn_ends:
            stripe_events_drain_task.delay(slot, token)  # the next turn, keeping the slot
            return applied
    if client is not None:
        client.eval(_SLOT_FREE_LUA, 1, key, token)
    with transaction.atomic():
        more = _claimable().exists()
    if more:  # stored while this drainer held the slot, after its last batch
        settlement_wake()
    return applied


def stripe_event_process(*, event_id: str) -> str:
    """Apply one stored event, once. Returns its outcome ("" if another worker holds it)."""
    outcome = stripe_events_process(event_id=event_id, batch=1).get(event_id)
    if outcome is not None:
        return outcome
    return StripeEvent.objects.filter(event_id=event_id).values_list("outcome", flat=True).first() or ""


# --- Settlement -------------------------------------------------------------------------------


def _masked(name: str) -> str:
    """A name for the public ticker: "Viewer Li" -> "V***i", "李明" -> "李*"."""
    name = name.strip()
    if len(name) <= 1:
        return "*"
    if len(name) == 2:
        return name[0] + "*"
    return name[0] + "***" + name[-1]


def _order_placed_on_commit(order: Order, lines: list[OrderItem]) -> None:
    """The room's ticker: once per order, when paid; no personal data."""
    if order.room_id is None:
        return
    buyer = order.buyer
    broadcast.room_event_on_commit(
        order.room_id,
        "order.placed",
        {
            "buyer": _masked(buyer.public_name),
            "district": buyer.district,
            "title": lines[0].sku.product.title if lines else "",
            "title_en": lines[0].sku.product.title_en if lines else "",
            "quantity": sum(line.quantity for line in lines),
        },
    )


def _order_lines(order: Order, preloaded: _Preloaded | None = None) -> list[OrderItem]:
    if preloaded is not None and order.pk in preloaded.lines:
        return preloaded.lines[order.pk]
    return list(order.items.select_related("sku__product", "offer").order_by("pk"))


def _payment_split(order: Order, amount: int, lines: list[OrderItem]) -> tuple[int, int]:
    """(platform fee, host commission) of a payment, each rounded down (in the seller's favour).

    The host of the order's room earns, on each line sold from its shelf under a seller's
    offer, that offer's `commission_bps` of the line: never on its own purchases, never
    on its own goods (those lines have no offer). Every line of a room's order is on its
    shelf (orders.services.orders), so the commission follows what the room sold.
    """
    fee = amount * settings.PLATFORM_FEE_BPS // 10_000
    room = order.room
    if room is None or room.host.user_id == order.buyer_id:
        return fee, 0
    commission = sum(line.line_total * line.offer.commission_bps // 10_000 for line in lines if line.offer)
    return fee, min(commission, amount - fee)


def _ledger_order_payment(order: Order, amount: int, *, fee: int, commission: int) -> None:
    """The payment's postings, split as `_payment_split` said (and the order row records)."""
    currency = order.currency
    Kind = LedgerAccount.Kind
    postings: list[ledger.Posting] = [
        (ledger.ledger_account(kind=Kind.PROCESSOR, currency=currency), amount),
        (ledger.ledger_account(kind=Kind.PLATFORM_FEES, currency=currency), -fee),
        (
            ledger.ledger_account(kind=Kind.SELLER, currency=currency, shop_id=order.shop_id),
            -(amount - fee - commission),
        ),
    ]
    if commission:
        assert order.room is not None
        host_account = ledger.ledger_account(
            kind=Kind.HOST_COMMISSION, currency=currency, user_id=order.room.host.user_id
        )
        postings.append((host_account, -commission))
    ledger.ledger_post(
        key=f"order:{order.pk}:payment",
        kind=LedgerTransaction.Kind.ORDER_PAYMENT,
        postings=postings,
        order=order,
        memo=f"payment of order {order.number}",
    )


def _payment_for_intent(intent: dict[str, Any]) -> Payment | None:
    return Payment.objects.filter(payment_intent_id=intent["id"]).first()


def _locked_payment(intent: dict[str, Any], preloaded: _Preloaded) -> Payment | None:
    """The intent's Payment with its order, the order's row locked (by the batch's load)."""
    payment = preloaded.payments.get(intent["id"])
    if payment is not None:
        return payment
    # Not in the batch's load (applied on its own): lock it here.
    return (
        Payment.objects.select_for_update(of=("order",))
        .select_related("order__shop", "order__room__host", "order__buyer")
        .filter(payment_intent_id=intent["id"])
        .first()
    )


def _on_payment_intent_succeeded(intent: dict[str, Any], preloaded: _Preloaded) -> str:
    # The order's row lock orders this against expiry, cancel, and a second event.
    payment = _locked_payment(intent, preloaded)
    if payment is None:
        # Not an order's: a wallet top-up's, or another application's on the account.
        return wallet.top_up_on_intent_succeeded(intent) or "ignored: no payment for this intent"
    order = payment.order
    mismatch = flagged.payment_mismatch(intent, amount=order.total, currency=order.currency)
    if mismatch is not None:
        # Never settles: the order stays unpaid (and expires), the money goes back.
        Payment.objects.filter(pk=payment.pk).exclude(status=Payment.Status.SUCCEEDED).update(
            status=Payment.Status.FAILED, last_error=f"flagged: {mismatch}"[:500]
        )
        return flagged.payment_flag(
            intent=intent, reason=mismatch, amount=order.total, currency=order.currency, order=order
        )
    amount, _ = flagged.intent_received(intent)
    now = timezone.now()
    payment.succeeded_at = payment.succeeded_at or now
    payment.status = Payment.Status.SUCCEEDED
    Payment.objects.filter(pk=payment.pk).update(
        status=payment.status, amount_received=amount, succeeded_at=payment.succeeded_at, last_error=""
    )
    if order.status == Order.Status.PENDING_PAYMENT:
        lines = _order_lines(order, preloaded)
        fee, commission = _payment_split(order, amount, lines)
        Order.objects.filter(pk=order.pk, status=Order.Status.PENDING_PAYMENT).update(
            status=Order.Status.PAID, paid_at=now, platform_fee=fee, host_commission=commission
        )
        order.status, order.paid_at = Order.Status.PAID, now  # a second event in this batch sees it
        _ledger_order_payment(order, amount, fee=fee, commission=commission)
        _order_placed_on_commit(order, lines)
        order_changed(order=order, kind=Notification.Kind.ORDER_PAID)
        return "settled"
    if order.status in (Order.Status.EXPIRED, Order.Status.CANCELLED):
        return _late_payment(order, payment, amount)
    return "duplicate: already settled"


def _late_payment(order: Order, payment: Payment, amount: int) -> str:
    """Money for an order that closed unpaid: take it if its units can be held again,
    else refund it in full. Never lost, never kept for nothing."""
    if order.refunds.filter(kind=Refund.Kind.LATE_PAYMENT).exists():
        return "duplicate: late payment already refunded"
    try:
        order_units_hold_again(order=order)
    except Exception as exc:  # noqa: BLE001 - OutOfStock or FlashSoldOut: the units are gone
        currency = order.currency
        refund = Refund.objects.create(
            order=order,
            amount=amount,
            reason="Paid after the order closed; its units were no longer available.",
            kind=Refund.Kind.LATE_PAYMENT,
        )
        ledger.ledger_post(
            key=f"order:{order.pk}:unallocated",
            kind=LedgerTransaction.Kind.PAYMENT_UNALLOCATED,
            postings=[
                (ledger.ledger_account(kind=LedgerAccount.Kind.PROCESSOR, currency=currency), amount),
                (ledger.ledger_account(kind=LedgerAccount.Kind.UNALLOCATED, currency=currency), -amount),
            ],
            order=order,
            memo=f"late payment of {order.number}, to refund",
        )
        refund_execute_on_commit(refund_id=refund.pk)
        return f"late payment refunded ({type(exc).__name__})"
    lines = _order_lines(order)
    fee, commission = _payment_split(order, amount, lines)
    Order.objects.filter(pk=order.pk, status=order.status).update(
        status=Order.Status.PAID, paid_at=timezone.now(), closed_at=None, platform_fee=fee, host_commission=commission
    )
    _ledger_order_payment(order, amount, fee=fee, commission=commission)
    order.status = Order.Status.PAID
    _order_placed_on_commit(order, lines)
    order_changed(order=order, kind=Notification.Kind.ORDER_PAID)
    return "settled late: units held again"


def _on_payment_intent_failed(intent: dict[str, Any], _preloaded: _Preloaded) -> str:
    error = intent.get("last_payment_error") or {}
    message = str(error.get("message") or error.get("code") or "payment failed")[:500]
    # Never over a success that came first (events arrive in any order).
    updated = (
        Payment.objects.filter(payment_intent_id=intent["id"])
        .exclude(status__in=[Payment.Status.SUCCEEDED, Payment.Status.CANCELED])
        .update(status=Payment.Status.FAILED, last_error=message)
    )
    if updated:
        return "payment failed"
    return wallet.top_up_on_intent_failed(intent, message) or "ignored: payment already final"


def _on_payment_intent_canceled(intent: dict[str, Any], _preloaded: _Preloaded) -> str:
    payment = _payment_for_intent(intent)
    if payment is None:
        return wallet.top_up_on_intent_canceled(intent) or "ignored: no payment for this intent"
    Payment.objects.filter(pk=payment.pk).exclude(status=Payment.Status.SUCCEEDED).update(
        status=Payment.Status.CANCELED
    )
    # Canceled elsewhere (the dashboard) while we waited: it can never be paid now.
    closed = order_close(order_id=payment.order_id, status=Order.Status.CANCELLED, only_if_due=False)
    return "order cancelled" if closed else "payment canceled"


def _on_charge_refunded(charge: dict[str, Any], _preloaded: _Preloaded) -> str:
    refunds = charge.get("refunds")
    if isinstance(refunds, dict) and isinstance(refunds.get("data"), list) and not refunds.get("has_more"):
        listed = refunds["data"]
    else:
        # Newer API versions leave the refunds out of the charge: ask Stripe for them.
        listed = stripe_api.refunds_of_payment_intent(payment_intent_id=charge["payment_intent"])
    outcomes = [_refund_sync(refund) for refund in listed]
    return "; ".join(outcomes) or "no refunds"


def _on_refund_event(refund: dict[str, Any], _preloaded: _Preloaded) -> str:
    return _refund_sync(refund)


def _refund_sync(stripe_refund: dict[str, Any]) -> str:
    from orders.services.refunds import refund_apply_result

    intent_id = stripe_refund.get("payment_intent")
    local = Refund.objects.filter(stripe_refund_id=stripe_refund["id"]).first()
    if local is None:
        metadata = stripe_refund.get("metadata") or {}
        ours = metadata.get("liveshop_refund")
        if ours:
            # Ours, but its creation call's answer was lost before we stored its id.
            local = Refund.objects.filter(pk=int(ours)).first()
    if local is None:
        payment = Payment.objects.filter(payment_intent_id=intent_id).first() if intent_id else None
        if payment is None:
            return f"ignored refund {stripe_refund['id']}: no payment"
        if payment.status != Payment.Status.SUCCEEDED:
            raise Deferred("refund seen before its payment settled")
        if stripe_refund.get("status") != "succeeded":
            return f"refund {stripe_refund['id']} {stripe_refund.get('status')}"
        # Made outside liveshop (the Stripe dashboard): record it.
        local = Refund.objects.create(
            order_id=payment.order_id,
            amount=int(stripe_refund["amount"]),
            reason="Refunded in the Stripe dashboard.",
            kind=Refund.Kind.EXTERNAL,
            stripe_refund_id=stripe_refund["id"],
        )
    return refund_apply_result(
        refund_id=local.pk, stripe_refund_id=stripe_refund["id"], status=str(stripe_refund.get("status"))
    )


_HANDLERS: dict[str, Callable[[dict[str, Any], _Preloaded], str]] = {
    "payment_intent.succeeded": _on_payment_intent_succeeded,
    "payment_intent.payment_failed": _on_payment_intent_failed,
    "payment_intent.canceled": _on_payment_intent_canceled,
    "charge.refunded": _on_charge_refunded,
    "charge.refund.updated": _on_refund_event,
    "refund.created": _on_refund_event,
    "refund.updated": _on_refund_event,
    "refund.failed": _on_refund_event,
}


def stripe_event_handler_register(
    *, event_type: str, object_kind: str, handler: Callable[[dict[str, Any]], str]
) -> None:
    """Settle one more type of Stripe event through this outbox: stored once, applied by
    the drainers, retried by the sweeper. `handler` gets the event's `data.object` (of
    `object_kind`), runs in the drainer's transaction and returns the outcome, or raises
    Deferred. Called from an app's ready() (payouts/apps.py: transfers)."""
    _EVENT_OBJECTS[event_type] = object_kind
    _HANDLERS[event_type] = lambda obj, _preloaded: handler(obj)


def refund_execute_on_commit(*, refund_id: int) -> None:
    from orders.tasks import refund_execute_task

    transaction.on_commit(lambda: refund_execute_task.delay(refund_id), robust=True)
