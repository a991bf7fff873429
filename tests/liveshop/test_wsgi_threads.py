"""Django's HTTP through its WSGI handler on threads, under the ASGI server."""

from __future__ import annotations

import asyncio
from typing import Any

from liveshop.wsgi_threads import WsgiInThreads


def _serve(app: Any, body: bytes) -> list[dict[str, Any]]:
    scope = {
        "type": "http",
        "method": "POST",
        "path": "/echo/",
        "raw_path": b"/echo/",
        "query_string": b"a=1",
        "root_path": "",
        "headers": [(b"content-type", b"text/plain"), (b"x-thing", b"42")],
        "http_version": "1.1",
        "scheme": "http",
        "client": ("127.0.0.1", 5000),
        "server": ("127.0.0.1", 80),
    }
    chunks: list[dict[str, Any]] = [
        {"type": "http.request", "body": body[:3], "more_body": True},
        {"type": "http.request", "body": body[3:]},
    ]
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return chunks.pop(0)

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    asyncio.run(app(scope, receive, send))
    return sent


def test_a_wsgi_app_answers_with_its_status_headers_and_body():
    closed = []

    class Body(list):
        def close(self):
            closed.append(True)

    def wsgi(environ, start_response):
        data = environ["wsgi.input"].read()
        start_response("201 Created", [("Content-Type", "text/plain"), ("X-Seen", environ["HTTP_X_THING"])])
        return Body([b"got ", data, b" ", environ["QUERY_STRING"].encode()])

    sent = _serve(WsgiInThreads(wsgi, threads=2), b"hello world")

    assert sent[0] == {
        "type": "http.response.start",
        "status": 201,
        "headers": [(b"content-type", b"text/plain"), (b"x-seen", b"42")],
    }
    assert sent[1] == {"type": "http.response.body", "body": b"got hello world a=1"}
    assert closed == [True]  # Django's request_finished (the connection's return) fires
