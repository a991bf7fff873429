"""Stream sessions: the ingest server's callbacks, key rotation, and dropping publishers."""

from __future__ import annotations

import hmac
import logging
import urllib.parse
import urllib.request

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from liveshop.errors import PermissionDenied
from rooms.broadcast import room_event_on_commit
from rooms.models import Room, new_stream_key
from streams.models import StreamSession
from streams.selectors import stream_playback_url, stream_public_name, stream_room_id_from_name

logger = logging.getLogger(__name__)

CONTROL_TIMEOUT_S = 1.5


class StreamRefused(PermissionDenied):
    code = "stream_refused"
    default_detail = "The ingest server may not accept this stream."


def _room_for_key(key: str) -> Room | None:
    # The lookup goes through the unique index on stream_key; the final comparison is
    # constant-time so that a match is never decided byte by byte in Python.
    room = Room.objects.select_for_update().filter(stream_key=key).first()
    if room is None or not hmac.compare_digest(room.stream_key.encode(), key.encode()):
        return None
    return room


@transaction.atomic
def stream_publish_start(*, key: str, ingest_node: str, client_addr: str, client_id: str) -> StreamSession:
    """Accept a publish with `key` as the room's one live stream, or raise StreamRefused.

    The stream is renamed to the room's public name by the caller's redirect. A scheduled
    room goes on air without starting the show: the host still presses start.
    """
    room = _room_for_key(key)
    if room is None:
        raise StreamRefused("Unknown stream key.")
    if room.status not in (Room.Status.SCHEDULED, Room.Status.LIVE):
        raise StreamRefused("The room is ended or suspended.")
    try:
        with transaction.atomic():
            session = StreamSession.objects.create(
                room=room,
                stream_name=stream_public_name(room_id=room.pk),
                ingest_node=ingest_node[:255],
                client_addr=client_addr[:64],
                client_id=client_id[:32],
                started_at=timezone.now(),
            )
    except IntegrityError:
        raise StreamRefused("Another publisher is live on this room.") from None
    room_event_on_commit(room.pk, "video.on_air", {"playback_url": stream_playback_url(room=room)})
    return session


def _session_end(*, session: StreamSession, reason: str) -> bool:
    # Compare-and-set: a late on_publish_done after a drop, or a second one, ends nothing.
    ended = StreamSession.objects.filter(pk=session.pk, ended_at__isnull=True).update(
        ended_at=timezone.now(), end_reason=reason
    )
    if ended == 1:
        room_event_on_commit(session.room_id, "video.off_air", {})
    return ended == 1


@transaction.atomic
def stream_publish_done(*, name: str, ingest_node: str, client_id: str) -> bool:
    """End the open session the ingest server reports as done (idempotent).

    nginx-rtmp may report the public name or the original key as `name`; both resolve.
    The client id must match when given, so that a stale done for a replaced publisher
    cannot end the live one.
    """
    room_id = stream_room_id_from_name(name)
    if room_id is None:
        room = Room.objects.filter(stream_key=name).only("pk", "stream_key").first()
        if room is None or not hmac.compare_digest(room.stream_key.encode(), name.encode()):
            return False
        room_id = room.pk
    sessions = StreamSession.objects.filter(room_id=room_id, ended_at__isnull=True)
    if client_id:
        sessions = sessions.filter(client_id=client_id)
    if ingest_node:
        sessions = sessions.filter(ingest_node=ingest_node)
    session = sessions.first()
    if session is None:
        return False
    return _session_end(session=session, reason=StreamSession.EndReason.PUBLISH_DONE)


def stream_drop_publisher(*, stream_name: str) -> bool:
    """Ask the ingest server's control module to drop the publisher of `stream_name`.

    A network call: never call it inside a transaction (use stream_drop_on_commit).
    """
    if not settings.RTMP_CONTROL_URL:
        return False
    query = urllib.parse.urlencode({"app": settings.RTMP_APP, "name": stream_name})
    url = f"{settings.RTMP_CONTROL_URL.rstrip('/')}/drop/publisher?{query}"
    try:
        with urllib.request.urlopen(url, timeout=CONTROL_TIMEOUT_S) as answer:
            answer.read()
        return True
    except OSError as exc:
        logger.warning("Could not drop the publisher of %s: %s", stream_name, exc)
        return False


def stream_drop_on_commit(*, session: StreamSession) -> None:
    name = session.stream_name
    transaction.on_commit(lambda: stream_drop_publisher(stream_name=name), robust=True)


def _room_sessions_end(*, room: Room, reason: str) -> None:
    for session in StreamSession.objects.filter(room=room, ended_at__isnull=True):
        if _session_end(session=session, reason=reason):
            stream_drop_on_commit(session=session)


def stream_room_closed(room: Room) -> None:
    """rooms' hook: an ended or suspended room loses its publisher within the drop's timeout."""
    reason = (
        StreamSession.EndReason.DROPPED_SUSPENDED
        if room.status == Room.Status.SUSPENDED
        else StreamSession.EndReason.DROPPED_ENDED
    )
    _room_sessions_end(room=room, reason=reason)


@transaction.atomic
def stream_key_rotate(*, room: Room) -> Room:
    """Give the room a new stream key; a publisher live on the old one is dropped."""
    room = Room.objects.select_for_update().get(pk=room.pk)
    room.stream_key = new_stream_key()
    room.save(update_fields=["stream_key"])
    _room_sessions_end(room=room, reason=StreamSession.EndReason.KEY_ROTATED)
    return room
