"""Django's HTTP under the ASGI server, through its WSGI handler on a pool of threads.

Measured on this machine (docs/PERFORMANCE.md, benchmark 2): Django's ASGI handler
runs each sync middleware's hooks and the sync view through `sync_to_async`, about
sixteen hand-offs between the event loop and a thread per request; with the project's
middleware (all sync) a trivial view costs ~3-4 ms and one process serves ~300 req/s,
however fast the view. Django's WSGI handler runs the same middleware, URLs and views in
one thread without a hand-off: one hop per request here, the request's work in a
worker thread, the bytes back on the loop. Behaviour is the same (it is the same
Django); speed is that of a threaded WSGI server, like gunicorn's gthread worker, while
WebSockets keep going through Channels on the same port.

Threads block on the database or on Stripe without blocking each other or the event
loop; `HTTP_THREADS` bounds how many requests a process works on at once (the
database pool bounds the connections).

Bodies are capped here, as they arrive: a request that announces (Content-Length) or
sends more than `max_body` bytes is answered 413 `payload_too_large` at once and its
connection closed, so an endless or huge upload costs neither memory nor disk (Django's
own DATA_UPLOAD_MAX_MEMORY_SIZE check runs only after the body was received). The image
upload endpoints (`upload_paths`, POST only) get the larger `upload_max_body`.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from tempfile import SpooledTemporaryFile
from typing import Any

from asgiref.wsgi import WsgiToAsgiInstance

from liveshop.errors import PayloadTooLarge

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


class WsgiInThreads:
    """An ASGI app that runs a WSGI app on a bounded thread pool, one hop per request."""

    def __init__(
        self,
        wsgi_app: WsgiApp,
        *,
        threads: int,
        max_body: int | None = None,
        upload_paths: re.Pattern[str] | None = None,
        upload_max_body: int | None = None,
    ) -> None:
        self.wsgi_app = wsgi_app
        self.executor = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="http")
        self.max_body = max_body
        self.upload_paths = upload_paths
        self.upload_max_body = upload_max_body

    def _max_body(self, scope: dict[str, Any]) -> int | None:
        if (
            self.upload_paths is not None
            and scope.get("method") == "POST"
            and self.upload_paths.fullmatch(scope.get("path", ""))
        ):
            return self.upload_max_body
        return self.max_body

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            raise ValueError(f"WsgiInThreads serves HTTP only, not {scope['type']}")
        max_body = self._max_body(scope)
        if max_body is not None and _content_length(scope) > max_body:
            await _send_too_large(send)
            return
        with SpooledTemporaryFile(max_size=65536) as body:
            received = 0
            while True:
                message = await receive()
                if message["type"] == "http.disconnect":
                    return
                chunk = message.get("body", b"")
                received += len(chunk)
                if max_body is not None and received > max_body:
                    await _send_too_large(send)
                    return
                body.write(chunk)
                if not message.get("more_body"):
                    break
            body.seek(0)
            # asgiref's scope -> environ translation (headers, path, body), reused as is.
            translator = WsgiToAsgiInstance(self.wsgi_app)
            translator.scope = scope
            try:
                environ = translator.build_environ(scope, body)
            except ValueError:
                await _send(send, 400, [(b"content-type", b"text/plain")], [b"Bad Request"])
                return
            loop = asyncio.get_running_loop()
            status, headers, chunks = await loop.run_in_executor(self.executor, self._run, environ)
        await _send(send, status, headers, chunks)

    def _run(self, environ: dict[str, Any]) -> tuple[int, list[tuple[bytes, bytes]], list[bytes]]:
        started: dict[str, Any] = {}

        def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Callable[..., Any]:
            started["status"] = int(status.split(" ", 1)[0])
            started["headers"] = [(name.lower().encode("latin1"), value.encode("latin1")) for name, value in headers]
            return lambda data: None

        output = self.wsgi_app(environ, start_response)
        try:
            chunks = list(output)
        finally:
            # Django sends request_finished here: the thread's connection goes back to the pool.
            close = getattr(output, "close", None)
            if close is not None:
                close()
        return started["status"], started["headers"], chunks


def _content_length(scope: dict[str, Any]) -> int:
    for name, value in scope["headers"]:
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return 0  # the ASGI server refuses a malformed length itself
    return 0


_TOO_LARGE = json.dumps(PayloadTooLarge().as_dict(), separators=(",", ":")).encode()


async def _send_too_large(send: Any) -> None:
    # The rest of the body is never read: `Connection: close` ends the connection
    # after the answer instead of waiting for bytes that may never end.
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(_TOO_LARGE)).encode()),
        (b"connection", b"close"),
    ]
    await _send(send, 413, headers, [_TOO_LARGE])


async def _send(send: Any, status: int, headers: list[tuple[bytes, bytes]], chunks: list[bytes]) -> None:
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": b"".join(chunks)})
