"""The grab intake: the gate runs before Django, and the losers never reach it.

Ten thousand viewers tap one envelope of a hundred shares: all but a hundred are to be
told `409 red_envelope_empty`. This ASGI layer sits in front of Django for
`POST /api/v1/red-envelopes/{id}/grab/` only. For a tap that Django would judge by the
gate alone (a token Redis knows, a user who is not the sender, an envelope open now and
not for followers only), one Redis script (envelopes.gate.INTAKE_SCRIPT) takes the gate's
step here: it hands the user a share index, and the request goes on to Django, which
finds that index in the gate and claims the share in PostgreSQL; or every share is gone,
and the tap is answered here, byte for byte as Django would. Every other tap (sessions,
unknown tokens, the sender, followers-only envelopes, outside the opening hours, Redis
trouble) goes on to Django untouched. Removing it changes the speed of a red envelope,
not who gets the shares.
"""

from __future__ import annotations

import json
import logging
import re
from typing import Any

import redis

from envelopes.gate import gate_intake
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
            return await gate_intake(token_key=token_cache_key(token.strip()), envelope_id=envelope_id) == "empty"
        except (redis.RedisError, OSError):
            logger.warning("red envelope gate unavailable at the intake; passing the grab on", exc_info=True)
            return False
