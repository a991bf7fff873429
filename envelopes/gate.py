"""The Redis gate in front of a red envelope's shares.

Ten thousand viewers tap one envelope of a hundred shares in the same second. One Lua
script, run atomically by Redis, hands out the next share index, one per user, and says
"all gone" to everyone after the last: the losers never reach PostgreSQL, which stays
the truth (envelopes/services.py claims the winner's share there with a conditional
update, and falls back to claiming any free share when the gate cannot be trusted).

Keys of envelope E (one hash tag, so the script stays valid on a Redis Cluster):
  redenv:{E}:next     shares handed out so far (absent: the gate is not set up)
  redenv:{E}:claimed  hash user id -> share index, so that a user asking again gets the same
Without Redis (REDIS_URL unset) there is no gate and PostgreSQL hands out every share.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Iterable
from typing import Any

import redis

from liveshop.redis_client import REDIS_UNAVAILABLE, redis_key, redis_sync

logger = logging.getLogger(__name__)

# Past any envelope's life (opening at most 10 minutes ahead, open RED_ENVELOPE_TTL_S).
KEY_TTL_S = 24 * 3600

# Not set up (Redis restarted, or the envelope predates it): ask PostgreSQL.
UNKNOWN = -2
# Every share is handed out.
EMPTY = -1

GRAB_SCRIPT = """
local mine = redis.call('HGET', KEYS[2], ARGV[1])
if mine then return tonumber(mine) end
if redis.call('EXISTS', KEYS[1]) == 0 then return -2 end
local n = redis.call('INCR', KEYS[1])
if n > tonumber(ARGV[2]) then return -1 end
redis.call('HSET', KEYS[2], ARGV[1], n - 1)
return n - 1
"""

# Set the gate up from what PostgreSQL knows (at the drop: nothing yet; after Redis lost it:
# the shares claimed so far), unless another process did it first.
SEED_SCRIPT = """
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'EX', ARGV[2]) then
  for i = 3, #ARGV, 2 do redis.call('HSET', KEYS[2], ARGV[i], ARGV[i + 1]) end
  redis.call('HSET', KEYS[2], '-', '-')
  redis.call('EXPIRE', KEYS[2], ARGV[2])
end
return 1
"""


@functools.cache
def _script(client: redis.Redis, source: str) -> Any:
    return client.register_script(source)


def _keys(envelope_id: int) -> list[str]:
    tag = f"redenv:{{{envelope_id}}}"
    return [redis_key(tag, "next"), redis_key(tag, "claimed")]


def gate_grab(*, envelope_id: int, user_id: int, shares: int) -> int:
    """The share index handed to the user (the same on every ask), EMPTY, or UNKNOWN
    (no gate: Redis lost it, or is unreachable, or absent)."""
    client = redis_sync()
    if client is None:
        return UNKNOWN
    try:
        return int(_script(client, GRAB_SCRIPT)(keys=_keys(envelope_id), args=[user_id, shares]))
    except REDIS_UNAVAILABLE as exc:
        logger.warning("red envelope %s: gate unavailable, PostgreSQL decides: %s", envelope_id, exc)
        return UNKNOWN


def gate_seed(*, envelope_id: int, handed_out: int, claimed: Iterable[tuple[int, int]]) -> None:
    """Set the gate up with `handed_out` shares given and the (user, index) claims known."""
    client = redis_sync()
    if client is None:
        return
    args: list[int] = [handed_out, KEY_TTL_S]
    for user_id, index in claimed:
        args += [user_id, index]
    try:
        _script(client, SEED_SCRIPT)(keys=_keys(envelope_id), args=args)
    except REDIS_UNAVAILABLE as exc:
        logger.warning("red envelope %s: gate not set up: %s", envelope_id, exc)
