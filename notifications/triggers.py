"""What makes notifications: rooms' hooks (a show starts, a giveaway is drawn) and the
orders of a buyer (paid, shipped, refunded)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.db import transaction

from notifications.models import Notification
from notifications.services import notify

if TYPE_CHECKING:
    from rooms.models import Giveaway, Room


def room_started(room: Room) -> None:
    """rooms' hook, inside the transaction that starts the show."""
    from notifications.tasks import host_live_fanout_task

    transaction.on_commit(lambda: host_live_fanout_task.delay(room.pk), robust=True)


def host_live_batch(*, room_id: int, after_follow_id: int, size: int) -> tuple[int, int | None]:
    """Tell the next `size` followers (after `after_follow_id`) that the host is live.
    Returns how many were told now and the last follow id, or None when none are left."""
    from rooms.models import Follow, Room

    room = Room.objects.select_related("host__user").filter(pk=room_id).first()
    if room is None or room.status != Room.Status.LIVE:
        return 0, None  # ended or suspended before its followers were all told: stop
    follows = list(
        Follow.objects.filter(host_id=room.host_id, pk__gt=after_follow_id)
        .order_by("pk")
        .values_list("pk", "user_id")[:size]
    )
    if not follows:
        return 0, None
    data = {
        "host": {"id": room.host_id, "display_name": room.host.user.public_name},
        "room": {"id": room.pk, "title": room.title, "title_en": room.title_en},
    }
    with transaction.atomic():
        told = notify(
            user_ids=[user for _, user in follows], kind=Notification.Kind.HOST_LIVE, data=data, key=f"live:{room.pk}"
        )
    return told, follows[-1][0] if len(follows) == size else None


def giveaway_drawn(giveaway: Giveaway, winner_user_ids: list[int]) -> None:
    """rooms' hook, inside the transaction that draws the giveaway."""
    data = {
        "giveaway": {"id": giveaway.pk, "title": giveaway.title, "prize": giveaway.prize_sku_id is not None},
        "room": {"id": giveaway.room_id},
    }
    notify(user_ids=winner_user_ids, kind=Notification.Kind.GIVEAWAY_WON, data=data, key=f"giveaway:{giveaway.pk}")


def order_changed(*, order: Any, kind: str, key: str = "", **extra: Any) -> None:
    """The buyer's own order paid, shipped or refunded (the orders app calls it in the
    transaction that changes the order); `key` tells events of one kind apart (refunds)."""
    data = {"order": {"id": order.pk, "number": order.number, **extra}}
    notify(user_ids=[order.buyer_id], kind=kind, data=data, key=key or f"{kind}:{order.pk}")
