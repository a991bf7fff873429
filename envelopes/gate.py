"""The Redis gate in front of a red envelope's shares.

Ten thousand viewers tap one envelope of a hundred shares in the same second. One Lua
script, run atomically by Redis, hands out the next share index, one per user, and says
"all gone" to everyone after the last: the losers never reach PostgreSQL, which stays
the truth (envelopes/services.py claims the winner's share there with a conditional
update, and falls back to claiming any free share when the gate cannot be trusted).

Keys of envelope E (one hash tag, so the script stays valid on a Redis Cluster):
  redenv:{E}:next     shares handed out so far (absent: the gate is not set up)
  redenv:{E}:claimed  hash user id -> share index, so that a user asking again gets the
                      same; and the envelope's facts for the grab intake (envelopes/
                      intake.py): #shares, #sender, #opens and #expires (unix ms),
                      #followers (1: followers only)
Without Redis (REDIS_URL unset) there is no gate and PostgreSQL hands out every share.
"""

from __future__ import annotations

import functools
import logging
import weakref
from collections.abc import Iterable
from typing import Any

import redis

from liveshop.redis_client import REDIS_UNAVAILABLE, redis_async, redis_key, redis_sync

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
# the shares claimed so far), unless another process did it first. ARGV: handed out, TTL,
# then field/value pairs (the facts, then user/index claims).
SEED_SCRIPT = """
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'EX', ARGV[2]) then
  for i = 3, #ARGV, 2 do redis.call('HSET', KEYS[2], ARGV[i], ARGV[i + 1]) end
  redis.call('EXPIRE', KEYS[2], ARGV[2])
end
return 1
"""

# The grab intake's step of the gate: for a tap Django would judge only by the gate (a
# known token, not the sender, not a followers-only envelope, within its opening hours),
# the gate's own step, here: the user's share index is handed out now ('pass': Django
# claims it, finding the index in `claimed`) or every share is gone ('empty', answered
# here). Any other tap: 'pass', untouched. KEYS = [token key, next, claimed].
INTAKE_SCRIPT = """
local user = redis.call('GET', KEYS[1])
if not user then return 'pass' end
local facts = redis.call('HMGET', KEYS[3], '#shares', '#sender', '#opens', '#expires', '#followers', user)
if not facts[1] or facts[6] or facts[2] == user or facts[5] == '1' then return 'pass' end
local clock = redis.call('TIME')
local now_ms = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
if now_ms < tonumber(facts[3]) or now_ms >= tonumber(facts[4]) then return 'pass' end
if redis.call('EXISTS', KEYS[2]) == 0 then return 'pass' end
local n = redis.call('INCR', KEYS[2])
if n > tonumber(facts[1]) then return 'empty' end
redis.call('HSET', KEYS[3], user, n - 1)
return 'pass'
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


def gate_seed(*, envelope_id: int, facts: dict[str, int], handed_out: int, claimed: Iterable[tuple[int, int]]) -> None:
    """Set the gate up with the envelope's `facts` (shares, sender, opens and expires in
    unix ms, followers), `handed_out` shares given and the (user, index) claims known."""
    client = redis_sync()
    if client is None:
        return
    args: list[int | str] = [handed_out, KEY_TTL_S]
    for name, value in facts.items():
        args += [f"#{name}", value]
    for user_id, index in claimed:
        args += [user_id, index]
    try:
        _script(client, SEED_SCRIPT)(keys=_keys(envelope_id), args=args)
    except REDIS_UNAVAILABLE as exc:
        logger.warning("red envelope %s: gate not set up: %s", envelope_id, exc)


async def gate_intake(*, token_key: str, envelope_id: int) -> str:
    """The grab intake's step of the gate: 'empty' (answer `red_envelope_empty`) or 'pass'
    (on to Django, the user's share index handed out already where the gate decides)."""
    client = redis_async()
    if client is None:
        return "pass"
    script = _async_scripts.get(client)
    if script is None:
        script = _async_scripts[client] = client.register_script(INTAKE_SCRIPT)
    verdict = await script(keys=[token_key, *_keys(envelope_id)])
    return verdict.decode() if isinstance(verdict, bytes) else str(verdict)


_async_scripts: weakref.WeakKeyDictionary[Any, Any] = weakref.WeakKeyDictionary()
