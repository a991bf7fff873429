"""Stripe's rate limit, shared by every process that calls Stripe: a token bucket in Redis.

Stripe allows 100 requests a second per account in live mode and 25 a second per endpoint
by default (25 a second in test mode); past that it answers 429. A flash sale's winners
all want a PaymentIntent in the same second, so liveshop keeps its own writes under
`STRIPE_WRITE_RATE` a second, with bursts of a fifth of a second's worth: Stripe's own
bucket holds a second's worth, so what reaches it stays under its limit whatever the
network does to the spacing of the calls.

`stripe_write_slot()` reserves the next free write and says when it may be made: 0.0 for
now, else the seconds to wait (the caller then makes it at that time, without asking
again). Reservations queue up: the hundredth caller in a burst of 25-a-second writes is
told about three seconds, so nobody polls. With `reserve=False` it takes a write only if
one is free now, never jumping the queue, and reserves nothing otherwise (for a buyer's
page asking again and again). The bucket's clock is Redis's own (TIME), so every web
process and worker shares one.

Without Redis (`make run`'s embedded default: one process) the bucket is in memory; with
Redis down, writes go ahead (Stripe's own 429s are retried with backoff by the callers).
"""

from __future__ import annotations

import logging
import threading
import time

from django.conf import settings

from liveshop.redis_client import REDIS_UNAVAILABLE, redis_key, redis_sync

logger = logging.getLogger(__name__)

# KEYS[1]: the bucket {tokens, at}; ARGV: rate a second, burst, reserve (1 or 0). Spends a
# token, going below zero for a reservation; returns the seconds until the reserved one is
# due (as a string: Lua numbers become integers in replies), "0" for now. Without reserve,
# spends one only if one is free now, else returns the wait and spends nothing.
TAKE_LUA = """
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local clock = redis.call('TIME')
local now = tonumber(clock[1]) + tonumber(clock[2]) / 1000000
local state = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens = tonumber(state[1]) or burst
local at = tonumber(state[2]) or now
tokens = math.min(burst, tokens + math.max(0, now - at) * rate)
if ARGV[3] == '0' and tokens < 1 then
  return tostring((1 - tokens) / rate)
end
tokens = tokens - 1
local wait = 0
if tokens < 0 then
  wait = -tokens / rate
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'at', tostring(now))
redis.call('PEXPIRE', KEYS[1], math.ceil((burst - tokens) / rate * 1000) + 1000)
return tostring(wait)
"""


class _LocalBucket:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.tokens: float | None = None
        self.at = 0.0

    def take(self, rate: float, burst: float, *, reserve: bool) -> float:
        with self.lock:
            now = time.monotonic()
            tokens = burst if self.tokens is None else min(burst, self.tokens + (now - self.at) * rate)
            self.at = now
            self.tokens = tokens
            if not reserve and tokens < 1:
                return (1 - tokens) / rate
            self.tokens = tokens - 1
            return max(0.0, -self.tokens / rate)


_local = _LocalBucket()
_script = None


def stripe_write_slot(*, reserve: bool = True) -> float:
    """Reserve one write to Stripe: 0.0 to make it now, else the seconds to wait first (with
    `reserve=False`: a write now if one is free, else the wait and nothing reserved)."""
    rate = float(settings.STRIPE_WRITE_RATE)
    if rate <= 0:  # no limit
        return 0.0
    burst = max(1.0, rate / 5)
    client = redis_sync()
    if client is None:
        return _local.take(rate, burst, reserve=reserve)
    global _script
    if _script is None:
        _script = client.register_script(TAKE_LUA)
    try:
        return float(_script(keys=[redis_key("stripe", "writes")], args=[rate, burst, int(reserve)]))
    except REDIS_UNAVAILABLE:
        logger.warning("Redis unavailable: a Stripe write goes ahead without the shared limiter")
        return 0.0
