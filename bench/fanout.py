"""Benchmark 1 of docs/PERFORMANCE.md: the room fanout, against a bare `websockets` server.

    flock /tmp/liveshop-bench.lock .venv/bin/python bench/fanout.py
    flock /tmp/liveshop-bench.lock .venv/bin/python bench/fanout.py --sockets 10000 --loads busy --no-deflate

For each socket count it starts two servers, both on core 0 of the machine:

- bare: a `websockets` server (uvloop) that broadcasts every message of a Redis channel
  to all its sockets with `websockets.broadcast`: the reference, measured in the same run;
- liveshop: `uvicorn liveshop.asgi:application --ws websockets-sansio` (one process), its
  room hub fed by `room_publish` through Redis, as in production.

Each gets its sockets from a client process (bench/ws_client.py) on core 1, and the loads
alternate between the two servers, so background work on the machine falls on both:

- paced: 20 events, 150 ms apart: every event is a frame of its own for both servers,
  so CPU per frame compares the fanout itself; run 3 times each, the median kept;
- burst: 30 events published as fast as possible (liveshop coalesces them into `batch`
  frames; the bare server sends 30 frames);
- busy: a show for 20 s: 100 comments/s through `comment_create` (the service the socket
  calls), 20 likes/s sent by clients as `like.send`, 2 `order.placed`/s, 1 `gift.sent`/s,
  a flash sale with 2 `flash.stock`/s, 1 % of the clients frozen (they stop reading).
  The bare server gets the same events as one batch frame per 100 ms, all comments
  included (the reference of PERFORMANCE.md: "one 20-comment frame every 100 ms");
- paced with permessage-deflate (the smallest socket count, once): both servers
  compress, the clients negotiate it; to decide whether to turn it on.

It reports frames and events delivered, frames/s and events/s, server CPU per frame and
per event (from /proc), the ratio to the bare server, publish-to-receipt latency p50/p99
(from the event's `ts`, on 50 probe sockets), non-comment events lost, and RSS per idle
socket; prints a table and writes JSON to bench/results/. Needs Redis (REDIS_URL, default
redis://127.0.0.1:6379/0; it works under a fresh key prefix and deletes it after). The
database is a throwaway SQLite file.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

BASE_DIR = Path(__file__).resolve().parent.parent
RESULTS = BASE_DIR / "bench" / "results"
SERVER_CORE = 0
CLIENT_CORE = 1
CLOCK_TICK = os.sysconf("SC_CLK_TCK")
BUSY_SECONDS = 20.0
PACED_EVENTS = 20
PACED_REPEATS = 3
EVENT_DATA = {"buyer": "L**", "district": "Wulong", "title": "Xiannv Black Tea, 250 g gift box", "quantity": 2}


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


# --- Processes --------------------------------------------------------------------------------


def _pin(core: int) -> Any:
    def pin() -> None:
        if hasattr(os, "sched_setaffinity") and os.cpu_count() and os.cpu_count() > core:  # type: ignore[operator]
            os.sched_setaffinity(0, {core})

    return pin


def free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class Server:
    kind: str
    process: subprocess.Popen[bytes]
    port: int

    def cpu_seconds(self) -> float:
        fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / CLOCK_TICK  # utime + stime

    def rss_kb(self) -> int:
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        return 0

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def start_server(kind: str, env: dict[str, str], *, channel: str, deflate: bool, log_dir: Path) -> Server:
    port = free_port()
    if kind == "liveshop":
        argv = [
            str(Path(sys.executable).parent / "uvicorn"),
            "liveshop.asgi:application",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--ws",
            "websockets-sansio",
            "--ws-per-message-deflate",
            "true" if deflate else "false",
            "--no-access-log",
            "--log-level",
            "warning",
        ]
    else:
        argv = [sys.executable, __file__, "--bare-server", str(port), "--channel", channel]
        if deflate:
            argv.append("--deflate")
    out = (log_dir / f"{kind}-{port}.log").open("wb")
    process = subprocess.Popen(
        argv, cwd=BASE_DIR, env=env, stdout=out, stderr=subprocess.STDOUT, preexec_fn=_pin(SERVER_CORE)
    )
    server = Server(kind, process, port)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{kind} server exited: see {out.name}")
        try:
            if kind == "liveshop":
                urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1).close()
            else:
                import socket

                socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return server
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"{kind} server did not start")


class Clients:
    """The client process: N sockets on core 1, driven by one-line commands."""

    def __init__(
        self, url: str, count: int, env: dict[str, str], *, tickets: list[str], deflate: bool, snapshot: bool
    ) -> None:
        argv = [sys.executable, str(BASE_DIR / "bench" / "ws_client.py"), "--url", url, "--sockets", str(count)]
        argv += ["--tickets", ",".join(tickets)]
        if deflate:
            argv.append("--deflate")
        if snapshot:
            argv.append("--snapshot")
        self.process = subprocess.Popen(
            argv,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            preexec_fn=_pin(CLIENT_CORE),
            text=True,
        )
        self.connected = self._answer()

    def _answer(self) -> Any:
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line:
            raise RuntimeError("the client process died")
        return json.loads(line)

    def command(self, line: str) -> Any:
        assert self.process.stdin is not None
        self.process.stdin.write(line + "\n")
        self.process.stdin.flush()
        return self._answer()

    def wait_quiet(self, *, quiet_s: float = 1.0, timeout_s: float = 60) -> dict[str, Any]:
        """Report once the clients have received nothing new for `quiet_s`."""
        deadline = time.monotonic() + timeout_s
        last_total = -1
        last_change = time.monotonic()
        while True:
            report = self.command("report")
            total = sum(report["events"])
            now = time.monotonic()
            if total != last_total:
                last_total, last_change = total, now
            elif now - last_change >= quiet_s or now > deadline:
                return report
            time.sleep(0.2)

    def close(self) -> None:
        with contextlib.suppress(BrokenPipeError, RuntimeError, json.JSONDecodeError):
            self.command("quit")
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()


# --- The bare reference server ---------------------------------------------------------------------


def bare_server(port: int, channel: str, deflate: bool) -> None:

    import redis.asyncio as aioredis
    import uvloop
    from websockets.asyncio.server import broadcast, serve

    async def main() -> None:
        clients: set[Any] = set()

        async def handler(websocket: Any) -> None:
            clients.add(websocket)
            try:
                await websocket.wait_closed()
            finally:
                clients.discard(websocket)

        async with serve(handler, "127.0.0.1", port, compression="deflate" if deflate else None, max_size=2**20):
            client = aioredis.Redis.from_url(os.environ["REDIS_URL"])
            pubsub = client.pubsub()
            await pubsub.subscribe(channel)
            async for message in pubsub.listen():
                if message["type"] == "message":
                    broadcast(clients, message["data"].decode())

    uvloop.run(main())


# --- Measuring ---------------------------------------------------------------------------------------


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


@dataclass
class Result:
    sockets: int
    load: str
    server: str
    frames: int = 0
    events: int = 0
    seconds: float = 0.0
    cpu_s: float = 0.0
    p50_ms: float | None = None
    p99_ms: float | None = None
    p99_by_5s_window_ms: list[float | None] = field(default_factory=list)
    non_comment_expected: int = 0
    sockets_missing_events: int = 0
    non_comment_lost: int = 0
    frames_per_socket_s: float = 0.0
    frozen: int = 0
    published: dict[str, int] = field(default_factory=dict)
    rss_kb_per_socket: float | None = None
    connect_s: float | None = None
    cpu_us_per_frame_reps: list[float] = field(default_factory=list)

    @property
    def cpu_us_per_frame(self) -> float | None:
        return self.cpu_s * 1e6 / self.frames if self.frames else None

    @property
    def cpu_us_per_event(self) -> float | None:
        return self.cpu_s * 1e6 / self.events if self.events else None

    def as_dict(self) -> dict[str, Any]:
        data = dict(self.__dict__)
        data["cpu_us_per_frame"] = self.cpu_us_per_frame
        data["cpu_us_per_event"] = self.cpu_us_per_event
        data["frames_per_s"] = self.frames / self.seconds if self.seconds else None
        data["events_per_s"] = self.events / self.seconds if self.seconds else None
        return data


def summarize(result: Result, report: dict[str, Any], *, started: float, expected_non_comment: int) -> Result:
    frozen = report["frozen"]
    live = [i for i, f in enumerate(frozen) if not f]
    result.frames = sum(report["frames"])
    result.events = sum(report["events"])
    result.frozen = sum(frozen)
    latencies = [(at, ms) for probe in report["probes"] for at, ms in probe["latencies"]]
    if latencies:
        result.seconds = max(0.001, max(at for at, _ in latencies) - started)
        result.p50_ms = percentile([ms for _, ms in latencies], 0.50)
        result.p99_ms = percentile([ms for _, ms in latencies], 0.99)
        if result.load == "busy":
            windows = [[ms for at, ms in latencies if started + w * 5 <= at < started + (w + 1) * 5] for w in range(4)]
            result.p99_by_5s_window_ms = [percentile(w, 0.99) for w in windows]
    result.non_comment_expected = expected_non_comment
    received = [report["events"][i] - report["comments"][i] for i in live]
    short = [expected_non_comment - r for r in received if r < expected_non_comment]
    result.sockets_missing_events = len(short)
    result.non_comment_lost = sum(short)
    if result.seconds:
        result.frames_per_socket_s = sum(report["frames"][i] for i in live) / max(1, len(live)) / result.seconds
    return result


# --- The room, its people, and publishing ----------------------------------------------------------------


class Show:
    """The Django side: a live room with a shelf, commenters, and ways to publish into it."""

    def __init__(self, commenters: int, likers: int) -> None:
        from django.core.management import call_command

        call_command("migrate", verbosity=0)
        from catalog.models import Product, Shop, Sku
        from liveshop.models import User
        from rooms.models import Host, Room, RoomItem

        owner = User.objects.create(username="bench-farmer", display_name="Farmer Chen")
        host = Host.objects.create(user=owner, kind=Host.Kind.FARMER, district="Wulong", verified=True)
        shop = Shop.objects.create(owner=owner, name="Wulong Hills", district="Wulong")
        product = Product.objects.create(shop=shop, title="Xiannv Black Tea")
        sku = Sku.objects.create(product=product, name="250 g", price=6800, stock=1000)
        self.room = Room.objects.create(host=host, title="Bench show", status=Room.Status.LIVE)
        self.item = RoomItem.objects.create(room=self.room, sku=sku)
        # The bare server's busy show creates its comments here, nobody's room: the bench
        # then does the same work for both servers on the clients' core.
        self.shadow_room = Room.objects.create(host=host, title="Bench shadow", status=Room.Status.LIVE)
        User.objects.bulk_create(
            [User(username=f"bench-{i}", display_name=f"Viewer {i}", password="!") for i in range(commenters + likers)]
        )
        users = list(User.objects.filter(username__startswith="bench-").exclude(pk=owner.pk).order_by("pk"))
        self.commenters = users[:commenters]
        self.likers = users[commenters:]
        self.bare_seq = 0

    def tickets(self) -> list[str]:
        from rooms.services import ws_ticket_issue

        return [ws_ticket_issue(user=user, room=self.room)[0] for user in self.likers]

    def frame(self, event_type: str, data: dict[str, Any]) -> Any:
        """An event as the bare server gets it: the same encoding, numbered here."""
        from rooms.realtime.events import encode_event

        self.bare_seq += 1
        return encode_event(event_type, data).event(self.bare_seq)


class Publisher:
    """Publishes an event to the server under test, the way that server is fed."""

    def __init__(self, kind: str, show: Show, channel: str, redis_url: str) -> None:
        import redis

        self.kind = kind
        self.show = show
        self.channel = channel
        self.redis = redis.Redis.from_url(redis_url)
        self.pending: list[Any] = []  # bare, busy show: the events of the current 100 ms
        self.counts: dict[str, int] = {}
        self.comment_index = 0

    def event(self, event_type: str, data: dict[str, Any], *, batch: bool = False) -> None:
        self.counts[event_type] = self.counts.get(event_type, 0) + 1
        if self.kind == "liveshop":
            from rooms.broadcast import room_publish

            room_publish(self.show.room.pk, event_type, data)
            return
        event = self.show.frame(event_type, data)
        if batch:
            self.pending.append(event)
        else:
            self.redis.publish(self.channel, event.frame)

    def comment(self) -> None:
        """A viewer's comment through the service the room socket calls."""
        from rooms.services import comment_create

        user = self.show.commenters[self.comment_index % len(self.show.commenters)]
        self.comment_index += 1
        text = f"Is the tea from this spring? #{self.comment_index}"
        self.counts["comment.new"] = self.counts.get("comment.new", 0) + 1
        if self.kind == "liveshop":
            comment_create(room=self.show.room, user=user, text=text, role="viewer")
            return
        comment = comment_create(room=self.show.shadow_room, user=user, text=text, role="viewer")
        data = {"id": comment.pk, "user": {"id": user.pk, "display_name": user.display_name}, "text": text}
        self.pending.append(self.show.frame("comment.new", data))

    def flush_batch(self) -> None:
        from rooms.realtime.events import batch_frame

        if self.pending:
            self.redis.publish(self.channel, batch_frame(self.pending))
            self.pending = []

    def current_seq(self) -> int:
        if self.kind == "bare":
            return self.show.bare_seq
        from rooms.realtime.backend import get_backend

        backend: Any = get_backend()
        return int(self.redis.get(backend.room_key(self.show.room.pk, "seq")) or 0)

    def non_comment_events_since(self, from_seq: int) -> int:
        """The non-comment events of a load. For liveshop the room's history is the truth:
        it holds the `like.total` and `viewers` events its hub published too."""
        if self.kind == "bare":
            return sum(n for event_type, n in self.counts.items() if event_type != "comment.new")
        import asyncio

        from rooms.realtime.backend import get_backend

        events = asyncio.run(get_backend().areplay(self.show.room.pk, from_seq, self.current_seq())) or []
        return sum(1 for event in events if event.type != "comment.new")


# --- Loads ---------------------------------------------------------------------------------------------------


class IdleCpu:
    """The CPU a server spends while its clients sit quiet (keepalive, heartbeat): measured
    once per server and taken off the quiet wait that ends every load."""

    def __init__(self, server: Server, seconds: float = 1.5) -> None:
        cpu = server.cpu_seconds()
        time.sleep(seconds)
        self.per_s = (server.cpu_seconds() - cpu) / seconds


def run_paced_or_burst(
    load: str, server: Server, clients: Clients, publisher: Publisher, idle: IdleCpu, result: Result
) -> Result:
    clients.command("reset")
    cpu = server.cpu_seconds()
    started = time.time()
    count = PACED_EVENTS if load == "paced" else 30
    for i in range(count):
        publisher.event("order.placed", {**EVENT_DATA, "i": i})
        if load == "paced":
            time.sleep(0.15)
    report = clients.wait_quiet(quiet_s=1.0)
    result.cpu_s = server.cpu_seconds() - cpu - idle.per_s * 1.0
    return summarize(result, report, started=started, expected_non_comment=count)


def run_busy(server: Server, clients: Clients, publisher: Publisher, idle: IdleCpu, result: Result) -> Result:
    clients.command(f"freeze {max(1, result.sockets // 100)}")
    clients.command("reset")
    publisher.counts = {}
    from_seq = publisher.current_seq()
    cpu = server.cpu_seconds()
    started = time.time()
    if publisher.kind == "liveshop":
        clients.command(f"likes 20 {BUSY_SECONDS}")  # the clients like; the hub totals
    publisher.event("flash.started", {"flash_sale": {"id": 1, "item": 1, "price": 3900, "remaining": 100}})
    rates = {"comment": 100.0, "order": 2.0, "gift": 1.0, "flash": 2.0, "likes": 4.0, "batch": 10.0}
    next_due = dict.fromkeys(rates, time.monotonic())
    end = time.monotonic() + BUSY_SECONDS
    remaining = 100
    likes = 0
    gift = {"user": {"id": 1, "display_name": "Viewer"}, "gift": {"id": 1, "name": "Tea leaf"}, "quantity": 1}
    while (now := time.monotonic()) < end:
        for stream, due in next_due.items():
            if now < due:
                continue
            next_due[stream] = due + 1 / rates[stream]
            if stream == "comment":
                publisher.comment()
            elif stream == "order":
                publisher.event("order.placed", EVENT_DATA, batch=True)
            elif stream == "gift":
                publisher.event("gift.sent", {**gift, "coins": 10}, batch=True)
            elif stream == "flash":
                remaining = max(0, remaining - 1)
                publisher.event("flash.stock", {"flash_sale": 1, "remaining": remaining}, batch=True)
            elif stream == "likes" and publisher.kind == "bare":
                likes += 5  # what the hub's like.total would say, at its rate
                publisher.event("like.total", {"likes": likes}, batch=True)
            elif stream == "batch" and publisher.kind == "bare":
                publisher.flush_batch()
        time.sleep(max(0.0, min(next_due.values()) - time.monotonic()))
    publisher.event("flash.ended", {"flash_sale": 1, "sold": 100 - remaining}, batch=True)
    publisher.flush_batch()
    report = clients.wait_quiet(quiet_s=1.5, timeout_s=60)
    result.cpu_s = server.cpu_seconds() - cpu - idle.per_s * 1.5
    result.published = dict(publisher.counts)
    expected = publisher.non_comment_events_since(from_seq)
    return summarize(result, report, started=started, expected_non_comment=expected)


# --- The run --------------------------------------------------------------------------------------------------


def run(plan: list[tuple[int, list[str], bool]], redis_url: str, servers: list[str]) -> list[Result]:
    """Run each (sockets, loads, deflate) of the plan on both servers, in one environment."""
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    most = max(sockets for sockets, _, _ in plan)
    if hard < most * 2 + 100:
        log(f"warning: the open-file limit ({hard}) is low for {most} sockets")
    workdir = Path(tempfile.mkdtemp(prefix="liveshop-bench-"))
    prefix = f"liveshop-bench-{uuid.uuid4().hex[:8]}"
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "CELERY_BROKER_URL"}} | {
        "LIVESHOP_VAR_DIR": str(workdir / "var"),
        "REDIS_URL": redis_url,
        "LIVESHOP_REDIS_PREFIX": prefix,
        "REALTIME_BACKEND": "redis",
        "DEBUG": "0",
        "SECRET_KEY": "bench-only-secret",
        "LOG_LEVEL": "WARNING",
        "DJANGO_SETTINGS_MODULE": "liveshop.settings",
        "PYTHONUNBUFFERED": "1",
    }
    os.environ.clear()
    os.environ.update(env)
    sys.path.insert(0, str(BASE_DIR))
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {CLIENT_CORE})
    import django

    django.setup()
    log(f"setting up the show (SQLite in {workdir}, Redis {redis_url}, key prefix {prefix})")
    show = Show(commenters=400, likers=20)
    channel = f"{prefix}:bare"
    results: list[Result] = []
    try:
        for sockets, loads, deflate in plan:
            results += run_plan_item(sockets, loads, deflate, servers, show, env, channel, workdir)
    finally:
        import redis

        client = redis.Redis.from_url(redis_url)
        for key in client.scan_iter(match=f"{prefix}:*", count=1000):
            client.unlink(key)
        shutil.rmtree(workdir, ignore_errors=True)
    return results


@dataclass
class Side:
    """One server under test with its clients, open for the loads of one socket count."""

    kind: str
    label: str
    server: Server
    clients: Clients
    publisher: Publisher
    idle: IdleCpu
    rss_kb_per_socket: float
    connect_s: float

    def close(self) -> None:
        self.clients.close()
        self.server.stop()


def open_side(
    kind: str, sockets: int, busy: bool, deflate: bool, show: Show, env: dict[str, str], channel: str, workdir: Path
) -> Side:
    label = f"{kind}{' +deflate' if deflate else ''}"
    server = start_server(kind, env, channel=channel, deflate=deflate, log_dir=workdir)
    log(f"{label}: server pid {server.process.pid}; opening {sockets:,} sockets")
    url = f"ws://127.0.0.1:{server.port}/ws/rooms/{show.room.pk}/"
    try:
        # Warm up (imports, the hub, the snapshot cache), then measure memory at rest.
        snapshot = kind == "liveshop"
        Clients(url, 1, env, tickets=[], deflate=deflate, snapshot=snapshot).close()
        time.sleep(0.5)
        rss_before = server.rss_kb()
        tickets = show.tickets() if kind == "liveshop" and busy else []
        started = time.monotonic()
        clients = Clients(url, sockets, env, tickets=tickets, deflate=deflate, snapshot=snapshot)
    except BaseException:
        server.stop()
        raise
    connect_s = time.monotonic() - started
    log(f"{label}: {clients.connected['connected']:,} sockets open in {connect_s:.1f} s")
    time.sleep(1.5)  # the connect storm's `viewers` events settle
    rss_per_socket = (server.rss_kb() - rss_before) / sockets
    publisher = Publisher(kind, show, channel, env["REDIS_URL"])
    return Side(kind, label, server, clients, publisher, IdleCpu(server), rss_per_socket, connect_s)


def run_load(side: Side, sockets: int, load: str, deflate: bool) -> Result:
    name = f"{load}+deflate" if deflate else load
    result = Result(sockets=sockets, load=name, server=side.kind, rss_kb_per_socket=side.rss_kb_per_socket)
    result.connect_s = side.connect_s
    if load == "busy":
        run_busy(side.server, side.clients, side.publisher, side.idle, result)
    else:
        run_paced_or_burst(load, side.server, side.clients, side.publisher, side.idle, result)
    log(
        f"{side.label}: {name} on {sockets:,} sockets: {result.frames:,} frames, {result.events:,} events, "
        f"{_fmt(result.cpu_us_per_frame)} µs/frame, p99 {_fmt(result.p99_ms)} ms, "
        f"non-comment lost {result.non_comment_lost}"
    )
    return result


def run_plan_item(
    sockets: int,
    loads: list[str],
    deflate: bool,
    kinds: list[str],
    show: Show,
    env: dict[str, str],
    channel: str,
    workdir: Path,
) -> list[Result]:
    """Both servers stay up with their sockets while the loads alternate between them, so a
    burst of background work on the machine falls on both alike; paced repeats 3 times and
    keeps the median."""
    sides: list[Side] = []
    try:
        for kind in kinds:
            sides.append(open_side(kind, sockets, "busy" in loads, deflate, show, env, channel, workdir))
        results: list[Result] = []
        for load in loads:
            if load == "paced":
                reps: dict[str, list[Result]] = {side.kind: [] for side in sides}
                for _ in range(PACED_REPEATS):
                    for side in sides:
                        reps[side.kind].append(run_load(side, sockets, load, deflate))
                for side in sides:
                    ordered = sorted(reps[side.kind], key=lambda r: r.cpu_us_per_frame or 0)
                    median = ordered[len(ordered) // 2]
                    median.cpu_us_per_frame_reps = [r.cpu_us_per_frame or 0 for r in reps[side.kind]]
                    results.append(median)
            else:
                results += [run_load(side, sockets, load, deflate) for side in sides]
        return results
    finally:
        for side in sides:
            side.close()


# --- Output -------------------------------------------------------------------------------------------------


def _fmt(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def table(results: list[Result]) -> str:
    header = (
        "| sockets | load | server | frames | events | frames/s | events/s | CPU µs/frame | CPU µs/event "
        "| vs bare, per frame | p50 ms | p99 ms | non-comment lost | frames/s a socket | RSS KB/socket |"
    )
    lines = [header, "|" + "---|" * (header.count("|") - 1)]
    bare = {(r.sockets, r.load): r for r in results if r.server == "bare"}
    for r in results:
        reference = bare.get((r.sockets, r.load))
        ratio = None
        if r.server != "bare" and reference and r.cpu_us_per_frame and reference.cpu_us_per_frame:
            ratio = r.cpu_us_per_frame / reference.cpu_us_per_frame
        frames_s = r.frames / r.seconds if r.seconds else None
        events_s = r.events / r.seconds if r.seconds else None
        lines.append(
            f"| {r.sockets:,} | {r.load} | {r.server} | {r.frames:,} | {r.events:,} | {_fmt(frames_s, 0)} "
            f"| {_fmt(events_s, 0)} | {_fmt(r.cpu_us_per_frame)} | {_fmt(r.cpu_us_per_event)} "
            f"| {_fmt(ratio, 2) + 'x' if ratio else '-'} | {_fmt(r.p50_ms)} | {_fmt(r.p99_ms)} "
            f"| {r.non_comment_lost} of {r.non_comment_expected} | {_fmt(r.frames_per_socket_s)} "
            f"| {_fmt(r.rss_kb_per_socket)} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sockets", default="1000,5000", help="socket counts, comma separated")
    parser.add_argument("--loads", default="paced,burst,busy", help="of paced, burst, busy")
    parser.add_argument(
        "--busy-at", default="5000", help="socket counts that run the busy show (20 s a server; the goal names 5,000)"
    )
    parser.add_argument("--no-deflate", dest="deflate", action="store_false", help="skip the deflate comparison")
    parser.add_argument("--servers", default="bare,liveshop", help="bare, liveshop (both: the comparison)")
    parser.add_argument("--bare-server", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--channel", help=argparse.SUPPRESS)
    parser.add_argument("--deflate", dest="bare_deflate", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.bare_server:
        bare_server(args.bare_server, args.channel, args.bare_deflate)
        return
    counts = [int(s) for s in args.sockets.split(",")]
    loads = [load for load in args.loads.split(",") if load]
    busy_at = {int(s) for s in args.busy_at.split(",") if s} | ({counts[0]} if len(counts) == 1 else set())
    plan = [(n, [load for load in loads if load != "busy" or n in busy_at], False) for n in counts]
    if args.deflate:
        plan.append((min(counts), ["paced"], True))
    plan = [(n, these, deflate) for n, these, deflate in plan if these]
    started = time.monotonic()
    command = " ".join(sys.argv)
    servers = [kind for kind in ("bare", "liveshop") if kind in args.servers.split(",")]
    results = run(plan, os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"), servers)
    print()
    print(table(results))
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"fanout-{time.strftime('%Y%m%d-%H%M%S')}.json"
    machine = {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()}
    body = {"command": command, "seconds": round(time.monotonic() - started, 1), "machine": machine}
    path.write_text(json.dumps({**body, "results": [r.as_dict() for r in results]}, indent=2, default=str))
    print(f"\nJSON: {path.relative_to(BASE_DIR)}  ({time.monotonic() - started:.0f} s)")


if __name__ == "__main__":
    main()
