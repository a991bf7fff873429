from __future__ import annotations

import hashlib
import hmac
from typing import Any

from django.conf import settings
from django.core.files.storage import default_storage

from rooms.models import Room
from streams.models import ProductClip, Replay, StreamSession


def stream_public_name(*, room_id: int) -> str:
    """The room's stable public stream name: its id and an HMAC of it under SECRET_KEY.

    It reveals nothing of the stream key, and nobody can guess another room's name.
    """
    digest = hmac.new(settings.SECRET_KEY.encode(), f"liveshop-stream:{room_id}".encode(), hashlib.sha256)
    return f"r{room_id}-{digest.hexdigest()[:20]}"


def stream_room_id_from_name(name: str) -> int | None:
    """The room a public stream name belongs to, or None if the name is not one of ours."""
    if not name.startswith("r") or "-" not in name or len(name) > 64:
        return None
    head = name[1:].split("-", 1)[0]
    if not head.isdigit() or len(head) > 18:
        return None
    room_id = int(head)
    return room_id if hmac.compare_digest(stream_public_name(room_id=room_id), name) else None


def stream_playback_url(*, room: Room) -> str:
    if settings.HLS_PUBLIC_URL:
        return f"{settings.HLS_PUBLIC_URL.rstrip('/')}/{stream_public_name(room_id=room.pk)}.m3u8"
    return room.playback_url


def stream_open_session(*, room_id: int) -> StreamSession | None:
    return StreamSession.objects.filter(room_id=room_id, ended_at__isnull=True).first()


def room_video(room: Room) -> dict[str, Any]:
    """`source` (added to the contract's shape): "ingest" when liveshop's ingest server
    carries the room's video and `state` follows its publisher; "external" when the host
    typed the playback URL, and nothing tells when that stream is on air."""
    return _room_video(room, stream_open_session(room_id=room.pk))


def room_video_ended(room: Room) -> dict[str, Any]:
    """room_video() of an ended show, without a query: ending it dropped its publisher."""
    return _room_video(room, None)


def _room_video(room: Room, session: StreamSession | None) -> dict[str, Any]:
    return {
        "source": "ingest" if settings.HLS_PUBLIC_URL else "external",
        "state": "on_air" if session else "off_air",
        "playback_url": stream_playback_url(room=room),
        "on_air_since": session.started_at if session else None,
    }


def room_ingest(room: Room) -> dict[str, Any]:
    return {"url": settings.RTMP_INGEST_URL, "stream_key": room.stream_key}


def replay_sells(room: Room) -> bool:
    """An ended show sells from its shelf while its replay is watchable."""
    return Replay.objects.filter(room_id=room.pk, status=Replay.Status.READY).exists()


def product_clips(product: Any) -> list[dict[str, Any]]:
    """catalog's hook: the newest clips of the product from watchable replays."""
    clips = ProductClip.objects.filter(
        product=product, replay__status=Replay.Status.READY, room__status=Room.Status.ENDED
    ).order_by("-created_at", "id")[:10]
    return [
        {"room": clip.room_id, "url": default_storage.url(clip.file), "at_s": clip.at_s, "duration_s": clip.duration_s}
        for clip in clips
    ]
