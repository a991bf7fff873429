"""Flash sales: start, take and give back units, end, and the sweeper."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from django.core.cache import cache
from django.db import IntegrityError, transaction
from django.db.models import F, Q
from django.utils import timezone

from catalog import selectors as catalog_selectors
from catalog.models import Offer
from catalog.services import sku_hold, sku_release
from liveshop.errors import (
    Conflict,
    FlashSoldOut,
    Invalid,
    PermissionDenied,
    RoomNotLive,
)
from liveshop.redis_client import redis_key, redis_sync
from rooms import broadcast, flash_gate, selectors
from rooms.models import FlashSale, Room, RoomItem

logger = logging.getLogger(__name__)


# --- Flash sales ------------------------------------------------------------------------

# flash.stock goes out at most this often per sale (leading edge); the sweeper sends the
# last value if it changed since (trailing edge), so the final count is never missed.
FLASH_STOCK_INTERVAL_MS = 250
FLASH_MAX_DURATION_S = 24 * 3600


def flash_sale_is_on(sale: FlashSale, *, now: datetime | None = None) -> bool:
    """On sale: active and not past its end (a sale past its end awaits the sweeper)."""
    return sale.status == FlashSale.Status.ACTIVE and sale.ends_at > (now or timezone.now())


def flash_sale_start(
    *, item: RoomItem, price: int, quantity: int, duration_s: int, per_buyer_limit: int | None = None
) -> FlashSale:
    """Start a flash sale of `quantity` units of a live room's shelf item.

    The units leave the sku's free stock now (OutOfStock if there are not that many)
    and come back, less those sold, when the sale ends. One active sale per item.
    """
    if per_buyer_limit is not None and per_buyer_limit > quantity:
        raise Invalid(
            "The per-buyer limit cannot exceed the quantity.",
            fields={"per_buyer_limit": ["Must be at most the quantity."]},
        )
    now = timezone.now()
    try:
        with transaction.atomic():
            # The room's row lock orders this against room_end/room_suspend: either the
            # room is still live here, or the ending transaction sees this sale and ends it.
            live = Room.objects.select_for_update().filter(pk=item.room_id, status=Room.Status.LIVE)
            host = live.values_list("host_id", "host__user_id").first()
            if host is None:
                raise RoomNotLive("Flash sales run only while the room is live.")
            if item.offer_id is not None:
                _ensure_offer_allows_flash(offer_id=item.offer_id, host_id=host[0], price=price, quantity=quantity)
            elif not selectors.item_on_sellers_terms(item, host_id=host[0], host_user_id=host[1]):
                raise PermissionDenied("Only the seller's goods, or goods under its offer, go on flash sale.")
            # A sale of this item past its end but not swept yet must not block a new one.
            for due_id in FlashSale.objects.filter(
                item=item, status=FlashSale.Status.ACTIVE, ends_at__lte=now
            ).values_list("pk", flat=True):
                flash_sale_end(flash_sale_id=due_id)
            sku_hold(sku_id=item.sku_id, quantity=quantity)
            sale = FlashSale.objects.create(
                item=item,
                price=price,
                quantity=quantity,
                remaining=quantity,
                per_buyer_limit=per_buyer_limit,
                starts_at=now,
                ends_at=now + timedelta(seconds=duration_s),
            )
    except IntegrityError:
        raise Conflict("This item already has an active flash sale.") from None

    state = flash_gate.SaleState(
        sale_id=sale.pk,
        item_id=item.pk,
        remaining=quantity,
        per_buyer_limit=per_buyer_limit,
        ends_at=sale.ends_at,
        buyers={},
    )
    transaction.on_commit(lambda: flash_gate.gate_load(state=state))
    broadcast.room_event_on_commit(item.room_id, "flash.started", {"flash_sale": selectors.flash_sale_public(sale)})
    return sale


def _ensure_offer_allows_flash(*, offer_id: int, host_id: int, price: int, quantity: int) -> None:
    """A flash sale of another shop's goods runs only on the terms of the seller's offer.

    The offer's row lock orders this against its withdrawal."""
    terms = Offer.objects.select_for_update().get(pk=offer_id)
    if not catalog_selectors.offer_is_open_to(offer_id=offer_id, host_id=host_id):
        raise PermissionDenied("The seller's offer for this item is no longer open.")
    if not terms.flash_allowed:
        raise PermissionDenied("The seller's offer does not allow flash sales.")
    if terms.min_flash_price is not None and price < terms.min_flash_price:
        raise Invalid(
            f"The seller's offer allows no flash price below {terms.min_flash_price}.",
            fields={"price": [f"At least {terms.min_flash_price}."]},
        )
    if terms.flash_max_units is not None and quantity > terms.flash_max_units:
        raise Invalid(
            f"The seller's offer allows at most {terms.flash_max_units} units in a flash sale.",
            fields={"quantity": [f"At most {terms.flash_max_units}."]},
        )


def flash_sale_end(*, flash_sale_id: int) -> bool:
    """End an active flash sale and give its unsold units back to the sku's stock.

    Compare-and-set on the status: a sweeper and `room_end` racing to end the same sale
    return units once. Returns whether this call ended it. The gate closes and
    `flash.ended` goes out when the transaction commits.
    """
    with transaction.atomic():
        sale = FlashSale.objects.select_for_update(of=("self",)).select_related("item").filter(pk=flash_sale_id).first()
        if sale is None or sale.status != FlashSale.Status.ACTIVE:
            return False
        unsold = sale.remaining
        FlashSale.objects.filter(pk=sale.pk).update(
            status=FlashSale.Status.ENDED, ended_at=timezone.now(), returned=unsold
        )
        if unsold:
            sku_release(sku_id=sale.item.sku_id, quantity=unsold)
        sale_id, item_id, room_id = sale.pk, sale.item_id, sale.item.room_id
        transaction.on_commit(lambda: flash_gate.gate_close(sale_id=sale_id, item_id=item_id))
        broadcast.room_event_on_commit(room_id, "flash.ended", {"flash_sale": sale_id, "sold": sale.quantity - unsold})
    return True


def room_flash_sales_end(*, room: Room) -> None:
    active = FlashSale.objects.filter(item__room=room, status=FlashSale.Status.ACTIVE).order_by("pk")
    for sale_id in active.values_list("pk", flat=True):
        flash_sale_end(flash_sale_id=sale_id)


def flash_sale_take(*, sale: FlashSale, quantity: int) -> None:
    """Hold `quantity` of a sale's units for an order, in the caller's transaction.

    The conditional update cannot oversell. Its row lock is held to the caller's commit
    and every buyer of the sale waits for it: take it last in the transaction.
    """
    taken = FlashSale.objects.filter(
        pk=sale.pk, status=FlashSale.Status.ACTIVE, ends_at__gt=timezone.now(), remaining__gte=quantity
    ).update(remaining=F("remaining") - quantity)
    if taken != 1:
        raise FlashSoldOut()
    room_id = sale.item.room_id
    transaction.on_commit(lambda: flash_sale_stock_changed(flash_sale_id=sale.pk, room_id=room_id))


def flash_sale_give_back(*, flash_sale_id: int, sku_id: int, quantity: int, buyer_id: int) -> None:
    """Return units an order held in a flash sale: to the sale while it is on, else to the sku.

    Racing `flash_sale_end` is safe: the update waits for its row lock and then sees
    the sale ended, so the units go to the sku exactly once either way.
    """
    returned = FlashSale.objects.filter(pk=flash_sale_id, status=FlashSale.Status.ACTIVE).update(
        remaining=F("remaining") + quantity
    )
    if returned != 1:
        sku_release(sku_id=sku_id, quantity=quantity)
    sale = FlashSale.objects.select_related("item").get(pk=flash_sale_id)
    room_id = sale.item.room_id

    def after_commit() -> None:
        flash_gate.gate_give_back(sale_id=flash_sale_id, buyer_id=buyer_id, quantity=quantity)
        if returned:
            flash_sale_stock_changed(flash_sale_id=flash_sale_id, room_id=room_id)

    transaction.on_commit(after_commit)


def _stock_published_key(sale_id: int) -> str:
    return f"flash:{sale_id}:stock_published"


def flash_sale_stock_publish(*, sale: FlashSale) -> None:
    """Send `flash.stock` with the sale's remaining units (from PostgreSQL, the truth)."""
    broadcast.room_publish(sale.item.room_id, "flash.stock", {"flash_sale": sale.pk, "remaining": sale.remaining})
    cache.set(_stock_published_key(sale.pk), sale.remaining, timeout=FLASH_MAX_DURATION_S)


def flash_sale_stock_changed(*, flash_sale_id: int, room_id: int) -> None:
    """After a commit that moved a sale's units: `flash.stock`, throttled per sale."""
    client = redis_sync()
    tick = f"flash:{flash_sale_id}:stock_tick"
    if client is not None:
        first_in_window = bool(client.set(redis_key(tick), 1, nx=True, px=FLASH_STOCK_INTERVAL_MS))
    else:
        first_in_window = cache.add(tick, 1, timeout=1)
    if not first_in_window:
        return  # the sweeper sends the last value if nothing else does
    sale = FlashSale.objects.select_related("item").filter(pk=flash_sale_id).first()
    if sale is not None and sale.status == FlashSale.Status.ACTIVE:
        flash_sale_stock_publish(sale=sale)


def flash_sales_sweep() -> int:
    """The beat sweeper: end sales that are due or sold out, send trailing `flash.stock`,
    and reload a gate Redis lost. Returns how many sales it ended."""
    now = timezone.now()
    # A sale under an offer the seller withdrew (or that ran out) ends too: its units go back.
    offer_closed = Q(item__offer__isnull=False) & (
        ~Q(item__offer__status=Offer.Status.ACTIVE) | Q(item__offer__ends_at__lte=now)
    )
    due = FlashSale.objects.filter(status=FlashSale.Status.ACTIVE).filter(
        Q(ends_at__lte=now) | Q(remaining=0) | offer_closed
    )
    ended = sum(flash_sale_end(flash_sale_id=sale_id) for sale_id in due.order_by("pk").values_list("pk", flat=True))
    for sale in FlashSale.objects.filter(status=FlashSale.Status.ACTIVE).select_related("item"):
        if cache.get(_stock_published_key(sale.pk)) not in (None, sale.remaining):
            flash_sale_stock_publish(sale=sale)
        if not flash_gate.gate_is_loaded(sale_id=sale.pk):
            # Redis lost the gate (a restart): reload it from PostgreSQL. The buyers'
            # counts are not rebuilt here; PostgreSQL enforces the limit meanwhile.
            logger.warning("reloading the flash gate of sale %s from the database", sale.pk)
            flash_gate.gate_load(
                state=flash_gate.SaleState(
                    sale_id=sale.pk,
                    item_id=sale.item_id,
                    remaining=sale.remaining,
                    per_buyer_limit=sale.per_buyer_limit,
                    ends_at=sale.ends_at,
                    buyers={},
                )
            )
    return ended
