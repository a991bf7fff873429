"""Placing, cancelling, expiring and shipping orders: holds that never oversell.

Creating an order is one short transaction: hold the units with conditional updates
(the sku's stock, or the flash sale's remaining units), create the order and its items,
commit. Locks are taken in one global order (flash sales by id, then skus by id) so two
orders never wait for each other in a cycle. The Stripe PaymentIntent is created after
the commit (orders.services.payments); no row lock is ever held across a network call.

Flash-sale lines pass the Redis gate first (rooms.flash_gate): sold-out and over-limit
clicks are refused there without touching PostgreSQL, and a database step that fails
after the gate admitted it gives the gate's units back.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Q, Sum
from django.utils import timezone

from catalog.models import Sku
from catalog.services import sku_hold, sku_release
from liveshop.errors import Banned, Conflict, FlashSoldOut, Invalid, LimitExceeded, RoomNotLive
from liveshop.models import User
from notifications.models import Notification
from notifications.triggers import order_changed
from orders.models import Order, OrderItem
from rooms import flash_gate, hooks
from rooms import selectors as room_selectors
from rooms import services as room_services
from rooms.models import FlashSale, Room, RoomItem

MAX_LINES = 20
MAX_QUANTITY = 100


@dataclass(frozen=True)
class LineRequest:
    """One line as the buyer asked for it: a shelf item, or a sku."""

    quantity: int
    item: RoomItem | None = None
    sku: Sku | None = None


@dataclass
class _Line:
    sku: Sku
    quantity: int
    room_item: RoomItem | None
    flash_sale: FlashSale | None
    unit_price: int

    @property
    def title(self) -> str:
        return f"{self.sku.product.title} / {self.sku.name}"[:250]


def order_number_new() -> str:
    """A number a person can read out on the phone: date plus 10 random hex digits."""
    return f"LS{timezone.now():%y%m%d}{secrets.token_hex(5).upper()}"


def _resolve_lines(*, buyer: User, room: Room | None, lines: Sequence[LineRequest]) -> tuple[Room | None, list[_Line]]:
    """Check the lines against the room and the shelf, and price them (server-side).

    An order placed in a room buys from that room's shelf only: every line is a shelf
    item of the room (a sku is looked up on the shelf), so the room's live prices, the
    sellers' offers and the host's commission apply to exactly what the room sold.
    """
    if not lines:
        raise Invalid("An order needs at least one item.", fields={"items": ["At least one item."]})
    if len(lines) > MAX_LINES:
        raise Invalid(f"At most {MAX_LINES} lines per order.", fields={"items": [f"At most {MAX_LINES} lines."]})
    for line in lines:
        if line.item is not None and room is None:
            room = line.item.room
    resolved: list[_Line] = []
    for index, line in enumerate(lines):
        room_item = line.item
        if room_item is not None and room is not None and room_item.room_id != room.pk:
            raise Invalid(
                "Every shelf item must be on the order's room.",
                fields={f"items.{index}.item": ["Not on this room's shelf."]},
            )
        if room_item is None and room is not None:
            room_item = (
                RoomItem.objects.select_related("sku__product__shop", "offer").filter(room=room, sku=line.sku).first()
            )
            if room_item is None:
                raise Invalid(
                    "An order placed in a room buys from its shelf; this sku is not on it.",
                    fields={f"items.{index}.sku": ["Not on this room's shelf."]},
                )
        sku = room_item.sku if room_item is not None else line.sku
        assert sku is not None
        if not sku.product.is_active:
            raise Invalid("This product is not on sale.", fields={f"items.{index}": ["The product is not on sale."]})
        resolved.append(_Line(sku=sku, quantity=line.quantity, room_item=room_item, flash_sale=None, unit_price=0))

    if len({line.sku.pk for line in resolved}) != len(resolved):
        raise Invalid("Each sku may appear once per order.", fields={"items": ["A sku appears twice."]})
    if len({line.sku.product.shop_id for line in resolved}) != 1:
        raise Invalid(
            "An order holds the goods of one shop; place one order per shop.",
            fields={"items": ["The items come from more than one shop."]},
        )
    if room is not None:
        _ensure_may_buy_in(room=room, buyer=buyer, lines=resolved)

    now = timezone.now()
    for priced in resolved:
        sale = _active_flash_sale(priced.room_item, now=now) if priced.room_item is not None else None
        priced.flash_sale = sale
        if sale is not None:
            priced.unit_price = sale.price
        elif priced.room_item is not None:
            priced.unit_price = room_selectors.item_shelf_price(priced.room_item)
        else:
            priced.unit_price = priced.sku.price
    return room, resolved


def _ensure_may_buy_in(*, room: Room, buyer: User, lines: list[_Line]) -> None:
    """The room is live (or ended with a watchable replay: its shelf sells on, flash sales
    do not), the buyer is not banned from it, and the host still sells each line on its
    seller's terms (rooms.selectors.item_on_sellers_terms)."""
    selling = room.status == Room.Status.LIVE or (room.status == Room.Status.ENDED and hooks.room_sells_after_end(room))
    if not selling:
        raise RoomNotLive("Live prices apply only while the room is live; order the sku without the room.")
    if room_selectors.is_banned(room_id=room.pk, user_id=buyer.pk):
        raise Banned("You are banned from this room.")
    for line in lines:
        assert line.room_item is not None  # every line of a room's order is on its shelf
        if not room_selectors.item_on_sellers_terms(
            line.room_item, host_id=room.host_id, host_user_id=room.host.user_id
        ):
            raise Conflict(f"The seller does not offer {line.title} through this room (any more).")


def _active_flash_sale(item: RoomItem, *, now: Any) -> FlashSale | None:
    sale = FlashSale.objects.select_related("item").filter(item=item, status=FlashSale.Status.ACTIVE).first()
    if sale is None:
        return None
    if not room_services.flash_sale_is_on(sale, now=now):
        # Past its end and not swept yet: end it here, so its units are back in the
        # sku's stock and this order takes them at the normal price.
        room_services.flash_sale_end(flash_sale_id=sale.pk)
        return None
    return sale


def _gate_admit(*, buyer: User, lines: list[_Line], idempotency_key: str | None) -> list[_Line]:
    """Pass the flash lines through the Redis gate; returns those admitted (to give back on failure)."""
    admitted: list[_Line] = []
    try:
        for line in lines:
            if line.flash_sale is None:
                continue
            verdict = flash_gate.gate_admit(
                sale_id=line.flash_sale.pk, buyer_id=buyer.pk, quantity=line.quantity, idempotency_key=idempotency_key
            )
            if verdict == flash_gate.Verdict.SOLD_OUT:
                raise FlashSoldOut()
            if verdict == flash_gate.Verdict.LIMIT:
                raise LimitExceeded()
            if verdict == flash_gate.Verdict.ADMITTED:
                admitted.append(line)
            # ENDED or UNKNOWN: the gate has no opinion; PostgreSQL decides below.
    except Exception:
        _gate_give_back(buyer=buyer, lines=admitted, idempotency_key=idempotency_key)
        raise
    return admitted


def _gate_give_back(*, buyer: User, lines: list[_Line], idempotency_key: str | None) -> None:
    for line in lines:
        assert line.flash_sale is not None
        flash_gate.gate_give_back(
            sale_id=line.flash_sale.pk, buyer_id=buyer.pk, quantity=line.quantity, idempotency_key=idempotency_key
        )


def flash_units_held(*, flash_sale_id: int, buyer_id: int) -> int:
    """Units a buyer holds in a flash sale: lines of orders that did not give them back."""
    held = OrderItem.objects.filter(
        flash_sale_id=flash_sale_id, order__buyer_id=buyer_id, order__status__in=Order.HOLDING
    ).aggregate(units=Sum("quantity"))["units"]
    return int(held or 0)


def _ensure_unpaid_within_limits(*, buyer: User) -> None:
    """Refuse (LimitExceeded) an order that takes the buyer's unpaid units past the limits.

    Call inside the creating transaction, after the order's lines are inserted: the
    buyer's row lock serializes one buyer's concurrent orders, so each counts the others.
    """
    User.objects.select_for_update().filter(pk=buyer.pk).values_list("pk", flat=True).first()
    unpaid = (
        OrderItem.objects.filter(order__buyer_id=buyer.pk, order__status=Order.Status.PENDING_PAYMENT)
        .values("sku_id")
        .annotate(units=Sum("quantity"))
    )
    per_sku = [row["units"] for row in unpaid]
    if sum(per_sku) > settings.UNPAID_UNITS_PER_BUYER or max(per_sku, default=0) > settings.UNPAID_UNITS_PER_SKU:
        raise LimitExceeded(
            f"You may hold at most {settings.UNPAID_UNITS_PER_SKU} unpaid units of one item and "
            f"{settings.UNPAID_UNITS_PER_BUYER} in all; pay or cancel an open order first."
        )


def _hold(*, buyer: User, lines: list[_Line]) -> None:
    """Hold every line's units. Call inside the transaction that created the order's lines,
    after `_ensure_unpaid_within_limits` locked the buyer's row: that lock orders one
    buyer's concurrent orders, so the per-buyer counts here see every earlier one of the
    buyer (and this order's own lines). A flash sale's row is every buyer's: it is taken
    last, in the global lock order, so that each winner holds it only from its update to
    its commit (its lock is the queue a burst's winners wait in)."""
    flash = sorted((line for line in lines if line.flash_sale is not None), key=lambda x: x.flash_sale.pk)  # type: ignore[union-attr]
    for line in flash:
        sale = line.flash_sale
        assert sale is not None
        if (
            sale.per_buyer_limit is not None
            and flash_units_held(flash_sale_id=sale.pk, buyer_id=buyer.pk) > sale.per_buyer_limit
        ):
            raise LimitExceeded()
    for line in sorted((line for line in lines if line.flash_sale is None), key=lambda x: x.sku.pk):
        sku_hold(sku_id=line.sku.pk, quantity=line.quantity)
    for line in flash:
        assert line.flash_sale is not None
        room_services.flash_sale_take(sale=line.flash_sale, quantity=line.quantity)


def order_create(
    *,
    buyer: User,
    lines: Sequence[LineRequest],
    room: Room | None,
    shipping: dict[str, str],
    idempotency_key: str | None = None,
    on_created: Callable[[Order], None] | None = None,
) -> Order:
    """Place an order: hold its units at once, at server-set prices, or raise having held nothing.

    Raises Invalid, RoomNotLive, OutOfStock, FlashSoldOut or LimitExceeded.
    `on_created` runs inside the creating transaction (the idempotency record's link).
    """
    room, resolved = _resolve_lines(buyer=buyer, room=room, lines=lines)
    admitted = _gate_admit(buyer=buyer, lines=resolved, idempotency_key=idempotency_key)
    now = timezone.now()
    has_flash = any(line.flash_sale is not None for line in resolved)
    timeout = settings.FLASH_ORDER_PAYMENT_TIMEOUT_S if has_flash else settings.ORDER_PAYMENT_TIMEOUT_S
    subtotal = sum(line.unit_price * line.quantity for line in resolved)
    try:
        with transaction.atomic():
            # The holds come last: their row locks (a flash sale's row is every buyer's)
            # are then held only from the holds to the commit, not across the inserts.
            order = Order.objects.create(
                number=order_number_new(),
                buyer=buyer,
                shop_id=resolved[0].sku.product.shop_id,
                room=room,
                subtotal=subtotal,
                total=subtotal,  # shipping is free for now (the contract)
                currency=resolved[0].sku.currency,
                shipping=shipping,
                expires_at=now + timedelta(seconds=timeout),
            )
            OrderItem.objects.bulk_create(
                [
                    OrderItem(
                        order=order,
                        sku=line.sku,
                        room_item=line.room_item,
                        offer_id=line.room_item.offer_id if line.room_item is not None else None,
                        flash_sale=line.flash_sale,
                        title=line.title,
                        quantity=line.quantity,
                        unit_price=line.unit_price,
                        line_total=line.unit_price * line.quantity,
                    )
                    for line in resolved
                ]
            )
            if on_created is not None:
                on_created(order)
            _ensure_unpaid_within_limits(buyer=buyer)
            _hold(buyer=buyer, lines=resolved)
    except Exception:
        _gate_give_back(buyer=buyer, lines=admitted, idempotency_key=idempotency_key)
        raise
    order.placed_in_flash_sale = has_flash
    return order


def order_units_release(*, order: Order) -> None:
    """Give an order's units back: flash units to their sale (or the sku once it ended).

    Call inside the transaction that moved the order out of a holding status.
    """
    items = list(order.items.all())
    for item in sorted((i for i in items if i.flash_sale_id is not None), key=lambda i: i.flash_sale_id or 0):
        assert item.flash_sale_id is not None
        room_services.flash_sale_give_back(
            flash_sale_id=item.flash_sale_id, sku_id=item.sku_id, quantity=item.quantity, buyer_id=order.buyer_id
        )
    for item in sorted((i for i in items if i.flash_sale_id is None), key=lambda i: i.sku_id):
        sku_release(sku_id=item.sku_id, quantity=item.quantity)


def order_units_hold_again(*, order: Order) -> None:
    """Hold a closed order's units once more (a late payment), or raise having held nothing.

    Flash units come from their sale while it is on, else from the sku's stock (where
    the sale returned them); either way the sale's per-buyer limit holds, counted under
    the sale's row lock with the buyer's other orders (a buyer who cancelled an order,
    ordered again and then paid both gets no more than the limit). Call inside a
    transaction; raises OutOfStock, FlashSoldOut or LimitExceeded.
    """
    with transaction.atomic():
        items = list(order.items.select_related("flash_sale__item"))
        now = timezone.now()
        for item in sorted((i for i in items if i.flash_sale_id is not None), key=lambda i: i.flash_sale_id or 0):
            sale = item.flash_sale
            assert sale is not None
            if room_services.flash_sale_is_on(sale, now=now):
                room_services.flash_sale_take(sale=sale, quantity=item.quantity)
            else:
                FlashSale.objects.select_for_update().filter(pk=sale.pk).values_list("pk", flat=True).first()
                sku_hold(sku_id=item.sku_id, quantity=item.quantity)
            if sale.per_buyer_limit is not None:
                # This order is still closed, so the count is of the buyer's other orders.
                held = flash_units_held(flash_sale_id=sale.pk, buyer_id=order.buyer_id)
                if held + item.quantity > sale.per_buyer_limit:
                    raise LimitExceeded()
        for item in sorted((i for i in items if i.flash_sale_id is None), key=lambda i: i.sku_id):
            sku_hold(sku_id=item.sku_id, quantity=item.quantity)


def order_close(*, order_id: int, status: Order.Status, only_if_due: bool) -> Order | None:
    """pending_payment -> cancelled/expired, giving the units back. None if it was not pending."""
    from orders.services.payments import order_payment_cancel_on_commit

    now = timezone.now()
    with transaction.atomic():
        pending = Order.objects.filter(pk=order_id, status=Order.Status.PENDING_PAYMENT)
        if only_if_due:
            pending = pending.filter(expires_at__lte=now)
        # A payment settling at the same moment updates the same row: exactly one wins.
        if pending.update(status=status, closed_at=now) != 1:
            return None
        order = Order.objects.get(pk=order_id)
        order_units_release(order=order)
        order_payment_cancel_on_commit(order=order)
    return order


def order_cancel(*, order: Order) -> Order:
    """The buyer cancels an unpaid order (409 conflict once it is not pending any more)."""
    closed = order_close(order_id=order.pk, status=Order.Status.CANCELLED, only_if_due=False)
    if closed is None:
        raise Conflict("Only an order waiting for payment can be cancelled.")
    return closed


def order_expire(*, order_id: int) -> bool:
    """Expire an order whose payment deadline passed. Returns whether this call did it."""
    return order_close(order_id=order_id, status=Order.Status.EXPIRED, only_if_due=True) is not None


# An order whose payment is "preparing" (its PaymentIntent waits for a slot under Stripe's
# rate limit, orders/services/payments.py) does not run out meanwhile; the deadline restarts
# when the intent comes. One that waits this long (Stripe down) expires all the same.
PAYMENT_PREPARE_MAX = timedelta(minutes=30)


def orders_expire_due(*, batch: int = 500) -> int:
    """The beat sweeper: expire unpaid orders past their deadline. Returns how many."""
    now = timezone.now()
    due = (
        Order.objects.filter(status=Order.Status.PENDING_PAYMENT, expires_at__lte=now)
        .filter(Q(payment_prepare_until__isnull=True) | Q(payment_prepare_until__lte=now))
        .order_by("expires_at")
        .values_list("pk", flat=True)[:batch]
    )
    return sum(order_expire(order_id=order_id) for order_id in list(due))


@transaction.atomic
def order_ship(*, order: Order, tracking: str = "") -> Order:
    """The seller ships a paid order."""
    shipped = Order.objects.filter(pk=order.pk, status=Order.Status.PAID).update(
        status=Order.Status.SHIPPED, shipped_at=timezone.now(), tracking=tracking
    )
    if shipped != 1:
        raise Conflict("Only a paid order can be shipped.")
    order.refresh_from_db()
    order_changed(order=order, kind=Notification.Kind.ORDER_SHIPPED, tracking=tracking)
    return order


def order_deliver(*, order_id: int, only_if_due: bool = False) -> Order | None:
    """A shipped order is delivered: confirmed by its buyer or staff, or (`only_if_due`,
    the sweeper) AUTO_DELIVER_DAYS after shipping. Its payees' shares become payable
    PAYOUT_HOLD_DAYS after this (payouts/services/balances.py)."""
    now = timezone.now()
    rows = Order.objects.filter(pk=order_id, status=Order.Status.SHIPPED)
    if only_if_due:
        rows = rows.filter(shipped_at__lte=now - timedelta(days=settings.AUTO_DELIVER_DAYS))
    if rows.update(status=Order.Status.DELIVERED, delivered_at=now) != 1:
        if only_if_due:
            return None
        raise Conflict("Only a shipped order can be delivered.")
    return Order.objects.get(pk=order_id)


def orders_deliver_due(*, batch: int = 1000) -> int:
    """The beat sweeper: deliver the orders shipped AUTO_DELIVER_DAYS ago and not confirmed."""
    cutoff = timezone.now() - timedelta(days=settings.AUTO_DELIVER_DAYS)
    due = list(
        Order.objects.filter(status=Order.Status.SHIPPED, shipped_at__lte=cutoff)
        .order_by("shipped_at")
        .values_list("pk", flat=True)[:batch]
    )
    return sum(order_deliver(order_id=order_id, only_if_due=True) is not None for order_id in due)
