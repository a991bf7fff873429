"""Explicit hooks through which apps built on rooms (streams) extend it without rooms
importing them: rooms stays the lower layer. Each app registers in its AppConfig.ready()."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rooms.models import Giveaway, Room, RoomItem

# Called inside the transaction that ends or suspends a room (status already saved);
# a hook defers its side effects with transaction.on_commit.
room_closed_hooks: list[Callable[[Room], None]] = []
# Called inside the transaction that starts a show (status already live).
room_started_hooks: list[Callable[[Room], None]] = []
# Called inside the transaction that draws a giveaway, with the winners' user ids.
giveaway_drawn_hooks: list[Callable[[Giveaway, list[int]], None]] = []
# Called inside the transaction that makes an item the room's "now explaining" item.
item_featured_hooks: list[Callable[[RoomItem], None]] = []
# Whether an ended room still sells its shelf (its replay is watchable), at the shelf's price.
room_sells_after_end_provider: Callable[[Room], bool] | None = None

# The room detail's `video` and, for its host, `ingest` objects.
room_video_provider: Callable[[Room], dict[str, Any]] | None = None
room_ingest_provider: Callable[[Room], dict[str, Any]] | None = None


def room_closed(room: Room) -> None:
    for hook in room_closed_hooks:
        hook(room)


def room_started(room: Room) -> None:
    for hook in room_started_hooks:
        hook(room)


def giveaway_drawn(giveaway: Giveaway, winner_user_ids: list[int]) -> None:
    for hook in giveaway_drawn_hooks:
        hook(giveaway, winner_user_ids)


def item_featured(item: RoomItem) -> None:
    for hook in item_featured_hooks:
        hook(item)


def room_sells_after_end(room: Room) -> bool:
    return room_sells_after_end_provider is not None and room_sells_after_end_provider(room)


def room_video(room: Room) -> dict[str, Any]:
    if room_video_provider is not None:
        return room_video_provider(room)
    return {"source": "external", "state": "off_air", "playback_url": room.playback_url, "on_air_since": None}


def room_ingest(room: Room) -> dict[str, Any]:
    if room_ingest_provider is not None:
        return room_ingest_provider(room)
    return {"url": "", "stream_key": room.stream_key}
