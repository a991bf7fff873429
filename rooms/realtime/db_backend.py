"""The real-time backend of the embedded default (no REDIS_URL): the database carries
room events between processes.

`make run` starts the web process, a Celery worker and beat. The worker publishes room
events too (an order paid, a flash sale ended by a sweeper, a giveaway drawn), so an
in-memory bus would not do: every event is a row in `RoomEvent`, numbered from the
room's `RoomSequence` row in the same transaction, and the web process tails the table
(every POLL_S, or at once when it published the event itself). The rows double as the
`?since=` history and are pruned past the retention of ROOM_REPLAY_MIN_AGE_S and
ROOM_REPLAY_MIN_EVENTS.

Presence, counters and rate limits live in the web process's memory: in this mode it
is the only process with sockets and the only one that takes comments.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import logging
import threading
import time
import weakref
from collections.abc import Mapping, Sequence
from typing import Any

from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import close_old_connections, transaction
from django.db.models import F, Q
from django.utils import timezone

from liveshop.ratelimit import Bucket
from rooms.models import RoomEvent, RoomSequence
from rooms.realtime.backend import (
    Backend,
    ControlHandler,
    Counters,
    EventHandler,
    Hold,
    Joiner,
    LocalRateLimiter,
    PresenceResult,
    RecentJoiners,
    Refusal,
    Subscriber,
    joined_sample,
)
from rooms.realtime.events import EncodedEvent, Event, dumps, parse_header

logger = logging.getLogger(__name__)

POLL_S = 0.2
CONTROL_HEADER = "control"
CONTROL_KEEP_S = 60
PRUNE_EVERY_S = 60


def _in_thread(func: Any) -> Any:
    """Run ORM code off the event loop, then give the thread's connection back."""

    def run(*args: Any, **kwargs: Any) -> Any:
        close_old_connections()
        try:
            return func(*args, **kwargs)
        finally:
            close_old_connections()

    return sync_to_async(run, thread_sensitive=False)


class DatabaseBackend(Backend):
    def __init__(self) -> None:
        self.limiter = LocalRateLimiter()
        self._lock = threading.Lock()
        self._presence: dict[int, dict[str, tuple[int, float]]] = {}
        self._peak: dict[int, int] = {}
        self._views: dict[int, int] = {}
        self._visitors: dict[int, set[str]] = {}
        self._likes: dict[int, int] = {}
        self._viewers_last: dict[int, tuple[int, int, int]] = {}
        self._viewers_published_at: dict[int, float] = {}
        self._joined: dict[int, RecentJoiners] = {}  # joiners not yet in a `viewers`
        self._likes_published_at: dict[int, float] = {}
        self._subscribers: weakref.WeakSet[DatabaseSubscriber] = weakref.WeakSet()

    # --- publishing ---------------------------------------------------------------------

    def publish(self, room_id: int, event: EncodedEvent) -> int:
        RoomSequence.objects.get_or_create(room_id=room_id)
        with transaction.atomic():
            # The update locks the room's row until commit: the next publisher of the room
            # waits, so seqs commit in order and the tailer never skips one.
            RoomSequence.objects.filter(room_id=room_id).update(last_seq=F("last_seq") + 1)
            seq = RoomSequence.objects.values_list("last_seq", flat=True).get(room_id=room_id)
            RoomEvent.objects.create(room_id=room_id, seq=seq, header=event.header, frame=event.frame(seq))
        self._wake_tailers()
        return seq

    def control(self, room_id: int, message: dict[str, Any]) -> None:
        RoomEvent.objects.create(room_id=room_id, seq=None, header=CONTROL_HEADER, frame=dumps(message))
        self._wake_tailers()

    def _wake_tailers(self) -> None:
        for subscriber in list(self._subscribers):
            subscriber.wake_threadsafe()

    # --- rate limits --------------------------------------------------------------------

    def rate_limit(self, key: str, *, per_minute: int, burst: int) -> float:
        return self.limiter.take(key, per_minute=per_minute, burst=burst)

    def limits_take(self, room_id: int, buckets: Sequence[Bucket], hold: Hold | None = None) -> Refusal | None:
        return self.limiter.take_all(buckets, (f"{room_id}:{hold.name}", hold.seconds) if hold else None)

    async def alimits_take(self, room_id: int, buckets: Sequence[Bucket], hold: Hold | None = None) -> Refusal | None:
        return self.limits_take(room_id, buckets, hold)

    # --- presence and counters, in memory ------------------------------------------------

    def _total(self, room_id: int, now: float) -> int:
        reports = self._presence.get(room_id, {})
        for process_id in [p for p, (_, expires) in reports.items() if expires < now]:
            del reports[process_id]
        return sum(count for count, _ in reports.values())

    def viewers_now(self, room_ids: list[int]) -> dict[int, int]:
        now = time.monotonic()
        with self._lock:
            return {room_id: self._total(room_id, now) for room_id in room_ids}

    def counters(self, room_id: int) -> Counters:
        now = time.monotonic()
        with self._lock:
            total = self._total(room_id, now)
            return Counters(
                now=total,
                peak=max(total, self._peak.get(room_id, 0)),
                views=self._views.get(room_id, 0),
                unique=len(self._visitors.get(room_id, ())),
                likes=self._likes.get(room_id, 0),
            )

    async def aview(self, room_id: int, visitor: str) -> None:
        with self._lock:
            self._views[room_id] = self._views.get(room_id, 0) + 1
            self._visitors.setdefault(room_id, set()).add(visitor)

    async def alikes_add(self, room_id: int, count: int) -> None:
        with self._lock:
            self._likes[room_id] = self._likes.get(room_id, 0) + count

    async def alike_total_slot(self, room_id: int, interval_ms: int) -> int | None:
        now = time.monotonic()
        with self._lock:
            if now - self._likes_published_at.get(room_id, -1e9) < interval_ms / 1000:
                return None
            self._likes_published_at[room_id] = now
            return self._likes.get(room_id, 0)

    async def apresence(
        self,
        process_id: str,
        counts: dict[int, int],
        ttl_s: int,
        joined: Mapping[int, RecentJoiners] | None = None,
    ) -> dict[int, PresenceResult]:
        now = time.monotonic()
        results: dict[int, PresenceResult] = {}
        with self._lock:
            for room_id, count in counts.items():
                self._presence.setdefault(room_id, {})[process_id] = (count, now + ttl_s)
                joiners = joined.get(room_id) if joined else None
                if joiners:
                    self._joined.setdefault(room_id, RecentJoiners()).extend(joiners)
                total = self._total(room_id, now)
                peak = self._peak[room_id] = max(self._peak.get(room_id, 0), total)
                state = (total, peak, self._views.get(room_id, 0))
                news = room_id in self._joined or self._viewers_last.get(room_id) != state
                publish = news and now - self._viewers_published_at.get(room_id, -1e9) >= 1.0
                listed: tuple[Joiner, ...] = ()
                more = 0
                if publish:
                    self._viewers_last[room_id] = state
                    self._viewers_published_at[room_id] = now
                    taken = self._joined.pop(room_id, None)
                    if taken is not None:
                        listed, more = joined_sample(taken.names.items(), taken.more)
                results[room_id] = PresenceResult(
                    now=total, peak=peak, views=state[2], publish=publish, joined=listed, joined_more=more
                )
        return results

    async def acounters(self, room_id: int) -> Counters:
        return self.counters(room_id)

    # --- seq and history ------------------------------------------------------------------

    async def acurrent_seq(self, room_id: int) -> int:
        return (await self.acurrent_seqs([room_id]))[room_id]

    async def acurrent_seqs(self, room_ids: list[int]) -> dict[int, int]:
        if not room_ids:
            return {}
        found = dict(await _in_thread(_current_seqs)(room_ids))
        return {room_id: found.get(room_id, 0) for room_id in room_ids}

    async def areplay(self, room_id: int, after: int, upto: int) -> list[Event] | None:
        if upto <= after:
            return []
        rows = await _in_thread(_history)(room_id, after, upto)
        if len(rows) != upto - after or (rows and rows[0][0] != after + 1):
            return None
        return [parse_header(f"{seq} {header}", frame) for seq, header, frame in rows]

    def subscriber(self, on_event: EventHandler, on_control: ControlHandler) -> Subscriber:
        subscriber = DatabaseSubscriber(self, on_event, on_control)
        self._subscribers.add(subscriber)
        return subscriber


def _current_seqs(room_ids: list[int]) -> list[tuple[int, int]]:
    return list(RoomSequence.objects.filter(room_id__in=room_ids).values_list("room_id", "last_seq"))


def _history(room_id: int, after: int, upto: int) -> list[tuple[Any, str, str]]:
    return list(
        RoomEvent.objects.filter(room_id=room_id, seq__gt=after, seq__lte=upto)
        .order_by("seq")
        .values_list("seq", "header", "frame")
    )


def _tail(
    rooms: dict[int, int], seen_controls: set[int], control_since: dt.datetime
) -> tuple[list[tuple[int, Any, str, str]], list[tuple[int, int, str]]]:
    events: list[tuple[int, Any, str, str]] = []
    if rooms:
        after = Q()
        for room_id, seq in rooms.items():
            after |= Q(room_id=room_id, seq__gt=seq)
        events = list(
            RoomEvent.objects.filter(after).order_by("room_id", "seq").values_list("room_id", "seq", "header", "frame")
        )
    # Control rows are few; reading the last minute's and skipping the ones seen is immune
    # to ids committing out of order.
    controls = [
        row
        for row in RoomEvent.objects.filter(seq__isnull=True, created_at__gte=control_since)
        .order_by("id")
        .values_list("id", "room_id", "frame")
        if row[0] not in seen_controls
    ]
    return events, controls


def _prune() -> None:
    now = timezone.now()
    RoomEvent.objects.filter(seq__isnull=True, created_at__lt=now - dt.timedelta(seconds=CONTROL_KEEP_S)).delete()
    cutoff = now - dt.timedelta(seconds=settings.ROOM_REPLAY_MIN_AGE_S)
    old_rooms = RoomEvent.objects.filter(seq__isnull=False, created_at__lt=cutoff).values("room_id").distinct()
    for room_id, last_seq in RoomSequence.objects.filter(room_id__in=old_rooms).values_list("room_id", "last_seq"):
        RoomEvent.objects.filter(
            room_id=room_id, created_at__lt=cutoff, seq__lte=last_seq - settings.ROOM_REPLAY_MIN_EVENTS
        ).delete()


class DatabaseSubscriber(Subscriber):
    """Tails `RoomEvent` for the rooms this web process serves, by each room's seq."""

    def __init__(self, backend: DatabaseBackend, on_event: EventHandler, on_control: ControlHandler) -> None:
        self.backend = backend
        self.on_event = on_event
        self.on_control = on_control
        self.rooms: dict[int, int] = {}  # room -> last seq handed to the hub
        self._seen_controls: dict[int, float] = {}
        self._started_at = timezone.now()
        self._wake: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        self._started_at = timezone.now()
        self._task = self._loop.create_task(self._run(), name="liveshop-room-event-tail")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def wake_threadsafe(self) -> None:
        loop, wake = self._loop, self._wake
        if loop is not None and wake is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
                loop.call_soon_threadsafe(wake.set)

    async def subscribe(self, room_id: int) -> None:
        if room_id not in self.rooms:
            self.rooms[room_id] = await self.backend.acurrent_seq(room_id)

    async def unsubscribe(self, room_id: int) -> None:
        self.rooms.pop(room_id, None)

    async def _run(self) -> None:
        assert self._wake is not None
        last_prune = 0.0
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), POLL_S)
            self._wake.clear()
            try:
                await self._poll()
                if time.monotonic() - last_prune > PRUNE_EVERY_S:
                    last_prune = time.monotonic()
                    await _in_thread(_prune)()
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("room event tail failed; retrying")
                await asyncio.sleep(1)

    async def _poll(self) -> None:
        since = max(self._started_at, timezone.now() - dt.timedelta(seconds=CONTROL_KEEP_S))
        events, controls = await _in_thread(_tail)(dict(self.rooms), set(self._seen_controls), since)
        for room_id, seq, header, frame in events:
            if room_id in self.rooms and seq > self.rooms[room_id]:
                self.rooms[room_id] = seq
                self.on_event(room_id, parse_header(f"{seq} {header}", frame))
        now = time.monotonic()
        for control_id, room_id, frame in controls:
            self._seen_controls[control_id] = now
            try:
                self.on_control(room_id, json.loads(frame))
            except Exception:
                logger.exception("room event tail: bad control message %s", control_id)
        for control_id in [c for c, at in self._seen_controls.items() if now - at > CONTROL_KEEP_S * 2]:
            del self._seen_controls[control_id]
