"""Benchmark 12: the rooms' real-time path on a Redis Cluster against one Redis.

    DATABASE_URL=postgres://... flock /tmp/liveshop-bench.lock \\
        .venv/bin/python -m bench.redis_cluster [--events 5000]

Starts its own Redis servers (redis-server on free ports, nothing on disk): one, and a
cluster of three masters with a replica each (`redis-cli --cluster create`), and runs
the same calls of the real-time backend against both, in the same run:

1. `publish`, one event at a time (a service announcing an order), events/s;
2. `publish_many` in batches of 50 over 10 rooms (the comment intake's batches), events/s;
3. a comment's rate limits (`limits_take`: per user, per address, slow mode): one script
   on one Redis, three slots (three scripts) on the cluster, µs per comment;
4. a web process's presence report for 200 rooms (`apresence`), ms;
5. publish to delivery: an event published and received by a subscriber (classic
   pub/sub on one Redis, sharded on the cluster), median ms of 300.

On one machine the six cluster nodes share its cores: this measures what each call costs
on a cluster, not the capacity a cluster adds (which grows with its machines: a room's
work stays on its own master). Writes bench/results/redis_cluster-<time>.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.flash_sale import ROOT, log, setup_django

RESULTS = ROOT / "bench" / "results"
ROOMS = 50
BASE = 900_000_000  # room ids of their own (their seq blocks are rows in the database)


def _rate(count: int, call: Callable[[], object]) -> float:
    started = time.perf_counter()
    call()
    return round(count / (time.perf_counter() - started))


def _measure(backend: Any, events: int) -> dict[str, float]:
    from liveshop.ratelimit import Bucket
    from rooms.realtime.backend import Hold
    from rooms.realtime.events import encode_event

    event = encode_event("order.placed", {"buyer": "L**", "quantity": 1})
    figures: dict[str, float] = {}
    for room_id in range(BASE, BASE + 201):  # each room's first block reserved (not timed)
        backend.publish(room_id, event)

    log(f"  publish x {events}")
    figures["publish_per_s"] = _rate(events, lambda: [backend.publish(BASE + i % ROOMS, event) for i in range(events)])

    log(f"  publish_many x {events}")
    batches = [[(BASE + (b * 50 + i) % 10, event) for i in range(50)] for b in range(events // 50)]
    figures["publish_many_per_s"] = _rate(events, lambda: [backend.publish_many(batch) for batch in batches])

    log("  limits_take x 2000")
    samples = []
    for i in range(2000):
        buckets = [
            Bucket(f"comment:user:{i}", 600, 50),
            Bucket(f"comment:ip:10.0.{i // 250}.{i % 250}", 6000, 1000),
        ]
        started = time.perf_counter()
        backend.limits_take(BASE + i % ROOMS, buckets, Hold(f"slow:{i}", 1))
        samples.append((time.perf_counter() - started) * 1_000_000)
    figures["limits_take_us"] = round(statistics.median(samples))

    async def loop_work() -> tuple[float, float]:
        counts = dict.fromkeys(range(BASE, BASE + 200), 3)
        presence = []
        for _ in range(20):
            started = time.perf_counter()
            await backend.apresence("bench-process", counts, 10)
            presence.append((time.perf_counter() - started) * 1000)
        delivered: asyncio.Queue[int] = asyncio.Queue()
        subscriber = backend.subscriber(lambda room_id, event: delivered.put_nowait(event.seq), lambda *_: None)
        await subscriber.start()
        await subscriber.subscribe(BASE + 7)
        latencies = []
        for _ in range(300):
            started = time.perf_counter()
            seq = await asyncio.to_thread(backend.publish, BASE + 7, event)
            while await asyncio.wait_for(delivered.get(), 5) != seq:
                pass
            latencies.append((time.perf_counter() - started) * 1000)
        await subscriber.stop()
        await backend.aclose()
        return statistics.median(presence), statistics.median(latencies)

    log("  presence for 200 rooms x 20, publish to delivery x 300")
    presence_ms, delivery_ms = asyncio.run(loop_work())
    figures["presence_200_rooms_ms"] = round(presence_ms, 2)
    figures["publish_to_delivery_ms"] = round(delivery_ms, 3)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=5000)
    options = parser.parse_args()
    setup_django()

    from django.conf import settings
    from django.core.management import call_command

    from rooms.realtime.redis_backend import RedisBackend
    from rooms.realtime.redis_cluster import RedisClusterBackend
    from tests.chaos.cluster_support import private_cluster
    from tests.chaos.nodes_support import private_redis

    call_command("migrate", verbosity=0)
    prefix = f"bench-cluster-{time.time_ns():x}"
    settings.LIVESHOP_REDIS_PREFIX = prefix
    results: dict[str, Any] = {"events": options.events}
    with tempfile.TemporaryDirectory() as directory:
        log("one Redis: starting")
        with private_redis(Path(directory), "single") as single:
            backend = RedisBackend(url=single.url, prefix=prefix, max_connections=100)
            results["single"] = _measure(backend, options.events)
            backend.close()
        log("a cluster of 3 masters and 3 replicas: starting")
        with private_cluster(Path(directory) / "cluster") as cluster:
            cluster_backend = RedisClusterBackend(url=cluster.url, prefix=prefix, max_connections=100)
            results["cluster"] = _measure(cluster_backend, options.events)
            cluster_backend.close()

    print(f"\n{'':28} {'one Redis':>12} {'cluster':>12} {'cluster/one':>12}")
    for name, single_value in results["single"].items():
        cluster_value = results["cluster"][name]
        ratio = cluster_value / single_value if single_value else float("nan")
        print(f"{name:28} {single_value:>12} {cluster_value:>12} {ratio:>12.2f}")
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"redis_cluster-{time.strftime('%Y%m%d-%H%M%S')}.json"
    path.write_text(json.dumps(results, indent=2))
    log(f"wrote {path}")


if __name__ == "__main__":
    main()
