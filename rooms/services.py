"""Writes for hosts, rooms and the shelf.

Callers check who may act (rooms.selectors has the predicates); these functions keep
the rules of the data: status changes are compare-and-set on the row, so two requests
racing for the same change find exactly one winner.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import F, Max
from django.utils import timezone

from catalog.models import Sku
from catalog.services import sku_release
from liveshop.errors import Conflict, Invalid, NotFound
from liveshop.models import User
from rooms.models import FlashSale, Follow, Host, Room, RoomItem

# --- Hosts ------------------------------------------------------------------------------


def host_create(*, user: User, kind: str, district: str, bio: str = "") -> Host:
    try:
        with transaction.atomic():
            return Host.objects.create(user=user, kind=kind, district=district, bio=bio)
    except IntegrityError:
        raise Conflict("You already have a host profile.") from None


def host_verify(*, host: Host) -> Host:
    """Mark a host verified. Verifying twice keeps the first verification time."""
    Host.objects.filter(pk=host.pk, verified=False).update(verified=True, verified_at=timezone.now())
    host.refresh_from_db()
    return host


def host_follow(*, user: User, host: Host) -> None:
    """Follow a host; following again changes nothing."""
    if host.user_id == user.pk:
        raise Invalid("You cannot follow yourself.")
    with transaction.atomic():
        _, created = Follow.objects.get_or_create(user=user, host=host)
        if created:
            Host.objects.filter(pk=host.pk).update(followers_count=F("followers_count") + 1)


def host_unfollow(*, user: User, host: Host) -> None:
    with transaction.atomic():
        deleted, _ = Follow.objects.filter(user=user, host=host).delete()
        if deleted:
            Host.objects.filter(pk=host.pk, followers_count__gt=0).update(followers_count=F("followers_count") - 1)


# --- Rooms ------------------------------------------------------------------------------

ROOM_EDITABLE_FIELDS = frozenset({"title", "description", "scheduled_start", "slow_mode_s", "playback_url"})


def room_create(*, host: Host, title: str, description: str = "", scheduled_start: datetime | None = None) -> Room:
    return Room.objects.create(host=host, title=title, description=description, scheduled_start=scheduled_start)


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
    return room


def _room_transition(*, room: Room, allowed_from: list[str], detail: str, **changes: Any) -> Room:
    claimed = Room.objects.filter(pk=room.pk, status__in=allowed_from).update(**changes)
    if claimed != 1:
        raise Conflict(detail)
    room.refresh_from_db()
    return room


def room_start(*, room: Room) -> Room:
    return _room_transition(
        room=room,
        allowed_from=[Room.Status.SCHEDULED],
        detail="Only a scheduled room can start.",
        status=Room.Status.LIVE,
        started_at=timezone.now(),
    )


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
    return room


@transaction.atomic
def room_suspend(*, room: Room, reason: str) -> Room:
    """Staff take a room off the air, whatever its state."""
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
    return room


# --- The shelf --------------------------------------------------------------------------


def _ensure_open(room: Room) -> None:
    if not room.is_open:
        raise Conflict("The room has ended; its shelf cannot change.")


def room_item_add(*, room: Room, sku: Sku, live_price: int | None = None) -> RoomItem:
    _ensure_open(room)
    if not sku.product.is_active:
        raise Invalid("This product is not on sale.", fields={"sku": ["The product is not on sale."]})
    try:
        with transaction.atomic():
            position = (RoomItem.objects.filter(room=room).aggregate(top=Max("position"))["top"] or 0) + 1
            return RoomItem.objects.create(room=room, sku=sku, live_price=live_price, position=position)
    except IntegrityError:
        raise Conflict("This sku is already on the room's shelf.") from None


@transaction.atomic
def room_item_remove(*, item: RoomItem) -> None:
    _ensure_open(item.room)
    if FlashSale.objects.filter(item=item, status=FlashSale.Status.ACTIVE).exists():
        raise Conflict("The item has an active flash sale; wait for it to end.")
    Room.objects.filter(pk=item.room_id, featured_item=item).update(featured_item=None)
    item.delete()


def room_item_feature(*, item: RoomItem) -> RoomItem:
    """Make `item` the room's "now explaining" item."""
    updated = Room.objects.filter(pk=item.room_id, status__in=[Room.Status.SCHEDULED, Room.Status.LIVE]).update(
        featured_item=item
    )
    if updated != 1:
        raise Conflict("The room has ended; its shelf cannot change.")
    return item


def room_item_get(*, room: Room, item_id: int) -> RoomItem:
    try:
        return RoomItem.objects.select_related("room", "sku__product").get(pk=item_id, room=room)
    except RoomItem.DoesNotExist:
        raise NotFound("No such item on this room's shelf.") from None


# --- Flash sales ------------------------------------------------------------------------


def flash_sale_end(*, flash_sale_id: int) -> bool:
    """End an active flash sale and give its unsold units back to the sku's stock.

    Compare-and-set on the status: a sweeper and `room_end` racing to end the same sale
    return units once. Returns whether this call ended it.
    """
    with transaction.atomic():
        sale = FlashSale.objects.select_for_update().select_related("item").filter(pk=flash_sale_id).first()
        if sale is None or sale.status != FlashSale.Status.ACTIVE:
            return False
        unsold = sale.remaining
        FlashSale.objects.filter(pk=sale.pk).update(
            status=FlashSale.Status.ENDED, ended_at=timezone.now(), returned=unsold
        )
        if unsold:
            sku_release(sku_id=sale.item.sku_id, quantity=unsold)
    return True


def room_flash_sales_end(*, room: Room) -> None:
    active = FlashSale.objects.filter(item__room=room, status=FlashSale.Status.ACTIVE).order_by("pk")
    for sale_id in active.values_list("pk", flat=True):
        flash_sale_end(flash_sale_id=sale_id)
