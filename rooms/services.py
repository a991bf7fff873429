"""Writes for hosts, rooms and the shelf.

Callers check who may act (rooms.selectors has the predicates); these functions keep
the rules of the data: status changes are compare-and-set on the row, so two requests
racing for the same change find exactly one winner.
"""

from __future__ import annotations

import logging
import math
import secrets
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.db import IntegrityError, transaction
from django.db.models import F, Max, Q
from django.utils import timezone

from catalog.models import Sku
from catalog.services import sku_hold, sku_release
from liveshop.errors import (
    Banned,
    CommentBlocked,
    Conflict,
    FlashSoldOut,
    Invalid,
    Muted,
    NotFound,
    RateLimited,
    RoomNotLive,
)
from liveshop.models import User
from liveshop.redis_client import redis_key, redis_sync
from rooms import broadcast, flash_gate, payloads, selectors
from rooms.banned_words import banned_word_in
from rooms.broadcast import room_event_on_commit
from rooms.models import Comment, FlashSale, Follow, Host, Room, RoomItem
from rooms.realtime.backend import get_backend

logger = logging.getLogger(__name__)

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


def _room_status_event(room: Room) -> None:
    # Ended and suspended rooms close their sockets once this event is delivered.
    room_event_on_commit(room.pk, "room.status", {"status": room.status})


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
    _room_status_event(room)
    return room


# --- Live: WebSocket tickets and comments ------------------------------------------------------

WS_TICKET_PREFIX = "ws-ticket:"


def ws_ticket_issue(*, user: User, room: Room) -> tuple[str, datetime]:
    """A single-use ticket that opens the room's WebSocket as `user` within WS_TICKET_TTL_S.

    Clients that cannot send a cookie or header with the upgrade (browsers, apps) get one
    over the authenticated API and pass it as `?ticket=`.
    """
    if selectors.is_banned(room_id=room.pk, user_id=user.pk):
        raise Banned()
    ticket = secrets.token_urlsafe(24)
    expires_at = timezone.now() + timedelta(seconds=settings.WS_TICKET_TTL_S)
    cache.set(
        WS_TICKET_PREFIX + ticket,
        f"{user.pk}:{room.pk}:{expires_at.timestamp()}",
        timeout=settings.WS_TICKET_TTL_S,
    )
    return ticket, expires_at


def ws_ticket_redeem(*, ticket: str, room_id: int) -> int | None:
    """The user id the ticket was issued to, once: None if unknown, used, expired or for
    another room."""
    if not ticket or len(ticket) > 100:
        return None
    key = WS_TICKET_PREFIX + ticket
    value = cache.get(key)
    # The delete is the claim: of two sockets racing with one ticket, one deletes the key.
    if value is None or not cache.delete(key):
        return None
    user_id, ticket_room_id, expires = value.split(":")
    if int(ticket_room_id) != room_id or float(expires) < timezone.now().timestamp():
        return None
    return int(user_id)


def comment_create(*, room: Room, user: User, text: str, role: str) -> Comment:
    """Save a comment and announce it (`comment.new`) on commit.

    `role` is the author's role in the room (selectors.room_role): the host and moderators
    are exempt from rate limits and slow mode. Raises Invalid (empty or too long),
    RoomNotLive, Banned, Muted, RateLimited or CommentBlocked, having saved nothing.
    """
    text = text.strip()
    if not text:
        raise Invalid("A comment cannot be empty.", fields={"text": ["This field may not be blank."]})
    if len(text) > Comment.MAX_LENGTH:
        raise Invalid(
            f"A comment has at most {Comment.MAX_LENGTH} characters.",
            fields={"text": [f"Ensure this field has no more than {Comment.MAX_LENGTH} characters."]},
        )
    room = Room.objects.select_related("host").get(pk=room.pk)
    if room.status != Room.Status.LIVE:
        raise RoomNotLive("Comments are open while the room is live.")
    if selectors.is_banned(room_id=room.pk, user_id=user.pk):
        raise Banned()
    muted_until = selectors.room_mute_until(room_id=room.pk, user_id=user.pk)
    if muted_until is not None:
        raise Muted(f"You are muted in this room until {muted_until.isoformat()}.")
    if role not in (selectors.ROLE_HOST, selectors.ROLE_MODERATOR):
        backend = get_backend()
        wait = backend.rate_limit(
            f"comment:{user.pk}", per_minute=settings.COMMENT_RATE_PER_MIN, burst=settings.COMMENT_BURST
        )
        if wait > 0:
            raise RateLimited("You are commenting too fast.", retry_after=math.ceil(wait))
        if room.slow_mode_s:
            wait = backend.slow_mode(room.pk, user.pk, room.slow_mode_s)
            if wait > 0:
                raise RateLimited(
                    f"Slow mode: one comment every {room.slow_mode_s} seconds.", retry_after=math.ceil(wait)
                )
    if banned_word_in(text) is not None:
        raise CommentBlocked()
    comment = Comment.objects.create(room=room, user=user, text=text)
    comment.user = user
    room_event_on_commit(room.pk, "comment.new", payloads.comment_payload(comment, role=role))
    return comment


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
            item = RoomItem.objects.create(room=room, sku=sku, live_price=live_price, position=position)
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


def room_item_feature(*, item: RoomItem) -> RoomItem:
    """Make `item` the room's "now explaining" item."""
    updated = Room.objects.filter(pk=item.room_id, status__in=[Room.Status.SCHEDULED, Room.Status.LIVE]).update(
        featured_item=item
    )
    if updated != 1:
        raise Conflict("The room has ended; its shelf cannot change.")
    room_event_on_commit(item.room_id, "item.featured", {"item": payloads.item_payload(item)})
    return item


def room_item_get(*, room: Room, item_id: int) -> RoomItem:
    try:
        return RoomItem.objects.select_related("room", "sku__product").get(pk=item_id, room=room)
    except RoomItem.DoesNotExist:
        raise NotFound("No such item on this room's shelf.") from None


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
            if live.values_list("pk", flat=True).first() is None:
                raise RoomNotLive("Flash sales run only while the room is live.")
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

    The conditional update cannot oversell, and its row lock (held to the caller's
    commit) orders the sale's buyers one after the other: a per-buyer count read after
    this call sees every earlier buyer's committed order.
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
    due = FlashSale.objects.filter(status=FlashSale.Status.ACTIVE).filter(Q(ends_at__lte=now) | Q(remaining=0))
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
