"""The grab intake: taps on an emptied red envelope never reach Django.

Ten thousand viewers tap one envelope of a hundred shares: all but a hundred are to be
told `409 red_envelope_empty`. This ASGI layer sits in front of Django for
`POST /api/v1/red-envelopes/{id}/grab/` only, and runs one read-only Redis script
(envelopes.gate.PREFILTER_SCRIPT) that resolves the bearer token to a user and answers
"empty" only when Django would certainly answer so: a token it has seen, a user who is
not the sender and holds no share, an envelope open now and not for followers only,
every share handed out. Everything else (the winners, repeats, sessions, unknown
tokens, Redis trouble) goes on to Django unchanged, where the gate and PostgreSQL
decide. Removing it changes the speed of a red envelope, not who gets the shares.
"""

from __future__ import annotations

import json
import logging
import re
from typing import Any

import redis

from envelopes.gate import gate_prefilter
from liveshop.auth import token_cache_key
from liveshop.errors import RedEnvelopeEmpty

logger = logging.getLogger(__name__)

GRAB_PATH = re.compile(r"^/api/v1/red-envelopes/(\d{1,18})/grab/$")
# Byte for byte what DRF renders for the same error (compact JSON).
EMPTY = json.dumps(RedEnvelopeEmpty().as_dict(), separators=(",", ":"), ensure_ascii=False).encode()


class GrabIntake:
    """ASGI middleware: answer certain `red_envelope_empty` refusals, pass the rest on."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        match = GRAB_PATH.match(scope["path"]) if scope["type"] == "http" and scope["method"] == "POST" else None
        if match is None or not await self._certainly_empty(scope, int(match.group(1))):
            await self.app(scope, receive, send)
            return
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(EMPTY)).encode())]
        await send({"type": "http.response.start", "status": 409, "headers": headers})
        await send({"type": "http.response.body", "body": EMPTY})

    async def _certainly_empty(self, scope: dict[str, Any], envelope_id: int) -> bool:
        authorization = next((v for k, v in scope["headers"] if k == b"authorization"), b"").decode("latin1")
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "token" or not token.strip():
            return False  # sessions and bad credentials: Django decides
        try:
            return await gate_prefilter(token_key=token_cache_key(token.strip()), envelope_id=envelope_id) == "empty"
        except (redis.RedisError, OSError):
            logger.warning("red envelope pre-filter unavailable; passing the grab on", exc_info=True)
            return False
