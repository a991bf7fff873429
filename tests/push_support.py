"""A local Web Push service for tests: it records what it is sent (answering 410 Gone for
endpoints ending in /gone), with the keys a browser would make for its subscription and
the VAPID pair the server signs with."""

from __future__ import annotations

import base64
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec


def b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def point(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.public_key().public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)


def vapid_pair() -> tuple[str, str]:
    """(public, private) as the settings take them: base64url point, base64url DER."""
    vapid = ec.generate_private_key(ec.SECP256R1())
    private = vapid.private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return b64url(point(vapid)), b64url(private)


def browser_keys() -> tuple[ec.EllipticCurvePrivateKey, bytes]:
    """A subscription's keys as a browser makes them: a P-256 key and a 16-byte secret."""
    return ec.generate_private_key(ec.SECP256R1()), os.urandom(16)


def subscription(endpoint: str, keys: tuple[ec.EllipticCurvePrivateKey, bytes]) -> dict[str, Any]:
    private, auth = keys
    return {"endpoint": endpoint, "keys": {"p256dh": b64url(point(private)), "auth": b64url(auth)}}


class PushService(BaseHTTPRequestHandler):
    received: list[dict[str, Any]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        headers = {k.lower(): v for k, v in self.headers.items()}
        self.received.append({"path": self.path, "headers": headers, "body": body})
        self.send_response(410 if self.path.endswith("/gone") else 201)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@contextmanager
def push_service_running() -> Iterator[str]:
    """Serve the push service on a free loopback port; yields its base URL."""
    PushService.received = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), PushService)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
