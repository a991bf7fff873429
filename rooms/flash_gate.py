"""The Redis gate in front of a flash sale's units.

Thousands of buyers click "buy" in the same second for a few hundred units. The gate, a
Lua script run atomically by Redis, counts the sale's remaining units and each buyer's
units against the per-buyer limit, and refuses sold-out and over-limit clicks at once,
so only about as many requests as there are units reach PostgreSQL. PostgreSQL stays
the truth: the winners hold their units there with conditional updates, a failed
database step gives the gate's units back, and the gate is loaded when a sale starts,
reloaded from the database if Redis lost it, and closed when the sale ends.

Keys of sale S (one hash tag, `{S}`: one slot of a Redis Cluster):
  flash:{S}          hash {remaining, limit (0 = none), active ("1" while on sale),
                     ends_at (unix ms: past it the pre-filter passes, the sweeper ends the sale)}
  flash:{S}:buyers   hash user id -> units admitted
  flash:{S}:keys     hash "<user id>:<Idempotency-Key>" -> units, the admitted requests, so
                     that a retry of one is never refused by the pre-filter
  flash:item:I       the active sale of shelf item I, for the order intake's pre-filter
The gates live with the rooms: on the Redis Cluster when REDIS_CLUSTER_URL is set (the
sales spread over its masters), else on REDIS_URL. Without Redis (REDIS_URL unset) the
gate admits everything and PostgreSQL decides.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

import redis
from django.conf import settings

from liveshop.redis_client import redis_async, redis_key, redis_sync

if TYPE_CHECKING:
    from rooms.realtime.redis_cluster import RedisClusterBackend

logger = logging.getLogger(__name__)

# Keys outlive any sale (at most a day) and vanish on their own afterwards.
KEY_TTL_S = 2 * 24 * 3600


def sale_key(sale_id: int) -> str:
    return redis_key("flash", f"{{{sale_id}}}")


def buyers_key(sale_id: int) -> str:
    return redis_key("flash", f"{{{sale_id}}}", "buyers")


def requests_key(sale_id: int) -> str:
    return redis_key("flash", f"{{{sale_id}}}", "keys")


def item_key(item_id: int) -> str:
    return redis_key("flash", "item", item_id)


def request_member(user_id: int, idempotency_key: str | None) -> str:
    return f"{user_id}:{idempotency_key}" if idempotency_key else ""


class Verdict(enum.StrEnum):
    ADMITTED = "ok"
    SOLD_OUT = "sold_out"
    LIMIT = "limit"
    ENDED = "ended"
    # The gate holds nothing for the sale (not loaded, or Redis lost it): let PostgreSQL decide.
    UNKNOWN = "unknown"
    # The pre-filter has no objection: go on to the full path.
    PASS = "pass"


ADMIT_SCRIPT = """
local remaining = redis.call('HGET', KEYS[1], 'remaining')
if not remaining then return 'unknown' end
if redis.call('HGET', KEYS[1], 'active') ~= '1' then return 'ended' end
local qty = tonumber(ARGV[2])
if tonumber(remaining) < qty then return 'sold_out' end
local limit = tonumber(redis.call('HGET', KEYS[1], 'limit') or '0')
if limit > 0 and tonumber(redis.call('HGET', KEYS[2], ARGV[1]) or '0') + qty > limit then
  return 'limit'
end
redis.call('HINCRBY', KEYS[1], 'remaining', -qty)
redis.call('HINCRBY', KEYS[2], ARGV[1], qty)
if ARGV[3] ~= '' then redis.call('HSET', KEYS[3], ARGV[3], qty) end
return 'ok'
"""

_GIVE_BACK = """
if redis.call('HGET', KEYS[1], 'active') == '1' then
  redis.call('HINCRBY', KEYS[1], 'remaining', ARGV[2])
end
local mine = tonumber(redis.call('HGET', KEYS[2], ARGV[1]) or '0') - tonumber(ARGV[2])
if mine > 0 then redis.call('HSET', KEYS[2], ARGV[1], mine) else redis.call('HDEL', KEYS[2], ARGV[1]) end
if ARGV[3] ~= '' then redis.call('HDEL', KEYS[3], ARGV[3]) end
return 1
"""

# Whether a click of `qty` units of one sale is certainly refused (read only): 'pass',
# 'sold_out' or 'limit'. A sale not loaded, not active or past its end passes, and so does
# a retry of a request the gate admitted (same user and Idempotency-Key).
_SALE_CHECK_FUNCTION = """
local function sale_check(sale, buyers, requests, user, idempotency_key, qty, now_ms)
  local remaining = redis.call('HGET', sale, 'remaining')
  local ends_at = tonumber(redis.call('HGET', sale, 'ends_at') or '0')
  if not remaining or redis.call('HGET', sale, 'active') ~= '1' or now_ms >= ends_at then
    return 'pass'
  end
  if idempotency_key ~= '' and redis.call('HEXISTS', requests, user .. ':' .. idempotency_key) == 1 then
    return 'pass'
  end
  if tonumber(remaining) < qty then return 'sold_out' end
  local limit = tonumber(redis.call('HGET', sale, 'limit') or '0')
  if limit > 0 and tonumber(redis.call('HGET', buyers, user) or '0') + qty > limit then
    return 'limit'
  end
  return 'pass'
end
local clock = redis.call('TIME')
local now_ms = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
"""

# The order intake's read-only pre-filter on one Redis: one round trip that resolves the
# token to a user, each shelf item to its active sale, and answers whether the click is
# certainly refused. KEYS = [token key, item key...]; ARGV = [the sale keys' prefix
# ("<prefix>:flash:"), Idempotency-Key or "", qty...]. It builds the sale's key names
# itself from the prefix (all on this Redis).
PREFILTER = (
    _SALE_CHECK_FUNCTION
    + """
local user = redis.call('GET', KEYS[1])
if not user then return {'pass', ''} end
for i = 2, #KEYS do
  local sale = redis.call('GET', KEYS[i])
  if sale then
    local base = ARGV[1] .. '{' .. sale .. '}'
    local verdict = sale_check(base, base .. ':buyers', base .. ':keys', user, ARGV[2], tonumber(ARGV[i + 1]), now_ms)
    if verdict ~= 'pass' then return {verdict, user, sale} end
  end
end
return {'pass', user}
"""
)

# The same check of one sale, in its slot (on a Redis Cluster, where the token, the items
# and the sales lie in different slots). KEYS = the sale's three keys; ARGV = [user id,
# Idempotency-Key or "", qty].
SALE_CHECK = (
    _SALE_CHECK_FUNCTION
    + """
return sale_check(KEYS[1], KEYS[2], KEYS[3], ARGV[1], ARGV[2], tonumber(ARGV[3]), now_ms)
"""
)

# Open a sale's gate (its keys only; the item is linked to it afterwards).
# KEYS = the sale's three keys; ARGV = [remaining, limit, ends_at, ttl, buyer, units, ...].
_LOAD = """
redis.call('DEL', KEYS[2])
redis.call('HSET', KEYS[1], 'remaining', ARGV[1], 'limit', ARGV[2], 'active', '1', 'ends_at', ARGV[3])
if #ARGV > 4 then redis.call('HSET', KEYS[2], unpack(ARGV, 5)) end
for i = 1, 3 do redis.call('EXPIRE', KEYS[i], ARGV[4]) end
return 1
"""


@dataclass(frozen=True)
class SaleState:
    sale_id: int
    item_id: int
    remaining: int
    per_buyer_limit: int | None
    ends_at: datetime
    # Units each buyer holds in the sale already (for a reload); empty at the start.
    buyers: dict[int, int]


# Unlink a shelf item from a sale, if it still points at this sale (a new one may have started).
_UNLINK = """
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end
return 1
"""

# Script objects keep the script's SHA1 and run EVALSHA (falling back to EVAL once).
_scripts: dict[tuple[int, str], Any] = {}


def _script(client: Any, source: str) -> Any:
    key = (id(client), source)
    script = _scripts.get(key)
    if script is None:
        script = _scripts[key] = client.register_script(source)
    return script


def _client() -> Any:
    """The gate's Redis: the rooms' cluster, or REDIS_URL's (None without Redis)."""
    cluster = _cluster()
    return cluster._sync if cluster is not None else redis_sync()


def _async_client() -> Any:
    cluster = _cluster()
    return cluster._aredis() if cluster is not None else redis_async()


def _cluster() -> RedisClusterBackend | None:
    if not settings.REDIS_CLUSTER_URL:
        return None
    from rooms.realtime.backend import get_backend
    from rooms.realtime.redis_cluster import RedisClusterBackend

    backend = get_backend()
    assert isinstance(backend, RedisClusterBackend)
    return backend


def gate_load(*, state: SaleState) -> None:
    """Open the gate for a sale (at its start, or again after Redis lost it)."""
    client = _client()
    if client is None:
        return
    try:
        _gate_load(client, state)
    except redis.RedisError:
        # Without its gate a sale still sells: PostgreSQL decides; the sweeper reloads it.
        logger.exception("could not open the flash gate of sale %s", state.sale_id)


def _gate_load(client: Any, state: SaleState) -> None:
    args: list[int] = [
        state.remaining,
        state.per_buyer_limit or 0,
        int(state.ends_at.timestamp() * 1000),
        KEY_TTL_S,
    ]
    for buyer, units in state.buyers.items():
        args += [buyer, units]
    _script(client, _LOAD)(keys=_sale_keys(state.sale_id), args=args)
    # Then the item points at the loaded sale (a click in between passes to PostgreSQL).
    client.set(item_key(state.item_id), state.sale_id, ex=KEY_TTL_S)


def _sale_keys(sale_id: int) -> list[str]:
    return [sale_key(sale_id), buyers_key(sale_id), requests_key(sale_id)]


def gate_is_loaded(*, sale_id: int) -> bool:
    client = _client()
    try:
        return client is None or bool(client.hexists(sale_key(sale_id), "remaining"))
    except redis.RedisError:
        return True  # nothing to reload into while Redis is away


def gate_remaining(*, sale_id: int) -> int | None:
    client = _client()
    if client is None:
        return None
    value = client.hget(sale_key(sale_id), "remaining")
    return int(value) if value is not None else None


def gate_close(*, sale_id: int, item_id: int) -> None:
    """Close the gate when the sale ends: later clicks go to the full path (normal price)."""
    client = _client()
    if client is None:
        return
    try:
        client.hset(sale_key(sale_id), "active", "0")
        _script(client, _UNLINK)(keys=[item_key(item_id)], args=[sale_id])
    except redis.RedisError:
        # Harmless: the pre-filter passes clicks on a sale it sees inactive or missing.
        logger.exception("could not close the gate of sale %s", sale_id)


def gate_admit(*, sale_id: int, buyer_id: int, quantity: int, idempotency_key: str | None) -> Verdict:
    """Take `quantity` units for a buyer at the gate, or say why not.

    UNKNOWN (gate not loaded, or Redis down) means "no opinion": PostgreSQL decides.
    """
    client = _client()
    if client is None:
        return Verdict.UNKNOWN
    try:
        result = _script(client, ADMIT_SCRIPT)(
            keys=_sale_keys(sale_id),
            args=[buyer_id, quantity, request_member(buyer_id, idempotency_key)],
        )
    except redis.RedisError:
        logger.exception("flash gate unavailable for sale %s; PostgreSQL decides alone", sale_id)
        return Verdict.UNKNOWN
    return Verdict(result.decode() if isinstance(result, bytes) else result)


def gate_give_back(*, sale_id: int, buyer_id: int, quantity: int, idempotency_key: str | None = None) -> None:
    """Return units to the gate: a failed database step, or an order that expired or was cancelled.

    Pass `idempotency_key` only to undo an admission that never became an order, so a
    retry of the request is judged afresh.
    """
    client = _client()
    if client is None:
        return
    try:
        _script(client, _GIVE_BACK)(
            keys=_sale_keys(sale_id),
            args=[buyer_id, quantity, request_member(buyer_id, idempotency_key)],
        )
    except redis.RedisError:
        # The gate then under-counts until the sale ends; PostgreSQL stays right.
        logger.exception("could not give %s units back to the gate of sale %s", quantity, sale_id)


async def gate_prefilter(
    *, token_key: str, item_ids: Sequence[int], quantities: Sequence[int], idempotency_key: str | None
) -> tuple[Verdict, int | None, int | None]:
    """Whether a click on these shelf items is certainly refused, without the database.

    Returns (verdict, user id or None when the token is not cached, sale id of a refusal).
    """
    client = _async_client()
    if client is None or not item_ids:
        return Verdict.PASS, None, None
    if _cluster() is not None:
        return await _prefilter_on_cluster(client, token_key, item_ids, quantities, idempotency_key)
    result = await _script(client, PREFILTER)(
        keys=[token_key, *(item_key(item_id) for item_id in item_ids)],
        args=[redis_key("flash", ""), idempotency_key or "", *quantities],
    )
    verdict = result[0].decode()
    user = int(result[1]) if result[1] else None
    sale = int(result[2]) if len(result) > 2 else None
    return Verdict(verdict), user, sale


async def _prefilter_on_cluster(
    cluster: Any, token_key: str, item_ids: Sequence[int], quantities: Sequence[int], idempotency_key: str | None
) -> tuple[Verdict, int | None, int | None]:
    """The pre-filter in steps: the token on REDIS_URL (with the other API tokens), the
    items' sales on the cluster, then each sale's check in its slot."""
    tokens = redis_async()
    user = await tokens.get(token_key) if tokens is not None else None
    if user is None:
        return Verdict.PASS, None, None
    user_id = int(user)
    sales = await cluster.mget_nonatomic([item_key(item_id) for item_id in item_ids])
    for sale, quantity in zip(sales, quantities, strict=True):
        if sale is None:
            continue
        verdict = await _script(cluster, SALE_CHECK)(
            keys=_sale_keys(int(sale)), args=[user_id, idempotency_key or "", quantity]
        )
        if verdict != b"pass":
            return Verdict(verdict.decode()), user_id, int(sale)
    return Verdict.PASS, user_id, None
