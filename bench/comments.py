"""Benchmark: comment intake through the public socket, against a minimal asyncio server.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/liveshop_bench_comments \\
    REDIS_URL=redis://127.0.0.1:6379/13 flock /tmp/liveshop-bench.lock \\
    .venv/bin/python bench/comments.py [--sockets 250,2500] [--seconds 10] [--paced 500]

Two servers, each alone on core 0, take the same comments from the same clients:

- liveshop: `uvicorn liveshop.asgi:application` (one process), as in production: every
  comment judged (room state, mutes, account age, banned words, giveaway keywords),
  limited (per user, per address, slow mode: the limits are raised so that the load is
  not refused, but every comment still takes them), written, acknowledged, published.
- reference: a minimal asyncio server (`--reference-server`; uvloop, `websockets`,
  psycopg's async driver with a pool of 4, redis.asyncio) that does the same insert
  (autocommit, one row per comment), the same ack and the same publish, and nothing else:
  no rules, no limits; its subscriber sends every comment to the moderator's socket and,
  every 100 ms, the newest one to the viewers (liveshop's viewers get a thinned feed too).

On each server: `--sockets` anonymous viewers (bench/ws_client.py, on core 1), 400
signed-in commenters and one moderator (who gets every comment) on sockets of this
process (core 1). Two loads:

- capacity: each commenter sends up to 10 comments a second (a socket may send 20
  frames a second), at most 4 waiting for their ack, for `--seconds`: comments/s
  acknowledged, server CPU per comment (from /proc), ack latency p50/p99;
- paced: `--paced` comments/s for `--seconds`, open loop: ack latency p50/p99.

After each load it waits until the moderator has received a `comment.new` for every
acknowledged comment (liveshop: in seq order) and counts the rows written; anything
acknowledged and missing is reported as lost. Prints a table with the ratios and writes
JSON to bench/results/.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

BASE_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(BASE_DIR))

from bench.fanout import CLIENT_CORE, SERVER_CORE, Clients, Server, _pin, free_port, percentile, start_server  # noqa: E402
from bench.flash_sale import log, setup_django, wait_for_port  # noqa: E402

# A socket may send CLIENT_FRAMES_PER_S frames a second (rooms/consumers.py; more closes
# it): the commenters are many, each at most PER_COMMENTER_S comments a second.
COMMENTERS = 400
PER_COMMENTER_S = 10
IN_FLIGHT = 4
TEXTS = ["多少钱一斤?", "包邮吗", "Is it organic?", "好茶!", "Wulong black tea, nice", "还有货吗"]


# --- The reference server ------------------------------------------------------------------------


def reference_server(port: int, room_id: int) -> None:
    import psycopg_pool
    import redis.asyncio as aioredis
    import uvloop
    from websockets.asyncio.server import broadcast, serve

    channel = f"{os.environ['LIVESHOP_REDIS_PREFIX']}:reference:{room_id}"

    async def main() -> None:
        viewers: set[Any] = set()
        full: set[Any] = set()
        pool = psycopg_pool.AsyncConnectionPool(os.environ["DATABASE_URL"], min_size=4, max_size=4, open=False)
        await pool.open()
        redis = aioredis.Redis.from_url(os.environ["REDIS_URL"])
        seq = itertools.count(1)

        async def handler(websocket: Any) -> None:
            query = websocket.request.path.partition("?")[2]
            params = dict(part.split("=", 1) for part in query.split("&") if "=" in part)
            user_id = int(params.get("user", 0))
            (full if params.get("full") else viewers).add(websocket)
            try:
                async for message in websocket:
                    frame = json.loads(message)
                    if frame.get("type") != "comment.send" or not user_id:
                        continue
                    text = str(frame["text"]).strip()
                    async with pool.connection() as conn:
                        cursor = await conn.execute(
                            "INSERT INTO rooms_comment (room_id, user_id, text, created_at) "
                            "VALUES (%s, %s, %s, now()) RETURNING id, created_at",
                            [room_id, user_id, text],
                        )
                        comment_id, created_at = await cursor.fetchone()  # type: ignore[misc]
                    await websocket.send(
                        json.dumps({"type": "comment.ack", "data": {"nonce": frame.get("nonce"), "id": comment_id}})
                    )
                    event = {
                        "type": "comment.new",
                        "seq": next(seq),
                        "ts": created_at.isoformat(),
                        "data": {
                            "id": comment_id,
                            "user": {"id": user_id, "display_name": "", "role": "viewer"},
                            "text": text,
                        },
                    }
                    await redis.publish(channel, json.dumps(event, ensure_ascii=False))
            finally:
                viewers.discard(websocket)
                full.discard(websocket)

        latest: list[str] = []

        async def thinned() -> None:
            while True:
                await asyncio.sleep(0.1)
                if latest:
                    broadcast(viewers, latest[-1])
                    latest.clear()

        async with serve(handler, "127.0.0.1", port, max_size=2**16):
            asyncio.get_running_loop().create_task(thinned())
            pubsub = redis.pubsub()
            await pubsub.subscribe(channel)
            async for message in pubsub.listen():
                if message["type"] == "message":
                    text = message["data"].decode()
                    broadcast(full, text)
                    latest.append(text)

    uvloop.run(main())


# --- The room and its people ---------------------------------------------------------------------


@dataclass
class Show:
    room_id: int
    moderator_id: int
    commenter_ids: list[int]


def prepare_show() -> Show:
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    from liveshop.models import User
    from rooms.models import Host, Room, RoomModerator

    run = uuid.uuid4().hex[:8]
    owner = User.objects.create(username=f"bench-cm-farmer-{run}", display_name="Farmer Chen")
    host = Host.objects.create(user=owner, kind=Host.Kind.FARMER, district="Wulong", verified=True)
    room = Room.objects.create(host=host, title="Bench comments", status=Room.Status.LIVE)
    moderator = User.objects.create(username=f"bench-cm-mod-{run}", display_name="Moderator")
    RoomModerator.objects.create(room=room, user=moderator)
    commenters = User.objects.bulk_create(
        [User(username=f"bench-cm-{run}-{i}", display_name=f"Viewer {i}", password="!") for i in range(COMMENTERS)]
    )
    return Show(room.pk, moderator.pk, [user.pk for user in commenters])


def tickets(show: Show) -> tuple[str, list[str]]:
    from liveshop.models import User
    from rooms.models import Room
    from rooms.services import ws_ticket_issue

    room = Room.objects.get(pk=show.room_id)
    users = User.objects.in_bulk([show.moderator_id, *show.commenter_ids])
    moderator = ws_ticket_issue(user=users[show.moderator_id], room=room)[0]
    return moderator, [ws_ticket_issue(user=users[pk], room=room)[0] for pk in show.commenter_ids]


def comments_written(room_id: int) -> int:
    from rooms.models import Comment

    return Comment.objects.filter(room_id=room_id).count()


# --- The commenters and the moderator (this process, core 1) -------------------------------------


@dataclass
class LoadResult:
    server: str
    sockets: int
    load: str
    seconds: float = 0.0
    sent: int = 0
    acked: int = 0
    refused: dict[str, int] = field(default_factory=dict)
    comments_per_s: float = 0.0
    cpu_s: float = 0.0
    cpu_us_per_comment: float | None = None
    ack_p50_ms: float | None = None
    ack_p99_ms: float | None = None
    delivered: int = 0
    lost: int = 0
    out_of_order: int = 0
    rows: int = 0


class Crowd:
    """The commenters' sockets and the moderator's, on this process's event loop."""

    def __init__(self, url_of: Any) -> None:
        self.url_of = url_of  # (ticket or user id, full) -> URL
        self.sockets: list[Any] = []
        self.moderator: Any = None
        self.sent_at: dict[str, float] = {}
        self.latencies: list[float] = []
        self.acked_ids: set[int] = set()
        self.refused: dict[str, int] = {}
        self.seen_ids: set[int] = set()
        self.last_seq = 0
        self.out_of_order = 0
        self.in_flight: list[asyncio.Semaphore] = []
        self.readers: list[asyncio.Task[None]] = []

    async def open(self, moderator: Any, commenters: list[Any]) -> None:
        from websockets.asyncio.client import connect

        self.moderator = await connect(self.url_of(moderator, True), max_size=2**22)
        self.readers.append(asyncio.create_task(self._read_moderator()))
        for who in commenters:
            socket = await connect(self.url_of(who, False), max_size=2**22)
            self.sockets.append(socket)
            self.in_flight.append(asyncio.Semaphore(IN_FLIGHT))
            self.readers.append(asyncio.create_task(self._read(len(self.sockets) - 1)))

    async def _read(self, index: int) -> None:
        socket = self.sockets[index]
        async for message in socket:
            if '"comment.ack"' not in message and '"error"' not in message:
                continue
            frame = json.loads(message)
            if frame["type"] == "comment.ack":
                nonce = frame["data"]["nonce"]
                self.latencies.append(time.perf_counter() - self.sent_at.pop(nonce))
                self.acked_ids.add(int(frame["data"]["id"]))
                self.in_flight[index].release()
            elif frame["type"] == "error" and frame["data"].get("nonce") in self.sent_at:
                self.sent_at.pop(frame["data"]["nonce"])
                code = frame["data"]["code"]
                self.refused[code] = self.refused.get(code, 0) + 1
                self.in_flight[index].release()

    async def _read_moderator(self) -> None:
        async for message in self.moderator:
            frame = json.loads(message)
            for event in frame["events"] if frame["type"] == "batch" else [frame]:
                if event.get("type") != "comment.new":
                    continue
                self.seen_ids.add(int(event["data"]["id"]))
                seq = int(event.get("seq", 0))
                if seq <= self.last_seq:
                    self.out_of_order += 1
                self.last_seq = max(self.last_seq, seq)

    def reset(self) -> None:
        self.latencies.clear()
        self.acked_ids.clear()
        self.refused.clear()
        self.seen_ids.clear()
        self.out_of_order = 0

    async def send(self, index: int, nonce: str) -> None:
        await self.in_flight[index].acquire()
        self.sent_at[nonce] = time.perf_counter()
        text = f"{TEXTS[hash(nonce) % len(TEXTS)]} {nonce[-4:]}"
        await self.sockets[index].send(json.dumps({"type": "comment.send", "text": text, "nonce": nonce}))

    async def capacity(self, seconds: float) -> int:
        """Each commenter sends up to PER_COMMENTER_S comments a second, IN_FLIGHT at most
        unanswered, until `seconds` are up."""
        started = time.perf_counter()
        deadline = started + seconds
        sent = 0

        async def commenter(index: int) -> None:
            nonlocal sent
            n = 0
            while (now := time.perf_counter()) < deadline:
                due = started + (n + index / len(self.sockets)) / PER_COMMENTER_S
                if due > now:
                    await asyncio.sleep(due - now)
                try:
                    await asyncio.wait_for(self.send(index, f"c{index}-{n}"), max(0.001, deadline - now))
                except TimeoutError:
                    return
                n += 1
                sent += 1

        await asyncio.gather(*(commenter(i) for i in range(len(self.sockets))))
        return sent

    async def paced(self, per_s: int, seconds: float) -> int:
        """`per_s` comments a second, round robin over the commenters, open loop."""
        started = time.perf_counter()
        total = int(per_s * seconds)
        for n in range(total):
            due = started + n / per_s
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            index = n % len(self.sockets)
            if self.in_flight[index].locked():
                continue  # that commenter is IN_FLIGHT behind: the server is saturated
            await self.send(index, f"p{n}")
        return total

    async def settle(self, timeout_s: float = 60) -> None:
        """Until every comment sent is answered and every acknowledged one delivered."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if not self.sent_at and self.acked_ids <= self.seen_ids:
                return
            await asyncio.sleep(0.05)

    async def close(self) -> None:
        for task in self.readers:
            task.cancel()
        for socket in [self.moderator, *self.sockets]:
            if socket is not None:
                await socket.close()


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def run_loads(server: Server, crowd: Crowd, sockets: int, args: Any, room_id: int) -> list[LoadResult]:
    from asgiref.sync import sync_to_async

    results = []
    for load in ("capacity", "paced"):
        crowd.reset()
        rows_before = await sync_to_async(comments_written)(room_id)
        cpu_before = cpu_seconds(server.process.pid)
        started = time.perf_counter()
        if load == "capacity":
            sent = await crowd.capacity(args.seconds)
        else:
            sent = await crowd.paced(args.paced, args.seconds)
        await crowd.settle()
        elapsed = time.perf_counter() - started
        cpu = cpu_seconds(server.process.pid) - cpu_before
        lat = sorted(crowd.latencies)
        acked = len(crowd.acked_ids)
        result = LoadResult(
            server=server.kind,
            sockets=sockets,
            load=load if load == "capacity" else f"paced {args.paced}/s",
            seconds=round(elapsed, 2),
            sent=sent,
            acked=acked,
            refused=dict(crowd.refused),
            comments_per_s=round(acked / elapsed, 1),
            cpu_s=round(cpu, 2),
            cpu_us_per_comment=round(cpu / acked * 1e6, 1) if acked else None,
            ack_p50_ms=round(p * 1000, 1) if (p := percentile(lat, 0.5)) is not None else None,
            ack_p99_ms=round(p * 1000, 1) if (p := percentile(lat, 0.99)) is not None else None,
            delivered=len(crowd.acked_ids & crowd.seen_ids),
            lost=len(crowd.acked_ids - crowd.seen_ids),
            out_of_order=crowd.out_of_order,
            rows=await sync_to_async(comments_written)(room_id) - rows_before,
        )
        log(
            f"{server.kind} {sockets:,} sockets, {result.load}: {result.comments_per_s:,.0f} comments/s, "
            f"{result.cpu_us_per_comment} µs CPU/comment, ack p50 {result.ack_p50_ms} ms p99 {result.ack_p99_ms} ms, "
            f"lost {result.lost}, rows {result.rows}, refused {result.refused}"
        )
        results.append(result)
    return results


def start(kind: str, env: dict[str, str], room_id: int, log_dir: Path) -> Server:
    """liveshop as bench/fanout.py serves it (uvicorn, one process on core 0), or the reference."""
    if kind == "liveshop":
        # permessage-deflate on, as uvicorn has it by default (the reference compresses too).
        return start_server("liveshop", env, channel="", deflate=True, log_dir=log_dir)
    port = free_port()
    argv = [sys.executable, __file__, "--reference-server", str(port), "--room", str(room_id)]
    out = (log_dir / f"{kind}-{port}.log").open("wb")
    process = subprocess.Popen(
        argv, cwd=BASE_DIR, env=env, stdout=out, stderr=subprocess.STDOUT, preexec_fn=_pin(SERVER_CORE)
    )
    wait_for_port(port, process)
    return Server(kind, process, port)


def run_side(kind: str, sockets: int, show: Show, env: dict[str, str], args: Any, log_dir: Path) -> list[LoadResult]:
    server = start(kind, env, show.room_id, log_dir)
    base = f"ws://127.0.0.1:{server.port}/ws/rooms/{show.room_id}/"
    viewers = Clients(base, sockets, env, tickets=[], deflate=False, snapshot=kind == "liveshop")
    log(f"{kind}: {viewers.connected['connected']:,} viewers open")
    if kind == "liveshop":  # tickets last a minute (WS_TICKET_TTL_S): made once the viewers are in
        moderator_ticket, commenter_tickets = tickets(show)
        moderator: Any = moderator_ticket
        commenters: list[Any] = commenter_tickets

        def url_of(who: Any, full: bool) -> str:
            return f"{base}?ticket={who}"
    else:
        moderator, commenters = show.moderator_id, show.commenter_ids

        def url_of(who: Any, full: bool) -> str:
            return f"{base}?user={who}{'&full=1' if full else ''}"

    try:

        async def main() -> list[LoadResult]:
            crowd = Crowd(url_of)
            await crowd.open(moderator, commenters)
            await asyncio.sleep(1.0)  # the connects' `viewers` events settle
            try:
                return await run_loads(server, crowd, sockets, args, show.room_id)
            finally:
                await crowd.close()

        return asyncio.run(main())
    finally:
        viewers.close()
        server.stop()


def table(results: list[LoadResult]) -> str:
    rows = [
        "| sockets | load | server | comments/s | CPU µs/comment | ack p50 ms | ack p99 ms | lost "
        "| ratio (comments/s) |",
        "|---:|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    reference = {(r.sockets, r.load): r for r in results if r.server == "reference"}
    for r in results:
        ref = reference.get((r.sockets, r.load))
        ratio = f"{r.comments_per_s / ref.comments_per_s:.2f}" if ref and ref.comments_per_s and r is not ref else ""
        rows.append(
            f"| {r.sockets:,} | {r.load} | {r.server} | {r.comments_per_s:,.0f} | {r.cpu_us_per_comment} | "
            f"{r.ack_p50_ms} | {r.ack_p99_ms} | {r.lost} | {ratio} |"
        )
    return "\n".join(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sockets", default="250,2500", help="viewer socket counts, comma separated")
    parser.add_argument("--seconds", type=float, default=10.0, help="length of each load")
    parser.add_argument("--paced", type=int, default=500, help="comments a second of the paced load")
    parser.add_argument("--servers", default="reference,liveshop")
    parser.add_argument("--reference-server", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--room", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.reference_server:
        reference_server(args.reference_server, args.room)
        return
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    prefix = f"liveshop-bench-cm-{uuid.uuid4().hex[:8]}"
    log_dir = Path(tempfile.mkdtemp(prefix="liveshop-bench-comments-"))
    os.environ.update(
        {
            "LIVESHOP_REDIS_PREFIX": prefix,
            "LIVESHOP_VAR_DIR": str(log_dir / "var"),
            "REALTIME_BACKEND": "redis",
            "DEBUG": "0",
            "LOG_LEVEL": "WARNING",
            # Every comment takes the limits; they are raised so that the load is not refused.
            "COMMENT_RATE_PER_MIN": "10000000",
            "COMMENT_BURST": "1000000",
            "RATE_LIMIT_COMMENT_IP": "10000000,1000000",
        }
    )
    setup_django()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {CLIENT_CORE})
    env = dict(os.environ)
    show = prepare_show()
    log(f"room {show.room_id}; logs in {log_dir}")
    started = time.monotonic()
    results: list[LoadResult] = []
    for sockets in [int(s) for s in args.sockets.split(",")]:
        for kind in [k for k in ("reference", "liveshop") if k in args.servers.split(",")]:
            results += run_side(kind, sockets, show, env, args, log_dir)
    print()
    print(table(results))
    results_dir = BASE_DIR / "bench" / "results"
    results_dir.mkdir(parents=True, exist_ok=True)
    path = results_dir / f"comments-{time.strftime('%Y%m%d-%H%M%S')}.json"
    machine = {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()}
    body = {"command": " ".join(sys.argv), "seconds": round(time.monotonic() - started, 1), "machine": machine}
    path.write_text(json.dumps({**body, "results": [asdict(r) for r in results]}, indent=2, ensure_ascii=False))
    print(f"\nJSON: {path.relative_to(BASE_DIR)}")


if __name__ == "__main__":
    main()
