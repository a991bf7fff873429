"""A show's cover image. The checking, cleaning and sizes are liveshop/images.py's."""

from __future__ import annotations

from typing import IO, Any

from django.db import transaction

from liveshop import images
from rooms.models import Room


def room_cover_set(*, room: Room, upload: IO[bytes] | None, size: int | None = None) -> Room:
    """Make `upload` the room's cover (None removes it). The old cover's files are deleted
    once the change is committed; the new files are deleted if it is not."""
    stored = None
    if upload is not None:
        image = images.image_open(upload, size=size)
        stored = images.image_store(
            image, folder=f"rooms/{room.pk}", sizes=images.COVER_SIZES, aspect=images.COVER_ASPECT
        )
    try:
        with transaction.atomic():
            # The row lock orders two hosts' tabs uploading at once: each one's old files are
            # the ones it replaced, so none is left behind or deleted twice.
            current = Room.objects.select_for_update().only("cover", "cover_thumb").get(pk=room.pk)
            old = [current.cover.name or "", current.cover_thumb.name or ""]
            room.cover.name = stored.names["1280"] if stored else ""
            room.cover_thumb.name = stored.names["480"] if stored else ""
            Room.objects.filter(pk=room.pk).update(cover=room.cover.name, cover_thumb=room.cover_thumb.name)
            transaction.on_commit(lambda: images.image_delete(old))
    except BaseException:
        if stored is not None:
            images.image_delete(stored.names.values())
        raise
    return room


def room_cover_image(room: Room) -> dict[str, Any] | None:
    """`{url, thumb_url}` of the room's cover, or None."""
    if not room.cover.name:
        return None
    return {"url": images.image_url(room.cover.name), "thumb_url": images.image_url(room.cover_thumb.name or "")}
