"""The room WebSocket (`/ws/rooms/{id}/`): translate frames to service calls and back.

Channels owns the connection's life (connect, receive, disconnect); the delivery of room
events belongs to the process's room hub (rooms/realtime/hub.py), which writes to this
socket's ASGI `send` directly. So the consumer has no channel-layer channel of its own
(no per-socket subscription) and skips Channels' database-connection check before each
frame: the frames that touch the database do so in `database_sync_to_async` calls,
which do that check themselves.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import parse_qs

from channels.consumer import get_handler_name
from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings
from django.db import InterfaceError, OperationalError

from liveshop.errors import (
    Invalid,
    NotAuthenticated,
    RoomNotLive,
    ServiceError,
    ServiceUnavailable,
    database_outage,
    redis_outage,
)
from liveshop.models import User
from liveshop.redis_client import REDIS_UNAVAILABLE
from liveshop.sockets import origin_allowed, session_user
from rooms import payloads, selectors, services
from rooms.broadcast import CLOSE_FORBIDDEN, CLOSE_NOT_FOUND, CLOSE_UNAUTHORIZED
from rooms.models import Room
from rooms.realtime import events as ev
from rooms.realtime.backend import Counters, get_backend
from rooms.realtime.hub import FULL_ROLES, Connection, HubRoom, get_hub
from rooms.realtime.intake import error_frame, get_intake

logger = logging.getLogger(__name__)

CLOSE_POLICY_VIOLATION = 1008
CLOSE_TOO_BIG = 1009
CLOSE_INTERNAL_ERROR = 1011
CLOSE_TRY_AGAIN_LATER = 1013
MAX_NONCE_LENGTH = 100
MAX_LIKES_PER_FRAME = 50
LIKE_FRAMES_PER_S = 10
# Frames a client may send: a burst, then this many a second. A person's app sends a
# ping every ~20 s, likes at most LIKE_FRAMES_PER_S, and comments at the comment pace;
# a client past this is flooding and is closed (1008).
CLIENT_FRAMES_PER_S = 20
CLIENT_FRAME_BURST = 100
# The snapshot's shared part is rebuilt when the room's seq moved or after this long
# (stock changes from orders emit no room event).
SNAPSHOT_MAX_AGE_S = 2.0
PONG = ev.dumps({"type": "pong"})


@dataclass(frozen=True)
class Admission:
    """Who is on the socket, or the close code that refuses them."""

    refuse: int | None = None
    user_id: int | None = None
    display_name: str = ""  # the user's public name (the room's `viewers.joined`)
    role: str = selectors.ROLE_ANONYMOUS
    muted_until: datetime | None = None
    account_since: datetime | None = None  # when the account was created
    room_status: str = ""


# Anonymous sockets of a room are all admitted alike: a connect storm (a show starting,
# a link shared) asks the database once a second per room, not once per socket.
ANONYMOUS_ADMISSION_S = 1.0
_anonymous_admissions: dict[int, tuple[float, Admission]] = {}


def _is_anonymous(scope: dict[str, Any], ticket: str | None) -> bool:
    if ticket is not None:
        return False
    cookie_name = settings.SESSION_COOKIE_NAME.encode()
    return not any(name == b"cookie" and cookie_name in value for name, value in scope.get("headers", ()))


def admit(scope: dict[str, Any], room_id: int, ticket: str | None) -> Admission:
    """Authenticate (ticket, else session, else anonymous) and authorize the socket."""
    user: User | None = None
    if ticket is not None:
        user_id = services.ws_ticket_redeem(ticket=ticket, room_id=room_id)
        user = User.objects.filter(pk=user_id, is_active=True).first() if user_id is not None else None
        if user is None:
            return Admission(refuse=CLOSE_UNAUTHORIZED)
    else:
        user = session_user(scope)
    room = selectors.rooms_visible_to(user).filter(pk=room_id).first()
    if room is None:
        return Admission(refuse=CLOSE_NOT_FOUND)
    if user is None:
        return Admission(room_status=room.status)
    if selectors.is_banned(room_id=room_id, user_id=user.pk):
        return Admission(refuse=CLOSE_FORBIDDEN)
    return Admission(
        user_id=user.pk,
        display_name=user.public_name,
        role=selectors.room_role(user, room),
        muted_until=selectors.room_mute_until(room_id=room_id, user_id=user.pk),
        account_since=user.date_joined,
        room_status=room.status,
    )


def snapshot_shared_json(room_id: int) -> tuple[str, str]:
    """The snapshot's part that is the same for every socket, as JSON object insides (no
    braces): the room without its live `viewers_now`, and the rest."""
    room = selectors.rooms_visible_to_staff().get(pk=room_id)
    shared = payloads.snapshot_shared(room)
    room_data = shared.pop("room")
    return ev.dumps(room_data)[1:-1], ev.dumps(shared)[1:-1]


class RoomConsumer(AsyncWebsocketConsumer):
    # No channel layer: a per-socket channel would be a Redis subscription per socket.
    channel_layer_alias = "liveshop.rooms.no-channel-layer"

    room_id: int
    admission: Admission
    conn: Connection | None = None
    hub_room: HubRoom | None = None

    async def dispatch(self, message: dict[str, Any]) -> None:
        # Channels' dispatch first runs close_old_connections on a thread for every
        # message; frames here touch the database only through database_sync_to_async.
        handler = getattr(self, get_handler_name(message), None)
        if handler is None:
            raise ValueError(f"No handler for message type {message['type']}")
        await handler(message)

    # --- connect ------------------------------------------------------------------------

    async def connect(self) -> None:
        self.room_id = int(self.scope["url_route"]["kwargs"]["room_id"])
        self._like_tokens = float(LIKE_FRAMES_PER_S)
        self._like_at = time.monotonic()
        self._frame_tokens = float(CLIENT_FRAME_BURST)
        self._frame_at = time.monotonic()
        if not origin_allowed(self.scope):
            await self._refuse(CLOSE_FORBIDDEN)
            return
        params = parse_qs(self.scope.get("query_string", b"").decode("latin-1"))
        ticket = params["ticket"][0] if "ticket" in params else None
        try:
            self.admission = await self._admit(ticket)
        except (OperationalError, InterfaceError) as exc:
            database_outage(exc)
            await self._refuse(CLOSE_TRY_AGAIN_LATER)  # the client reconnects later
            return
        except REDIS_UNAVAILABLE as exc:
            logger.warning("room socket: Redis unavailable at admission: %s", exc)
            await self._refuse(CLOSE_TRY_AGAIN_LATER)
            return
        except Exception:
            logger.exception("room socket: admission failed")
            await self._refuse(CLOSE_INTERNAL_ERROR)
            return
        if self.admission.refuse is not None:
            await self._refuse(self.admission.refuse)
            return
        await self.accept()
        try:
            await self._join(params)
        except (OperationalError, InterfaceError) as exc:
            database_outage(exc)
            await self._close_before_join(CLOSE_TRY_AGAIN_LATER)
        except REDIS_UNAVAILABLE as exc:
            # Redis is restarting: the client comes back with ?since= in a moment.
            logger.warning("room socket: Redis unavailable joining room %s: %s", self.room_id, exc)
            await self._close_before_join(CLOSE_TRY_AGAIN_LATER)
        except Exception:
            logger.exception("room socket: joining room %s failed", self.room_id)
            await self._close_before_join(CLOSE_INTERNAL_ERROR)

    async def _close_before_join(self, code: int) -> None:
        if self.conn is not None:  # joined the hub before failing: the hub closes it
            self.conn.close(code)
        else:
            await self.close(code)

    async def _admit(self, ticket: str | None) -> Admission:
        anonymous = _is_anonymous(self.scope, ticket)
        if anonymous:
            cached = _anonymous_admissions.get(self.room_id)
            if cached is not None and cached[0] > time.monotonic():
                return cached[1]
        admission = await database_sync_to_async(admit, thread_sensitive=False)(self.scope, self.room_id, ticket)
        if anonymous:
            if len(_anonymous_admissions) > 10_000:
                _anonymous_admissions.clear()
            _anonymous_admissions[self.room_id] = (time.monotonic() + ANONYMOUS_ADMISSION_S, admission)
        return admission

    async def _refuse(self, code: int) -> None:
        # Accept, then close with the code: a refusal before accepting reaches the client
        # as a bare HTTP 403, without the code (CONTRACT.md).
        await self.accept()
        await self.close(code)

    async def _join(self, params: dict[str, list[str]]) -> None:
        backend = get_backend()
        hub = await get_hub()
        hub_room = self.hub_room = await hub.room(self.room_id)
        if hub_room.status is None:
            hub_room.status = self.admission.room_status
        # Read the seq before the state: the snapshot may then include events after it
        # (harmless, clients treat them as updates) but never misses one.
        current, counters = await backend.ajoin(self.room_id, self._visitor(params))
        full = self.admission.role in FULL_ROLES
        initial: list[str] | None = None
        since = _int_param(params, "since")
        if since is not None and 0 <= since <= current:
            missed = await backend.areplay(self.room_id, since, current)
            if missed is not None:
                initial = ev.chunked_frames(ev.compact_for_replay(missed, full=full, max_comments=50))
        if initial is None:
            initial = [await self._snapshot(hub_room, current, counters)]
        self.conn = Connection(
            self.base_send,
            user_id=self.admission.user_id,
            role=self.admission.role,
            name=self.admission.display_name,
            account_since=self.admission.account_since,
            muted_until=self.admission.muted_until,
        )
        joined = await hub_room.join(self.conn, after=current, initial=initial)
        if joined and self.admission.room_status not in (Room.Status.SCHEDULED, Room.Status.LIVE):
            self.conn.close()  # an ended show: the snapshot, then goodbye

    async def _snapshot(self, hub_room: HubRoom, seq: int, counters: Counters) -> str:
        cached = hub_room.snapshot_cache
        now = time.monotonic()
        if cached is None or cached[0] != seq or now - cached[1] > SNAPSHOT_MAX_AGE_S:
            room_json, rest_json = await database_sync_to_async(snapshot_shared_json, thread_sensitive=False)(
                self.room_id
            )
            cached = hub_room.snapshot_cache = (seq, now, room_json, rest_json)
        admission = self.admission
        personal = ev.dumps(
            {
                "viewers": counters.viewers(),
                "likes": counters.likes,
                "you": {
                    "user_id": admission.user_id,
                    "role": admission.role,
                    "muted_until": ev.iso(admission.muted_until) if admission.muted_until else None,
                },
            }
        )[1:-1]
        return (
            f'{{"type":"room.snapshot","seq":{seq},"ts":"{ev.iso_now()}","data":'
            f'{{"room":{{{cached[2]},"viewers_now":{counters.now}}},{cached[3]},{personal}}}}}'
        )

    def _visitor(self, params: dict[str, list[str]]) -> str:
        if self.admission.user_id is not None:
            return f"u:{self.admission.user_id}"
        device = (params.get("device") or [""])[0][:64]
        if device:
            return f"d:{device}"
        client = self.scope.get("client") or ("", 0)
        agent = next((v for k, v in self.scope.get("headers", ()) if k == b"user-agent"), b"")
        return "a:" + hashlib.sha256(f"{client[0]}|".encode() + agent).hexdigest()[:20]

    # --- frames from the client ---------------------------------------------------------

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        conn = self.conn
        if conn is None or conn.closing or conn.lost:
            return
        size = len(text_data.encode("utf-8", "surrogatepass")) if text_data is not None else len(bytes_data or b"")
        if size > settings.WS_MAX_FRAME_BYTES:
            conn.close(CLOSE_TOO_BIG)
            return
        now = time.monotonic()
        self._frame_tokens = min(CLIENT_FRAME_BURST, self._frame_tokens + (now - self._frame_at) * CLIENT_FRAMES_PER_S)
        self._frame_at = now
        if self._frame_tokens < 1:
            logger.info("closing a socket of room %s: its client floods frames", self.room_id)
            conn.close(CLOSE_POLICY_VIOLATION)
            return
        self._frame_tokens -= 1
        try:
            frame = json.loads(text_data) if text_data is not None else None
        except (ValueError, RecursionError):  # RecursionError: JSON nested too deep
            frame = None
        if not isinstance(frame, dict) or not isinstance(frame.get("type"), str):
            self._error(Invalid("Frames are JSON objects with a string `type`."))
            return
        kind = frame["type"]
        if kind == "ping":
            conn.push_text(PONG)
        elif kind == "comment.send":
            await self._comment(frame)
        elif kind == "like.send":
            await self._like(frame)
        else:
            self._error(Invalid(f"Unknown frame type {kind[:40]!r}."))

    async def _comment(self, frame: dict[str, Any]) -> None:
        nonce = frame.get("nonce")
        if nonce is not None and not (isinstance(nonce, (str, int)) and len(str(nonce)) <= MAX_NONCE_LENGTH):
            self._error(Invalid(f"`nonce` is a string of at most {MAX_NONCE_LENGTH} characters."))
            return
        text = frame.get("text")
        if self.admission.user_id is None:
            self._error(NotAuthenticated("Sign in to comment."), nonce)
            return
        if not isinstance(text, str):
            self._error(Invalid("`text` must be a string.", fields={"text": ["Not a valid string."]}), nonce)
            return
        conn, room = self.conn, self.hub_room
        assert conn is not None
        assert room is not None
        client = self.scope.get("client")
        try:
            await get_intake().submit(room, conn, text, nonce, client[0] if client else None)
        except ServiceError as exc:
            self._error(exc, nonce)
        except (OperationalError, InterfaceError) as exc:
            self._error(database_outage(exc) or ServiceError(), nonce)
        except REDIS_UNAVAILABLE as exc:
            # Not acknowledged, so the client knows to send it again.
            self._error(redis_outage(exc) or ServiceUnavailable(), nonce)

    async def _like(self, frame: dict[str, Any]) -> None:
        count = frame.get("count", 1)
        if self.admission.user_id is None:
            self._error(NotAuthenticated("Sign in to like."))
            return
        if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= MAX_LIKES_PER_FRAME:
            self._error(Invalid(f"`count` is an integer from 1 to {MAX_LIKES_PER_FRAME}."))
            return
        hub_room = self.hub_room
        assert hub_room is not None
        if hub_room.status != Room.Status.LIVE:
            self._error(RoomNotLive("Likes are open while the room is live."))
            return
        now = time.monotonic()
        self._like_tokens = min(LIKE_FRAMES_PER_S, self._like_tokens + (now - self._like_at) * LIKE_FRAMES_PER_S)
        self._like_at = now
        if self._like_tokens < 1:
            return  # past a human's tapping speed: dropped without a word
        self._like_tokens -= 1
        try:
            await get_backend().alikes_add(self.room_id, count)
        except REDIS_UNAVAILABLE as exc:
            self._error(redis_outage(exc) or ServiceUnavailable())
            return
        hub_room.likes_dirty = True

    def _error(self, error: ServiceError, nonce: Any = None) -> None:
        if self.conn is not None:
            self.conn.push_text(error_frame(error, nonce))

    # --- disconnect ---------------------------------------------------------------------

    async def disconnect(self, code: int) -> None:
        if self.conn is not None:
            self.conn.lost = True
            if self.conn.room is not None:
                self.conn.room.remove(self.conn)


class NoRouteConsumer(AsyncWebsocketConsumer):
    """Any other /ws/ path: refused like an unknown room."""

    channel_layer_alias = "liveshop.rooms.no-channel-layer"

    async def connect(self) -> None:
        await self.accept()
        await self.close(CLOSE_NOT_FOUND)


def _int_param(params: dict[str, list[str]], name: str) -> int | None:
    try:
        return int(params[name][0])
    except (KeyError, ValueError, IndexError):
        return None
