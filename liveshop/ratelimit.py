"""Per-user and per-IP rate limits on the paths one client could flood.

Login, registration, order creation and comments each have a per-user and a per-IP
limit (settings.RATE_LIMIT_<ACTION>_<USER|IP>: a burst, then a sustained rate per
minute). Login has a third, the tightest: per username *and* client address
(RATE_LIMIT_LOGIN_USER_IP), so that one address guessing a password locks out that
address, not the account's owner; the per-username limit is set higher and stops a guess
spread over many addresses. They are GCRA buckets in the real-time backend, the same buckets as the
per-user comment pace (COMMENT_BURST, COMMENT_RATE_PER_MIN): in Redis, shared by every
web process, with REDIS_URL; in the one web process's memory on the embedded default.

A refusal is `RateLimited` (429 `rate_limited` with `Retry-After` over HTTP, an `error`
frame on the room socket). When Redis cannot be reached the limits let requests through:
they protect the show, and refusing everyone would be the outage they guard against.
"""

from __future__ import annotations

import functools
import hashlib
import ipaddress
import logging
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

import redis
from django.conf import settings
from django.http import HttpRequest, HttpResponse, HttpResponseBase
from rest_framework.request import Request
from rest_framework.throttling import BaseThrottle

from liveshop.errors import RateLimited

logger = logging.getLogger(__name__)

LOGIN = "login"
REGISTER = "register"
ORDER = "order"
COMMENT = "comment"


def client_network(address: str | None) -> str | None:
    """The address a per-IP limit counts: an IPv4 address, or an IPv6 address's /64 (one
    subscriber's share, which its devices pick addresses from at will)."""
    if not address:
        return None
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return None
    if ip.version == 6:
        return str(ipaddress.ip_network(f"{ip}/64", strict=False))
    return str(ip)


def _key_part(who: object) -> str:
    """`who` as a part of a Redis key. A username is whatever the client sent (a lone
    surrogate from JSON's "\\ud800" cannot even be encoded to UTF-8): it is hashed, which
    keeps the key well formed and bounded, and the same username always the same key."""
    if isinstance(who, str):
        return hashlib.sha256(who.encode("utf-8", "surrogatepass")).hexdigest()[:32]
    return str(who)


@dataclass(frozen=True, slots=True)
class Bucket:
    """One GCRA bucket: `key` (without the deployment's prefix) and its rate."""

    key: str
    per_minute: int
    burst: int
    what: str = ""  # the action, for the refusal's message


def action_buckets(*, action: str, user: object = None, ip: str | None = None) -> list[Bucket]:
    """The buckets one `action` by `user` from `ip` counts against: the pair's, the
    address's, the user's (those the action has a limit for); none with RATE_LIMITS off.

    The pair's bucket comes first: a client refused there has not spent the user's
    shared bucket, so one address hammering an account cannot empty it for the owner.
    """
    if not settings.RATE_LIMITS:
        return []
    network = client_network(ip)
    name = action.upper()
    user_part = None if user is None else _key_part(user)
    pair = None if user_part is None or network is None else f"{user_part}:{network}"
    candidates = [
        (f"{action}:user-ip:{pair}", getattr(settings, f"RATE_LIMIT_{name}_USER_IP", None), pair),
        (f"{action}:ip:{network}", getattr(settings, f"RATE_LIMIT_{name}_IP", None), network),
        (f"{action}:user:{user_part}", getattr(settings, f"RATE_LIMIT_{name}_USER", None), user_part),
    ]
    return [Bucket(key, rate[0], rate[1], action) for key, rate, who in candidates if rate and who is not None]


def rate_limited(bucket: Bucket, wait: float) -> RateLimited:
    return RateLimited(f"Too many {bucket.what} requests; slow down.", retry_after=math.ceil(wait))


def rate_limit_take(*, action: str, user: object = None, ip: str | None = None) -> None:
    """Count one `action` against the buckets of `user`, of `ip`, and of the pair (where
    the action has that limit); `user` or `ip` may be None, which skips their buckets.

    Raises RateLimited, with the seconds until the next try would pass, when a bucket
    is empty. Does nothing when settings.RATE_LIMITS is off or the action has no limit.
    """
    from rooms.realtime.backend import get_backend

    for bucket in action_buckets(action=action, user=user, ip=ip):
        try:
            wait = get_backend().rate_limit(bucket.key, per_minute=bucket.per_minute, burst=bucket.burst)
        except (redis.RedisError, OSError):
            logger.warning("rate limit %s not checked: Redis unavailable", bucket.key, exc_info=True)
            return
        if wait > 0:
            raise rate_limited(bucket, wait)


class ActionThrottle(BaseThrottle):
    """DRF throttle for one action's POSTs. It raises RateLimited itself (instead of
    answering False) so that the 429 is the same as a comment's, `retry_after` included."""

    action: ClassVar[str]

    def allow_request(self, request: Request, view: Any) -> bool:
        if request.method != "POST":
            return True
        rate_limit_take(action=self.action, user=self.user_of(request), ip=request.META.get("REMOTE_ADDR"))
        return True

    def user_of(self, request: Request) -> object:
        user = request.user
        return user.pk if user is not None and user.is_authenticated else None


class LoginThrottle(ActionThrottle):
    """Per username tried and IP, per username tried (a guess spread over addresses),
    and per IP."""

    action = LOGIN

    def user_of(self, request: Request) -> object:
        data = request.data
        username = data.get("username") if isinstance(data, dict) else None
        if not isinstance(username, str) or not username.strip():
            return None
        return username.strip().lower()[:150]


class RegisterThrottle(ActionThrottle):
    action = REGISTER


class OrderThrottle(ActionThrottle):
    action = ORDER


def rate_limited_page(action: str) -> Callable[[Callable[..., HttpResponseBase]], Callable[..., HttpResponseBase]]:
    """The same limits for a web page's form POST (the sign-in and sign-up pages), which
    answers a plain 429 with Retry-After."""

    def decorate(view: Callable[..., HttpResponseBase]) -> Callable[..., HttpResponseBase]:
        @functools.wraps(view)
        def limited(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
            if request.method == "POST":
                username = request.POST.get("username", "").strip().lower()[:150] if action == LOGIN else ""
                try:
                    rate_limit_take(action=action, user=username or None, ip=request.META.get("REMOTE_ADDR"))
                except RateLimited as exc:
                    response = HttpResponse(exc.detail, status=exc.status, content_type="text/plain; charset=utf-8")
                    for name, value in exc.headers().items():
                        response[name] = value
                    return response
            return view(request, *args, **kwargs)

        return limited

    return decorate
