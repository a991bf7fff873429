"""Shared pieces of the chaos tests: nodes, a private Redis, and room clients that keep
everything they saw across reconnects.

`RoomClient` behaves as the web client does (liveshop/static/liveshop/): one logical
viewer whose socket, when dropped, comes back to another node with `?since=<last seq>`
(a fresh ticket when signed in). It records every room event it receives over all its
connections, so a test can check the union: no duplicate, no seq out of order, nothing
missing against the room's history.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import redis
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake

from rooms.realtime.backend import get_backend
from rooms.realtime.events import COMMENT_NEW, LIKE_TOTAL, VIEWERS
from rooms.realtime.redis_backend import RedisBackend
from tests.servers import BASE_DIR, Server, database_url, free_port, http_json, start_uvicorn

# Counter events carry absolute values: a replay keeps only the latest of each, so a
# client that reconnected may not have seen every one.
SUPERSEDING = frozenset({VIEWERS, LIKE_TOTAL})
# Close codes after which the web client does not come back.
FINAL_CLOSE_CODES = frozenset({1000, 4401, 4403, 4404})


def node_env(*, redis_url: str, prefix: str, **extra: str) -> dict[str, str]:
    """The environment of a web node (or worker) of the test's deployment."""
    return {
        "DATABASE_URL": database_url(),
        "REDIS_URL": redis_url,
        "LIVESHOP_REDIS_PREFIX": prefix,
        "PRESENCE_TTL_S": "2",
        "CONN_MAX_AGE": "0",
        # A show's commenters here comment faster than a person would, all from 127.0.0.1.
        "COMMENT_BURST": "50",
        "COMMENT_RATE_PER_MIN": "600",
        "RATE_LIMIT_COMMENT_IP": "6000,1000",
        **extra,
    }


def start_nodes(count: int, env: dict[str, str], log_dir: Path) -> list[Server]:
    """`count` uvicorn processes; started one after another (the machine has few cores)."""
    nodes: list[Server] = []
    try:
        for i in range(count):
            nodes.append(start_uvicorn(env, log_dir, name=f"node{i}"))
    except BaseException:
        for node in nodes:
            node.stop()
        raise
    return nodes


async def wait_until(condition: Callable[[], bool | Awaitable[bool]], *, timeout: float, what: str) -> float:
    """Poll until `condition` holds; returns the seconds it took (fails past `timeout`)."""
    started = time.monotonic()
    while True:
        result = condition()
        if not isinstance(result, bool):
            result = await result
        if result:
            return time.monotonic() - started
        if time.monotonic() - started > timeout:
            raise AssertionError(f"not within {timeout} s: {what}")
        await asyncio.sleep(0.05)


# --- A private Redis that a test may stop and start ---------------------------------------------


@dataclass
class PrivateRedis:
    """`redis-server` on a free loopback port, keeping nothing on disk: a restart empties it."""

    port: int
    log_path: Path
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        binary = shutil.which("redis-server")
        assert binary, "redis-server is not installed"
        self.process = subprocess.Popen(
            [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
            stdout=self.log_path.open("ab"),
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 10
        while True:
            try:
                client = redis.Redis.from_url(self.url, socket_connect_timeout=0.5)
                client.ping()
                client.close()
                return
            except redis.ConnectionError:
                if time.monotonic() > deadline or self.process.poll() is not None:
                    raise
                time.sleep(0.05)

    def stop(self) -> None:
        """Die at once (SIGKILL): no save, connections cut."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)

    def client(self) -> redis.Redis:
        return redis.Redis.from_url(self.url)


@contextlib.contextmanager
def private_redis(log_dir: Path, name: str = "redis") -> Iterator[PrivateRedis]:
    server = PrivateRedis(port=free_port(), log_path=log_dir / f"{name}.log")
    server.start()
    try:
        yield server
    finally:
        server.stop()


# --- Other processes and plain HTTP ---------------------------------------------------------------


@contextlib.contextmanager
def process(args: list[str], env: dict[str, str], log_path: Path) -> Iterator[subprocess.Popen[bytes]]:
    """A child process (this environment with `env` over it), terminated at the end."""
    with log_path.open("wb") as log:
        child = subprocess.Popen(
            args,
            cwd=BASE_DIR,
            env=os.environ | env | {"PYTHONUNBUFFERED": "1"},
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            yield child
        finally:
            child.terminate()
            try:
                child.wait(15)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()


def celery_worker(env: dict[str, str], log_path: Path) -> contextlib.AbstractContextManager[subprocess.Popen[bytes]]:
    """A real Celery worker, as tests/orders/test_integration.py runs it."""
    args = [sys.executable, "-m", "celery", "-A", "liveshop", "worker", "-P", "solo", "-l", "info"]
    return process([*args, "--without-mingle", "--without-gossip", "--without-heartbeat"], env, log_path)


@dataclass(frozen=True)
class Answer:
    status: int
    body: Any
    headers: dict[str, str]  # names in lower case
    seconds: float


def http_call(
    method: str,
    url: str,
    *,
    token: str | None = None,
    body: bytes | dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
) -> Answer:
    """One HTTP request; any status is an answer (http_json raises on errors)."""
    data = body if isinstance(body, bytes) else (json.dumps(body).encode() if body is not None else None)
    request = urllib.request.Request(url, method=method, data=data)
    request.add_header("Content-Type", "application/json")
    if token:
        request.add_header("Authorization", f"Token {token}")
    for name, value in (headers or {}).items():
        request.add_header(name, value)
    started = time.monotonic()
    try:
        with urllib.request.urlopen(request, timeout=20) as response:
            status, raw, answer_headers = response.status, response.read(), response.headers
    except urllib.error.HTTPError as error:
        status, raw, answer_headers = error.code, error.read(), error.headers
    try:
        parsed = json.loads(raw) if raw else None
    except ValueError:
        parsed = raw.decode(errors="replace")
    lowered = {name.lower(): value for name, value in answer_headers.items()}
    return Answer(status=status, body=parsed, headers=lowered, seconds=time.monotonic() - started)


# --- Room clients -------------------------------------------------------------------------------


@dataclass
class Connect:
    """One socket of a client: where, with what `since`, and what it began with."""

    port: int
    since: int | None
    opened_at: float
    first: str = ""  # "room.snapshot" or the type of the first replayed event
    first_at: float | None = None
    close_code: int | None = None


@dataclass
class RoomClient:
    """One viewer of a room over real sockets, reconnecting as the web client does."""

    name: str
    room_id: int
    nodes: list[Server]
    home: int  # the index of the node it connects to first
    token: str | None = None  # signed in (a ticket per socket), else anonymous
    events: list[dict[str, Any]] = field(default_factory=list)  # room events, in arrival order
    snapshots: list[dict[str, Any]] = field(default_factory=list)
    replies: list[dict[str, Any]] = field(default_factory=list)  # comment.ack, error, pong
    connects: list[Connect] = field(default_factory=list)
    ws: ClientConnection | None = None
    reconnect: bool = True
    task: asyncio.Task[None] | None = None
    dead: set[int] = field(default_factory=set)  # ports that refused a connect
    sent: list[tuple[int, str]] = field(default_factory=list)  # (socket index, nonce)

    @property
    def last_seq(self) -> int | None:
        seqs = [e["seq"] for e in self.events] + [s["seq"] for s in self.snapshots]
        return max(seqs) if seqs else None

    def start(self) -> None:
        self.task = asyncio.get_running_loop().create_task(self._run(), name=f"client-{self.name}")

    async def stop(self) -> None:
        self.reconnect = False
        if self.ws is not None:
            await self.ws.close()
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.task

    async def connected(self, timeout: float = 20) -> None:
        """Until the current socket has its first frame."""
        await wait_until(
            lambda: bool(self.connects) and self.connects[-1].first_at is not None,
            timeout=timeout,
            what=f"{self.name} connected",
        )

    async def send(self, frame: dict[str, Any]) -> bool:
        ws = self.ws
        if ws is None:
            return False
        try:
            await ws.send(json.dumps(frame))
        except ConnectionClosed:
            return False
        if "nonce" in frame:
            self.sent.append((len(self.connects) - 1, str(frame["nonce"])))
        return True

    def unanswered(self) -> list[str]:
        """Nonces sent on the current socket with no `comment.ack` or `error` yet (those
        sent on a socket that died may never be answered)."""
        answered = {str(r["data"].get("nonce")) for r in self.replies if isinstance(r.get("data"), dict)}
        current = len(self.connects) - 1
        return [nonce for index, nonce in self.sent if index == current and nonce not in answered]

    def _next_node(self, attempt: int) -> Server:
        live = [n for n in self.nodes if n.port not in self.dead] or self.nodes
        if attempt == 0 and self.nodes[self.home] in live:
            return self.nodes[self.home]
        return live[(self.home + attempt) % len(live)]

    async def _url(self, node: Server, since: int | None) -> str:
        query = []
        if self.token is not None:
            ticket = await asyncio.to_thread(
                http_json, "POST", f"{node.http}/api/v1/rooms/{self.room_id}/ws-ticket/", token=self.token
            )
            query.append(f"ticket={ticket['ticket']}")
        if since is not None:
            query.append(f"since={since}")
        return f"{node.ws}/ws/rooms/{self.room_id}/" + ("?" + "&".join(query) if query else "")

    async def _run(self) -> None:
        attempt = 0
        while self.reconnect:
            node = self._next_node(attempt)
            since = self.last_seq
            try:
                url = await self._url(node, since)
                ws = await connect(url, open_timeout=5)
            except (OSError, InvalidHandshake, TimeoutError, ConnectionClosed) as exc:
                # The node is down (refused) or answers 503 (Redis restarting): next one.
                if isinstance(exc, OSError):
                    self.dead.add(node.port)
                attempt += 1
                await asyncio.sleep(0.1)
                continue
            except Exception:  # noqa: BLE001 - the ticket request failed (a 503): retry
                attempt += 1
                await asyncio.sleep(0.2)
                continue
            self.ws = ws
            record = Connect(port=node.port, since=since, opened_at=time.monotonic())
            self.connects.append(record)
            try:
                async for text in ws:
                    frame = json.loads(text)
                    for event in frame.get("events", [frame]):
                        self._take(record, event)
            except ConnectionClosed:
                pass
            record.close_code = ws.close_code
            self.ws = None
            if record.close_code in FINAL_CLOSE_CODES:
                return
            # Back off a little when the node sent nothing (1013: Redis is restarting).
            attempt = 1 if record.first_at is not None else attempt + 1
            await asyncio.sleep(0.05 if record.first_at is not None else 0.3)

    def _take(self, record: Connect, event: dict[str, Any]) -> None:
        if record.first_at is None and "seq" in event:
            record.first = event["type"]
            record.first_at = time.monotonic()
        if event["type"] == "room.snapshot":
            self.snapshots.append(event)
        elif "seq" in event:
            self.events.append(event)
        else:
            self.replies.append(event)


# --- The room's history: what every client is checked against ----------------------------------


async def room_history(room_id: int) -> dict[int, str]:
    """seq -> type of every event the room's Redis history holds (the whole show here)."""
    backend = get_backend()
    assert isinstance(backend, RedisBackend)
    first: Any = backend._sync.xrange(backend.room_key(room_id, "history"), count=1)
    if not first:
        return {}
    after = int(first[0][0].split(b"-")[0]) - 1
    events = await backend.areplay(room_id, after, await backend.acurrent_seq(room_id))
    assert events is not None, "the history must hold the whole show"
    return {event.seq: event.type for event in events}


# --- Checks -------------------------------------------------------------------------------------


def check_client(client: RoomClient, truth: dict[int, str], *, every_counter: bool, upto: int) -> None:
    """What the client saw is consistent with the room's history (`truth`: seq -> type).

    - seqs strictly rise over all its connections (nothing twice, nothing out of order),
      and each event is the history's event of that seq;
    - every event after its first snapshot is there, but comments (which viewers may get
      thinned) and, when `every_counter` is off, counter events a replay superseded.

    Only events up to `upto` count (the room goes on publishing `viewers`).
    """
    events = [e for e in client.events if e["seq"] <= upto]
    seqs = [e["seq"] for e in events]
    assert seqs == sorted(set(seqs)), f"{client.name}: duplicates or out of order: {seqs}"
    for event in events:
        assert truth.get(event["seq"]) == event["type"], f"{client.name}: {event} is not the history's"
    start = client.snapshots[0]["seq"]
    seen = set(seqs)
    missing = [
        (seq, kind)
        for seq, kind in sorted(truth.items())
        if start < seq <= upto
        and seq not in seen
        and kind != COMMENT_NEW
        and (every_counter or kind not in SUPERSEDING)
        and not _covered_by_snapshot(client, seq)
    ]
    assert not missing, f"{client.name} missed {missing}"


def _covered_by_snapshot(client: RoomClient, seq: int) -> bool:
    """A later snapshot (a resync) stands for every event before its seq."""
    return any(snapshot["seq"] >= seq for snapshot in client.snapshots[1:])
