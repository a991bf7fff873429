"""The order intake: flash-sale clicks that are certainly refused never reach Django.

When a flash sale opens, thousands of buyers press "buy" within a second for a few
hundred units. Almost all of them are to be told `409 flash_sold_out` (or
`limit_exceeded`). This ASGI layer sits in front of Django for `POST /api/v1/orders/`
only: it reads the body, and if it names shelf items, runs one read-only Redis script
(rooms.flash_gate.PREFILTER) that resolves the bearer token to a user, each item to its
active sale, and says whether the click is certainly refused. Refusals are answered
here, in the contract's error shape, without a thread, a query or a middleware; every
other request goes on to Django unchanged (its body replayed), where the real gate and
PostgreSQL decide.

It only ever refuses, and only clicks Django would refuse at that moment (with the
same bytes; a body wrong in several ways may get another of its errors first): a sale
it does not know or that is past its end, a token it has not seen, a body it does not
understand, a retry of a request the gate admitted (same Idempotency-Key), or Redis
trouble all pass through. Removing it changes the speed of a flash sale, not who gets
the units. Its knowledge can lag in two ways, both only towards refusing: a token
deleted behind the services' back (liveshop.auth) and gate units lost to a process that
died between the gate and its database commit (until the sale ends).
"""

from __future__ import annotations

import json
import logging
from typing import Any

import redis

from liveshop.auth import token_cache_key
from liveshop.errors import FlashSoldOut, LimitExceeded
from liveshop.redis_client import redis_async
from orders.services.orders import MAX_LINES, MAX_QUANTITY
from rooms import flash_gate

logger = logging.getLogger(__name__)

ORDERS_PATH = "/api/v1/orders/"
# Bodies larger than a flash click are not looked at (passed through as they are).
MAX_BODY = 16 * 1024


def _header(scope: dict[str, Any], name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key == name:
            return str(value.decode("latin1"))
    return None


def _content_length(scope: dict[str, Any]) -> int:
    try:
        return int(_header(scope, b"content-length") or 0)
    except ValueError:
        return 0


def _flash_candidates(body: bytes) -> tuple[list[int], list[int]] | None:
    """The shelf items and quantities of an order body, or None if it is not a plain one."""
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):  # RecursionError: nested too deep; Django answers it
        return None
    items = data.get("items") if isinstance(data, dict) else None
    if not isinstance(items, list) or not 0 < len(items) <= MAX_LINES:
        return None
    item_ids: list[int] = []
    quantities: list[int] = []
    for line in items:
        if not isinstance(line, dict):
            return None
        item, quantity = line.get("item"), line.get("quantity")
        if type(item) is not int or type(quantity) is not int or not 1 <= quantity <= MAX_QUANTITY:
            if "item" in line:
                return None  # malformed: Django answers it
            continue
        item_ids.append(item)
        quantities.append(quantity)
    return (item_ids, quantities) if item_ids else None


def _refusal_body(verdict: flash_gate.Verdict) -> bytes:
    error = FlashSoldOut() if verdict == flash_gate.Verdict.SOLD_OUT else LimitExceeded()
    # Byte for byte what DRF renders for the same error (compact JSON).
    return json.dumps(error.as_dict(), separators=(",", ":"), ensure_ascii=False).encode()


_REFUSALS = {
    flash_gate.Verdict.SOLD_OUT: _refusal_body(flash_gate.Verdict.SOLD_OUT),
    flash_gate.Verdict.LIMIT: _refusal_body(flash_gate.Verdict.LIMIT),
}


class OrderIntake:
    """ASGI middleware: answer certain flash-sale refusals, pass everything else on."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["method"] != "POST" or scope["path"] != ORDERS_PATH:
            await self.app(scope, receive, send)
            return
        if _content_length(scope) > MAX_BODY:
            # Announced larger than a flash click: on to Django unread (the WSGI bridge
            # refuses a body past the size limit before it arrives).
            await self.app(scope, receive, send)
            return
        messages: list[dict[str, Any]] = []
        body = b""
        while True:
            message = await receive()
            messages.append(message)
            if message["type"] != "http.request":
                break
            body += message.get("body", b"")
            if not message.get("more_body") or len(body) > MAX_BODY:
                break

        verdict = await self._prefilter(scope, body) if len(body) <= MAX_BODY else None
        if verdict is not None:
            payload = _REFUSALS[verdict]
            await send(
                {
                    "type": "http.response.start",
                    "status": 409,
                    "headers": [
                        (b"content-type", b"application/json"),
                        (b"content-length", str(len(payload)).encode()),
                    ],
                }
            )
            await send({"type": "http.response.body", "body": payload})
            return

        pending = list(messages)

        async def replay() -> dict[str, Any]:
            if pending:
                return pending.pop(0)
            return dict(await receive())

        await self.app(scope, replay, send)

    async def _prefilter(self, scope: dict[str, Any], body: bytes) -> flash_gate.Verdict | None:
        authorization = _header(scope, b"authorization") or ""
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "token" or not token:
            return None  # sessions and bad credentials: Django decides
        candidates = _flash_candidates(body)
        if candidates is None or redis_async() is None:
            return None
        item_ids, quantities = candidates
        try:
            verdict, _, _ = await flash_gate.gate_prefilter(
                token_key=token_cache_key(token.strip()),
                item_ids=item_ids,
                quantities=quantities,
                idempotency_key=_header(scope, b"idempotency-key"),
            )
        except (redis.RedisError, OSError):
            logger.warning("flash pre-filter unavailable; passing the click on", exc_info=True)
            return None
        return verdict if verdict in _REFUSALS else None
