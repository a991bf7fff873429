"""The one place Redis clients are made, and the one place keys get their prefix.

Pools are blocking: a connect storm of thousands of sockets waits for a free connection
instead of failing (redis-py's default pools raise when full: measured here to break
under 5,000 connects). Every key and pub/sub channel starts with LIVESHOP_REDIS_PREFIX,
because pub/sub ignores the /N database index and deployments or test runs may share one
Redis.

`redis_sync()` and `redis_async()` are None when REDIS_URL is unset (the embedded
default): callers then fall back to the database, which is the truth anyway.
"""

from __future__ import annotations

import asyncio
import functools
import weakref
from urllib.parse import urlsplit

import redis
import redis.asyncio
import redis.asyncio.cluster
import redis.asyncio.retry
import redis.cluster
import redis.retry
from django.conf import settings
from redis.backoff import ExponentialBackoff

POOL_TIMEOUT_S = 10

# What a call raises while Redis is down or restarting (a refused connect, a dropped
# connection, a pool with no connection to give): callers answer "try again shortly"
# (HTTP 503 with Retry-After, WebSocket close 1013) instead of failing as a bug would.
# On a Redis Cluster, also what a call raises while a failover or a slot's move is under
# way (no master for the slot yet, keys of a script split between two nodes).
REDIS_UNAVAILABLE: tuple[type[Exception], ...] = (
    redis.exceptions.ConnectionError,
    redis.exceptions.TimeoutError,
    redis.exceptions.ClusterDownError,
    redis.exceptions.TryAgainError,
    redis.exceptions.SlotNotCoveredError,
    redis.exceptions.MasterDownError,
)
REDIS_RETRY_AFTER_S = 2


def redis_key(*parts: object) -> str:
    """`<prefix>:part:part`: every key liveshop writes is made here or in the realtime backend."""
    return ":".join([settings.LIVESHOP_REDIS_PREFIX, *map(str, parts)])


# After a Redis restart every connection idle in a pool is dead, and the asyncio pool
# hands one out without noticing. One retry, on a new connection, after a connection
# error (only: a timeout may have run the command); if Redis is still down, the retry's
# connect is refused at once and the caller gets REDIS_UNAVAILABLE.
def _retry() -> redis.retry.Retry:
    return redis.retry.Retry(ExponentialBackoff(cap=0.2, base=0.05), 1, supported_errors=(redis.ConnectionError,))


def _async_retry() -> redis.asyncio.retry.Retry:
    return redis.asyncio.retry.Retry(
        ExponentialBackoff(cap=0.2, base=0.05), 1, supported_errors=(redis.ConnectionError,)
    )


def new_sync_client(url: str, *, max_connections: int) -> redis.Redis:
    return redis.Redis(
        connection_pool=redis.BlockingConnectionPool.from_url(
            url,
            max_connections=max_connections,
            timeout=POOL_TIMEOUT_S,
            socket_timeout=5,
            socket_connect_timeout=2,
            health_check_interval=30,
            retry=_retry(),
        )
    )


def new_async_client(url: str, *, max_connections: int) -> redis.asyncio.Redis:
    return redis.asyncio.Redis(
        connection_pool=redis.asyncio.BlockingConnectionPool.from_url(
            url,
            max_connections=max_connections,
            timeout=POOL_TIMEOUT_S,
            socket_connect_timeout=2,
            retry=_async_retry(),
        )
    )


def cluster_startup_nodes(urls: str) -> list[tuple[str, int]]:
    """REDIS_CLUSTER_URL's nodes: `redis://host:port` (the first one's user, password and
    TLS go for all), comma-separated. Any few of the cluster's nodes will do: the client
    learns the rest, and who serves which slot, from them."""
    nodes = []
    for url in urls.split(","):
        parts = urlsplit(url.strip())
        nodes.append((parts.hostname or "127.0.0.1", parts.port or 6379))
    return nodes


def new_sync_cluster(urls: str, *, max_connections: int) -> redis.cluster.RedisCluster:
    first = urls.split(",")[0].strip()
    return redis.cluster.RedisCluster.from_url(
        first,
        startup_nodes=[redis.cluster.ClusterNode(host, port) for host, port in cluster_startup_nodes(urls)],
        max_connections=max_connections,
        socket_timeout=5,
        socket_connect_timeout=2,
    )


def new_async_cluster(urls: str, *, max_connections: int) -> redis.asyncio.cluster.RedisCluster:
    first = urls.split(",")[0].strip()
    return redis.asyncio.cluster.RedisCluster.from_url(
        first,
        startup_nodes=[redis.asyncio.cluster.ClusterNode(host, port) for host, port in cluster_startup_nodes(urls)],
        max_connections=max_connections,
        socket_connect_timeout=2,
    )


@functools.cache
def redis_sync() -> redis.Redis | None:
    if not settings.REDIS_URL:
        return None
    return new_sync_client(settings.REDIS_URL, max_connections=settings.REDIS_MAX_CONNECTIONS)


# redis.asyncio connections belong to the event loop that opened them: one client per loop
# (a server process has one; tests make many, and a finished loop's client goes with it).
_async_clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, redis.asyncio.Redis] = weakref.WeakKeyDictionary()


def redis_async() -> redis.asyncio.Redis | None:
    if not settings.REDIS_URL:
        return None
    loop = asyncio.get_running_loop()
    client = _async_clients.get(loop)
    if client is None:
        client = new_async_client(settings.REDIS_URL, max_connections=settings.REDIS_MAX_CONNECTIONS)
        _async_clients[loop] = client
    return client
