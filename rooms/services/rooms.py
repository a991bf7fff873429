"""Writes for rooms and their shelf.

Status changes are compare-and-set on the row, so two requests racing for the same change
find exactly one winner. Callers check who may act (rooms.selectors has the predicates).
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import Max
from django.utils import timezone

from catalog import selectors as catalog_selectors
from catalog.models import Offer, Sku
from liveshop.errors import (
    Conflict,
    Invalid,
    NotFound,
    PermissionDenied,
)
from liveshop.models import User
from rooms import broadcast, hooks, payloads
from rooms.broadcast import room_event_on_commit
from rooms.models import FlashSale, Host, ModerationAction, Room, RoomItem
from rooms.services.flash_sales import room_flash_sales_end
from rooms.services.moderation import audit_record
from rooms.services.stats import room_stats_report_on_commit

logger = logging.getLogger(__name__)


# --- Rooms ------------------------------------------------------------------------------

ROOM_EDITABLE_FIELDS = frozenset(
    {"title", "title_en", "description", "scheduled_start", "slow_mode_s", "playback_url", "comment_min_account_age_s"}
)

# Fields the comment intake judges comments by (rooms/realtime/intake.py).
COMMENT_RULE_FIELDS = frozenset({"slow_mode_s", "comment_min_account_age_s"})


def room_create(
    *, host: Host, title: str, description: str = "", scheduled_start: datetime | None = None, title_en: str = ""
) -> Room:
    return Room.objects.create(
        host=host, title=title, title_en=title_en, description=description, scheduled_start=scheduled_start
    )


def room_update(*, room: Room, **fields: Any) -> Room:
    unknown = set(fields) - ROOM_EDITABLE_FIELDS
    if unknown:
        raise Invalid(f"These fields cannot be changed: {', '.join(sorted(unknown))}.")
    if not fields:
        return room
    # Conditional on the status: an edit racing with `end` must not touch an ended show.
    updated = Room.objects.filter(pk=room.pk, status__in=[Room.Status.SCHEDULED, Room.Status.LIVE]).update(**fields)
    if updated != 1:
        raise Conflict("An ended or suspended room cannot be changed.")
    room.refresh_from_db()
    if fields.keys() & COMMENT_RULE_FIELDS:
        room_id = room.pk
        transaction.on_commit(lambda: broadcast.room_comment_rules_changed(room_id), robust=True)
    if "playback_url" in fields:
        # Open pages switch to the new URL (or off it) without a reload.
        room_event_on_commit(room.pk, "video.updated", payloads.video_payload(room))
    return room


def _room_transition(*, room: Room, allowed_from: list[str], detail: str, **changes: Any) -> Room:
    claimed = Room.objects.filter(pk=room.pk, status__in=allowed_from).update(**changes)
    if claimed != 1:
        raise Conflict(detail)
    room.refresh_from_db()
    return room


def _room_status_event(room: Room) -> None:
    # Ended and suspended rooms close their sockets once this event is delivered.
    room_event_on_commit(room.pk, "room.status", {"status": room.status})
    if room.status in (Room.Status.ENDED, Room.Status.SUSPENDED):
        # The video app drops the room's RTMP publisher (rooms/hooks.py).
        hooks.room_closed(room)


@transaction.atomic
def room_start(*, room: Room) -> Room:
    room = _room_transition(
        room=room,
        allowed_from=[Room.Status.SCHEDULED],
        detail="Only a scheduled room can start.",
        status=Room.Status.LIVE,
        started_at=timezone.now(),
    )
    _room_status_event(room)
    hooks.room_started(room)  # the host's followers are told (notifications)
    return room


@transaction.atomic
def room_end(*, room: Room) -> Room:
    """End a scheduled or live show and its flash sales."""
    room = _room_transition(
        room=room,
        allowed_from=[Room.Status.SCHEDULED, Room.Status.LIVE],
        detail="Only a scheduled or live room can end.",
        status=Room.Status.ENDED,
        ended_at=timezone.now(),
    )
    room_flash_sales_end(room=room)
    # After the flash sales' events: this one closes the sockets.
    _room_status_event(room)
    room_stats_report_on_commit(room=room)
    return room


@transaction.atomic
def room_suspend(*, room: Room, reason: str, actor: User | None = None) -> Room:
    """Staff take a room off the air, whatever its state (audited as `actor`'s act)."""
    now = timezone.now()
    room = _room_transition(
        room=room,
        allowed_from=[Room.Status.SCHEDULED, Room.Status.LIVE, Room.Status.ENDED],
        detail="The room is already suspended.",
        status=Room.Status.SUSPENDED,
        suspended_at=now,
        suspend_reason=reason,
    )
    if room.ended_at is None:
        Room.objects.filter(pk=room.pk).update(ended_at=now)
        room.ended_at = now
    room_flash_sales_end(room=room)
    _room_status_event(room)
    audit_record(actor=actor, action=ModerationAction.Action.ROOM_SUSPEND, room=room, reason=reason)
    room_stats_report_on_commit(room=room)
    return room


# --- The shelf --------------------------------------------------------------------------


def _ensure_open(room: Room) -> None:
    if not room.is_open:
        raise Conflict("The room has ended; its shelf cannot change.")


def room_item_offer(*, room: Room, sku: Sku, lock: bool = False) -> Offer | None:
    """The offer under which `room`'s host may sell `sku`: None for its own shops' goods.

    Another shop's sku needs an open offer that names this host or no host (a verified
    host's: only verified hosts run rooms); PermissionDenied otherwise. `lock` takes the
    offer's row lock, which orders this against a concurrent withdrawal.
    """
    if sku.product.shop.owner_id == room.host.user_id:
        return None
    offer = catalog_selectors.offer_open_for_sku(sku_id=sku.pk, host_id=room.host_id)
    if offer is not None and lock:
        offer = catalog_selectors.offers_open().select_for_update().filter(pk=offer.pk).first()
    if offer is None or not room.host.verified:
        raise PermissionDenied("This sku is another shop's, and its seller has no offer open to this host.")
    return offer


def room_item_add(*, room: Room, sku: Sku, live_price: int | None = None) -> RoomItem:
    """Put `sku` on the room's shelf: the host's own goods freely, another shop's only
    under the seller's offer, at no less than its `min_live_price`."""
    _ensure_open(room)
    if not sku.product.is_active:
        raise Invalid("This product is not on sale.", fields={"sku": ["The product is not on sale."]})
    try:
        with transaction.atomic():
            offer = room_item_offer(room=room, sku=sku, lock=True)
            if offer is not None and (live_price if live_price is not None else sku.price) < offer.min_live_price:
                raise Invalid(
                    f"The seller's offer allows no live price below {offer.min_live_price}.",
                    fields={"live_price": [f"At least {offer.min_live_price}."]},
                )
            position = (RoomItem.objects.filter(room=room).aggregate(top=Max("position"))["top"] or 0) + 1
            item = RoomItem.objects.create(room=room, sku=sku, offer=offer, live_price=live_price, position=position)
            _items_updated_event(room)
            return item
    except IntegrityError:
        raise Conflict("This sku is already on the room's shelf.") from None


def _items_updated_event(room: Room) -> None:
    room_event_on_commit(room.pk, "items.updated", {"items": payloads.items_payload(room)})


@transaction.atomic
def room_item_remove(*, item: RoomItem) -> None:
    _ensure_open(item.room)
    if FlashSale.objects.filter(item=item, status=FlashSale.Status.ACTIVE).exists():
        raise Conflict("The item has an active flash sale; wait for it to end.")
    was_featured = Room.objects.filter(pk=item.room_id, featured_item=item).update(featured_item=None)
    item.delete()
    _items_updated_event(item.room)
    if was_featured:
        room_event_on_commit(item.room_id, "item.featured", {"item": None})


@transaction.atomic
def room_item_feature(*, item: RoomItem) -> RoomItem:
    """Make `item` the room's "now explaining" item."""
    updated = Room.objects.filter(pk=item.room_id, status__in=[Room.Status.SCHEDULED, Room.Status.LIVE]).update(
        featured_item=item
    )
    if updated != 1:
        raise Conflict("The room has ended; its shelf cannot change.")
    hooks.item_featured(item)  # the replay's chapters (streams)
    room_event_on_commit(item.room_id, "item.featured", {"item": payloads.item_payload(item)})
    return item


def room_item_get(*, room: Room, item_id: int) -> RoomItem:
    try:
        return RoomItem.objects.select_related("room", "sku__product").get(pk=item_id, room=room)
    except RoomItem.DoesNotExist:
        raise NotFound("No such item on this room's shelf.") from None
