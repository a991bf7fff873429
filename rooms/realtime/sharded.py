"""Rooms sharded over several Redis instances (REALTIME_REDIS_URLS).

Each room lives wholly on one shard, chosen by a stable hash of its id: its seq,
history, pub/sub channel, presence, counters and slow-mode keys. So every operation of
one room is one shard's, exactly as with a single Redis, and the per-room atomic steps
(the publish script) keep working. Operations over several rooms (viewer counts for a
list, the hub's seq check, presence reports) are split by shard and merged. A web
process subscribes on every shard it serves a room of, and to the control channel of
every shard; a control message for a room goes out on that room's shard.

Changing the list of shards moves rooms: a moved room starts on its new shard with no
counter, so its next publish reserves a new block of seqs (rooms/realtime/redis_backend.py,
SEQ_BLOCK) and its sockets resync from a fresh snapshot, as after a Redis restart.
"""

from __future__ import annotations

import asyncio
import zlib
from collections.abc import Mapping, Sequence
from typing import Any

from liveshop.ratelimit import Bucket
from rooms.realtime.backend import (
    Backend,
    ControlHandler,
    Counters,
    CountersCheckpoint,
    EventHandler,
    Hold,
    PresenceResult,
    RecentJoiners,
    Refusal,
    Subscriber,
)
from rooms.realtime.events import EncodedEvent, Event
from rooms.realtime.redis_backend import RedisBackend


def shard_index(key: str | int, shards: int) -> int:
    """The shard of a room id (or any key): CRC32, the same in every process and release."""
    return zlib.crc32(str(key).encode()) % shards


class ShardedBackend(Backend):
    def __init__(self, shards: Sequence[RedisBackend]) -> None:
        if not shards:
            raise ValueError("no shards")
        self.shards = list(shards)

    def shard(self, room_id: int) -> RedisBackend:
        return self.shards[shard_index(room_id, len(self.shards))]

    def _by_shard(self, room_ids: Sequence[int]) -> dict[int, list[int]]:
        groups: dict[int, list[int]] = {}
        for room_id in room_ids:
            groups.setdefault(shard_index(room_id, len(self.shards)), []).append(room_id)
        return groups

    # --- publishing and limits ------------------------------------------------------------

    def publish(self, room_id: int, event: EncodedEvent) -> int:
        return self.shard(room_id).publish(room_id, event)

    def control(self, room_id: int, message: dict[str, Any]) -> None:
        self.shard(room_id).control(room_id, message)

    def rate_limit(self, key: str, *, per_minute: int, burst: int) -> float:
        return self.shards[shard_index(key, len(self.shards))].rate_limit(key, per_minute=per_minute, burst=burst)

    # A comment's limits go to its room's shard in one script: per user and per address
    # they then count per shard, not across all of them.
    def limits_take(self, room_id: int, buckets: Sequence[Bucket], hold: Hold | None = None) -> Refusal | None:
        return self.shard(room_id).limits_take(room_id, buckets, hold)

    async def alimits_take(self, room_id: int, buckets: Sequence[Bucket], hold: Hold | None = None) -> Refusal | None:
        return await self.shard(room_id).alimits_take(room_id, buckets, hold)

    # --- reads ----------------------------------------------------------------------------

    def viewers_now(self, room_ids: list[int]) -> dict[int, int]:
        merged: dict[int, int] = {}
        for index, rooms in self._by_shard(room_ids).items():
            merged.update(self.shards[index].viewers_now(rooms))
        return merged

    def counters(self, room_id: int) -> Counters:
        return self.shard(room_id).counters(room_id)

    def counters_checkpoint(self, room_ids: list[int]) -> dict[int, CountersCheckpoint]:
        merged: dict[int, CountersCheckpoint] = {}
        for index, rooms in self._by_shard(room_ids).items():
            merged.update(self.shards[index].counters_checkpoint(rooms))
        return merged

    # --- the event loop -------------------------------------------------------------------

    async def acurrent_seq(self, room_id: int) -> int:
        return await self.shard(room_id).acurrent_seq(room_id)

    async def acurrent_seqs(self, room_ids: list[int]) -> dict[int, int]:
        groups = self._by_shard(room_ids)
        results = await asyncio.gather(*(self.shards[i].acurrent_seqs(rooms) for i, rooms in groups.items()))
        return {room_id: seq for result in results for room_id, seq in result.items()}

    async def aensure_seq(self, room_id: int) -> int:
        return await self.shard(room_id).aensure_seq(room_id)

    async def arestore_seq(self, room_id: int, seen: int) -> int:
        return await self.shard(room_id).arestore_seq(room_id, seen)

    async def areplay(self, room_id: int, after: int, upto: int) -> list[Event] | None:
        return await self.shard(room_id).areplay(room_id, after, upto)

    async def aview(self, room_id: int, visitor: str) -> None:
        await self.shard(room_id).aview(room_id, visitor)

    async def ajoin(self, room_id: int, visitor: str) -> tuple[int, Counters]:
        return await self.shard(room_id).ajoin(room_id, visitor)

    async def alikes_add(self, room_id: int, count: int) -> None:
        await self.shard(room_id).alikes_add(room_id, count)

    async def alike_total_slot(self, room_id: int, interval_ms: int) -> int | None:
        return await self.shard(room_id).alike_total_slot(room_id, interval_ms)

    async def apresence(
        self,
        process_id: str,
        counts: dict[int, int],
        ttl_s: int,
        joined: Mapping[int, RecentJoiners] | None = None,
    ) -> dict[int, PresenceResult]:
        groups = self._by_shard(list(counts))
        results = await asyncio.gather(
            *(
                self.shards[i].apresence(
                    process_id,
                    {room_id: counts[room_id] for room_id in rooms},
                    ttl_s,
                    {room_id: joined[room_id] for room_id in rooms if room_id in joined} if joined else None,
                )
                for i, rooms in groups.items()
            )
        )
        return {room_id: result for merged in results for room_id, result in merged.items()}

    async def acounters(self, room_id: int) -> Counters:
        return await self.shard(room_id).acounters(room_id)

    def subscriber(self, on_event: EventHandler, on_control: ControlHandler) -> Subscriber:
        return ShardedSubscriber(self, [shard.subscriber(on_event, on_control) for shard in self.shards])

    def close(self) -> None:
        for shard in self.shards:
            shard.close()

    async def aclose(self) -> None:
        for shard in self.shards:
            await shard.aclose()


class ShardedSubscriber(Subscriber):
    """One subscription per shard: each carries its shard's control channel and the rooms
    of this process that live there."""

    def __init__(self, backend: ShardedBackend, subscribers: list[Subscriber]) -> None:
        self.backend = backend
        self.subscribers = subscribers

    async def start(self) -> None:
        started: list[Subscriber] = []
        try:
            for subscriber in self.subscribers:
                await subscriber.start()
                started.append(subscriber)
        except BaseException:
            for subscriber in started:
                await subscriber.stop()
            raise

    async def stop(self) -> None:
        for subscriber in self.subscribers:
            await subscriber.stop()

    def _of(self, room_id: int) -> Subscriber:
        return self.subscribers[shard_index(room_id, len(self.subscribers))]

    async def subscribe(self, room_id: int) -> None:
        await self._of(room_id).subscribe(room_id)

    async def unsubscribe(self, room_id: int) -> None:
        await self._of(room_id).unsubscribe(room_id)
