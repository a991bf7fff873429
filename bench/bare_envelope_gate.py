"""The bare ceiling of a red envelope's grab: a minimal ASGI app that only runs the gate.

No Django, no database: run the same Redis script as envelopes/gate.py for the envelope in
BARE_ENVELOPE (the caller's Authorization header stands for the user), answer 201 or 409.
What a grab can cost at the least on this machine, to compare the product against in the
same run (bench/red_envelope.py).

    BARE_ENVELOPE=42 BARE_ENVELOPE_SHARES=100 REDIS_URL=redis://127.0.0.1:6379/0 uvicorn bench.bare_envelope_gate:app
"""

from __future__ import annotations

import json
import os
from typing import Any

import redis.asyncio

from envelopes.gate import GRAB_SCRIPT, _keys

ENVELOPE = int(os.environ.get("BARE_ENVELOPE", "0"))
SHARES = int(os.environ.get("BARE_ENVELOPE_SHARES", "1"))
_state: dict[str, Any] = {}


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        while (await receive())["type"] != "lifespan.shutdown":
            await send({"type": "lifespan.startup.complete"})
        await send({"type": "lifespan.shutdown.complete"})
        return
    while (await receive()).get("more_body"):
        pass
    if "script" not in _state:
        client = redis.asyncio.Redis.from_url(os.environ["REDIS_URL"], max_connections=1000)
        _state["script"] = client.register_script(GRAB_SCRIPT)
    user = dict(scope["headers"]).get(b"authorization", b"").decode()
    index = int(await _state["script"](keys=_keys(ENVELOPE), args=[user, SHARES]))
    status = 201 if index >= 0 else 409
    payload = json.dumps({"index": index} if index >= 0 else {"code": "red_envelope_empty", "detail": ""}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": payload})
