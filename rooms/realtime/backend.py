"""Where the real-time state lives, behind one interface with two implementations.

`RedisBackend` (REDIS_URL set): `seq` is a Redis INCR, the replay history a capped
Stream, events travel on pub/sub, presence and counters are Redis keys; any number of
web processes share it. `DatabaseBackend` (the embedded default): `seq` and history are
rows in the database, which every process of `make run` (web, Celery worker, beat)
shares, and the one web process tails; presence and counters live in that process.

Sync methods may be called from any thread of any process (services, Celery tasks);
`a`-prefixed ones run on the web process's event loop (the hub and the consumer).
"""

from __future__ import annotations

import abc
import collections
import os
import socket
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from django.conf import settings

from liveshop.ratelimit import Bucket
from rooms.realtime.events import EncodedEvent, Event

EventHandler = Callable[[int, Event], None]
ControlHandler = Callable[[int, dict[str, Any]], None]


@dataclass(frozen=True, slots=True)
class Hold:
    """Once per `seconds` per `name` in a room (slow mode: `slow:<user id>`)."""

    name: str
    seconds: int


@dataclass(frozen=True, slots=True)
class Refusal:
    """Which limit refused (an index into the buckets; the hold is `len(buckets)`) and
    the seconds until it would allow."""

    index: int
    wait: float


@dataclass(frozen=True)
class Counters:
    """A room's live figures: sockets open now, the most at once, joins, distinct
    visitors, likes."""

    now: int = 0
    peak: int = 0
    views: int = 0
    unique: int = 0
    likes: int = 0

    def viewers(self) -> dict[str, int]:
        return {"now": self.now, "peak": self.peak, "views": self.views}


@dataclass(frozen=True)
class CountersCheckpoint:
    """A live room's counters as kept in PostgreSQL: added back to a Redis that lost them.
    `visitors` is Redis's HyperLogLog of the unique visitors, as bytes (None: none yet)."""

    views: int
    likes: int
    peak: int
    visitors: bytes | None


# "Ana joined" in `viewers`: the newest few signed-in joiners are named, the rest counted.
JOINED_LISTED = 3
# Joiners a room keeps by name between two `viewers` (per process, and in the shared
# store): a few more than are listed, so a user who reconnects still counts once.
JOINED_KEPT = 8


@dataclass(frozen=True)
class Joiner:
    """A signed-in user who joined a room, as `viewers.joined` names them."""

    id: int
    display_name: str


class RecentJoiners:
    """The signed-in users who joined a room since its last `viewers`, oldest first: the
    newest JOINED_KEPT by id and name, and how many others joined before them. Bounded,
    whatever the crowd; a user who joins again moves to the end and counts once (unless
    they had already dropped out of the names, in a crowd: then `more` counts them again).
    """

    __slots__ = ("more", "names")

    def __init__(self) -> None:
        self.names: collections.OrderedDict[int, str] = collections.OrderedDict()
        self.more = 0

    def __bool__(self) -> bool:
        return bool(self.names) or self.more > 0

    def add(self, user_id: int, name: str) -> None:
        if user_id in self.names:
            self.names.move_to_end(user_id)
        elif len(self.names) >= JOINED_KEPT:
            self.names.popitem(last=False)
            self.more += 1
        self.names[user_id] = name

    def extend(self, other: RecentJoiners) -> None:
        """Add joiners reported after these (another process's, or a later report)."""
        self.more += other.more
        for user_id, name in other.names.items():
            self.add(user_id, name)


def joined_sample(names: Iterable[tuple[int, str]], more: int) -> tuple[tuple[Joiner, ...], int]:
    """What `viewers` says of the joiners: the newest JOINED_LISTED of `names` (oldest
    first, a user named twice counting once, at their last place), and how many joined
    besides them (`more` already counts the ones no longer named)."""
    latest: dict[int, str] = {}
    for user_id, name in names:
        latest.pop(user_id, None)
        latest[user_id] = name
    listed = tuple(Joiner(id=user_id, display_name=name) for user_id, name in latest.items())[-JOINED_LISTED:]
    return listed, more + len(latest) - len(listed)


@dataclass(frozen=True)
class PresenceResult:
    """A room's viewer figures after a presence report, and whether this process should
    publish them (at most once a second per room, across all processes). When it should,
    `joined` and `joined_more` are the room's joiners since the last publish, taken out of
    the shared store: the publisher names them once."""

    now: int
    peak: int
    views: int
    publish: bool
    joined: tuple[Joiner, ...] = ()
    joined_more: int = 0

    def viewers_event(self) -> dict[str, Any]:
        """The `viewers` event's data (CONTRACT.md): `joined` and `joined_more` only when
        someone signed in joined."""
        data: dict[str, Any] = {"now": self.now, "peak": self.peak, "views": self.views}
        if self.joined:
            data["joined"] = [{"id": j.id, "display_name": j.display_name} for j in self.joined]
        if self.joined_more:
            data["joined_more"] = self.joined_more
        return data


class Subscriber(abc.ABC):
    """A web process's subscription to the rooms it serves and to the control channel."""

    @abc.abstractmethod
    async def start(self) -> None: ...

    @abc.abstractmethod
    async def stop(self) -> None: ...

    @abc.abstractmethod
    async def subscribe(self, room_id: int) -> None:
        """Return once events of the room published from now on will be delivered."""

    @abc.abstractmethod
    async def unsubscribe(self, room_id: int) -> None: ...


class Backend(abc.ABC):
    # --- publishing (any process) -------------------------------------------------------

    @abc.abstractmethod
    def publish(self, room_id: int, event: EncodedEvent) -> int:
        """Give the event the room's next seq, keep it for replay, deliver it once to every
        process serving the room, atomically and in seq order. Returns the seq."""

    def publish_many(self, events: Sequence[tuple[int, EncodedEvent]]) -> list[int]:
        """`publish` each (room, event), in order; one round trip where the backend can."""
        return [self.publish(room_id, event) for room_id, event in events]

    @abc.abstractmethod
    def control(self, room_id: int, message: dict[str, Any]) -> None:
        """Send a control message (not a room event) to every web process."""

    # --- rate limits (any process) --------------------------------------------------------

    @abc.abstractmethod
    def rate_limit(self, key: str, *, per_minute: int, burst: int) -> float:
        """Take one from a GCRA bucket: 0.0 if allowed, else the seconds to wait."""

    @abc.abstractmethod
    def limits_take(self, room_id: int, buckets: Sequence[Bucket], hold: Hold | None = None) -> Refusal | None:
        """All or nothing, in one step (one round trip to Redis): take one from each
        bucket and start `hold` (a pause in the room, slow mode's), or, when any of them
        refuses, take nothing and say which one and for how long."""

    @abc.abstractmethod
    async def alimits_take(self, room_id: int, buckets: Sequence[Bucket], hold: Hold | None = None) -> Refusal | None:
        """`limits_take` from the event loop."""

    # --- reads for REST (any thread) ------------------------------------------------------

    @abc.abstractmethod
    def viewers_now(self, room_ids: list[int]) -> dict[int, int]: ...

    @abc.abstractmethod
    def counters(self, room_id: int) -> Counters: ...

    def counters_checkpoint(self, room_ids: list[int]) -> dict[int, CountersCheckpoint]:
        """What a Redis that restarts empty would lose of these rooms' counters, to keep
        in PostgreSQL (RoomSequence); rooms whose counters are being set up again are
        left out. Nothing where the counters cannot be lost this way."""
        return {}

    # --- the web process's event loop -----------------------------------------------------

    @abc.abstractmethod
    async def acurrent_seq(self, room_id: int) -> int: ...

    @abc.abstractmethod
    async def acurrent_seqs(self, room_ids: list[int]) -> dict[int, int]: ...

    async def aensure_seq(self, room_id: int) -> int:
        """The room's seq, its counter set up first if it has none (a new room, or Redis
        lost it): then above every seq given before. Only Redis can lose it."""
        return await self.acurrent_seq(room_id)

    async def arestore_seq(self, room_id: int, seen: int) -> int:
        """The room's seq after its counter was seen going back below `seen` (Redis
        restarted empty, or from an older snapshot): set again above every seq given
        before, unless another process did so already."""
        return await self.acurrent_seq(room_id)

    @abc.abstractmethod
    async def areplay(self, room_id: int, after: int, upto: int) -> list[Event] | None:
        """The events with after < seq <= upto, or None when the history no longer has
        them all (the client needs a fresh snapshot)."""

    @abc.abstractmethod
    async def aview(self, room_id: int, visitor: str) -> None:
        """Count a join (`views`) and a visitor (`unique`)."""

    async def ajoin(self, room_id: int, visitor: str) -> tuple[int, Counters]:
        """Count a join, then read the room's seq and figures (one round trip in Redis)."""
        await self.aview(room_id, visitor)
        return await self.acurrent_seq(room_id), await self.acounters(room_id)

    @abc.abstractmethod
    async def alikes_add(self, room_id: int, count: int) -> None: ...

    @abc.abstractmethod
    async def alike_total_slot(self, room_id: int, interval_ms: int) -> int | None:
        """The room's like total if this process may publish `like.total` now (at most one
        per `interval_ms` per room, across processes), else None."""

    @abc.abstractmethod
    async def apresence(
        self,
        process_id: str,
        counts: dict[int, int],
        ttl_s: int,
        joined: Mapping[int, RecentJoiners] | None = None,
    ) -> dict[int, PresenceResult]:
        """Report this process's open sockets per room (refreshing its heartbeat) and get
        each room's total over live processes. `joined`: the rooms' signed-in joiners on
        this process since its last report, kept with the other processes' until the
        room's next publish takes them (in the same step as the report)."""

    @abc.abstractmethod
    async def acounters(self, room_id: int) -> Counters: ...

    @abc.abstractmethod
    def subscriber(self, on_event: EventHandler, on_control: ControlHandler) -> Subscriber: ...

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections (tests switch backends)."""

    async def aclose(self) -> None:  # noqa: B027 - optional hook
        """Release this event loop's connections."""


# --- In-process pieces shared by the embedded backend and tests ------------------------------


class LocalRateLimiter:
    """The same GCRA as the Redis script, in one process's memory (thread-safe)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._tat: dict[str, float] = {}  # theoretical arrival time per key
        self._until: dict[str, float] = {}

    def take(self, key: str, *, per_minute: int, burst: int) -> float:
        refusal = self.take_all([Bucket(key, per_minute, burst)])
        return refusal.wait if refusal is not None else 0.0

    def take_all(self, buckets: Sequence[Bucket], hold: tuple[str, float] | None = None) -> Refusal | None:
        """`Backend.limits_take` in memory: `hold` is (key, seconds)."""
        with self._lock:
            now = self._clock()
            tats = []
            for index, bucket in enumerate(buckets):
                interval = 60.0 / max(1, bucket.per_minute)
                tat = max(self._tat.get(bucket.key, now), now)
                allow_at = tat - interval * max(0, bucket.burst - 1)
                if now < allow_at:
                    return Refusal(index, allow_at - now)
                tats.append(tat + interval)
            if hold is not None:
                until = self._until.get(hold[0], 0.0)
                if until > now:
                    return Refusal(len(buckets), until - now)
            for bucket, tat in zip(buckets, tats, strict=True):
                self._tat[bucket.key] = tat
            if hold is not None:
                self._until[hold[0]] = now + hold[1]
            if len(self._tat) > 100_000:  # forget keys whose buckets are full again
                self._tat = {k: v for k, v in self._tat.items() if v > now}
            if len(self._until) > 100_000:
                self._until = {k: v for k, v in self._until.items() if v > now}
            return None


def new_process_id() -> str:
    """Names this web process in presence reports."""
    return f"{socket.gethostname()}:{os.getpid()}:{os.urandom(3).hex()}"


# --- The process's backend ----------------------------------------------------------------------

_lock = threading.Lock()
_backend: Backend | None = None


def get_backend() -> Backend:
    global _backend
    if _backend is None:
        with _lock:
            if _backend is None:
                _backend = _build()
    return _backend


def _build() -> Backend:
    if settings.REALTIME_BACKEND == "redis":
        from rooms.realtime.redis_backend import RedisBackend

        if settings.REDIS_CLUSTER_URL:
            from rooms.realtime.redis_cluster import RedisClusterBackend

            return RedisClusterBackend(
                url=settings.REDIS_CLUSTER_URL,
                prefix=settings.LIVESHOP_REDIS_PREFIX,
                max_connections=settings.REDIS_MAX_CONNECTIONS,
            )
        return RedisBackend(
            url=settings.REDIS_URL,
            prefix=settings.LIVESHOP_REDIS_PREFIX,
            max_connections=settings.REDIS_MAX_CONNECTIONS,
        )
    from rooms.realtime.db_backend import DatabaseBackend

    return DatabaseBackend()


def reset_backend() -> None:
    """Forget the process's backend (tests change settings between runs)."""
    global _backend
    with _lock:
        if _backend is not None:
            _backend.close()
        _backend = None
