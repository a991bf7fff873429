"""API token authentication, with a Redis mirror of who each token belongs to.

Tokens are django-rest-knox's (liveshop.services makes and revokes them): the database
keeps a SHA-512 digest of each, never the token, with the time it expires. Clients send
`Authorization: Token <token>`, as they did with DRF's plain tokens.

`TokenAuthentication` is knox's (the database decides), and it also records
token -> user id in Redis after each success, so that code in front of Django can tell
who a token belongs to without the database: the order intake (orders/intake.py) uses
it to refuse sold-out flash-sale clicks in one Redis round trip. That code may only
*refuse* with this knowledge, never grant anything: every request that does something
is authenticated again here, against the database. The mirror never outlives the token
(its TTL is at most the token's remaining life). A revoked token is dropped from Redis
at once; one deleted behind the services' back (the admin) lingers at most
TOKEN_CACHE_TTL_S, and can then only earn its bearer a refusal.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Iterable
from datetime import datetime
from typing import Any

import redis
from django.utils import timezone
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.plumbing import build_bearer_security_scheme_object
from knox.auth import TokenAuthentication as KnoxTokenAuthentication
from knox.crypto import hash_token
from knox.models import AuthToken
from rest_framework import exceptions

from liveshop.redis_client import redis_key, redis_sync

logger = logging.getLogger(__name__)

TOKEN_CACHE_TTL_S = 3600
# Tokens this process wrote recently (by Redis key), to write each at most every few minutes.
_written: dict[str, float] = {}
_REWRITE_AFTER_S = 300
# What knox makes: 64 hexadecimal digits (AUTH_TOKEN_CHARACTER_LENGTH, no TOKEN_PREFIX).
# Anything else is refused before a query: an old 40-digit DRF token, or bytes that
# PostgreSQL could not even compare (a NUL).
_TOKEN_FORMAT = re.compile(r"[0-9a-f]{64}")


def _cache_key_of_digest(digest: str) -> str:
    return redis_key("apitoken", digest[:40])


def token_cache_key(key: str) -> str:
    """Redis key for a token: from its digest (the one the database keeps), never the
    token itself, so that the services can also drop tokens they only know by digest."""
    return _cache_key_of_digest(hash_token(key))


def token_cache_set(*, key: str, user_id: int, expiry: datetime | None = None) -> None:
    """Mirror token -> user in Redis, for at most TOKEN_CACHE_TTL_S and never past `expiry`."""
    client = redis_sync()
    if client is None:
        return
    ttl = TOKEN_CACHE_TTL_S
    if expiry is not None:
        ttl = min(ttl, int((expiry - timezone.now()).total_seconds()))
        if ttl < 1:
            return
    cache_key = token_cache_key(key)
    now = time.monotonic()
    if _written.get(cache_key, 0) > now - _REWRITE_AFTER_S:
        return
    try:
        client.set(cache_key, user_id, ex=ttl)
    except redis.RedisError:
        logger.warning("could not record a token in Redis", exc_info=True)
        return
    if len(_written) > 100_000:
        _written.clear()
    _written[cache_key] = now


def token_cache_forget(*, key: str) -> None:
    token_cache_forget_digests(digests=[hash_token(key)])


def token_cache_forget_digests(*, digests: Iterable[str]) -> None:
    cache_keys = [_cache_key_of_digest(digest) for digest in digests]
    for cache_key in cache_keys:
        _written.pop(cache_key, None)
    client = redis_sync()
    if client is None or not cache_keys:
        return
    try:
        client.delete(*cache_keys)
    except redis.RedisError:
        logger.warning("could not drop a token from Redis", exc_info=True)


class TokenAuthentication(KnoxTokenAuthentication):
    """knox's token authentication (`Authorization: Token <token>`), mirroring each
    authenticated token into Redis."""

    def authenticate_credentials(self, token: bytes) -> tuple[Any, Any]:
        # knox decodes the header as UTF-8 unguarded: other bytes would be a 500.
        try:
            key = token.decode("ascii")
        except UnicodeDecodeError:
            raise exceptions.AuthenticationFailed("Invalid token.") from None
        if not _TOKEN_FORMAT.fullmatch(key):
            raise exceptions.AuthenticationFailed("Invalid token.")
        user, auth_token = super().authenticate_credentials(token)
        token_cache_set(key=key, user_id=user.pk, expiry=auth_token.expiry)
        return user, auth_token

    def _cleanup_token(self, auth_token: AuthToken) -> bool:
        # knox also reads (and purges) all the user's other tokens on every request; that
        # is a query per request for rows that are harmless once expired. Expired tokens
        # are purged at the user's next login (liveshop.services.user_token_create).
        if auth_token.expiry is not None and auth_token.expiry < timezone.now():
            auth_token.delete()
            return True
        return False


class TokenAuthenticationScheme(OpenApiAuthenticationExtension):
    """The schema's security scheme for TokenAuthentication (drf-spectacular's own for
    knox does not match subclasses): `Authorization: Token <token>`, named as before."""

    target_class = TokenAuthentication
    name = "tokenAuth"

    def get_security_definition(self, auto_schema: Any) -> dict[str, Any]:
        return dict(build_bearer_security_scheme_object(header_name="Authorization", token_prefix="Token"))
