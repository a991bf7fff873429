"""Process-wide Redis clients for fast, disposable state (gates, markers, caches).

None when REDIS_URL is unset (the embedded default): callers then fall back to the
database, which is the truth anyway.
"""

from __future__ import annotations

import asyncio
import functools
from typing import Any

import redis
import redis.asyncio
from django.conf import settings


@functools.cache
def redis_sync() -> redis.Redis | None:
    if not settings.REDIS_URL:
        return None
    return redis.Redis.from_url(
        settings.REDIS_URL,
        max_connections=settings.REDIS_MAX_CONNECTIONS,
        socket_timeout=5,
        socket_connect_timeout=2,
        health_check_interval=30,
    )


# redis.asyncio connections belong to the event loop that opened them: one client per
# loop (a server process has one; tests make many, hence the identity check).
_async_clients: dict[int, tuple[asyncio.AbstractEventLoop, Any]] = {}


def redis_async() -> redis.asyncio.Redis | None:
    if not settings.REDIS_URL:
        return None
    loop = asyncio.get_running_loop()
    known = _async_clients.get(id(loop))
    if known is not None and known[0] is loop:
        client: redis.asyncio.Redis = known[1]
        return client
    client = redis.asyncio.Redis.from_url(
        settings.REDIS_URL,
        max_connections=settings.REDIS_MAX_CONNECTIONS,
        socket_timeout=5,
        socket_connect_timeout=2,
    )
    _async_clients[id(loop)] = (loop, client)
    return client
