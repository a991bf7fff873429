"""Helpers of tests/chaos/test_database_cut.py: a server on the test database, a load of
orders and reads, and a killer of the database's connections.

The killer runs `pg_terminate_backend` on every backend of the test database but its
own, as a PostgreSQL restart or a failover would cut them: the server's pooled
connections, and this test process's own (the test reconnects before its checks).
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import psycopg


@dataclass
class Answer:
    status: int  # 0: no answer (timeout, connection reset)
    body: dict[str, Any] | None
    headers: dict[str, str]
    started: float  # time.monotonic()
    seconds: float


def call(
    method: str,
    url: str,
    *,
    token: str | None = None,
    body: dict[str, Any] | None = None,
    key: str | None = None,
    timeout: float = 20,
) -> Answer:
    request = urllib.request.Request(url, method=method, data=json.dumps(body).encode() if body is not None else None)
    request.add_header("Content-Type", "application/json")
    if token:
        request.add_header("Authorization", f"Token {token}")
    if key:
        request.add_header("Idempotency-Key", key)
    started = time.monotonic()
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            status, raw, headers = response.status, response.read(), {k.lower(): v for k, v in response.headers.items()}
    except urllib.error.HTTPError as error:
        status, raw, headers = error.code, error.read(), {k.lower(): v for k, v in error.headers.items()}
    except (OSError, TimeoutError):
        return Answer(0, None, {}, started, time.monotonic() - started)
    try:
        parsed = json.loads(raw) if raw else None
    except ValueError:
        parsed = {"unparsed": raw[:200].decode(errors="replace")}
    return Answer(status, parsed, headers, started, time.monotonic() - started)


class Killer(threading.Thread):
    """Terminates every backend of `dbname` but its own, every `every_s` seconds."""

    def __init__(self, dsn: str, dbname: str, *, every_s: float) -> None:
        super().__init__(daemon=True)
        self.dsn, self.dbname, self.every_s = dsn, dbname, every_s
        self.stop_event = threading.Event()
        self.rounds = 0
        self.terminated = 0
        self.last_cut = 0.0

    def run(self) -> None:
        with psycopg.connect(self.dsn, autocommit=True) as killer:
            while not self.stop_event.is_set():
                rows = killer.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                    " WHERE datname = %s AND pid <> pg_backend_pid()",
                    [self.dbname],
                ).fetchall()
                self.rounds += 1
                self.terminated += sum(1 for (done,) in rows if done)
                self.last_cut = time.monotonic()
                self.stop_event.wait(self.every_s)

    def stop(self) -> None:
        self.stop_event.set()
        self.join(10)


@dataclass
class Tally:
    """What the load saw: answers by status, and every order request by its key."""

    statuses: Counter[int] = field(default_factory=Counter)
    answers: list[Answer] = field(default_factory=list)
    bad_503s: list[Answer] = field(default_factory=list)
    others: list[Answer] = field(default_factory=list)
    slowest_s: float = 0.0
    orders: dict[str, tuple[int, Answer]] = field(default_factory=dict)  # key -> (buyer index, answer)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, answer: Answer, *, key: str | None = None, buyer: int = -1) -> None:
        with self.lock:
            self.answers.append(answer)
            self.statuses[answer.status] += 1
            self.slowest_s = max(self.slowest_s, answer.seconds)
            if key is not None:
                self.orders[key] = (buyer, answer)
            if answer.status == 503:
                body = answer.body or {}
                if body.get("code") != "unavailable" or not body.get("detail") or "retry-after" not in answer.headers:
                    self.bad_503s.append(answer)
            elif answer.status not in (200, 201):
                self.others.append(answer)


def load(
    base: str,
    *,
    tokens: list[str],
    order_body: dict[str, Any],
    read_path: str,
    tally: Tally,
    stop: threading.Event,
    prefix: str,
) -> list[threading.Thread]:
    """One thread per buyer: place an order (a fresh Idempotency-Key each), read the
    room, again, until `stop`."""

    def buyer(index: int) -> None:
        n = 0
        while not stop.is_set():
            key = f"{prefix}-{index}-{n}"
            n += 1
            tally.add(call("POST", f"{base}/api/v1/orders/", token=tokens[index], body=order_body, key=key), key=key,
                      buyer=index)  # fmt: skip
            tally.add(call("GET", f"{base}{read_path}", token=tokens[index]))

    threads = [threading.Thread(target=buyer, args=(i,), daemon=True) for i in range(len(tokens))]
    for thread in threads:
        thread.start()
    return threads


@dataclass
class SocketTally:
    """What the room sockets saw while the database was cut."""

    opened: int = 0
    closes: Counter[int] = field(default_factory=Counter)
    acks: int = 0
    errors: Counter[str] = field(default_factory=Counter)
    unanswered: int = 0


async def comment_on_sockets(ws_base: str, tickets: list[str], tally: SocketTally, stop: threading.Event) -> None:
    """Open a socket with the next ticket, send three comments, close; again until `stop`.

    A socket is admitted (its snapshot) or closed with a code; a comment is acked or
    answered an `error`; what the socket sees is counted in `tally`."""
    from websockets.asyncio.client import connect
    from websockets.exceptions import ConnectionClosed

    for ticket in tickets:
        if stop.is_set():
            return
        try:
            async with connect(f"{ws_base}?ticket={ticket}", open_timeout=10, ping_interval=None) as socket:
                first = json.loads(await asyncio.wait_for(socket.recv(), 10))
                assert first["type"] == "room.snapshot", first
                tally.opened += 1
                for n in range(3):
                    await socket.send(json.dumps({"type": "comment.send", "text": f"cut {n}", "nonce": n}))
                    answer = await _reply(socket)
                    if answer is None:
                        tally.unanswered += 1
                    elif answer["type"] == "comment.ack":
                        tally.acks += 1
                    else:
                        tally.errors[answer["data"]["code"]] += 1
                tally.closes[1000] += 1
        except ConnectionClosed as closed:
            tally.closes[closed.rcvd.code if closed.rcvd else 1006] += 1
        await asyncio.sleep(0.05)


async def _reply(socket: Any) -> dict[str, Any] | None:
    """The next `comment.ack` or `error` (room events in between are skipped)."""
    try:
        async with asyncio.timeout(10):
            while True:
                frame = json.loads(await socket.recv())
                for event in frame.get("events", [frame]):
                    if event["type"] in ("comment.ack", "error"):
                        return dict(event)
    except TimeoutError:
        return None
