"""API token authentication, with a Redis mirror of who each token belongs to.

`TokenAuthentication` is DRF's (the database decides), and it also records
token -> user id in Redis after each success, so that code in front of Django can tell
who a token belongs to without the database: the order intake (orders/intake.py) uses
it to refuse sold-out flash-sale clicks in one Redis round trip. That code may only
*refuse* with this knowledge, never grant anything: every request that does something
is authenticated again here, against the database. A revoked token is dropped from
Redis at once; one deleted behind the services' back (the admin) lingers at most
TOKEN_CACHE_TTL_S, and can then only earn its bearer a refusal.
"""

from __future__ import annotations

import hashlib
import logging
import time
from typing import Any

import redis
from rest_framework import authentication

from liveshop.redis_client import redis_key, redis_sync

logger = logging.getLogger(__name__)

TOKEN_CACHE_TTL_S = 3600
# Tokens this process wrote recently, to write each at most every few minutes.
_written: dict[str, float] = {}
_REWRITE_AFTER_S = 300


def token_cache_key(key: str) -> str:
    """Redis key for a token: its hash, never the token itself."""
    return redis_key("authtoken", hashlib.sha256(key.encode()).hexdigest()[:40])


def token_cache_set(*, key: str, user_id: int) -> None:
    client = redis_sync()
    if client is None:
        return
    now = time.monotonic()
    if _written.get(key, 0) > now - _REWRITE_AFTER_S:
        return
    try:
        client.set(token_cache_key(key), user_id, ex=TOKEN_CACHE_TTL_S)
    except redis.RedisError:
        logger.warning("could not record a token in Redis", exc_info=True)
        return
    if len(_written) > 100_000:
        _written.clear()
    _written[key] = now


def token_cache_forget(*, key: str) -> None:
    _written.pop(key, None)
    client = redis_sync()
    if client is None:
        return
    try:
        client.delete(token_cache_key(key))
    except redis.RedisError:
        logger.warning("could not drop a token from Redis", exc_info=True)


class TokenAuthentication(authentication.TokenAuthentication):
    """DRF's token authentication, mirroring each authenticated token into Redis."""

    def authenticate_credentials(self, key: str) -> tuple[Any, Any]:
        user, token = super().authenticate_credentials(key)
        token_cache_set(key=key, user_id=user.pk)
        return user, token
