"""The data of room events and of the WebSocket snapshot, in the shapes of CONTRACT.md.

Events carry the same representations as the REST API (a shelf item in `item.featured`
is the item of `GET /rooms/{id}/items/`), so they reuse its serializers. Those live in
`rooms.api`, which imports the services that call these functions: hence the imports
inside the functions.
"""

from __future__ import annotations

from typing import Any

from rooms import hooks, selectors, selectors_gifts
from rooms.models import Comment, FlashSale, Room, RoomItem
from rooms.realtime.events import iso

RECENT_COMMENTS = 50


def item_payload(item: RoomItem) -> dict[str, Any]:
    from rooms.api import RoomItemSerializer

    return dict(RoomItemSerializer(selectors.room_items_queryset().get(pk=item.pk)).data)


def items_payload(room: Room) -> list[dict[str, Any]]:
    from rooms.api import RoomItemSerializer

    return list(RoomItemSerializer(selectors.room_items(room=room), many=True).data)


def comment_payload(comment: Comment, *, role: str, name: str | None = None) -> dict[str, Any]:
    """`comment.new` data; `user.role` (added to the contract's shape) lets clients mark
    the host's and moderators' comments. `name`: the author's public name, when known
    without reading `comment.user`."""
    if name is None:
        name = comment.user.public_name
    return {
        "id": comment.pk,
        "user": {"id": comment.user_id, "display_name": name, "role": role},
        "text": comment.text,
        "ts": iso(comment.created_at),
    }


def comment_history_payload(comment: Comment, *, host_user_id: int, moderator_ids: set[int]) -> dict[str, Any]:
    return comment_payload(comment, role=selectors.role_from_ids(comment.user_id, host_user_id, moderator_ids))


def snapshot_shared(room: Room) -> dict[str, Any]:
    """The part of `room.snapshot` that is the same for every socket of the room."""
    from envelopes.selectors import room_open_red_envelopes
    from envelopes.services import red_envelope_public
    from rooms.api import FlashSaleSerializer, RoomItemSerializer, RoomSerializer

    items = selectors.room_items(room=room)
    featured = next((item for item in items if item.pk == room.featured_item_id), None)
    flash_sales = FlashSale.objects.filter(item__room=room, status=FlashSale.Status.ACTIVE).order_by("ends_at", "pk")
    moderator_ids = selectors.room_moderator_ids(room=room)
    recent = list(selectors.room_comments(room=room, limit=RECENT_COMMENTS))
    recent.reverse()  # oldest first
    room_data = dict(RoomSerializer(room).data)
    room_data.pop("viewers_now", None)  # live, per socket: added by the consumer
    return {
        "room": room_data,
        "featured_item": RoomItemSerializer(featured).data if featured else None,
        "items": RoomItemSerializer(items, many=True).data,
        "flash_sales": FlashSaleSerializer(flash_sales, many=True).data,
        "giveaways": selectors_gifts.room_giveaways_public(room=room),
        "red_envelopes": [red_envelope_public(e) for e in room_open_red_envelopes(room_id=room.pk)],
        "recent_comments": [
            comment_history_payload(c, host_user_id=room.host.user_id, moderator_ids=moderator_ids) for c in recent
        ],
    }


def video_payload(room: Room) -> dict[str, Any]:
    """`video.updated` data: the room detail's `video`, as it is now."""
    video = hooks.room_video(room)
    since = video.get("on_air_since")
    return {**video, "on_air_since": iso(since) if since else None}
