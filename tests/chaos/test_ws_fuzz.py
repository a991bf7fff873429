"""A WebSocket fuzz over real sockets against uvicorn.

Random JSON, malformed JSON, wrong types for every field of `comment.send`, `like.send`
and `ping`, unknown types, oversized text frames, binary frames and floods of thousands
of frames, from anonymous and signed-in sockets. Every socket must answer what the
contract says (an `error` event, a `pong`, an ack, or nothing for a valid like) or close
with a code (1008 flood, 1009 too big); never a 1011 or a traceback. Meanwhile two
other sockets in the same room must receive every room event, in seq order; /healthz
must answer, and the server's memory must not run away.

Figures (printed with `-s`) are recorded in docs/reliability/ws-fuzz.md.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings as django_settings
from django.db import connection
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from rooms.broadcast import room_publish
from rooms.models import Room
from tests import factories
from tests.chaos.database_support import call
from tests.servers import Server, database_url, start_uvicorn

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

SEED = 20261126
# Close codes a fuzzed socket may end with: normal, policy (flood), too big (app or
# uvicorn's --ws-max-size). 1011 (a crashed consumer) is not among them.
ALLOWED_CLOSES = {1000, 1008, 1009}
# Server frames a fuzzed socket may see (room events arrive too: the room is live).
REPLY_TYPES = {"error", "pong", "comment.ack"}
WRONG_VALUES: list[Any] = [
    None,
    True,
    0,
    -1,
    51,
    1.5,
    10**30,
    "",
    "x" * 300,
    "\u0000",
    "\ud800",
    [],
    [1, 2],
    {},
    {"nested": {"deep": [1, {"a": None}]}},
]


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def random_json(rng: random.Random, depth: int = 0) -> Any:
    kind = rng.randrange(8 if depth < 4 else 5)
    if kind == 0:
        return None
    if kind == 1:
        return rng.choice([True, False])
    if kind == 2:
        return rng.choice([0, -1, 1, 2**63, -(2**70), rng.randrange(-1000, 1000)])
    if kind == 3:
        return rng.choice([0.5, -1e308, 1e-300, float(rng.random())])
    if kind == 4:
        return "".join(chr(rng.choice([rng.randrange(32, 127), rng.randrange(0x4E00, 0x9FFF)])) for _ in range(8))
    if kind == 5:
        return [random_json(rng, depth + 1) for _ in range(rng.randrange(4))]
    obj = {rng.choice(["type", "text", "nonce", "count", "x"]): random_json(rng, depth + 1) for _ in range(3)}
    if kind == 7:
        obj["type"] = rng.choice(["comment.send", "like.send", "ping", "pong", "room.snapshot", "", "x" * 100])
    return obj


def is_valid_like(value: Any) -> bool:
    if not isinstance(value, dict) or value.get("type") != "like.send":
        return False
    count = value.get("count", 1)
    return type(count) is int and 1 <= count <= 50


def malformed(rng: random.Random) -> str:
    good = json.dumps({"type": "comment.send", "text": "tea", "nonce": 1})
    return rng.choice(
        [
            good[: rng.randrange(1, len(good))],
            good.replace('"', "'"),
            "{" * 50,
            "[" * 2000 + "]" * 2000,
            '{"type": "ping",}',
            "NaN",
            "\ufeff" + good,
            "".join(chr(rng.randrange(1, 0x2FFF)) for _ in range(40)),
        ]
    )


class Fuzzed:
    """One fuzzing socket and what it saw."""

    def __init__(self, socket: ClientConnection) -> None:
        self.socket = socket
        self.replies: list[dict[str, Any]] = []
        self.unexpected: list[Any] = []
        self.close_code: int | None = None

    async def read(self, quiet: float = 0.3, *, first_reply: bool = False) -> None:
        """Read until `quiet` passes without a reply (room events keep coming: the marks
        below), or the socket closes; or only until the first reply."""
        until = time.monotonic() + quiet
        while self.close_code is None:
            try:
                raw = await asyncio.wait_for(self.socket.recv(), max(0.0, until - time.monotonic()))
            except TimeoutError:
                return
            except ConnectionClosed as closed:
                self.close_code = closed.rcvd.code if closed.rcvd else 1006
                return
            try:
                frame = json.loads(raw)
            except ValueError:
                self.unexpected.append(raw[:200])
                continue
            for event in frame.get("events", [frame]):
                if event.get("type") in REPLY_TYPES:
                    self.replies.append(event)
                    until = time.monotonic() + quiet
                    if first_reply:
                        return
                elif "seq" not in event:  # a room event has a seq; anything else is a stray
                    self.unexpected.append(event)

    async def send(self, frame: str | bytes) -> bool:
        try:
            await self.socket.send(frame)
        except ConnectionClosed as closed:
            self.close_code = closed.rcvd.code if closed.rcvd else 1006
            return False
        return True

    def errors(self) -> list[dict[str, Any]]:
        return [reply for reply in self.replies if reply["type"] == "error"]


async def open_fuzzed(url: str) -> Fuzzed:
    socket = await connect(url, max_size=None, ping_interval=None, open_timeout=10)
    fuzzed = Fuzzed(socket)
    snapshot = json.loads(await asyncio.wait_for(socket.recv(), 10))
    assert snapshot["type"] == "room.snapshot"
    return fuzzed


class Observer:
    """A well-behaved socket that records the room events' seqs."""

    def __init__(self, socket: ClientConnection) -> None:
        self.socket = socket
        self.seqs: list[int] = []
        self.marks: list[int] = []
        self.task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        async for raw in self.socket:
            frame = json.loads(raw)
            for event in frame.get("events", [frame]):
                if "seq" in event and event["type"] != "room.snapshot":
                    self.seqs.append(event["seq"])
                    if event["type"] == "items.updated" and event["data"].get("fuzz_mark") is not None:
                        self.marks.append(event["data"]["fuzz_mark"])


async def fuzz(server: Server, room_id: int, fuzzer_token: str, watcher_token: str) -> dict[str, Any]:
    rng = random.Random(SEED)
    base = f"{server.ws}/ws/rooms/{room_id}/"
    figures: dict[str, Any] = {"sockets": 0, "frames_sent": 0, "closes": {}}
    problems: list[str] = []
    started = time.monotonic()

    async def signed_in(token: str = fuzzer_token) -> str:
        url = f"{server.http}/api/v1/rooms/{room_id}/ws-ticket/"
        answer = await asyncio.to_thread(call, "POST", url, token=token)
        assert answer.status == 201, answer
        assert answer.body is not None
        return f"{base}?ticket={answer.body['ticket']}"

    def lap(name: str) -> None:
        figures[f"{name} s"] = round(time.monotonic() - started, 1)

    async def finish(fuzzed: Fuzzed, case: str) -> Fuzzed:
        await fuzzed.read()
        figures["sockets"] += 1
        if fuzzed.close_code is not None:
            figures["closes"][fuzzed.close_code] = figures["closes"].get(fuzzed.close_code, 0) + 1
            if fuzzed.close_code not in ALLOWED_CLOSES:
                problems.append(f"{case}: closed {fuzzed.close_code}")
        else:
            await fuzzed.socket.close()
        if fuzzed.unexpected:
            problems.append(f"{case}: unexpected frames {fuzzed.unexpected[:3]}")
        return fuzzed

    # The observers: one anonymous, one signed in; the mark publisher runs meanwhile.
    observers = [
        Observer(await connect(base, ping_interval=None)),
        Observer(await connect(await signed_in(watcher_token))),
    ]
    await asyncio.sleep(0.5)
    marks_sent: list[int] = []
    stop_marks = asyncio.Event()

    async def publish_marks() -> None:
        mark = 0
        while not stop_marks.is_set():
            await asyncio.to_thread(room_publish, room_id, "items.updated", {"items": [], "fuzz_mark": mark})
            marks_sent.append(mark)
            mark += 1
            await asyncio.sleep(0.1)

    marker = asyncio.create_task(publish_marks())
    rss_before = rss_kib(server.process.pid)

    async def expect_answer(fuzzed: Fuzzed, frame: str, case: str) -> None:
        replies = len(fuzzed.replies)
        if not await fuzzed.send(frame):
            return
        figures["frames_sent"] += 1
        deadline = time.monotonic() + 5
        while len(fuzzed.replies) == replies and fuzzed.close_code is None and time.monotonic() < deadline:
            await fuzzed.read(quiet=0.5, first_reply=True)
        if len(fuzzed.replies) == replies:
            problems.append(f"{case}: no answer to {frame[:200]!r}")

    # 1. Random JSON and malformed JSON, a frame at a time (under the flood limit: 90 a
    # socket): each gets its answer, an `error` unless it happens to be a valid frame
    # (a valid like gets none).
    for _ in range(4):
        fuzzed = await open_fuzzed(await signed_in())
        for _ in range(90):
            value = random_json(rng)
            if is_valid_like(value):
                continue
            await expect_answer(fuzzed, json.dumps(value), "random JSON")
        await finish(fuzzed, "random JSON")
    fuzzed = await open_fuzzed(await signed_in())
    for _ in range(90):
        await expect_answer(fuzzed, malformed(rng), "malformed")
    await finish(fuzzed, "malformed")
    if len(fuzzed.errors()) != len(fuzzed.replies):
        problems.append("malformed: a reply other than `error`")

    lap("random and malformed JSON")

    # 2. Wrong types for every field of every client frame, signed in and anonymous.
    # Each frame gets one reply: an `error`, or (a signed-in comment whose odd nonce is
    # still a valid one: None, True, 0, "") its ack.
    shapes = [
        ("comment.send", "text", {"nonce": "n"}),
        ("comment.send", "nonce", {"text": "tea"}),
        ("like.send", "count", {}),
        ("ping", "type", {}),
    ]
    for who, url in (("signed in", await signed_in()), ("anonymous", base)):
        fuzzed = await open_fuzzed(url)
        for frame_type, field, rest in shapes:
            for value in WRONG_VALUES:
                await expect_answer(fuzzed, json.dumps({"type": frame_type, **rest, field: value}), who)
        await finish(fuzzed, f"wrong types ({who})")

    lap("wrong types")

    # 3. Unknown types.
    fuzzed = await open_fuzzed(await signed_in())
    for frame_type in ["dance", "COMMENT.SEND", "comment.send ", "room.snapshot", "pong", "batch", "x" * 3000]:
        await expect_answer(fuzzed, json.dumps({"type": frame_type}), "unknown types")
    await finish(fuzzed, "unknown types")
    if len(fuzzed.errors()) != 7:
        problems.append(f"unknown types: {len(fuzzed.errors())} errors for 7 frames")

    # 4. Oversized text frames and binary frames, each on a fresh socket.
    for case, frame, codes in (
        ("text over the app's limit", json.dumps({"type": "comment.send", "text": "x" * 10_000}), {1009}),
        ("text over uvicorn's limit", "x" * 1_000_000, {1009}),
        ("binary", b'{"type": "ping"}', None),
        ("big binary", bytes(rng.randrange(256) for _ in range(100_000)), {1009}),
    ):
        fuzzed = await open_fuzzed(await signed_in())
        await fuzzed.send(frame)
        figures["frames_sent"] += 1
        await finish(fuzzed, case)
        if codes is None:
            if not fuzzed.errors():
                problems.append(f"{case}: no error")
        elif fuzzed.close_code not in codes:
            problems.append(f"{case}: closed {fuzzed.close_code}, wanted {codes}")

    lap("unknown types, oversized and binary frames")

    # 5. Floods: thousands of frames as fast as the socket takes them.
    for case, frame in (
        ("ping flood", json.dumps({"type": "ping"})),
        ("comment flood", json.dumps({"type": "comment.send", "text": "buy buy buy", "nonce": 1})),
        ("garbage flood", "}{"),
        ("like flood", json.dumps({"type": "like.send", "count": 50})),
    ):
        fuzzed = await open_fuzzed(await signed_in())
        sent = 0
        for _ in range(5000):
            if not await fuzzed.send(frame):
                break
            sent += 1
        figures["frames_sent"] += sent
        deadline = time.monotonic() + 20
        while fuzzed.close_code is None and time.monotonic() < deadline:
            await fuzzed.read(quiet=0.5)
        await finish(fuzzed, case)
        figures[f"{case}: frames sent before the close"] = sent
        if fuzzed.close_code != 1008:
            problems.append(f"{case}: closed {fuzzed.close_code}, wanted 1008")

    lap("floods")
    health = await asyncio.to_thread(call, "GET", f"{server.http}/healthz")
    rss_after = rss_kib(server.process.pid)
    stop_marks.set()
    await marker
    await asyncio.sleep(1)
    for observer in observers:
        await observer.socket.close()
        await observer.task
    figures.update(
        {
            "healthz": health.status,
            "rss_before_mib": rss_before // 1024,
            "rss_after_mib": rss_after // 1024,
            "marks_published": len(marks_sent),
            "marks_seen": [len(observer.marks) for observer in observers],
        }
    )
    for observer in observers:
        if observer.marks != marks_sent:
            problems.append(f"an observer saw {len(observer.marks)} of {len(marks_sent)} marks")
        if observer.seqs != sorted(set(observer.seqs)):
            problems.append("an observer saw seqs out of order or twice")
    figures["problems"] = problems
    return figures


def test_ws_fuzz_answers_errors_or_closes_and_spares_the_others(tmp_path, realtime_prefix):
    if connection.vendor != "postgresql" or not django_settings.REDIS_URL:
        pytest.skip("needs PostgreSQL and Redis (DATABASE_URL, REDIS_URL)")
    room = factories.RoomFactory.create(status=Room.Status.LIVE)
    fuzzer = factories.UserFactory.create(username="fuzzer")
    watcher = factories.UserFactory.create(username="watcher")
    server = start_uvicorn(
        {
            "DATABASE_URL": database_url(),
            "REDIS_URL": django_settings.REDIS_URL,
            "LIVESHOP_REDIS_PREFIX": realtime_prefix,
            "CELERY_BROKER_URL": "memory://",
            "LIVESHOP_VAR_DIR": str(tmp_path),
        },
        tmp_path,
        name="ws-fuzz",
    )
    try:
        figures = asyncio.run(
            asyncio.wait_for(fuzz(server, room.pk, factories.api_token(fuzzer), factories.api_token(watcher)), 180)
        )
        assert server.process.poll() is None
    finally:
        server.stop()
    print(f"\nws fuzz: {figures}")
    log = server.log()
    assert figures["problems"] == []
    assert figures["healthz"] == 200
    assert figures["rss_after_mib"] - figures["rss_before_mib"] < 100
    assert "Traceback" not in log, log[-3000:]
    assert "Exception in ASGI application" not in log
