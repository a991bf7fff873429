"""The real-time backend on Redis: any number of web processes serve the same rooms.

Every key and channel starts with LIVESHOP_REDIS_PREFIX (pub/sub ignores the /N database
index, so a prefix is the only thing that keeps two deployments or test runs sharing a
Redis apart). A room's keys share a hash tag, `{<room id>}`, so its scripts stay valid
on a Redis Cluster (rooms/realtime/redis_cluster.py).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import weakref
from collections.abc import Mapping, Sequence
from typing import Any

import redis.asyncio as aioredis
from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connections

from liveshop.ratelimit import Bucket
from liveshop.redis_client import new_async_client, new_sync_client
from rooms.models import RoomSequence
from rooms.realtime.backend import (
    JOINED_KEPT,
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
    joined_sample,
)
from rooms.realtime.events import EncodedEvent, Event, dumps, parse_header, parse_message

logger = logging.getLogger(__name__)

# Keys of a room (besides seq, history and marks) live this long after their last write:
# long past any show, short enough that Redis does not fill with old rooms.
ROOM_KEY_TTL_S = 7 * 24 * 3600

# A room's seqs are handed out from Redis within a ceiling reserved in PostgreSQL
# (`RoomSequence.last_seq`, raised SEQ_BLOCK at a time): no seq above it is ever issued.
# A Redis that restarts empty (or evicts the counter) has no counter or no ceiling; the
# publish then returns -1, the caller reserves the next block, and the counter restarts
# at that block's floor, above every seq given before. So a seq never goes backwards or
# repeats; after such a restart it jumps, and `?since=` from before the jump finds no
# history and gets a fresh snapshot.
SEQ_BLOCK = 10_000

# On a Redis Cluster a master's replica takes over when it dies, and replication is
# asynchronous: the replica may lack the last seqs the master gave, and would give them
# again to other events. So, with the fence on ("1"), a room's seq records the
# replication ID of the node that gave it (KEYS `seq-owner`); a node that finds there
# the ID it had before its promotion (`master_replid2`) gives no seq until a new block is
# reserved, whose floor is above every seq given before. A slot moved by a reshard
# (MIGRATE: nothing lost) finds another node's ID and just takes the room over.
# `seq_fenced(fence, owner key, ttl, take over)` says whether the room's counter must
# jump; `take over` records this node as the owner even then (the reservation does).
SEQ_FENCE_FUNCTION = """
local function seq_fenced(fence, owner_key, ttl, take_over)
  if fence ~= '1' then return false end
  local info = redis.call('INFO', 'replication')
  local me = string.match(info, 'master_replid:(%x+)')
  local owner = redis.call('GET', owner_key)
  if owner == me then return false end
  local fenced = owner ~= false and owner == string.match(info, 'master_replid2:(%x+)')
  if not fenced or take_over then redis.call('SET', owner_key, me, 'EX', ttl) end
  return fenced
end
"""


# Set a reserved block: the counter starts at `floor` only if Redis has none (otherwise
# it is already past every earlier block), or if it is below ARGV[4], a seq a hub has
# already seen (a Redis restored from an older snapshot: its counter went back). Several
# hubs that notice the same loss at once move the counter once: the first one lifts it
# past what the others saw. The ceiling only rises.
# Returns the seq and whether the counter was missing (Redis lost the room's keys).
SEQ_RESERVE_LUA = (
    SEQ_FENCE_FUNCTION
    + """
local fenced = seq_fenced(ARGV[5], KEYS[3], ARGV[3], true)
local current = tonumber(redis.call('GET', KEYS[1]) or '-1')
if current < 0 or current < tonumber(ARGV[4]) or fenced then
  redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[3])
end
local ceiling = tonumber(redis.call('GET', KEYS[2]) or '-1')
if tonumber(ARGV[2]) > ceiling then
  redis.call('SET', KEYS[2], ARGV[2], 'EX', ARGV[3])
end
return {tonumber(redis.call('GET', KEYS[1])), current < 0 and 1 or 0}
"""
)

# Add a room's checkpointed counters (RoomSequence) back to a Redis that lost them: views
# and likes on top of what came in since, the peak if higher, the unique visitors merged
# as HyperLogLogs. KEYS: views, likes, peak, visitors, a scratch key.
COUNTERS_RESTORE_LUA = """
redis.call('INCRBY', KEYS[1], ARGV[1])
redis.call('INCRBY', KEYS[2], ARGV[2])
if tonumber(ARGV[3]) > tonumber(redis.call('GET', KEYS[3]) or '0') then
  redis.call('SET', KEYS[3], ARGV[3])
end
if ARGV[4] ~= '' then
  redis.call('SET', KEYS[5], ARGV[4])
  redis.call('PFMERGE', KEYS[4], KEYS[4], KEYS[5])
  redis.call('DEL', KEYS[5])
end
for i = 1, 4 do redis.call('EXPIRE', KEYS[i], ARGV[5]) end
"""

# Publish one event: seq, history, retention and the pub/sub message, in one atomic step,
# so the order messages reach subscribers is the seq order. -1 (nothing published) when
# the room's reserved seqs are used up or lost (see SEQ_BLOCK).
#
# Retention keeps an event while it is younger than min_age OR among the last min_events.
# The stream's IDs are "<seq>-0", so trimming by count is trimming below seq-min_events+1.
# For age, a list of marks "<time bucket>:<first seq published in it>" says which seqs
# were all published before a moment: every seq below a mark's seq is older than the
# mark's bucket start. Both bounds are prefixes of the stream; the shorter one is trimmed.
# Buckets are a sixtieth of the minimum age (10 s for 10 minutes), at least a second.
PUBLISH_LUA = (
    SEQ_FENCE_FUNCTION
    + """
local fenced = seq_fenced(ARGV[10], KEYS[5], ARGV[7], false)
local current = tonumber(redis.call('GET', KEYS[1]) or '-1')
if fenced or current < 0 or current >= tonumber(redis.call('GET', KEYS[4]) or '-1') then
  return -1
end
local seq = redis.call('INCR', KEYS[1])
local frame = ARGV[2] .. seq .. ARGV[3]
redis.call('XADD', KEYS[2], seq .. '-0', 'h', ARGV[4], 'f', frame)
local t = redis.call('TIME')
local now_ms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local bucket_ms = tonumber(ARGV[8])
local bucket = math.floor(now_ms / bucket_ms)
local last = redis.call('LINDEX', KEYS[3], -1)
if not last or tonumber(string.match(last, '^(%d+)')) < bucket then
  redis.call('RPUSH', KEYS[3], bucket .. ':' .. seq)
end
local cutoff = now_ms - tonumber(ARGV[6])
while true do
  local second = redis.call('LINDEX', KEYS[3], 1)
  if not second or tonumber(string.match(second, '^(%d+)')) * bucket_ms > cutoff then break end
  redis.call('LPOP', KEYS[3])
end
local b0, s0 = string.match(redis.call('LINDEX', KEYS[3], 0), '^(%d+):(%d+)$')
if tonumber(b0) * bucket_ms <= cutoff then
  local keep_from = math.min(tonumber(s0), seq - tonumber(ARGV[5]) + 1)
  if keep_from > 1 then
    redis.call('XTRIM', KEYS[2], 'MINID', '~', keep_from .. '-0')
  end
end
if seq % 32 == 1 then
  for i = 1, 4 do redis.call('EXPIRE', KEYS[i], ARGV[7]) end
end
redis.call(ARGV[9], ARGV[1], seq .. ' ' .. ARGV[4] .. '\\n' .. frame)
return seq
"""
)

# A process reports its open sockets in a room; the total sums the reports that have not
# expired (a dead process stops reporting and drops out after the TTL). The peak is a
# max; the figures are published when they changed, at most once per interval per room.
#
# With the report come the process's signed-in joiners since its last one (ARGV[8...],
# "<user id>:<name>", oldest first) and how many others it no longer names (ARGV[6]):
# the room keeps the newest ARGV[7] names of all processes in a capped list and counts
# the rest. Pending joiners are news: the next report that gets the interval's slot
# publishes, and takes them (read and deleted here, so no two publishes name them).
# Returns {total, peak, views, publish, names taken, count taken}.
PRESENCE_LUA = """
local t = redis.call('TIME')
local now_ms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2] .. ':' .. (now_ms + tonumber(ARGV[3])))
local total = 0
local reports = redis.call('HGETALL', KEYS[1])
for i = 1, #reports, 2 do
  local count, expires = string.match(reports[i + 1], '^(%d+):(%d+)$')
  if tonumber(expires) < now_ms then
    redis.call('HDEL', KEYS[1], reports[i])
  else
    total = total + tonumber(count)
  end
end
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[3]) * 4)
local more = tonumber(ARGV[6])
if #ARGV > 7 then
  local length = redis.call('RPUSH', KEYS[6], unpack(ARGV, 8))
  local kept = tonumber(ARGV[7])
  if length > kept then
    redis.call('LTRIM', KEYS[6], -kept, -1)
    more = more + length - kept
  end
  redis.call('PEXPIRE', KEYS[6], tonumber(ARGV[3]) * 4)
end
if more > 0 then
  redis.call('INCRBY', KEYS[7], more)
  redis.call('PEXPIRE', KEYS[7], tonumber(ARGV[3]) * 4)
end
local peak = tonumber(redis.call('GET', KEYS[2]) or '0')
if total > peak then
  peak = total
  redis.call('SET', KEYS[2], peak, 'EX', ARGV[5])
end
local views = tonumber(redis.call('GET', KEYS[3]) or '0')
local state = total .. ':' .. peak .. ':' .. views
local publish = 0
local joined = {}
local joined_more = 0
local pending = redis.call('EXISTS', KEYS[6], KEYS[7]) > 0
if (pending or redis.call('GET', KEYS[4]) ~= state) and redis.call('SET', KEYS[5], '1', 'NX', 'PX', ARGV[4]) then
  redis.call('SET', KEYS[4], state, 'EX', ARGV[5])
  publish = 1
  if pending then
    joined = redis.call('LRANGE', KEYS[6], 0, -1)
    joined_more = tonumber(redis.call('GET', KEYS[7]) or '0')
    redis.call('DEL', KEYS[6], KEYS[7])
  end
end
return {total, peak, views, publish, joined, joined_more}
"""

# GCRA (the generic cell rate algorithm): one key per bucket holding the theoretical
# arrival time; allows `burst` at once, then one per interval. Returns ms to wait, or 0.
RATE_LIMIT_LUA = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local interval = tonumber(ARGV[1])
local tolerance = tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then tat = now end
local allow_at = tat - tolerance
if now < allow_at then return allow_at - now end
local new_tat = tat + interval
redis.call('SET', KEYS[1], new_tat, 'PX', new_tat - now + 1)
return 0
"""

# All or nothing (Backend.limits_take): KEYS are the GCRA buckets, then the hold's key;
# ARGV[1] the number of buckets, then (interval ms, tolerance ms) per bucket, then the
# hold's ms (0: none). Returns {0, 0} after taking from all, else {refusing index
# (1-based; buckets + 1 is the hold), wait in ms} having taken nothing.
LIMITS_LUA = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local n = tonumber(ARGV[1])
local tats = {}
for i = 1, n do
  local interval = tonumber(ARGV[2 * i])
  local tat = tonumber(redis.call('GET', KEYS[i]) or now)
  if tat < now then tat = now end
  local allow_at = tat - tonumber(ARGV[2 * i + 1])
  if now < allow_at then return {i, allow_at - now} end
  tats[i] = tat + interval
end
local hold = tonumber(ARGV[2 * n + 2])
if hold > 0 then
  local left = redis.call('PTTL', KEYS[n + 1])
  if left > 0 then return {n + 1, left} end
end
for i = 1, n do redis.call('SET', KEYS[i], tats[i], 'PX', tats[i] - now + 1) end
if hold > 0 then redis.call('SET', KEYS[n + 1], 1, 'PX', hold) end
return {0, 0}
"""


class RedisBackend(Backend):
    # PUBLISH_LUA's command: a single Redis's pub/sub; a cluster's is sharded (SPUBLISH).
    publish_command = "PUBLISH"
    # Presence and counters read the time from Redis (the clock the scripts stamp with);
    # a cluster's pipelines cannot run TIME, and read this process's clock.
    server_clock = True
    # SEQ_FENCE_LUA: on where a replica may take over from a master ("1"), off ("0") on
    # a single Redis (a restart empties it: the counter is missing, not behind).
    seq_fence = "0"

    def __init__(self, *, url: str, prefix: str, max_connections: int) -> None:
        self.url = url
        self.prefix = prefix
        self.max_connections = max_connections
        self._sync: Any = self._new_sync()
        self._publish = self._sync.register_script(PUBLISH_LUA)
        self._seq_reserve = self._sync.register_script(SEQ_RESERVE_LUA)
        self._counters_restore = self._sync.register_script(COUNTERS_RESTORE_LUA)
        self._rate_limit = self._sync.register_script(RATE_LIMIT_LUA)
        self._limits = self._sync.register_script(LIMITS_LUA)
        # redis.asyncio connections belong to the event loop that made them.
        self._async: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, aioredis.Redis] = weakref.WeakKeyDictionary()
        self._async_limits: weakref.WeakKeyDictionary[aioredis.Redis, Any] = weakref.WeakKeyDictionary()

    def _new_sync(self) -> Any:
        # Blocking pools (liveshop.redis_client): a connect storm waits for a connection.
        return new_sync_client(self.url, max_connections=self.max_connections)

    def _new_async(self) -> Any:
        return new_async_client(self.url, max_connections=self.max_connections)

    # --- keys ---------------------------------------------------------------------------

    def room_key(self, room_id: int, name: str) -> str:
        return f"{self.prefix}:r{{{room_id}}}:{name}"

    def room_channel(self, room_id: int) -> str:
        return f"{self.prefix}:room:{room_id}"

    @property
    def control_channel(self) -> str:
        return f"{self.prefix}:ctl"

    def _aredis(self) -> Any:
        loop = asyncio.get_running_loop()
        client = self._async.get(loop)
        if client is None:
            client = self._new_async()
            self._async[loop] = client
        return client

    def _clock(self, pipe: Any) -> None:
        if self.server_clock:
            pipe.time()

    def _now_ms(self, results: list[Any]) -> tuple[int, list[Any]]:
        """The time `_clock` asked for, and the pipeline's other results."""
        if self.server_clock:
            (now_s, now_us), *rest = results
            return now_s * 1000 + now_us // 1000, rest
        return int(time.time() * 1000), results

    # --- publishing ---------------------------------------------------------------------

    def _publish_call(self, room_id: int, event: EncodedEvent) -> tuple[list[str], list[str | int]]:
        keys = [
            self.room_key(room_id, "seq"),
            self.room_key(room_id, "history"),
            self.room_key(room_id, "marks"),
            self.room_key(room_id, "seq-ceiling"),
            self.room_key(room_id, "seq-owner"),
        ]
        args: list[str | int] = [
            self.room_channel(room_id),
            event.prefix,
            event.suffix,
            event.header,
            settings.ROOM_REPLAY_MIN_EVENTS,
            settings.ROOM_REPLAY_MIN_AGE_S * 1000,
            ROOM_KEY_TTL_S,
            max(1000, settings.ROOM_REPLAY_MIN_AGE_S * 1000 // 60),
            self.publish_command,
            self.seq_fence,
        ]
        return keys, args

    def publish(self, room_id: int, event: EncodedEvent) -> int:
        keys, args = self._publish_call(room_id, event)
        for _attempt in range(3):
            seq = int(self._publish(keys=keys, args=args))
            if seq > 0:
                return seq
            self.seq_reserve(room_id)
        raise RuntimeError(f"room {room_id}: no seq after reserving a block")

    def publish_many(self, events: Sequence[tuple[int, EncodedEvent]]) -> list[int]:
        pipe = self._sync.pipeline(transaction=False)
        for room_id, event in events:
            keys, args = self._publish_call(room_id, event)
            self._publish(keys=keys, args=args, client=pipe)
        seqs = [int(seq) for seq in pipe.execute()]
        # A room whose counter is gone (Redis restarted) refused all of its events (the
        # script creates no counter): they go again one by one, in order, reserving a block.
        return [
            seq if seq > 0 else self.publish(room_id, event) for seq, (room_id, event) in zip(seqs, events, strict=True)
        ]

    def seq_reserve(self, room_id: int, *, seen: int = 0) -> int:
        """Reserve the room's next SEQ_BLOCK seqs in the database, then let Redis use them.
        Returns the room's seq now: the block's floor when Redis had lost the counter or
        its counter is below `seen`, a seq already given (it went back). Any thread, in or
        out of a transaction."""
        ceiling, saved = room_seq_block_reserve(room_id=room_id, block=SEQ_BLOCK)
        keys = [self.room_key(room_id, name) for name in ("seq", "seq-ceiling", "seq-owner")]
        args = [ceiling - SEQ_BLOCK, ceiling, ROOM_KEY_TTL_S, seen, self.seq_fence]
        seq, lost = self._seq_reserve(keys=keys, args=args)
        if lost and saved is not None:  # exactly one caller sees the counter missing
            self.counters_restore(room_id, saved)
        return int(seq)

    def counters_restore(self, room_id: int, saved: CountersCheckpoint) -> None:
        """Add a checkpoint of the room's counters back to Redis, which lost them."""
        keys = [self.room_key(room_id, name) for name in ("views", "likes", "peak", "visitors", "visitors-restore")]
        args: list[bytes | int] = [saved.views, saved.likes, saved.peak, saved.visitors or b"", ROOM_KEY_TTL_S]
        self._counters_restore(keys=keys, args=args)

    def counters_checkpoint(self, room_ids: list[int]) -> dict[int, CountersCheckpoint]:
        pipe = self._sync.pipeline(transaction=False)
        for room_id in room_ids:
            pipe.exists(self.room_key(room_id, "seq"))
            self._counter_reads(pipe, room_id)
            pipe.get(self.room_key(room_id, "visitors"))
        results = pipe.execute()
        width = len(results) // len(room_ids) if room_ids else 0
        saved: dict[int, CountersCheckpoint] = {}
        for i, room_id in enumerate(room_ids):
            row = results[i * width : (i + 1) * width]
            if not row[0]:
                continue  # no seq: Redis lost the room and has not added it back yet
            counters = self._counters_from(row[1:-1])
            saved[room_id] = CountersCheckpoint(
                views=counters.views, likes=counters.likes, peak=counters.peak, visitors=row[-1]
            )
        return saved

    def control(self, room_id: int, message: dict[str, Any]) -> None:
        self._sync.publish(self.control_channel, dumps({**message, "room": room_id}))

    # --- rate limits --------------------------------------------------------------------

    def rate_limit(self, key: str, *, per_minute: int, burst: int) -> float:
        interval_ms = max(1, 60_000 // max(1, per_minute))
        wait_ms = self._rate_limit(
            keys=[f"{self.prefix}:rl:{key}"], args=[interval_ms, interval_ms * max(0, burst - 1)]
        )
        return int(wait_ms) / 1000

    def _limits_call(self, room_id: int, buckets: Sequence[Bucket], hold: Hold | None) -> tuple[list[str], list[int]]:
        keys = [f"{self.prefix}:rl:{bucket.key}" for bucket in buckets]
        args = [len(buckets)]
        for bucket in buckets:
            interval_ms = max(1, 60_000 // max(1, bucket.per_minute))
            args += [interval_ms, interval_ms * max(0, bucket.burst - 1)]
        keys.append(self.room_key(room_id, hold.name if hold else "no-hold"))
        args.append(hold.seconds * 1000 if hold else 0)
        return keys, args

    @staticmethod
    def _refusal(result: list[Any]) -> Refusal | None:
        index, wait_ms = int(result[0]), int(result[1])
        return Refusal(index - 1, max(1, wait_ms) / 1000) if index else None

    def limits_take(self, room_id: int, buckets: Sequence[Bucket], hold: Hold | None = None) -> Refusal | None:
        keys, args = self._limits_call(room_id, buckets, hold)
        return self._refusal(self._limits(keys=keys, args=args))

    async def alimits_take(self, room_id: int, buckets: Sequence[Bucket], hold: Hold | None = None) -> Refusal | None:
        keys, args = self._limits_call(room_id, buckets, hold)
        client = self._aredis()
        script = self._async_limits.get(client)
        if script is None:
            script = self._async_limits[client] = client.register_script(LIMITS_LUA)
        return self._refusal(await script(keys=keys, args=args))

    # --- reads for REST -----------------------------------------------------------------

    def viewers_now(self, room_ids: list[int]) -> dict[int, int]:
        if not room_ids:
            return {}
        pipe = self._sync.pipeline(transaction=False)
        self._clock(pipe)
        for room_id in room_ids:
            pipe.hgetall(self.room_key(room_id, "presence"))
        now_ms, reports = self._now_ms(pipe.execute())
        return {room_id: _presence_total(report, now_ms) for room_id, report in zip(room_ids, reports, strict=True)}

    def counters(self, room_id: int) -> Counters:
        pipe = self._sync.pipeline(transaction=False)
        self._counter_reads(pipe, room_id)
        return self._counters_from(pipe.execute())

    def _counter_reads(self, pipe: Any, room_id: int) -> None:
        self._clock(pipe)
        pipe.hgetall(self.room_key(room_id, "presence"))
        pipe.get(self.room_key(room_id, "peak"))
        pipe.get(self.room_key(room_id, "views"))
        # As a plain command: a cluster's pipelines refuse `pfcount()` (it may name keys
        # of several slots; this one names one).
        pipe.execute_command("PFCOUNT", self.room_key(room_id, "visitors"))
        pipe.get(self.room_key(room_id, "likes"))

    def _counters_from(self, results: list[Any]) -> Counters:
        now_ms, (reports, peak, views, unique, likes) = self._now_ms(results)
        now = _presence_total(reports, now_ms)
        return Counters(
            now=now,
            peak=max(now, int(peak or 0)),
            views=int(views or 0),
            unique=int(unique or 0),
            likes=int(likes or 0),
        )

    # --- the event loop -----------------------------------------------------------------

    async def acurrent_seq(self, room_id: int) -> int:
        return int(await self._aredis().get(self.room_key(room_id, "seq")) or 0)

    async def acurrent_seqs(self, room_ids: list[int]) -> dict[int, int]:
        if not room_ids:
            return {}
        values = await self._aredis().mget([self.room_key(room_id, "seq") for room_id in room_ids])
        return {room_id: int(value or 0) for room_id, value in zip(room_ids, values, strict=True)}

    async def aensure_seq(self, room_id: int) -> int:
        seq = await self._aredis().get(self.room_key(room_id, "seq"))
        if seq is not None:
            return int(seq)
        return int(await sync_to_async(self.seq_reserve, thread_sensitive=False)(room_id))

    async def arestore_seq(self, room_id: int, seen: int) -> int:
        return int(await sync_to_async(self.seq_reserve, thread_sensitive=False)(room_id, seen=seen))

    async def areplay(self, room_id: int, after: int, upto: int) -> list[Event] | None:
        if upto <= after:
            return []
        client = self._aredis()
        events: list[Event] = []
        start = f"{after + 1}-0"
        while True:
            chunk: Any = await client.xrange(self.room_key(room_id, "history"), min=start, max=f"{upto}-0", count=1000)
            for entry_id, fields in chunk:
                seq = int(entry_id.split(b"-")[0])
                expected = events[-1].seq + 1 if events else after + 1
                if seq != expected:
                    return None  # trimmed away: the client needs a fresh snapshot
                events.append(parse_header(f"{seq} {fields[b'h'].decode()}", fields[b"f"].decode()))
            if len(chunk) < 1000:
                break
            start = f"({chunk[-1][0].decode()}"
        return events if events and events[-1].seq == upto else None

    async def aview(self, room_id: int, visitor: str) -> None:
        pipe = self._aredis().pipeline(transaction=False)
        pipe.incr(self.room_key(room_id, "views"))
        pipe.expire(self.room_key(room_id, "views"), ROOM_KEY_TTL_S)
        pipe.pfadd(self.room_key(room_id, "visitors"), visitor)
        pipe.expire(self.room_key(room_id, "visitors"), ROOM_KEY_TTL_S)
        await pipe.execute()

    async def ajoin(self, room_id: int, visitor: str) -> tuple[int, Counters]:
        pipe = self._aredis().pipeline(transaction=False)
        pipe.incr(self.room_key(room_id, "views"))
        pipe.expire(self.room_key(room_id, "views"), ROOM_KEY_TTL_S)
        pipe.pfadd(self.room_key(room_id, "visitors"), visitor)
        pipe.expire(self.room_key(room_id, "visitors"), ROOM_KEY_TTL_S)
        pipe.get(self.room_key(room_id, "seq"))
        self._counter_reads(pipe, room_id)
        results = await pipe.execute()
        # No counter: Redis restarted empty; set it up above every seq given before, so
        # the snapshot this join sends is not numbered below what clients already hold.
        seq = int(results[4]) if results[4] is not None else await self.aensure_seq(room_id)
        return seq, self._counters_from(results[5:])

    async def alikes_add(self, room_id: int, count: int) -> None:
        pipe = self._aredis().pipeline(transaction=False)
        pipe.incrby(self.room_key(room_id, "likes"), count)
        pipe.expire(self.room_key(room_id, "likes"), ROOM_KEY_TTL_S)
        await pipe.execute()

    async def alike_total_slot(self, room_id: int, interval_ms: int) -> int | None:
        client = self._aredis()
        if not await client.set(self.room_key(room_id, "likes-published"), 1, nx=True, px=interval_ms):
            return None
        return int(await client.get(self.room_key(room_id, "likes")) or 0)

    async def apresence(
        self,
        process_id: str,
        counts: dict[int, int],
        ttl_s: int,
        joined: Mapping[int, RecentJoiners] | None = None,
    ) -> dict[int, PresenceResult]:
        client = self._aredis()
        script = client.register_script(PRESENCE_LUA)
        pipe = client.pipeline(transaction=False)
        rooms = list(counts)
        for room_id in rooms:
            keys, args = self._presence_call(room_id, process_id, counts[room_id], ttl_s, joined)
            await script(keys=keys, args=args, client=pipe)
        return self._presence_results(rooms, await pipe.execute())

    def _presence_call(
        self, room_id: int, process_id: str, count: int, ttl_s: int, joined: Mapping[int, RecentJoiners] | None
    ) -> tuple[list[str], list[str | int]]:
        names = ("presence", "peak", "views", "viewers-last", "viewers-pub", "joined", "joined-more")
        keys = [self.room_key(room_id, name) for name in names]
        args: list[str | int] = [process_id, count, ttl_s * 1000, 1000, ROOM_KEY_TTL_S, 0, JOINED_KEPT]
        joiners = joined.get(room_id) if joined else None
        if joiners:
            args[5] = joiners.more
            args.extend(f"{user_id}:{name}" for user_id, name in joiners.names.items())
        return keys, args

    @staticmethod
    def _presence_results(rooms: list[int], results: list[Any]) -> dict[int, PresenceResult]:
        presence: dict[int, PresenceResult] = {}
        for room_id, r in zip(rooms, results, strict=True):
            listed, more = joined_sample(_joiner_entries(r[4]), int(r[5])) if r[4] or r[5] else ((), 0)
            presence[room_id] = PresenceResult(
                now=int(r[0]), peak=int(r[1]), views=int(r[2]), publish=bool(r[3]), joined=listed, joined_more=more
            )
        return presence

    async def acounters(self, room_id: int) -> Counters:
        pipe = self._aredis().pipeline(transaction=False)
        self._counter_reads(pipe, room_id)
        return self._counters_from(await pipe.execute())

    def subscriber(self, on_event: EventHandler, on_control: ControlHandler) -> Subscriber:
        return RedisSubscriber(self, on_event, on_control)

    def close(self) -> None:
        self._sync.close()
        self._sync.connection_pool.disconnect()

    async def aclose(self) -> None:
        client = self._async.pop(asyncio.get_running_loop(), None)
        if client is not None:
            await client.aclose(close_connection_pool=True)


def room_seq_block_reserve(*, room_id: int, block: int) -> tuple[int, CountersCheckpoint | None]:
    """Raise the room's durable seq high-water mark by `block` and return it: the seqs
    above the old mark, up to the new one, are the caller's to hand out. With it, the
    room's last checkpoint of its counters, if one was taken.

    One statement on a connection of its own, committed at once: a reservation must
    never roll back with the caller's transaction while Redis hands out its seqs.
    """
    table = RoomSequence._meta.db_table
    own = connections.create_connection(DEFAULT_DB_ALIAS)
    try:
        with own.cursor() as cursor:
            cursor.execute(
                f"INSERT INTO {table} (room_id, last_seq) VALUES (%s, %s) "
                f"ON CONFLICT (room_id) DO UPDATE SET last_seq = {table}.last_seq + EXCLUDED.last_seq "
                "RETURNING last_seq, counted_at, views, likes, peak_viewers, visitors",
                [room_id, block],
            )
            row = cursor.fetchone()
    finally:
        own.close()
    assert row is not None
    last_seq, counted_at, views, likes, peak, visitors = row
    saved = None
    if counted_at is not None:
        saved = CountersCheckpoint(
            views=views, likes=likes, peak=peak, visitors=bytes(visitors) if visitors is not None else None
        )
    return int(last_seq), saved


def _joiner_entries(entries: list[bytes]) -> list[tuple[int, str]]:
    """The joiners PRESENCE_LUA took, "<user id>:<name>", as (id, name)."""
    parsed = []
    for entry in entries:
        user_id, _, name = entry.decode().partition(":")
        parsed.append((int(user_id), name))
    return parsed


def _presence_total(reports: dict[bytes, bytes], now_ms: int) -> int:
    total = 0
    for value in reports.values():
        count, _, expires = value.partition(b":")
        if int(expires) >= now_ms:
            total += int(count)
    return total


class RedisSubscriber(Subscriber):
    """One pub/sub connection per web process for all the rooms it serves.

    The reader hands every message to the hub in arrival order (pub/sub keeps the
    publish order, which the publish script makes the seq order). A subscription is
    confirmed before `subscribe` returns, so a consumer that reads the room's seq
    afterwards misses nothing published later. If the connection drops, redis-py
    reconnects and resubscribes; the hub notices the seq gap and fills it from history.
    """

    def __init__(self, backend: RedisBackend, on_event: EventHandler, on_control: ControlHandler) -> None:
        self.backend = backend
        self.on_event = on_event
        self.on_control = on_control
        self._client: aioredis.Redis | None = None
        self._pubsub: Any = None
        self._reader: asyncio.Task[None] | None = None
        # Set by stop(): the reader ends on it even if its cancel was swallowed (see Hub).
        self._stopping = False
        self._confirmations: dict[bytes, asyncio.Future[None]] = {}
        self._lock = asyncio.Lock()
        self._room_of: dict[bytes, int] = {}

    async def start(self) -> None:
        # A client of its own: a pub/sub connection is held for good, outside any pool use.
        self._client = aioredis.Redis.from_url(self.backend.url, health_check_interval=15)
        self._pubsub = self._client.pubsub()
        await self._subscribe(self.backend.control_channel.encode())
        self._reader = asyncio.get_running_loop().create_task(self._read(), name="liveshop-room-subscriber")

    async def stop(self) -> None:
        self._stopping = True
        if self._reader is not None:
            self._reader.cancel()
            # Bounded: a read whose cancel was swallowed ends at its next check of the flag.
            await asyncio.wait({self._reader}, timeout=5)
            self._reader = None
        if self._pubsub is not None:
            await self._pubsub.aclose()
        if self._client is not None:
            await self._client.aclose()

    async def subscribe(self, room_id: int) -> None:
        channel = self.backend.room_channel(room_id).encode()
        self._room_of[channel] = room_id
        await self._subscribe(channel)

    async def _subscribe(self, channel: bytes) -> None:
        async with self._lock:
            waiter = asyncio.get_running_loop().create_future()
            self._confirmations[channel] = waiter
            await self._pubsub.subscribe(channel)
            if self._reader is None:
                # Before the reader runs (at start), read the confirmation here.
                while not waiter.done():
                    await self._handle(await self._pubsub.get_message(timeout=5.0))
        await asyncio.wait_for(waiter, timeout=10)

    async def unsubscribe(self, room_id: int) -> None:
        channel = self.backend.room_channel(room_id).encode()
        async with self._lock:
            await self._pubsub.unsubscribe(channel)
        self._room_of.pop(channel, None)

    async def _read(self) -> None:
        failing_since: float | None = None
        while not self._stopping:
            try:
                message = await self._pubsub.get_message(timeout=1.0)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - logged once per outage, retried
                # Redis is down or restarting. Each read retries the connection; once it is
                # back, redis-py subscribes again to every channel (PubSub.on_connect) and
                # the hub fills or resyncs what was missed.
                if failing_since is None:
                    failing_since = time.monotonic()
                    logger.warning("room subscriber: Redis read failed (%s); retrying", exc)
                await asyncio.sleep(0.5)
                continue
            if failing_since is not None:
                logger.warning("room subscriber: Redis back after %.1f s", time.monotonic() - failing_since)
                failing_since = None
            await self._handle(message)

    async def _handle(self, message: dict[str, Any] | None) -> None:
        if message is None:
            return
        kind = message["type"]
        channel = message["channel"]
        if kind == "message":
            room_id = self._room_of.get(channel)
            try:
                if room_id is not None:
                    self.on_event(room_id, parse_message(message["data"]))
                elif channel == self.backend.control_channel.encode():
                    body = json.loads(message["data"])
                    self.on_control(int(body.pop("room")), body)
            except Exception:
                logger.exception("room subscriber: could not handle a message on %r", channel)
        elif kind == "subscribe":
            waiter = self._confirmations.pop(channel, None)
            if waiter is not None and not waiter.done():
                waiter.set_result(None)
