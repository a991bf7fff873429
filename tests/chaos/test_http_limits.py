"""Body size and rate limits on the HTTP path the project serves: uvicorn, the order
intake, the WSGI bridge (liveshop/wsgi_threads.py), Django.

- a body announced or sent past DATA_UPLOAD_MAX_MEMORY_SIZE is answered 413
  `payload_too_large` at once, and an endless one is not buffered;
- per-IP limits count the client's address: X-Forwarded-For only from a proxy that
  uvicorn trusts (FORWARDED_ALLOW_IPS), the socket's peer otherwise.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from typing import Any

import pytest
from django.conf import settings as django_settings
from django.db import connection

from tests.chaos.database_support import call
from tests.chaos.test_ws_fuzz import rss_kib
from tests.servers import Server, database_url, start_uvicorn

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

LIMIT = 256 * 1024


def server_env(tmp_path: Any, prefix: str, **extra: str) -> dict[str, str]:
    return {
        "DATABASE_URL": database_url(),
        "REDIS_URL": django_settings.REDIS_URL,
        "LIVESHOP_REDIS_PREFIX": prefix,
        "CELERY_BROKER_URL": "memory://",
        "LIVESHOP_VAR_DIR": str(tmp_path),
        "DATA_UPLOAD_MAX_MEMORY_SIZE": str(LIMIT),
        **extra,
    }


@pytest.fixture
def needs_services() -> None:
    if connection.vendor != "postgresql" or not django_settings.REDIS_URL:
        pytest.skip("needs PostgreSQL and Redis (DATABASE_URL, REDIS_URL)")


def read_response(sock: socket.socket, timeout: float = 10) -> tuple[int, dict[str, str], bytes]:
    sock.settimeout(timeout)
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {name.lower(): value.strip() for name, _, value in (line.partition(":") for line in lines[1:])}
    while len(body) < int(headers.get("content-length", "0")):
        chunk = sock.recv(65536)
        if not chunk:
            break
        body += chunk
    return status, headers, body


def assert_too_large(status: int, headers: dict[str, str], body: bytes) -> None:
    assert status == 413
    assert json.loads(body) == {"code": "payload_too_large", "detail": "The request body is too large."}
    assert headers.get("connection") == "close"


@pytest.mark.parametrize("path", ["/api/v1/hosts/", "/api/v1/orders/", "/login/"])
def test_an_announced_big_body_is_refused_before_it_is_sent(needs_services, tmp_path, realtime_prefix, path):
    server = start_uvicorn(server_env(tmp_path, realtime_prefix), tmp_path, name="body")
    try:
        with socket.create_connection(("127.0.0.1", server.port)) as sock:
            sock.sendall(
                f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                f"Content-Length: {50 * 1024 * 1024}\r\n\r\n".encode()
                + b"{" * 1000  # and then nothing: the server must not wait for the rest
            )
            started = time.monotonic()
            assert_too_large(*read_response(sock))
            assert time.monotonic() - started < 5
    finally:
        server.stop()


def test_an_endless_body_is_cut_off_without_being_buffered(needs_services, tmp_path, realtime_prefix):
    server = start_uvicorn(server_env(tmp_path, realtime_prefix), tmp_path, name="endless")
    try:
        rss_before = rss_kib(server.process.pid)
        sent = 0
        stop = threading.Event()
        with socket.create_connection(("127.0.0.1", server.port)) as sock:
            sock.sendall(
                b"POST /api/v1/orders/ HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                b"Transfer-Encoding: chunked\r\n\r\n"
            )

            def pour() -> None:
                nonlocal sent
                chunk = b"10000\r\n" + b"x" * 0x10000 + b"\r\n"
                while not stop.is_set() and sent < 200 * 1024 * 1024:
                    try:
                        sock.sendall(chunk)
                    except OSError:
                        return  # the server closed the connection: good
                    sent += 0x10000

            pourer = threading.Thread(target=pour, daemon=True)
            pourer.start()
            try:
                assert_too_large(*read_response(sock, timeout=30))
            finally:
                stop.set()
                pourer.join(10)
        rss_after = rss_kib(server.process.pid)
        print(f"\nendless body: {sent // 1024} KiB poured; server RSS {rss_before // 1024} -> {rss_after // 1024} MiB")
        assert sent < 200 * 1024 * 1024, "the server read it all"
        assert (rss_after - rss_before) < 50 * 1024
        assert call("GET", f"{server.http}/healthz").status == 200
    finally:
        server.stop()


def logins(server: Server, count: int, forwarded_for: str | None) -> list[tuple[int, str | None]]:
    headers = {"X-Forwarded-For": forwarded_for} if forwarded_for else {}
    return [
        call_with_headers(server, {"username": f"nobody-{n}-{time.monotonic()}", "password": "x"}, headers)
        for n in range(count)
    ]


def call_with_headers(server: Server, body: dict[str, Any], headers: dict[str, str]) -> tuple[int, str | None]:
    import urllib.error
    import urllib.request

    request = urllib.request.Request(
        f"{server.http}/api/v1/auth/token/", method="POST", data=json.dumps(body).encode(), headers=headers
    )
    request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.headers.get("Retry-After")
    except urllib.error.HTTPError as error:
        return error.code, error.headers.get("Retry-After")


def test_per_ip_limits_trust_x_forwarded_for_only_from_a_trusted_proxy(needs_services, tmp_path, realtime_prefix):
    # A slow rate: a failed login costs a password hash (~0.3 s or more on a busy machine).
    env = server_env(tmp_path, realtime_prefix, RATE_LIMITS="1", RATE_LIMIT_LOGIN_IP="6,3")
    # uvicorn trusts 127.0.0.1 by default: this server is "behind a proxy" on loopback.
    behind_proxy = start_uvicorn(env, tmp_path, name="proxied")
    try:
        office = logins(behind_proxy, 4, "198.51.100.7")
        assert [status for status, _ in office] == [400, 400, 400, 429]
        assert int(office[-1][1] or 0) >= 1
        # Another client address through the same proxy has its own bucket.
        assert [status for status, _ in logins(behind_proxy, 3, "198.51.100.8")] == [400, 400, 400]
    finally:
        behind_proxy.stop()
    # Trusting no proxy: the header is the client's word and is ignored.
    direct = start_uvicorn({**env, "FORWARDED_ALLOW_IPS": ""}, tmp_path, name="direct")
    try:
        statuses = [status for status, _ in logins(direct, 2, "192.0.2.1") + logins(direct, 2, "192.0.2.2")]
        assert statuses == [400, 400, 400, 429]
    finally:
        direct.stop()
