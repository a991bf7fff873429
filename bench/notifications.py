"""Notifications: one go-live told to a host's 100,000 followers.

    DATABASE_URL=postgres://... REDIS_URL=redis://.../N flock /tmp/liveshop-bench.lock \\
        .venv/bin/python -m bench.notifications [--followers 100000] [--concurrency 2]

Product: `room_start` in this process (its hook enqueues the fan-out at commit), then real
Celery workers on the Redis broker (prefork, `--concurrency`) run
`notifications.tasks.host_live_fanout_task`: batches of FANOUT_BATCH followers, each one
INSERT … ON CONFLICT DO NOTHING RETURNING and one pipeline of PUBLISHes to the users'
channels, each batch enqueuing the next. Measured: how long `room_start` takes (what the
host waits for), and the time until every follower's notification is stored; meanwhile a
probe times `GET /api/v1/rooms/{id}/` on a uvicorn server, to show the fan-out blocks
nothing else.

Baseline, same run and database: the same rows written by a single `bulk_create` of
100,000 objects in this process (no batching, no tasks, no publish), the floor of the
database's part. Prints the progress every second, the figures and the ratios.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

from bench.flash_sale import ROOT, free_port, log, setup_django, start_server, stop, uvicorn_argv

RESULTS = ROOT / "bench" / "results"


def prepare(followers: int) -> tuple[int, int]:
    """A verified host, a scheduled room, and `followers` users following the host
    (made once; later runs reuse them). Returns (host id, room id)."""
    from django.db import connection

    from liveshop.models import User
    from rooms.models import Follow, Host, Room

    user, _ = User.objects.get_or_create(username="bench-notify-host", defaults={"display_name": "Cadre Zhou"})
    host, _ = Host.objects.get_or_create(
        user=user, defaults={"kind": "cadre", "district": "Jiangbei", "verified": True}
    )
    have = Follow.objects.filter(host=host).count()
    if have < followers:
        log(f"creating {followers - have} followers (users and follows)")
        batch = 10_000
        for start in range(have, followers, batch):
            names = [f"bench-follower-{i}" for i in range(start, min(start + batch, followers))]
            User.objects.bulk_create([User(username=n, display_name=n, password="!") for n in names])
            ids = User.objects.filter(username__in=names).values_list("pk", flat=True)
            Follow.objects.bulk_create([Follow(user_id=i, host=host) for i in ids])
            log(f"  {min(start + batch, followers)}/{followers} followers")
        Host.objects.filter(pk=host.pk).update(followers_count=followers)
    room = Room.objects.create(host=host, title="Jiangbei specialties, tonight", status=Room.Status.SCHEDULED)
    connection.close()
    return host.pk, room.pk


def probe(port: int, room_id: int, until: threading.Event, timings: list[float]) -> None:
    url = f"http://127.0.0.1:{port}/api/v1/rooms/{room_id}/"
    while not until.is_set():
        started = time.perf_counter()
        with urllib.request.urlopen(url, timeout=10) as answer:
            answer.read()
        timings.append(time.perf_counter() - started)
        until.wait(0.05)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--followers", type=int, default=100_000)
    parser.add_argument("--concurrency", type=int, default=2, help="Celery worker processes (prefork)")
    args = parser.parse_args()
    setup_django()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    from django.db import connection, transaction

    from liveshop.celery import app as celery_app
    from notifications.models import Notification
    from notifications.tasks import FANOUT_BATCH
    from rooms.models import Follow, Room
    from rooms.services import room_start

    host_id, room_id = prepare(args.followers)
    celery_app.control.purge()
    RESULTS.mkdir(parents=True, exist_ok=True)
    log_dir = RESULTS / "logs"
    log_dir.mkdir(exist_ok=True)

    # Baseline: the same rows in one bulk_create, then gone again.
    user_ids = list(Follow.objects.filter(host_id=host_id).values_list("user_id", flat=True))
    started = time.perf_counter()
    with transaction.atomic():
        Notification.objects.bulk_create(
            [
                Notification(user_id=u, kind="host.live", data={"room": {"id": 0}}, key="bench-baseline")
                for u in user_ids
            ],
            batch_size=10_000,
        )
    baseline_s = time.perf_counter() - started
    Notification.objects.filter(key="bench-baseline").delete()
    log(f"baseline: {len(user_ids)} rows in one bulk_create: {baseline_s:.2f} s")

    env = {**os.environ, "PYTHONUNBUFFERED": "1", "LOG_LEVEL": "WARNING"}
    port = free_port()
    web = start_server("notify-web", uvicorn_argv("liveshop.asgi:application", port, 1), env, port, log_dir)
    worker_log = (log_dir / "notify-worker.log").open("w")
    worker = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "liveshop", "worker", "-c", str(args.concurrency), "-l", "warning",
         "--without-mingle", "--without-gossip"],
        cwd=ROOT, env=env, stdout=worker_log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    idle: list[float] = []
    busy: list[float] = []
    try:
        time.sleep(3)  # the worker connects to the broker
        until = threading.Event()
        prober = threading.Thread(target=probe, args=(port, room_id, until, idle))
        prober.start()
        time.sleep(3)
        until.set()
        prober.join()

        until = threading.Event()
        prober = threading.Thread(target=probe, args=(port, room_id, until, busy))
        prober.start()
        started = time.perf_counter()
        room_start(room=Room.objects.get(pk=room_id))
        start_s = time.perf_counter() - started
        told = Notification.objects.filter(key=f"live:{room_id}")
        count = 0
        deadline = time.monotonic() + 600
        while count < len(user_ids) and time.monotonic() < deadline:
            time.sleep(1)
            count = told.count()
            log(f"  {count}/{len(user_ids)} followers told after {time.perf_counter() - started:.1f} s")
        fanout_s = time.perf_counter() - started
        until.set()
        prober.join()
    finally:
        stop(worker)
        stop(web)
        worker_log.close()
        connection.close()
    if count < len(user_ids):
        raise SystemExit(f"only {count} of {len(user_ids)} told within the deadline; see {log_dir}")
    log(
        f"{len(user_ids)} followers, batches of {FANOUT_BATCH}, "
        f"{args.concurrency} Celery process(es), {os.cpu_count()} cpus:"
    )
    log(f"  room_start (what the host waits for): {start_s * 1000:.1f} ms")
    log(f"  every follower told (stored and published): {fanout_s:.2f} s ({len(user_ids) / fanout_s:,.0f} a second)")
    log(
        f"  baseline, one bulk_create of the same rows: {baseline_s:.2f} s; "
        f"product/baseline {fanout_s / baseline_s:.2f}x"
    )
    log(
        f"  GET /rooms/{{id}}/ meanwhile: p50 {statistics.median(busy) * 1000:.1f} ms, p99 "
        f"{percentile(busy, 0.99) * 1000:.1f} ms ({len(busy)} requests); before: p50 "
        f"{statistics.median(idle) * 1000:.1f} ms, p99 {percentile(idle, 0.99) * 1000:.1f} ms"
    )
    Path(RESULTS / "notifications.txt").write_text(
        f"followers={len(user_ids)} start_ms={start_s * 1000:.1f} fanout_s={fanout_s:.2f} baseline_s={baseline_s:.2f}\n"
    )


if __name__ == "__main__":
    main()
