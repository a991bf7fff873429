"""The room hub: one per web process, it delivers room events to the process's sockets.

Per room it serves, the hub holds one subscription (pub/sub in Redis, or the event log
in the embedded default) and the local sockets of the room. Events arrive encoded; the
hub never encodes one again. On each tick (ROOM_TICK_MS, or at once when the room has
been quiet) it joins the pending events into one frame (`batch` for several) and hands
that one text, in one shared ASGI event dict, to each socket in a plain loop.

- Hosts and moderators get every event. Viewers get every event except comments past
  ROOM_VIEWER_COMMENTS_PER_S, which are sampled fairly (round robin over the authors in
  a random order); comments by the host or a moderator are never dropped, and an author
  whose comment was dropped still gets it (a personal frame for that socket only).
- A socket whose client stopped reading must not stall the room: each send is started
  eagerly and, in the usual case, completes without suspending. When the ASGI server
  makes it wait (its write buffer is full), only that socket's send moves to a task of
  its own; its next frames queue up to ROOM_SOCKET_BACKLOG, then it is closed (1013) and
  its client reconnects with ?since=.
- Gaps in seq (a pub/sub reconnect) are filled from the replay history. A gap the
  history cannot fill, or a seq that went backwards (Redis restarted empty), closes the
  room's sockets with 1013: their clients come back with ?since= and get what they
  missed or a fresh snapshot.
- Once a second the hub reports its sockets per room (presence with a heartbeat) and
  publishes `viewers` when the totals changed or someone signed in joined (named in it,
  a few at most: `joined`); `like.total` goes out at most every LIKE_TOTAL_INTERVAL_MS
  per room.
"""

from __future__ import annotations

import asyncio
import collections
import datetime as dt
import json
import logging
import random
import time
import types
import weakref
from collections.abc import Awaitable, Callable, Coroutine, Generator, Sequence
from typing import Any

from django.conf import settings

from rooms.realtime import events as ev
from rooms.realtime.backend import Backend, RecentJoiners, get_backend, new_process_id
from rooms.realtime.events import Event

logger = logging.getLogger(__name__)

ASGISend = Callable[[dict[str, Any]], Coroutine[Any, Any, None]]
Publisher = Callable[[int, str, dict[str, Any]], Awaitable[int]]

HEARTBEAT_S = 1.0
LIKE_TOTAL_INTERVAL_MS = 250
# Events kept per room to catch a joining socket up with what was flushed while its
# snapshot was being built.
RECENT_EVENTS = 1024
# A room without sockets keeps its subscription this long, so a reload does not resubscribe.
IDLE_ROOM_S = 15.0
# After a flush longer than a tick, rest this fraction of its duration (see HubRoom).
FLUSH_REST = 0.5
# How long a user's sockets stay refused in a room after a close of that user's sockets
# (a ban): longer than any socket takes from its admission to its join.
USER_CLOSE_MEMORY_S = 10.0
# Roles whose sockets get every comment (the rest get the thinned feed).
FULL_ROLES = frozenset({"host", "moderator"})
# The per-client frame that tells a socket its role changed (CONTRACT: `you.updated`).
ROLE_FRAME = "you.updated"
# Room events after which the room's comment rules are read again (its status, its open
# giveaways' keywords: every `giveaway.*` event).
RULES_EVENTS = frozenset({ev.ROOM_STATUS})
# Close codes.
CLOSE_NORMAL = 1000
CLOSE_TRY_AGAIN = 1013


@types.coroutine
def _resume(coro: Coroutine[Any, Any, Any], yielded: Any) -> Generator[Any, Any, Any]:
    """Drive a coroutine that has already run up to its first suspension.

    Used by `Connection.push`: the send is started with `coro.send(None)` right in the
    room's loop, and only when it suspends (the socket cannot take more now) does the
    rest of it move to a task, which this generator drives step by step.
    """
    while True:
        try:
            received = yield yielded
        except GeneratorExit:
            coro.close()
            raise
        except BaseException as exc:  # noqa: BLE001 - forwarded into the coroutine (cancellation included)
            try:
                yielded = coro.throw(exc)
            except StopIteration as stop:
                return stop.value
        else:
            try:
                yielded = coro.send(received)
            except StopIteration as stop:
                return stop.value


async def _finish_send(coro: Coroutine[Any, Any, Any], yielded: Any) -> None:
    await _resume(coro, yielded)


class Connection:
    """One local socket: its ASGI send, who is on it, and its place in the send order."""

    __slots__ = (
        "__weakref__",
        "account_since",
        "after_seq",
        "backlog",
        "closing",
        "full",
        "lost",
        "muted_until",
        "name",
        "ready",
        "role",
        "room",
        "send",
        "user_id",
        "waiting",
    )

    def __init__(
        self,
        send: ASGISend,
        *,
        user_id: int | None,
        role: str,
        name: str = "",
        account_since: dt.datetime | None = None,
        muted_until: dt.datetime | None = None,
    ) -> None:
        self.send = send
        # uvicorn's WebSocket protocols keep their flow control in `writable`, an
        # asyncio.Event cleared while the transport's buffer is past its high-water mark;
        # their `send` waits on it and never otherwise. When the send is one of those, the
        # fanout checks it and awaits the send directly, which then cannot suspend. Any
        # other ASGI server gets the generic path (`push`), which is correct but dearer.
        writable = getattr(getattr(send, "__self__", None), "writable", None)
        self.ready: Callable[[], bool] | None = writable.is_set if isinstance(writable, asyncio.Event) else None
        self.user_id = user_id
        self.name = name  # the user's display name (`viewers.joined`)
        self.role = role  # the socket's role in the room; it can change while it is open
        # What the comment intake judges the user's comments by (rooms/realtime/intake.py):
        # the account's creation (new-account protection) and a mute, kept current by
        # the control messages of mutes and unmutes.
        self.account_since = account_since
        self.muted_until = muted_until
        self.full = role in FULL_ROLES  # host or moderator: every comment
        self.room: HubRoom | None = None
        self.after_seq = 0
        self.waiting: asyncio.Task[None] | None = None
        self.backlog: collections.deque[dict[str, Any]] = collections.deque()
        self.closing = False
        self.lost = False

    def push(self, message: dict[str, Any]) -> None:
        """Send `message` in order after everything pushed before; never waits."""
        if self.closing or self.lost:
            return
        if self.waiting is not None:
            if len(self.backlog) >= settings.ROOM_SOCKET_BACKLOG:
                self._give_up()
                return
            self.backlog.append(message)
            return
        self._start(message)

    def push_text(self, text: str) -> None:
        self.push({"type": "websocket.send", "text": text})

    def close(self, code: int = CLOSE_NORMAL) -> None:
        """Close after the frames already pushed."""
        if self.closing or self.lost:
            return
        self.push({"type": "websocket.close", "code": code})
        self.closing = True
        self._detach()

    def _start(self, message: dict[str, Any]) -> None:
        coro = self.send(message)
        try:
            yielded = coro.send(None)
        except StopIteration:
            return
        except Exception:  # noqa: BLE001 - any failure of a send means the socket is gone
            self._mark_lost()
            return
        self.waiting = asyncio.get_running_loop().create_task(_finish_send(coro, yielded))
        self.waiting.add_done_callback(self._resumed)

    def _resumed(self, task: asyncio.Task[None]) -> None:
        self.waiting = None
        if task.cancelled() or task.exception() is not None:
            self._mark_lost()
            return
        while self.backlog and self.waiting is None and not self.lost:
            self._start(self.backlog.popleft())

    def _give_up(self) -> None:
        # The client stopped reading. Drop what is queued; the close goes out if it ever
        # reads again, and the ASGI server's keepalive ends the connection otherwise.
        logger.info("closing a socket of room %s: its client is not reading", self.room.room_id if self.room else "?")
        self.backlog.clear()
        self.backlog.append({"type": "websocket.close", "code": CLOSE_TRY_AGAIN})
        self.closing = True
        self._detach()

    def _mark_lost(self) -> None:
        if self.lost:
            return
        self.lost = True
        self.backlog.clear()
        self._detach()

    def _detach(self) -> None:
        if self.room is not None:
            self.room.remove(self)


class HubRoom:
    """The sockets of one room in this process, and its pending events."""

    def __init__(self, hub: RoomHub, room_id: int) -> None:
        self.hub = hub
        self.room_id = room_id
        self.loop = hub.loop
        self.viewers: dict[Connection, None] = {}
        self.full: dict[Connection, None] = {}
        # Sockets that joined at a seq the fanout has not flushed yet: they get filtered
        # frames until it has.
        self.newcomers: dict[Connection, None] = {}
        self.by_user: dict[int, list[Connection]] = {}
        self.pending: list[Event] = []
        self.recent: collections.deque[Event] = collections.deque(maxlen=RECENT_EVENTS)
        self.last_seq = 0  # the last event received
        self.flushed_seq = 0  # the last event handed to the sockets
        self.flush_handle: asyncio.Handle | None = None
        # When the next flush may start: a tick after the last one began, and, when the
        # fanout itself took longer than that (a very large room), not before half its
        # duration has passed since it ended, so the loop keeps a third of the core for
        # receiving events, heartbeats and client frames. Frames then get fuller, not late.
        self.next_flush_at = -1e9
        rate = max(1, settings.ROOM_VIEWER_COMMENTS_PER_S)
        self.comment_rate = float(rate)
        self.comment_tokens = float(rate)
        self.comment_tokens_at = self.loop.time()
        self.ready: asyncio.Future[None] | None = None
        self.filling: list[Event] | None = None  # events held while a gap is filled
        # Events that arrive while the subscription is being set up, before the room's
        # seq is known: sorted out once it is.
        self.early: list[Event] | None = []
        self.likes_dirty = False
        self.empty_since: float | None = self.loop.time()
        self.stalled_at_seq: int | None = None
        self.closed = False
        # The room's status as last seen (admission, then room.status events).
        self.status: str | None = None
        # The comment intake's rules of the room (rooms/realtime/intake.py), loaded when
        # needed: None after a room.status or giveaway event or a control message saying
        # the room's comment settings changed.
        self.comment_rules: Any = None
        self.comment_rules_loading: asyncio.Future[Any] | None = None
        # The consumer's cache of the snapshot's shared part: (seq, built at, room, rest).
        self.snapshot_cache: tuple[int, float, str, str] | None = None
        # Signed-in users who joined since the last presence report (`viewers.joined`).
        self.joiners = RecentJoiners()

    # --- sockets ------------------------------------------------------------------------

    @property
    def socket_count(self) -> int:
        return len(self.viewers) + len(self.full) + len(self.newcomers)

    def _attach(self, conn: Connection) -> None:
        conn.room = self
        if conn.after_seq > self.flushed_seq:
            self.newcomers[conn] = None
        else:
            (self.full if conn.full else self.viewers)[conn] = None
        if conn.user_id is not None:
            self.by_user.setdefault(conn.user_id, []).append(conn)
        self.empty_since = None

    def set_role(self, conn: Connection, role: str) -> None:
        """Give an open socket its new role (a moderator appointed or removed): its
        exemptions follow `conn.role`, its feed (every comment, or the thinned one) moves."""
        conn.role = role
        full = role in FULL_ROLES
        if full == conn.full:
            return
        conn.full = full
        # A newcomer is sorted by `full` when it catches up; a settled socket moves now.
        settled = conn in self.viewers or conn in self.full
        self.viewers.pop(conn, None)
        self.full.pop(conn, None)
        if settled:
            (self.full if full else self.viewers)[conn] = None

    def forget_comment_rules(self) -> None:
        self.comment_rules = None
        self.comment_rules_loading = None

    def remove(self, conn: Connection) -> None:
        self.viewers.pop(conn, None)
        self.full.pop(conn, None)
        self.newcomers.pop(conn, None)
        if conn.user_id is not None:
            conns = self.by_user.get(conn.user_id)
            if conns is not None:
                if conn in conns:
                    conns.remove(conn)
                if not conns:
                    del self.by_user[conn.user_id]
        conn.room = None
        if self.socket_count == 0 and self.empty_since is None:
            self.empty_since = self.loop.time()

    def connections(self) -> list[Connection]:
        return [*self.full, *self.viewers, *self.newcomers]

    # --- events in ----------------------------------------------------------------------

    def receive(self, event: Event) -> None:
        if self.filling is not None:
            self.filling.append(event)
            return
        if event.seq <= self.last_seq:
            return  # already had it (a gap fill overlapping live delivery)
        if event.seq > self.last_seq + 1:
            self.filling = [event]
            self.loop.create_task(self._fill_gap(self.last_seq, event.seq - 1))
            return
        self._accept(event)

    def _accept(self, event: Event) -> None:
        if event.type in RULES_EVENTS or event.type.startswith("giveaway."):
            self.forget_comment_rules()
        self.pending.append(event)
        self.last_seq = event.seq
        if self.flush_handle is None:
            delay = self.next_flush_at - self.loop.time()
            if delay <= 0:
                self.flush_handle = self.loop.call_soon(self.flush)
            else:
                self.flush_handle = self.loop.call_later(delay, self.flush)

    async def _fill_gap(self, after: int, upto: int) -> None:
        try:
            missed = await self.hub.backend.areplay(self.room_id, after, upto)
        except Exception:
            logger.exception("room %s: could not fill the gap %s..%s", self.room_id, after + 1, upto)
            missed = None
        held, self.filling = self.filling or [], None
        if missed is None:
            logger.warning(
                "room %s: events %s..%s are not in the history; its sockets resync", self.room_id, after + 1, upto
            )
            self.restart_at(upto, held)
            return
        for event in sorted([*missed, *held], key=lambda e: e.seq):
            if event.seq > self.last_seq:
                self._accept(event)

    def restart_at(self, seq: int, held: Sequence[Event] = ()) -> None:
        """Continue from `seq` when the history cannot say what the sockets missed (Redis
        restarted empty, or trimmed past a long stall).

        The room's sockets are closed with 1013: their clients reconnect with ?since= and
        get the events they missed or, when the history has lost them too, a fresh
        snapshot from the database. Then `held` (events after `seq`) go out as usual.
        """
        for conn in self.connections():
            if conn.after_seq < seq:  # one that joined with a snapshot past the break missed nothing
                conn.close(CLOSE_TRY_AGAIN)
        self.pending.clear()
        self.recent.clear()  # events of before the break must not catch up a newcomer
        self.snapshot_cache = None
        self.last_seq = self.flushed_seq = seq
        self.stalled_at_seq = None
        for event in sorted(held, key=lambda e: e.seq):
            if event.seq > self.last_seq:
                self._accept(event)

    # --- the fanout ---------------------------------------------------------------------

    def flush(self) -> None:
        """Hand the pending events to the sockets. Runs to the end without suspending."""
        self.flush_handle = None
        started = self.loop.time()
        # The loop's clock stands still while a callback runs (uvloop): time the fanout itself.
        timer = time.perf_counter()
        flush = self._flush()
        try:
            suspended = flush.send(None)
        except StopIteration:
            took = time.perf_counter() - timer
            self.next_flush_at = started + max(self.hub.tick_s, took * (1 + FLUSH_REST))
            return
        # Not expected (every send that could wait goes through `push`), but never lose it.
        self.loop.create_task(_finish_send(flush, suspended))

    async def _flush(self) -> None:
        events, self.pending = self.pending, []
        if not events or self.closed:
            return
        now = self.loop.time()
        self.recent.extend(events)
        self.flushed_seq = events[-1].seq

        full_text = ev.batch_frame(events)
        viewer_events, dropped = self._thin(events, now)
        viewer_text = full_text if not dropped else (ev.batch_frame(viewer_events) if viewer_events else None)

        if self.full:
            await _deliver(tuple(self.full), {"type": "websocket.send", "text": full_text})

        personal: set[Connection] = set()
        if dropped:
            by_author: dict[int, list[Event]] = {}
            for event in dropped:
                by_author.setdefault(event.author, []).append(event)
            for author, own in by_author.items():
                conns = [c for c in self.by_user.get(author, ()) if c in self.viewers]
                if conns:
                    text = ev.batch_frame(sorted([*viewer_events, *own], key=lambda e: e.seq))
                    for conn in conns:
                        conn.push_text(text)
                        personal.add(conn)
        if viewer_text is not None and self.viewers:
            viewers = tuple(self.viewers) if not personal else tuple(c for c in self.viewers if c not in personal)
            await _deliver(viewers, {"type": "websocket.send", "text": viewer_text})

        if self.newcomers:
            for conn in tuple(self.newcomers):
                mine = [e for e in (events if conn.full else viewer_events) if e.seq > conn.after_seq]
                if mine:
                    conn.push_text(ev.batch_frame(mine))
                if conn.after_seq <= self.flushed_seq:
                    del self.newcomers[conn]
                    (self.full if conn.full else self.viewers)[conn] = None

        for event in events:
            if event.type == ev.ROOM_STATUS:
                self.status = json.loads(event.frame)["data"]["status"]
        if any(event.closes_room for event in events):
            self.close_all(CLOSE_NORMAL)

    def _thin(self, events: list[Event], now: float) -> tuple[list[Event], list[Event]]:
        """Split the events into what viewers get and the comments dropped for them."""
        candidates = [e for e in events if e.is_comment and not e.privileged]
        self.comment_tokens = min(
            self.comment_rate, self.comment_tokens + (now - self.comment_tokens_at) * self.comment_rate
        )
        self.comment_tokens_at = now
        allowed = int(self.comment_tokens)
        if len(candidates) <= allowed:
            self.comment_tokens -= len(candidates)
            return events, []
        self.comment_tokens -= allowed
        kept = set(fair_sample(candidates, allowed))
        dropped = [e for e in candidates if e not in kept]
        dropped_ids = {id(e) for e in dropped}
        return [e for e in events if id(e) not in dropped_ids], dropped

    def close_all(self, code: int) -> None:
        for conn in self.connections():
            conn.close(code)

    # --- joining ------------------------------------------------------------------------

    async def join(self, conn: Connection, *, after: int, initial: Sequence[str] = ()) -> bool:
        """Send `initial` (a snapshot or a replay, current to seq `after`), then every room
        event after `after`, in order. False if the socket could not be caught up."""
        for text in initial:
            conn.push_text(text)
        while True:
            if after >= self.flushed_seq:
                break
            oldest = self.recent[0].seq if self.recent else self.flushed_seq + 1
            if oldest <= after + 1:
                missed = [e for e in self.recent if e.seq > after]
            else:
                replayed = await self.hub.backend.areplay(self.room_id, after, self.flushed_seq)
                if replayed is None:
                    conn.close(CLOSE_TRY_AGAIN)
                    return False
                missed = replayed
            if missed:
                for text in ev.chunked_frames(ev.compact_for_replay(missed, full=conn.full, max_comments=50)):
                    conn.push_text(text)
                after = missed[-1].seq
        conn.after_seq = after
        if conn.closing or conn.lost:
            return False
        refused = self.hub.user_close_code(self.room_id, conn.user_id)
        if refused is not None:
            # Admitted before the user's ban committed, joining after its close went by.
            conn.close(refused)
            return False
        muted = self.hub.user_mute(self.room_id, conn.user_id)
        if muted is not None:  # admitted before a mute or unmute committed
            conn.muted_until = muted[0]
        self._attach(conn)
        if conn.user_id is not None and conn.role != "host":
            self.joiners.add(conn.user_id, conn.name)
        return True


async def _deliver(conns: Sequence[Connection], message: dict[str, Any]) -> None:
    """Send one message, one shared dict, to each socket in turn: the hot loop.

    A socket the ASGI server says is writable, with nothing queued before, is awaited
    directly (the send cannot suspend then); any other goes through `push`, which queues
    or moves its wait to a task of its own.
    """
    for conn in conns:
        ready = conn.ready
        if ready is not None and conn.waiting is None and not conn.closing and ready():
            try:
                await conn.send(message)
            except Exception:  # noqa: BLE001 - any failure of a send means the socket is gone
                conn._mark_lost()
        else:
            conn.push(message)


def fair_sample(comments: Sequence[Event], count: int) -> list[Event]:
    """Up to `count` comments, spread over their authors: one from each author in a random
    order, then a second from each, and so on. A flooder gets no more than anyone else."""
    if count <= 0:
        return []
    by_author: dict[int, collections.deque[Event]] = {}
    for comment in comments:
        by_author.setdefault(comment.author, collections.deque()).append(comment)
    queues = list(by_author.values())
    random.shuffle(queues)
    chosen: list[Event] = []
    while len(chosen) < count and queues:
        for queue in list(queues):
            chosen.append(queue.popleft())
            if not queue:
                queues.remove(queue)
            if len(chosen) == count:
                break
    return sorted(chosen, key=lambda e: e.seq)


class RoomHub:
    """The fanout of one web process (one per event loop)."""

    def __init__(self, backend: Backend, publish: Publisher, loop: asyncio.AbstractEventLoop) -> None:
        self.backend = backend
        self.publish = publish
        self.loop = loop
        self.tick_s = settings.ROOM_TICK_MS / 1000
        self.process_id = new_process_id()
        self.rooms: dict[int, HubRoom] = {}
        self.subscriber = backend.subscriber(self._on_event, self._on_control)
        self._heartbeat: asyncio.Task[None] | None = None
        self._started = False
        # Set by stop(). The heartbeat also checks it: on Python 3.11 a cancel that lands as
        # a Redis call's own timeout expires can come out as TimeoutError, which the loop
        # would log and retry, and stop() would then wait forever.
        self._stopping = False
        # (room, user) -> (until, close code): recent closes of one user's sockets.
        self._user_closes: dict[tuple[int, int], tuple[float, int]] = {}
        # (room, user) -> (until, muted until): recent mutes and unmutes, for the same race.
        self._user_mutes: dict[tuple[int, int], tuple[float, dt.datetime | None]] = {}

    async def start(self) -> None:
        await self.subscriber.start()
        self._heartbeat = self.loop.create_task(self._beat(), name="liveshop-room-heartbeat")
        self._started = True

    async def stop(self) -> None:
        self._stopping = True
        if self._heartbeat is not None:
            self._heartbeat.cancel()
            # Bounded: a beat whose cancel was swallowed ends at its next check of the flag.
            await asyncio.wait({self._heartbeat}, timeout=5)
        await self.subscriber.stop()
        for room in self.rooms.values():
            room.closed = True
            if room.flush_handle is not None:
                room.flush_handle.cancel()
        self.rooms.clear()

    async def room(self, room_id: int) -> HubRoom:
        """The room's local state, subscribed: events published from now on will arrive."""
        room = self.rooms.get(room_id)
        if room is None:
            room = self.rooms[room_id] = HubRoom(self, room_id)
            room.ready = self.loop.create_task(self._subscribe(room))
        assert room.ready is not None
        try:
            await asyncio.shield(room.ready)
        except Exception:
            if self.rooms.get(room_id) is room:
                del self.rooms[room_id]
            raise
        return room

    async def _subscribe(self, room: HubRoom) -> None:
        await self.subscriber.subscribe(room.room_id)
        seq = await self.backend.aensure_seq(room.room_id)
        # Events up to `seq` are already in every snapshot read from now on.
        room.last_seq = max(room.last_seq, seq)
        room.flushed_seq = max(room.flushed_seq, seq)
        early, room.early = room.early or [], None
        for event in early:
            room.receive(event)

    def _on_event(self, room_id: int, event: Event) -> None:
        room = self.rooms.get(room_id)
        if room is None:
            return
        if room.early is not None:
            if len(room.early) < RECENT_EVENTS:
                room.early.append(event)
        else:
            room.receive(event)

    def _on_control(self, room_id: int, message: dict[str, Any]) -> None:
        user_id = message.get("user")
        if message.get("op") == "close" and user_id is not None:
            self._remember_user_close(room_id, int(user_id), int(message.get("code", CLOSE_NORMAL)))
        muted: tuple[dt.datetime | None] | None = None
        if "muted_until" in message and user_id is not None:
            until = message["muted_until"]
            muted = (dt.datetime.fromisoformat(until) if until else None,)
            self._user_mutes[(room_id, int(user_id))] = (self.loop.time() + USER_CLOSE_MEMORY_S, muted[0])
        room = self.rooms.get(room_id)
        if room is None:
            return
        conns = list(room.by_user.get(int(user_id), ())) if user_id is not None else room.connections()
        if message.get("op") == "send":
            text = ev.dumps(message["frame"])
            for conn in conns:
                conn.push_text(text)
                if muted is not None:
                    conn.muted_until = muted[0]
        elif message.get("op") == "role":
            role = str(message["role"])
            text = ev.dumps({"type": ROLE_FRAME, "data": {"room": room_id, "role": role}})
            for conn in conns:
                room.set_role(conn, role)
                conn.push_text(text)
        elif message.get("op") == "close":
            for conn in conns:
                conn.close(int(message.get("code", CLOSE_NORMAL)))
        elif message.get("op") == "rules":
            room.forget_comment_rules()

    def _remember_user_close(self, room_id: int, user_id: int, code: int) -> None:
        """A socket of the user may be between its admission (which read the database
        before the ban committed) and its join: the join checks here and is refused."""
        now = self.loop.time()
        if len(self._user_closes) > 1000:
            self._user_closes = {key: value for key, value in self._user_closes.items() if value[0] > now}
        self._user_closes[(room_id, user_id)] = (now + USER_CLOSE_MEMORY_S, code)

    def user_close_code(self, room_id: int, user_id: int | None) -> int | None:
        """The close code if the user's sockets to the room were closed moments ago."""
        if user_id is None or not self._user_closes:
            return None
        remembered = self._user_closes.get((room_id, user_id))
        if remembered is None or remembered[0] <= self.loop.time():
            return None
        return remembered[1]

    def user_mute(self, room_id: int, user_id: int | None) -> tuple[dt.datetime | None] | None:
        """(muted until, or None: unmuted) if a mute or unmute of the user went by moments ago."""
        if user_id is None or not self._user_mutes:
            return None
        now = self.loop.time()
        if len(self._user_mutes) > 1000:
            self._user_mutes = {key: value for key, value in self._user_mutes.items() if value[0] > now}
        remembered = self._user_mutes.get((room_id, user_id))
        if remembered is None or remembered[0] <= now:
            return None
        return (remembered[1],)

    def count_sockets(self, room_id: int) -> int:
        room = self.rooms.get(room_id)
        return room.socket_count if room is not None else 0

    # --- once a second --------------------------------------------------------------------

    async def _beat(self) -> None:
        beats = 0
        while not self._stopping:
            await asyncio.sleep(LIKE_TOTAL_INTERVAL_MS / 1000)
            beats += 1
            try:
                await self._publish_like_totals()
                if beats % round(HEARTBEAT_S * 1000 / LIKE_TOTAL_INTERVAL_MS) == 0:
                    await self._report_presence()
                    await self._check_gaps()
                    await self._drop_idle_rooms()
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("room hub heartbeat failed; retrying")

    async def _publish_like_totals(self) -> None:
        for room in list(self.rooms.values()):
            if room.likes_dirty:
                total = await self.backend.alike_total_slot(room.room_id, LIKE_TOTAL_INTERVAL_MS)
                if total is not None:
                    room.likes_dirty = False
                    await self.publish(room.room_id, ev.LIKE_TOTAL, {"likes": total})

    async def _report_presence(self) -> None:
        counts = {
            room_id: room.socket_count for room_id, room in self.rooms.items() if room.ready and room.ready.done()
        }
        if not counts:
            return
        # This process's joiners go with the report (the store keeps them for whichever
        # process publishes the room's next `viewers`); later ones wait for the next report.
        joined: dict[int, RecentJoiners] = {}
        for room_id in counts:
            room = self.rooms[room_id]
            if room.joiners:
                joined[room_id], room.joiners = room.joiners, RecentJoiners()
        results = await self.backend.apresence(self.process_id, counts, settings.PRESENCE_TTL_S, joined)
        for room_id, result in results.items():
            if result.publish:
                await self.publish(room_id, ev.VIEWERS, result.viewers_event())

    async def _check_gaps(self) -> None:
        # A message lost while pub/sub reconnected leaves a room behind until its next
        # event shows the gap; a quiet room would wait, so compare with the seq each second.
        rooms = [r for r in self.rooms.values() if r.ready and r.ready.done() and r.filling is None]
        # What each room had before the read: events that arrive during it are newer.
        had = {room.room_id: room.last_seq for room in rooms}
        seqs = await self.backend.acurrent_seqs([r.room_id for r in rooms])
        for room in rooms:
            if room.filling is not None:
                continue  # a gap found by an event that came in meanwhile
            current = seqs.get(room.room_id, 0)
            if current < had[room.room_id]:
                # The seq went backwards: Redis restarted empty or from an older snapshot.
                # Set the room's counter above every seq given before and resync its
                # sockets, before the next event.
                room.filling = []
                self.loop.create_task(self._restore_seq(room, had[room.room_id]))
                continue
            if current > room.last_seq and room.stalled_at_seq == room.last_seq:
                room.filling = []
                self.loop.create_task(room._fill_gap(room.last_seq, current))
            room.stalled_at_seq = room.last_seq if current > room.last_seq else None

    async def _restore_seq(self, room: HubRoom, seen: int) -> None:
        try:
            seq = await self.backend.arestore_seq(room.room_id, seen)
        except Exception:
            logger.exception("room %s: could not set its seq up again; retrying", room.room_id)
            held, room.filling = room.filling or [], None
            for event in held:
                room.receive(event)
            return
        held, room.filling = room.filling or [], None
        logger.warning("room %s: its seq went back (Redis lost it); now %s, its sockets resync", room.room_id, seq)
        room.restart_at(seq, held)

    async def _drop_idle_rooms(self) -> None:
        now = self.loop.time()
        for room_id, room in list(self.rooms.items()):
            if room.socket_count == 0 and room.empty_since is not None and now - room.empty_since > IDLE_ROOM_S:
                del self.rooms[room_id]
                room.closed = True
                await self.subscriber.unsubscribe(room_id)


_hubs: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Future[RoomHub]] = weakref.WeakKeyDictionary()


async def get_hub() -> RoomHub:
    """This event loop's hub, started on first use."""
    loop = asyncio.get_running_loop()
    future = _hubs.get(loop)
    if future is None:
        future = _hubs[loop] = loop.create_future()
        try:
            from rooms.broadcast import room_publish_async

            hub = RoomHub(get_backend(), room_publish_async, loop)
            await hub.start()
        except BaseException as exc:
            del _hubs[loop]
            future.set_exception(exc)
            future.exception()  # retrieved: the caller gets it raised below
            raise
        future.set_result(hub)
    return await asyncio.shield(future)


async def stop_hub() -> None:
    """Stop this event loop's hub (tests; a server simply exits)."""
    future = _hubs.pop(asyncio.get_running_loop(), None)
    if future is not None and future.done() and not future.exception():
        await future.result().stop()
