"""Real processes for end-to-end tests: uvicorn serving liveshop on a free loopback port."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

BASE_DIR = Path(__file__).resolve().parent.parent


def database_url() -> str:
    """The test database (pytest-django's), as a URL for the environment of a process."""
    from django.db import connection

    db = connection.settings_dict
    password = f":{db['PASSWORD']}" if db.get("PASSWORD") else ""
    return f"postgres://{db['USER']}{password}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_until(condition: Callable[[], Any], *, timeout: float, interval: float = 0.05, what: str = "") -> Any:
    """Poll `condition` until it returns something truthy; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"gave up waiting {timeout} s for {what or condition}")
        time.sleep(interval)


def wait_for_port(port: int, process: subprocess.Popen[Any], timeout: float = 20) -> None:
    """Until something listens on the loopback `port`; fails at once if `process` exits."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"process exited with {process.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.1)
    raise TimeoutError(f"nothing listens on {port}")


@dataclass
class Server:
    port: int
    process: subprocess.Popen[bytes]
    log_path: Path

    @property
    def http(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def kill(self) -> None:
        """Die at once, as a crashed process does: no goodbye to Redis or the sockets."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(10)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()


def start_uvicorn(
    env: dict[str, str], log_dir: Path, *, name: str = "web", drop: frozenset[str] = frozenset()
) -> Server:
    """Start `uvicorn liveshop.asgi:application` as the README runs it; wait for /healthz.

    The process gets this process's environment with `env` over it and `drop` removed."""
    full_env = {k: v for k, v in os.environ.items() if k not in drop} | env | {"PYTHONUNBUFFERED": "1"}
    for _attempt in range(3):
        port = free_port()
        log_path = log_dir / f"{name}-{port}.log"
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "uvicorn",
                "liveshop.asgi:application",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--ws",
                "websockets-sansio",
                "--ws-per-message-deflate",
                "false",
                "--ws-max-size",
                "65536",
                "--no-access-log",
            ],
            cwd=BASE_DIR,
            env=full_env,
            stdout=log_path.open("wb"),
            stderr=subprocess.STDOUT,
        )
        server = Server(port=port, process=process, log_path=log_path)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and process.poll() is None:
            try:
                with urllib.request.urlopen(f"{server.http}/healthz", timeout=1) as response:
                    if response.status == 200:
                        return server
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                time.sleep(0.1)
        server.stop()
    raise RuntimeError(f"uvicorn did not start:\n{server.log()}")


def http_json(method: str, url: str, *, token: str | None = None, body: dict[str, Any] | None = None) -> Any:
    import json

    request = urllib.request.Request(url, method=method, data=json.dumps(body or {}).encode())
    request.add_header("Content-Type", "application/json")
    if token:
        request.add_header("Authorization", f"Token {token}")
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read() or b"null")


@contextlib.contextmanager
def localstripe(*args: str) -> Iterator[str]:
    """localstripe (orders/localstripe_server.py) on a free loopback port; yields its URL."""
    process = subprocess.Popen(
        [sys.executable, "-m", "orders.localstripe_server", "--port", "0", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline().strip()
        assert line.startswith("localstripe listening on "), line
        yield line.rsplit(" ", 1)[1]
    finally:
        process.terminate()
        process.wait(timeout=10)
