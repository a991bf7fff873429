"""Reads for hosts, rooms and the shelf, and the predicates of who may do what."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.db.models import Prefetch, Q, QuerySet
from django.utils import timezone
from rest_framework import serializers

from catalog import selectors as catalog_selectors
from liveshop.permissions import is_staff
from rooms.broadcast import room_counters
from rooms.models import (
    Ban,
    Comment,
    FlashSale,
    Follow,
    Host,
    ModerationAction,
    Mute,
    Report,
    Room,
    RoomItem,
    RoomModerator,
    RoomStatsReport,
)


def _active_flash_sales(lookup: str) -> Prefetch[Any]:
    """Prefetch an item's active flash sale into `item.active_flash_sales`."""
    return Prefetch(
        lookup,
        queryset=FlashSale.objects.filter(status=FlashSale.Status.ACTIVE),
        to_attr="active_flash_sales",
    )


def rooms_visible_to_staff() -> QuerySet[Room]:
    """Every room, with what its serializer reads."""
    return Room.objects.select_related("host__user", "featured_item__sku__product").prefetch_related(
        _active_flash_sales("featured_item__flash_sales"), "featured_item__sku__product__photos"
    )


def rooms_visible_to(user: Any) -> QuerySet[Room]:
    """Rooms a user may see: suspended ones only to their host and to staff."""
    rooms = rooms_visible_to_staff()
    if is_staff(user):
        return rooms
    if user is not None and user.is_authenticated:
        return rooms.filter(~Q(status=Room.Status.SUSPENDED) | Q(host__user=user))
    return rooms.exclude(status=Room.Status.SUSPENDED)


def is_room_host(user: Any, room: Room) -> bool:
    return bool(user is not None and user.is_authenticated and room.host.user_id == user.pk)


# --- Live: roles, mutes, bans, comments ------------------------------------------------------

ROLE_HOST = "host"
ROLE_MODERATOR = "moderator"
ROLE_VIEWER = "viewer"
ROLE_ANONYMOUS = "anonymous"


def room_moderator_ids(*, room: Room) -> set[int]:
    return set(RoomModerator.objects.filter(room=room).values_list("user_id", flat=True))


def role_from_ids(user_id: int | None, host_user_id: int, moderator_ids: set[int], *, staff: bool = False) -> str:
    if user_id is None:
        return ROLE_ANONYMOUS
    if user_id == host_user_id:
        return ROLE_HOST
    # Staff moderate every room (CONTRACT.md: mutes and bans by "host, room moderator, staff").
    if staff or user_id in moderator_ids:
        return ROLE_MODERATOR
    return ROLE_VIEWER


def room_role(user: Any, room: Room) -> str:
    """The user's role in the room: "host", "moderator" (a room moderator, or staff),
    "viewer" (signed in) or "anonymous"."""
    if user is None or not user.is_authenticated:
        return ROLE_ANONYMOUS
    if room.host.user_id == user.pk:
        return ROLE_HOST
    if is_staff(user) or RoomModerator.objects.filter(room=room, user=user).exists():
        return ROLE_MODERATOR
    return ROLE_VIEWER


def room_mute_until(*, room_id: int, user_id: int) -> datetime | None:
    """When the user's mute in the room ends, if it has not yet."""
    return (
        Mute.objects.filter(room_id=room_id, user_id=user_id, until__gt=timezone.now())
        .values_list("until", flat=True)
        .first()
    )


def is_banned(*, room_id: int, user_id: int) -> bool:
    return Ban.objects.filter(room_id=room_id, user_id=user_id).exists()


def comments_of(room: Room) -> QuerySet[Comment]:
    """The room's comments not deleted. Bounded below by the room's creation (a day
    early, for clocks that differ between processes), so that PostgreSQL reads only the
    months since then of the comments' monthly partitions (rooms/migrations/0011)."""
    comments = Comment.objects.filter(room=room, deleted_at__isnull=True)
    if room.created_at is not None:
        comments = comments.filter(created_at__gte=room.created_at - timedelta(days=1))
    return comments


def room_comments(*, room: Room, before: int | None = None, limit: int = 50) -> QuerySet[Comment]:
    """The room's comments, newest first, older than comment id `before` if given."""
    comments = comments_of(room).select_related("user").order_by("-id")
    if before is not None:
        comments = comments.filter(id__lt=before)
    return comments[:limit]


def room_items_queryset() -> QuerySet[RoomItem]:
    """Shelf items with what their serializer reads, in one query per relation."""
    return RoomItem.objects.select_related("sku__product", "offer").prefetch_related(
        _active_flash_sales("flash_sales"), "sku__product__photos"
    )


def room_items(*, room: Room) -> list[RoomItem]:
    return list(room_items_queryset().filter(room=room).order_by("position", "id"))


def item_on_sellers_terms(item: RoomItem, *, host_id: int, host_user_id: int) -> bool:
    """Whether the room's host may sell this shelf item now: goods of its own shops, or
    another shop's under that seller's offer, still open to the host. Items shelved
    before offers existed, or under an offer since withdrawn or ended, are not."""
    if item.offer_id is None:
        return item.sku.product.shop.owner_id == host_user_id
    return catalog_selectors.offer_is_open_to(offer_id=item.offer_id, host_id=host_id)


def item_shelf_price(item: RoomItem) -> int:
    """What a unit of a shelf item sells for outside a flash sale: its live price, else
    the sku's list price, and never below the seller's floor when it is under an offer."""
    price = item.live_price if item.live_price is not None else item.sku.price
    if item.offer is not None:
        price = max(price, item.offer.min_live_price)
    return price


def item_active_flash_sale(item: RoomItem) -> FlashSale | None:
    sales = getattr(item, "active_flash_sales", None)
    if sales is None:
        sales = list(item.flash_sales.filter(status=FlashSale.Status.ACTIVE))
    return sales[0] if sales else None


def host_get(*, host_id: int) -> Host | None:
    return Host.objects.select_related("user").filter(pk=host_id).first()


def host_followed_by(*, host: Host, user_id: int) -> bool:
    return Follow.objects.filter(host=host, user_id=user_id).exists()


_datetime = serializers.DateTimeField()


def flash_sale_public(sale: FlashSale) -> dict[str, Any]:
    """A flash sale as the API and the `flash.started` event show it."""
    return {
        "id": sale.pk,
        "item": sale.item_id,
        "price": sale.price,
        "quantity": sale.quantity,
        "remaining": sale.remaining,
        "per_buyer_limit": sale.per_buyer_limit,
        "starts_at": _datetime.to_representation(sale.starts_at),
        "ends_at": _datetime.to_representation(sale.ends_at),
        "status": str(sale.status),
    }


# --- Moderation: who may moderate, the queues -------------------------------------------------


def can_moderate(user: Any, room: Room) -> bool:
    """The room's host, one of its moderators, or staff: may mute, ban and delete comments."""
    if user is None or not user.is_authenticated:
        return False
    if room.host.user_id == user.pk or is_staff(user):
        return True
    return RoomModerator.objects.filter(room=room, user=user).exists()


def comment_visible_get(*, user: Any, comment_id: int) -> Comment | None:
    """A comment not deleted, in a room the user may see (None otherwise)."""
    return (
        Comment.objects.select_related("user", "room__host")
        .filter(pk=comment_id, deleted_at__isnull=True, room__in=rooms_visible_to(user).values("pk"))
        .first()
    )


def room_mutes_active(*, room: Room) -> QuerySet[Mute]:
    return Mute.objects.filter(room=room, until__gt=timezone.now()).select_related("user").order_by("until", "id")


def room_bans(*, room: Room) -> QuerySet[Ban]:
    return Ban.objects.filter(room=room).select_related("user").order_by("-id")


def room_moderators(*, room: Room) -> QuerySet[RoomModerator]:
    return RoomModerator.objects.filter(room=room).select_related("user").order_by("id")


def reports_queue(*, status: str | None = Report.Status.OPEN, room_id: int | None = None) -> QuerySet[Report]:
    """Reports oldest first (the queue's order), with what the staff view shows."""
    reports = Report.objects.select_related("comment__user", "reporter", "resolved_by").order_by("id")
    if status is not None:
        reports = reports.filter(status=status)
    if room_id is not None:
        reports = reports.filter(room_id=room_id)
    return reports


def moderation_actions(
    *,
    room_id: int | None = None,
    actor_id: int | None = None,
    target_user_id: int | None = None,
    action: str | None = None,
) -> QuerySet[ModerationAction]:
    """The audit log, newest first, optionally narrowed."""
    actions = ModerationAction.objects.select_related("actor", "target_user").order_by("-id")
    if room_id is not None:
        actions = actions.filter(room_id=room_id)
    if actor_id is not None:
        actions = actions.filter(actor_id=actor_id)
    if target_user_id is not None:
        actions = actions.filter(target_user_id=target_user_id)
    if action is not None:
        actions = actions.filter(action=action)
    return actions


# --- Statistics: a room's audience ---------------------------------------------------------------


@dataclass(frozen=True)
class RoomAudience:
    """What a room's audience did: live from the counters, or from the durable report once
    the show ended (`final`). `comments` counts the comments not removed by moderators."""

    viewers_now: int
    peak_viewers: int
    views: int
    unique_viewers: int
    likes: int
    comments: int
    final: bool


def room_audience(*, room: Room) -> RoomAudience:
    comments = comments_of(room).count()
    counters = room_counters(room.pk)
    report = RoomStatsReport.objects.filter(room=room).first()
    if report is not None:
        return RoomAudience(
            viewers_now=counters.now,
            peak_viewers=report.peak_viewers,
            views=report.views,
            unique_viewers=report.unique_viewers,
            likes=report.likes,
            comments=comments,
            final=True,
        )
    # Live, or ended with its report not written yet (the task is on its way).
    return RoomAudience(
        viewers_now=counters.now,
        peak_viewers=counters.peak,
        views=counters.views,
        unique_viewers=counters.unique,
        likes=counters.likes,
        comments=comments,
        final=False,
    )


def rooms_views(*, room_ids: list[int]) -> dict[int, int]:
    """Views of each room: from its durable report, else from the live counters."""
    views = dict(RoomStatsReport.objects.filter(room_id__in=room_ids).values_list("room_id", "views"))
    missing = [room_id for room_id in room_ids if room_id not in views]
    if missing:
        for room_id in missing:
            views[room_id] = room_counters(room_id).views
    return views
