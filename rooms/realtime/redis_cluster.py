"""The real-time backend on a Redis Cluster (REDIS_CLUSTER_URL).

The same keys, scripts and guarantees as on one Redis (rooms/realtime/redis_backend.py):
every key of a room carries the hash tag `{<room id>}`, so a room lives wholly in one
hash slot and each of its scripts runs on one node, atomically. Its events travel on
*sharded* pub/sub (SPUBLISH/SSUBSCRIBE, Redis 7), whose channel `<prefix>:r{<id>}:ch`
is in the same slot, so a room's messages go through its own node instead of being
broadcast to every node as classic pub/sub is. Control messages (close a user's sockets,
new rules) concern only the processes serving the room: they ride the room's channel.

What the cluster adds, and how each is handled:
- Slots move (`redis-cli --cluster reshard`) and masters fail over to replicas. The
  clients follow (MOVED, TRYAGAIN and a refreshed slot map); a subscription on the old
  node ends (Redis sends `sunsubscribe`, or the connection drops) and is placed again on
  the slot's new node. Events published in between are in the room's history, which
  moved with the slot, and the hub's once-a-second seq check fills them in.
- A pipeline or script may only touch one slot, and a cluster's pipelines run no
  scripts: multi-room calls are split per node, and a comment's rate limits, whose
  buckets (per user, per address, the room's slow mode) lie in different slots, are
  taken slot by slot and given back when a later one refuses.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import weakref
from collections.abc import Iterable, Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import redis
import redis.asyncio as aioredis
from redis.crc import key_slot

from liveshop.ratelimit import Bucket
from liveshop.redis_client import REDIS_UNAVAILABLE, new_async_cluster, new_sync_cluster
from rooms.realtime.backend import (
    ControlHandler,
    EventHandler,
    Hold,
    PresenceResult,
    RecentJoiners,
    Refusal,
    Subscriber,
)
from rooms.realtime.events import EncodedEvent, dumps, parse_message
from rooms.realtime.redis_backend import LIMITS_LUA, PRESENCE_LUA, RedisBackend

logger = logging.getLogger(__name__)

# Tries to place a new subscription while the cluster changes (0.2 s, 0.4 s, ... apart).
SUBSCRIBE_ATTEMPTS = 5
# What placing a subscription raises while the cluster changes: MOVED (a stale slot map),
# or the node is down.
PLACING_FAILURES: tuple[type[Exception], ...] = (redis.ResponseError, *REDIS_UNAVAILABLE)

# Give back what LIMITS_LUA took from GCRA buckets: each theoretical arrival time goes
# back by its interval (ARGV[i]). Refusing slot by slot, a step refused after others took
# leaves every bucket as it found it (but for takes of others in between, which only
# ever see a bucket fuller than it would have been: stricter, never looser).
REFUND_LUA = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
for i = 1, #KEYS do
  local tat = tonumber(redis.call('GET', KEYS[i]) or '0')
  local back = tat - tonumber(ARGV[i])
  if back > now then
    redis.call('SET', KEYS[i], back, 'PX', back - now + 1)
  else
    redis.call('DEL', KEYS[i])
  end
end
"""


class RedisClusterBackend(RedisBackend):
    publish_command = "SPUBLISH"
    server_clock = False
    seq_fence = "1"

    def __init__(self, *, url: str, prefix: str, max_connections: int) -> None:
        super().__init__(url=url, prefix=prefix, max_connections=max_connections)
        self._refund = self._sync.register_script(REFUND_LUA)
        # Per event loop's client: (limits, refund, presence) scripts.
        self._async_scripts: weakref.WeakKeyDictionary[Any, tuple[Any, Any, Any]] = weakref.WeakKeyDictionary()

    def _scripts_of(self, client: Any) -> tuple[Any, Any, Any]:
        scripts = self._async_scripts.get(client)
        if scripts is None:
            scripts = self._async_scripts[client] = (
                client.register_script(LIMITS_LUA),
                client.register_script(REFUND_LUA),
                client.register_script(PRESENCE_LUA),
            )
        return scripts

    def _new_sync(self) -> Any:
        return new_sync_cluster(self.url, max_connections=self.max_connections)

    def _new_async(self) -> Any:
        return new_async_cluster(self.url, max_connections=self.max_connections)

    def room_channel(self, room_id: int) -> str:
        return self.room_key(room_id, "ch")

    def node_url(self, host: str, port: int) -> str:
        """A URL for one node, with REDIS_CLUSTER_URL's credentials and scheme."""
        parts = urlsplit(self.url.split(",")[0].strip())
        auth = parts.netloc.rpartition("@")[0]
        return urlunsplit((parts.scheme, f"{auth}@{host}:{port}" if auth else f"{host}:{port}", "", "", ""))

    # --- publishing ---------------------------------------------------------------------

    def publish_many(self, events: Sequence[tuple[int, EncodedEvent]]) -> list[int]:
        """One pipeline per node (a cluster's pipelines run no scripts; a node's own do).
        An event its node refused (the slot moved, Redis lost the room's counter) goes
        again alone, in order, through the cluster client, which follows the slot."""
        by_node: dict[str, tuple[Any, list[int]]] = {}
        for index, (room_id, _event) in enumerate(events):
            node = self._sync.get_node_from_key(self.room_key(room_id, "seq"))
            by_node.setdefault(node.name, (node, []))[1].append(index)
        seqs: list[Any] = [None] * len(events)
        for node, indexes in by_node.values():
            pipe = self._sync.get_redis_connection(node).pipeline(transaction=False)
            for index in indexes:
                keys, args = self._publish_call(*events[index])
                self._publish(keys=keys, args=args, client=pipe)
            try:
                results = pipe.execute(raise_on_error=False)
            except REDIS_UNAVAILABLE:
                results = [None] * len(indexes)
            for index, result in zip(indexes, results, strict=True):
                seqs[index] = result
        return [
            int(seq) if isinstance(seq, int) and seq > 0 else self.publish(room_id, event)
            for seq, (room_id, event) in zip(seqs, events, strict=True)
        ]

    def control(self, room_id: int, message: dict[str, Any]) -> None:
        self._sync.spublish(self.room_channel(room_id), dumps({**message, "room": room_id}))

    # --- rate limits, slot by slot ------------------------------------------------------

    def _limit_steps(
        self, room_id: int, buckets: Sequence[Bucket], hold: Hold | None
    ) -> list[tuple[list[int], list[str], list[int], list[int]]]:
        """LIMITS_LUA calls, one per slot in the buckets' order, the hold last: (bucket
        indexes, keys, args, intervals)."""
        steps: list[tuple[list[int], list[str], list[int], list[int]]] = []
        slots: dict[int, int] = {}
        for index, bucket in enumerate(buckets):
            key = f"{self.prefix}:rl:{bucket.key}"
            slot = key_slot(key.encode())
            if slot not in slots:
                slots[slot] = len(steps)
                steps.append(([], [], [0], []))
            indexes, keys, args, intervals = steps[slots[slot]]
            interval_ms = max(1, 60_000 // max(1, bucket.per_minute))
            indexes.append(index)
            keys.append(key)
            args[0] += 1
            args += [interval_ms, interval_ms * max(0, bucket.burst - 1)]
            intervals.append(interval_ms)
        for _indexes, _keys, args, _intervals in steps:
            args.append(0)
        if hold is not None:
            steps.append(([], [self.room_key(room_id, hold.name)], [0, hold.seconds * 1000], []))
        return steps

    def limits_take(self, room_id: int, buckets: Sequence[Bucket], hold: Hold | None = None) -> Refusal | None:
        taken: list[tuple[list[str], list[int]]] = []
        for indexes, keys, args, intervals in self._limit_steps(room_id, buckets, hold):
            refusal = self._refusal(self._limits(keys=keys, args=args))
            if refusal is not None:
                for done_keys, done_intervals in taken:
                    self._refund(keys=done_keys, args=done_intervals)
                return Refusal(indexes[refusal.index] if indexes else len(buckets), refusal.wait)
            taken.append((keys, intervals))
        return None

    async def alimits_take(self, room_id: int, buckets: Sequence[Bucket], hold: Hold | None = None) -> Refusal | None:
        limits, refund, _presence = self._scripts_of(self._aredis())
        taken: list[tuple[list[str], list[int]]] = []
        for indexes, keys, args, intervals in self._limit_steps(room_id, buckets, hold):
            refusal = self._refusal(await limits(keys=keys, args=args))
            if refusal is not None:
                for done_keys, done_intervals in taken:
                    await refund(keys=done_keys, args=done_intervals)
                return Refusal(indexes[refusal.index] if indexes else len(buckets), refusal.wait)
            taken.append((keys, intervals))
        return None

    # --- reads over several rooms --------------------------------------------------------

    async def acurrent_seqs(self, room_ids: list[int]) -> dict[int, int]:
        if not room_ids:
            return {}
        values = await self._aredis().mget_nonatomic([self.room_key(room_id, "seq") for room_id in room_ids])
        return {room_id: int(value or 0) for room_id, value in zip(room_ids, values, strict=True)}

    async def apresence(
        self,
        process_id: str,
        counts: dict[int, int],
        ttl_s: int,
        joined: Mapping[int, RecentJoiners] | None = None,
    ) -> dict[int, PresenceResult]:
        # One script per room, concurrently (each goes to its room's node).
        script = self._scripts_of(self._aredis())[2]
        rooms = list(counts)
        calls = [self._presence_call(room_id, process_id, counts[room_id], ttl_s, joined) for room_id in rooms]
        results = await asyncio.gather(*(script(keys=keys, args=args) for keys, args in calls))
        return self._presence_results(rooms, results)

    def subscriber(self, on_event: EventHandler, on_control: ControlHandler) -> Subscriber:
        return ClusterSubscriber(self, on_event, on_control)

    def close(self) -> None:
        self._sync.close()

    async def aclose(self) -> None:
        client = self._async.pop(asyncio.get_running_loop(), None)
        if client is not None:
            await client.aclose()


class ClusterSubscriber(Subscriber):
    """The web process's sharded subscriptions: one connection per node that serves a
    room of this process, each read by a task of its own.

    A subscription ends when its node stops serving the room's slot: the node says so
    (`sunsubscribe`, after a reshard) or its connection drops (it died; a replica takes
    over). The room is then placed again, on whichever node the refreshed slot map names,
    retried until one takes it. A room keeps being served in the meantime, late: the
    hub's seq check replays what pub/sub did not deliver from the room's history.
    """

    def __init__(self, backend: RedisClusterBackend, on_event: EventHandler, on_control: ControlHandler) -> None:
        self.backend = backend
        self.on_event = on_event
        self.on_control = on_control
        self._cluster: Any = None
        self._feeds: dict[str, _NodeFeed] = {}
        self._node_of: dict[int, str] = {}  # room -> the node its subscription is on
        self._lock = asyncio.Lock()
        self._lost: dict[int, float] = {}  # room -> when its subscription ended
        self._rerouting: asyncio.Task[None] | None = None
        self._stopping = False

    async def start(self) -> None:
        self._cluster = self.backend._aredis()
        await self._cluster.initialize()

    async def stop(self) -> None:
        self._stopping = True
        if self._rerouting is not None:
            self._rerouting.cancel()
            await asyncio.wait({self._rerouting}, timeout=5)
        for feed in list(self._feeds.values()):
            await feed.close()
        self._feeds.clear()

    async def subscribe(self, room_id: int) -> None:
        """Placed on the node serving the room's slot. While the cluster changes (this
        process's slot map is stale: MOVED; a master is down), the map is refreshed and
        the placing retried for a few seconds, then REDIS_UNAVAILABLE (the socket is told
        to come back shortly)."""
        async with self._lock:
            for attempt in range(SUBSCRIBE_ATTEMPTS):
                try:
                    await self._place(room_id)
                    return
                except PLACING_FAILURES as exc:
                    failure: Exception = exc
                if attempt + 1 < SUBSCRIBE_ATTEMPTS:
                    await asyncio.sleep(0.2 * (attempt + 1))
                    await self._refresh()
        raise redis.ConnectionError(f"room {room_id}: no node took its subscription ({failure})")

    async def _refresh(self) -> None:
        """Learn again which node serves which slot (after a failover or a move)."""
        try:
            await self._cluster.nodes_manager.initialize()
        except Exception as exc:  # noqa: BLE001 - the cluster is changing: the caller retries
            logger.info("room subscriber: slot map not refreshed yet (%s)", exc)

    async def unsubscribe(self, room_id: int) -> None:
        async with self._lock:
            self._lost.pop(room_id, None)
            feed = self._feeds.get(self._node_of.pop(room_id, ""))
            if feed is not None:
                await feed.sunsubscribe(self.backend.room_channel(room_id))

    async def _place(self, room_id: int) -> None:
        """Subscribe to the room on the node serving its slot now (under the lock)."""
        channel = self.backend.room_channel(room_id)
        node = self._cluster.get_node_from_key(channel)
        feed = self._feeds.get(node.name)
        if feed is None or feed.dead:
            feed = self._feeds[node.name] = _NodeFeed(self, node.name, self.backend.node_url(node.host, node.port))
        await feed.ssubscribe(channel, room_id)
        old = self._node_of.get(room_id)
        self._node_of[room_id] = node.name
        if old is not None and old != node.name and old in self._feeds:
            await self._feeds[old].sunsubscribe(channel)

    def feed_lost(self, feed: _NodeFeed, room_ids: Iterable[int]) -> None:
        """`feed` no longer carries these rooms: place them again."""
        now = time.monotonic()
        for room_id in room_ids:
            if self._node_of.get(room_id) == feed.name:
                self._lost.setdefault(room_id, now)
        if feed.dead and self._feeds.get(feed.name) is feed:
            del self._feeds[feed.name]
        if self._lost and (self._rerouting is None or self._rerouting.done()) and not self._stopping:
            self._rerouting = asyncio.get_running_loop().create_task(self._reroute(), name="liveshop-room-reroute")

    async def _reroute(self) -> None:
        delay = 0.1
        while self._lost and not self._stopping:
            await self._refresh()  # who serves which slot now (a failover or a move just happened)
            async with self._lock:
                for room_id, since in list(self._lost.items()):
                    try:
                        await self._place(room_id)
                    except Exception as exc:  # noqa: BLE001 - no node takes it yet: retried
                        logger.info("room subscriber: room %s not placed yet (%s)", room_id, exc)
                        continue
                    del self._lost[room_id]
                    logger.warning(
                        "room subscriber: room %s subscribed again on %s after %.2f s",
                        room_id,
                        self._node_of[room_id],
                        time.monotonic() - since,
                    )
            if self._lost:
                await asyncio.sleep(delay)
                delay = min(1.0, delay * 2)

    def deliver(self, room_id: int, data: bytes) -> None:
        try:
            if data[:1] == b"{":  # a control message (an event starts with its seq)
                body = json.loads(data)
                self.on_control(int(body.pop("room")), body)
            else:
                self.on_event(room_id, parse_message(data))
        except Exception:
            logger.exception("room subscriber: could not handle a message of room %s", room_id)


class _NodeFeed:
    """Sharded subscriptions on one node, over one connection read by one task. Once the
    connection fails it is dead for good: its rooms go back to the subscriber, which
    places them anew (a fresh feed if the node is back and still serves them)."""

    def __init__(self, owner: ClusterSubscriber, name: str, url: str) -> None:
        self.owner = owner
        self.name = name
        self.client = aioredis.Redis.from_url(url, health_check_interval=15, socket_connect_timeout=2)
        self.pubsub: Any = self.client.pubsub()
        self.rooms: dict[bytes, int] = {}
        self.dead = False
        self._reader: asyncio.Task[None] | None = None
        self._waiting: tuple[bytes, asyncio.Future[None]] | None = None
        self._leaving: set[bytes] = set()
        self._lock = asyncio.Lock()

    async def ssubscribe(self, channel: str, room_id: int) -> None:
        """Return once the node confirmed; raise if it refused (MOVED: not its slot) or
        cannot be reached."""
        name = channel.encode()
        async with self._lock:
            if self.dead:
                raise redis.ConnectionError(f"{self.name}: connection lost")
            waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._waiting = (name, waiter)
            self._leaving.discard(name)
            try:
                await self.pubsub.ssubscribe(name)
                if self._reader is None:
                    # The first subscription: read its answer here, then start the reader.
                    while not waiter.done():
                        await self._read_one(timeout=5.0)
                    self._reader = asyncio.get_running_loop().create_task(self._read(), name=f"feed-{self.name}")
                await asyncio.wait_for(waiter, timeout=10)
            except BaseException:
                self._waiting = None
                if self._reader is None:
                    await self.close()
                raise
            self.rooms[name] = room_id

    async def sunsubscribe(self, channel: str) -> None:
        name = channel.encode()
        if self.rooms.pop(name, None) is None or self.dead:
            return  # not subscribed here (any more: the node dropped it when its slot moved)
        self._leaving.add(name)
        try:
            async with self._lock:
                await self.pubsub.sunsubscribe(name)
        except REDIS_UNAVAILABLE:
            pass  # the node is gone: nothing to leave
        if not self.rooms and self._reader is not None and not self.dead:
            await self.close()

    async def close(self) -> None:
        self.dead = True
        if self._reader is not None and self._reader is not asyncio.current_task():
            self._reader.cancel()
            await asyncio.wait({self._reader}, timeout=5)
        try:
            await self.pubsub.aclose()
            await self.client.aclose()
        except Exception:
            logger.debug("room subscriber: closing the feed of %s", self.name, exc_info=True)

    async def _read(self) -> None:
        while not self.dead:
            try:
                await self._read_one(timeout=1.0)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - the node died or was cut off
                logger.warning(
                    "room subscriber: lost %s (%s); placing its %d rooms again", self.name, exc, len(self.rooms)
                )
                self.dead = True
                rooms = list(self.rooms.values())
                self.rooms.clear()
                if self._waiting is not None and not self._waiting[1].done():
                    self._waiting[1].set_exception(redis.ConnectionError(str(exc)))
                self.owner.feed_lost(self, rooms)
                await self.close()
                return

    async def _read_one(self, timeout: float) -> None:
        try:
            message = await self.pubsub.get_message(timeout=timeout)
        except redis.ResponseError as exc:
            # The answer to the pending SSUBSCRIBE (one at a time): MOVED, not this node's
            # slot. Any other is an answer to a command, not a broken connection.
            if self._waiting is not None and not self._waiting[1].done():
                self._waiting[1].set_exception(exc)
            else:
                logger.warning("room subscriber: %s answered %s", self.name, exc)
            return
        if message is None:
            return
        kind, channel = message["type"], message["channel"]
        if kind == "smessage":
            room_id = self.rooms.get(channel)
            if room_id is not None:
                self.owner.deliver(room_id, message["data"])
        elif kind == "ssubscribe":
            if self._waiting is not None and self._waiting[0] == channel and not self._waiting[1].done():
                self._waiting[1].set_result(None)
        elif kind == "sunsubscribe":
            if channel in self._leaving:
                self._leaving.discard(channel)
            elif channel in self.rooms:
                # Not asked for: the node no longer serves the slot (moved by a reshard).
                self.owner.feed_lost(self, [self.rooms.pop(channel)])
