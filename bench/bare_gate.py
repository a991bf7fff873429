"""The bare ceiling: a minimal ASGI app that only runs the flash gate's Lua script.

No Django, no database: read the body, run the same Redis script as the product's gate
for the sale in BARE_GATE_SALE, answer 201 or 409. What a flash-sale click can cost at
the least on this machine, to compare the product against in the same run.

    BARE_GATE_SALE=42 REDIS_URL=redis://127.0.0.1:6379/0 uvicorn bench.bare_gate:app
"""

from __future__ import annotations

import json
import os
from typing import Any

import redis.asyncio

from rooms.flash_gate import ADMIT_SCRIPT, buyers_key, requests_key, sale_key

SALE = int(os.environ.get("BARE_GATE_SALE", "0"))
_state: dict[str, Any] = {}


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        while (await receive())["type"] != "lifespan.shutdown":
            await send({"type": "lifespan.startup.complete"})
        await send({"type": "lifespan.shutdown.complete"})
        return
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    if "script" not in _state:
        client = redis.asyncio.Redis.from_url(os.environ["REDIS_URL"], max_connections=1000)
        _state["script"] = client.register_script(ADMIT_SCRIPT)
    token = dict(scope["headers"]).get(b"authorization", b"").decode()
    quantity = int(json.loads(body).get("quantity", 1))
    verdict = await _state["script"](
        keys=[sale_key(SALE), buyers_key(SALE), requests_key(SALE)], args=[token, quantity, ""]
    )
    verdict = verdict.decode()
    code = {"sold_out": "flash_sold_out", "limit": "limit_exceeded"}.get(verdict, verdict)
    answer: dict[str, Any] = {"ok": True} if verdict == "ok" else {"code": code, "detail": ""}
    status = 201 if verdict == "ok" else 409
    payload = json.dumps(answer).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": payload})
