"""How room events reach sockets: the one path every room event takes.

Services emit events with `room_event_on_commit` (inside their transaction: the event
goes out only if it commits). Everything ends in `room_publish`, which gives the event
the room's next `seq`, keeps it for `?since=` replay and publishes it once to every web
process serving the room (rooms/realtime/). It is sync and works from any process: the
web process, a Celery worker, beat, a management command.

Private, per-user messages to the sockets of one room (a `moderation.muted` frame, a
4403 close after a ban) take the control path: `room_user_send`, `room_user_close`.
They reach every web process too, but carry no seq and are not replayed.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from channels.db import database_sync_to_async
from django.db import transaction

from rooms.realtime import events as ev
from rooms.realtime.backend import Counters, get_backend

# Close codes of the room WebSocket (CONTRACT.md).
CLOSE_UNAUTHORIZED = 4401
CLOSE_FORBIDDEN = 4403
CLOSE_NOT_FOUND = 4404

# room.status values after which the room's sockets are closed.
CLOSING_STATUSES = frozenset({"ended", "suspended"})
PRIVILEGED_ROLES = frozenset({"host", "moderator"})


def room_publish(room_id: int, event_type: str, data: dict[str, Any]) -> int:
    """Publish a room event now and return its seq. Prefer `room_event_on_commit`.

    The fanout reads what it needs from the event itself: a `comment.new` by the host or
    a moderator (`data.user.role`) is never thinned; a `room.status` of ended or
    suspended closes the room's sockets after it is delivered.
    """
    return get_backend().publish(room_id, _encode(event_type, data))


def room_publish_many(events: list[tuple[int, str, dict[str, Any]]]) -> list[int]:
    """Publish (room, type, data) events in order, in one round trip to Redis (a batch of
    comments); their seqs."""
    return get_backend().publish_many([(room_id, _encode(kind, data)) for room_id, kind, data in events])


def _encode(event_type: str, data: dict[str, Any]) -> ev.EncodedEvent:
    author = 0
    flags = ""
    if event_type == ev.COMMENT_NEW:
        user = data.get("user") or {}
        author = int(user.get("id") or 0)
        if user.get("role") in PRIVILEGED_ROLES:
            flags += ev.FLAG_PRIVILEGED
    elif event_type == ev.ROOM_STATUS and data.get("status") in CLOSING_STATUSES:
        flags += ev.FLAG_CLOSES
    return ev.encode_event(event_type, data, author=author, flags=flags or ev.NO_FLAGS)


def room_event_on_commit(room_id: int, event_type: str, data: dict[str, Any]) -> None:
    """Publish the event once the current transaction commits (at once outside one).

    A failure to publish is logged, not raised: the change it announces is committed,
    and clients that missed the event catch up from their next snapshot.
    """
    transaction.on_commit(lambda: room_publish(room_id, event_type, data), robust=True)


def _room_publish_late_bound(room_id: int, event_type: str, data: dict[str, Any]) -> int:
    # Looked up at call time, so that tests replacing `room_publish` see these events too.
    return room_publish(room_id, event_type, data)


async def room_publish_async(room_id: int, event_type: str, data: dict[str, Any]) -> int:
    """`room_publish` from the event loop (the hub's `viewers` and `like.total`).

    It runs `room_publish` itself on a worker thread, so every event still passes the one
    choke point; these events are a few a second per room at most.
    """
    return await database_sync_to_async(_room_publish_late_bound, thread_sensitive=False)(room_id, event_type, data)


# --- Control messages: one user's sockets in a room, on every web process ---------------------


def room_user_send(room_id: int, user_id: int, frame: dict[str, Any]) -> None:
    """Send a private frame (no seq; e.g. `{"type": "moderation.muted", "data": {...}}`) to
    every socket the user has open to the room."""
    get_backend().control(room_id, {"op": "send", "user": user_id, "frame": frame})


def room_user_mute(room_id: int, user_id: int, until: datetime | None, frame: dict[str, Any]) -> None:
    """`room_user_send` for a mute (`until`) or an unmute (None): the sockets also keep it,
    since the comment intake judges their comments by it."""
    get_backend().control(
        room_id, {"op": "send", "user": user_id, "frame": frame, "muted_until": ev.iso(until) if until else None}
    )


def room_comment_rules_changed(room_id: int) -> None:
    """The room's comment settings (slow mode, new-account protection) changed: every web
    process reads them again before judging the next comment."""
    get_backend().control(room_id, {"op": "rules"})


def room_user_role(room_id: int, user_id: int, role: str) -> None:
    """Give the user's open sockets to the room a new role on every web process (a
    moderator appointed or removed): its exemptions and its feed change in place, and
    each socket hears `you.updated`."""
    get_backend().control(room_id, {"op": "role", "user": user_id, "role": role})


def room_user_close(room_id: int, user_id: int, code: int = CLOSE_FORBIDDEN) -> None:
    """Close every socket the user has open to the room (a ban: 4403)."""
    get_backend().control(room_id, {"op": "close", "user": user_id, "code": code})


def room_sockets_close(room_id: int, code: int = 1000) -> None:
    """Close every socket of the room on every web process."""
    get_backend().control(room_id, {"op": "close", "code": code})


# --- Live figures -----------------------------------------------------------------------------


def room_viewers_now(room_ids: list[int]) -> dict[int, int]:
    """Open sockets per room, summed over the live web processes."""
    return get_backend().viewers_now(room_ids)


def room_counters(room_id: int) -> Counters:
    """Viewers now, peak, views, unique visitors and likes of a room."""
    return get_backend().counters(room_id)
