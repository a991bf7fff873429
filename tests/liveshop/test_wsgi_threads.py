"""Django's HTTP through its WSGI handler on threads, under the ASGI server."""

from __future__ import annotations

import asyncio
import json
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


def _echo(environ, start_response):
    data = environ["wsgi.input"].read()
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [data]


def _serve_stream(app: Any, chunks: Any, headers: list[tuple[bytes, bytes]]) -> tuple[list[dict[str, Any]], int]:
    """Serve one request whose body comes from `chunks` (maybe endless); returns what was
    sent and how many body messages the app read."""
    scope = {
        "type": "http",
        "method": "POST",
        "path": "/api/v1/hosts/",
        "raw_path": b"/api/v1/hosts/",
        "query_string": b"",
        "root_path": "",
        "headers": headers,
        "http_version": "1.1",
        "scheme": "http",
        "client": ("127.0.0.1", 5000),
        "server": ("127.0.0.1", 80),
    }
    sent: list[dict[str, Any]] = []
    read = 0

    async def receive() -> dict[str, Any]:
        nonlocal read
        read += 1
        return {"type": "http.request", "body": next(chunks), "more_body": True}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    asyncio.run(app(scope, receive, send))
    return sent, read


def _assert_too_large(sent: list[dict[str, Any]]) -> None:
    assert sent[0]["status"] == 413
    assert (b"connection", b"close") in sent[0]["headers"]
    assert json.loads(sent[1]["body"]) == {"code": "payload_too_large", "detail": "The request body is too large."}


def test_an_endless_body_is_refused_once_past_the_limit():
    def endless():
        while True:
            yield b"x" * 1000

    sent, read = _serve_stream(WsgiInThreads(_echo, threads=1, max_body=10_000), endless(), [])
    _assert_too_large(sent)
    assert read == 11  # stopped reading at the first chunk past 10,000 bytes


def test_an_announced_big_body_is_refused_before_reading_it():
    sent, read = _serve_stream(
        WsgiInThreads(_echo, threads=1, max_body=10_000), iter([b"x"] * 10), [(b"content-length", b"10001")]
    )
    _assert_too_large(sent)
    assert read == 0


def test_a_body_at_the_limit_passes():
    body = b"y" * 10_000
    sent = _serve(WsgiInThreads(_echo, threads=1, max_body=10_000), body)
    assert sent[0]["status"] == 200
    assert sent[1]["body"] == body
