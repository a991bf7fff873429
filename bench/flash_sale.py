"""Benchmark 2: a flash sale of 500 units, 10,000 buyers clicking "buy" at once.

    DATABASE_URL=postgres://... REDIS_URL=redis://.../N flock /tmp/liveshop-bench.lock \\
        .venv/bin/python -m bench.flash_sale [--buyers 10000] [--units 500] [--workers 2]

Four servers, one after the other, same machine, same uvicorn setup (--workers N,
uvloop, httptools), same burst (every buyer POSTs once, concurrency 64):
  liveshop         POST /api/v1/orders/ of the product, as in production: each winner's
                   PaymentIntent under the Stripe write limiter every process shares
                   (STRIPE_WRITE_RATE): made inline when a write is free, else answered
                   "preparing" and made in its slot by the Stripe queue's Celery worker
                   (one process of 25 threads, STRIPE_TASK_QUEUE);
  liveshop-inline  the same server with the limiter off (STRIPE_WRITE_RATE=0): every
                   winner waits for its PaymentIntent, as liveshop did before;
  naive            a DRF endpoint doing select_for_update and a decrement (bench/naive_view.py);
  bare             a minimal ASGI app that only runs the Redis gate (bench/bare_gate.py).
Stripe is localstripe at Stripe's pace: every call answers in --stripe-latency-ms (300)
and writes past --stripe-rate (25) a second get 429, as Stripe's test mode does.
Checks: sold = 500 exactly, oversold = 0, every winner answered, no 429 from Stripe with
the limiter, every winner's PaymentIntent made. Reports requests/s of the whole burst,
p50/p99, the winners' orders/s and p99, codes, and the ratios; writes
bench/results/flash_sale-<time>.json. The database and Redis index given are used for
bench data (users bench-buyer-N, a bench shop): point them at a scratch database, never
production.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
SHIPPING = {"name": "Bench Buyer", "phone": "13800000000", "address": "1 Jiefangbei Rd", "district": "Yuzhong"}


def log(text: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {text}", flush=True)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_port(port: int, process: subprocess.Popen[Any], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.1)
    raise TimeoutError(f"nothing listens on {port}")


def setup_django() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "liveshop.settings")
    # DEBUG is off by default, and then the settings want a real secret: the benchmarks
    # run against scratch data, so a throwaway one does.
    os.environ.setdefault("SECRET_KEY", "bench-secret-key-not-for-production")
    import django

    django.setup()
    from django.conf import settings

    if not settings.DATABASE_URL.startswith("postgres") or not settings.REDIS_URL:
        sys.exit("Set DATABASE_URL (PostgreSQL) and REDIS_URL: the benchmark measures the production setup.")
    database_create_if_missing(settings.DATABASE_URL)


def database_create_if_missing(url: str) -> None:
    """The scratch database DATABASE_URL names is created on the first run (then migrated)."""
    import psycopg
    from psycopg import sql
    from psycopg.conninfo import conninfo_to_dict, make_conninfo

    name = str(conninfo_to_dict(url)["dbname"])
    with psycopg.connect(make_conninfo(url, dbname="postgres"), autocommit=True) as conn:
        if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone() is None:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
            log(f"created the database {name}")


def prepare_buyers(count: int) -> list[str]:
    """`count` buyers (created once, reused by later runs) with fresh API tokens: only
    hashes are stored, so each run makes its buyers new ones (and drops the last run's)."""
    from datetime import timedelta

    from django.conf import settings
    from django.contrib.auth.hashers import make_password
    from django.utils import timezone
    from knox.models import AuthToken, get_digest_token
    from knox.settings import CONSTANTS

    from liveshop.models import User

    existing = User.objects.filter(username__startswith="bench-buyer-").count()
    if existing < count:
        log(f"creating {count - existing} bench buyers")
        password = make_password(None)
        User.objects.bulk_create(
            [
                User(username=f"bench-buyer-{n}", display_name=f"Buyer {n}", district="Yuzhong", password=password)
                for n in range(existing, count)
            ],
            batch_size=2000,
        )
    users = list(User.objects.filter(username__startswith="bench-buyer-").order_by("pk").values_list("pk", flat=True))
    users = users[:count]
    AuthToken.objects.filter(user_id__in=users).delete()
    expiry = timezone.now() + timedelta(seconds=settings.API_TOKEN_TTL_S)
    rows, tokens = [], []
    for pk in users:
        digest, token = get_digest_token()
        rows.append(AuthToken(digest=digest, token_key=token[: CONSTANTS.TOKEN_KEY_LENGTH], user_id=pk, expiry=expiry))
        tokens.append(token)
    AuthToken.objects.bulk_create(rows, batch_size=2000)
    return tokens


def prepare_sale(*, units: int, label: str) -> tuple[int, int, int]:
    """A live room with one item on sale: returns (item id, flash sale id, sku id)."""
    from catalog.models import Product, Shop, Sku
    from liveshop.models import User
    from rooms.models import Host, Room, RoomItem
    from rooms.services import flash_sale_start

    owner, _ = User.objects.get_or_create(username="bench-farmer", defaults={"display_name": "Bench Farmer"})
    host, _ = Host.objects.get_or_create(
        user=owner, defaults={"kind": "farmer", "district": "Wulong", "verified": True}
    )
    shop, _ = Shop.objects.get_or_create(owner=owner, name="Bench Farm", defaults={"district": "Wulong"})
    product = Product.objects.create(shop=shop, title=f"Bench tea ({label})")
    sku = Sku.objects.create(product=product, name="250 g", price=6800, stock=units * 4)
    room = Room.objects.create(host=host, title=f"Bench show ({label})", status=Room.Status.LIVE)
    item = RoomItem.objects.create(room=room, sku=sku, live_price=5800)
    sale = flash_sale_start(item=item, price=990, quantity=units, duration_s=3600, per_buyer_limit=2)
    return item.pk, sale.pk, sku.pk


def sale_outcome(sale_id: int, units: int) -> dict[str, Any]:
    from django.db.models import Sum

    from orders.models import Order, OrderItem
    from rooms.models import FlashSale

    sale = FlashSale.objects.get(pk=sale_id)
    held = OrderItem.objects.filter(flash_sale_id=sale_id).aggregate(n=Sum("quantity"))["n"] or 0
    return {
        "orders": Order.objects.filter(items__flash_sale_id=sale_id).distinct().count(),
        "sold": units - sale.remaining,
        "units_in_orders": held,
        "oversold": max(0, held - units, (units - sale.remaining) - units),
        "stock_consistent": held == units - sale.remaining,
    }


def start_server(name: str, argv: list[str], env: dict[str, str], port: int, log_dir: Path) -> subprocess.Popen[Any]:
    out = (log_dir / f"{name}.log").open("w")
    process = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    wait_for_port(port, process)
    return process


def stop(process: subprocess.Popen[Any]) -> None:
    process.terminate()
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def uvicorn_argv(app: str, port: int, workers: int) -> list[str]:
    return [
        sys.executable, "-m", "uvicorn", app, "--host", "127.0.0.1", "--port", str(port),
        "--workers", str(workers), "--loop", "uvloop", "--http", "httptools", "--no-access-log",
        "--log-level", "warning",
    ]  # fmt: skip


def run_burst(port: int, requests: list[Any], concurrency: int, label: str) -> Any:
    from bench import loadgen

    return asyncio.run(loadgen.burst("127.0.0.1", port, requests, concurrency=concurrency, label=label))


def json_request(path: str, body: dict[str, Any], authorization: str, **headers: str) -> Any:
    from bench import loadgen

    return loadgen.Request(
        path,
        json.dumps(body).encode(),
        {"Authorization": authorization, "Content-Type": "application/json", **headers},
    )


def stripe_stats(api_base: str, *, reset: bool = False) -> dict[str, int]:
    request = urllib.request.Request(f"{api_base}/_sim/stats", method="DELETE" if reset else "GET")
    with urllib.request.urlopen(request, timeout=10) as answer:
        return dict(json.load(answer))


def start_worker(env: dict[str, str], log_dir: Path) -> subprocess.Popen[Any]:
    """The Stripe queue's worker, as the README's processes start it: one process of 25
    threads (Stripe's calls are network waits)."""
    from liveshop.celery import app

    out = (log_dir / "worker.log").open("w")
    process = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "liveshop", "worker", "-Q", "stripe", "-P", "threads", "-c", "25",
         "-l", "warning", "--without-mingle", "--without-gossip"],
        cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
    )  # fmt: skip
    deadline = time.monotonic() + 60
    while not app.control.ping(timeout=1.0):
        if process.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"the Celery worker did not start (see {log_dir / 'worker.log'})")
    return process


def intents_made(sale_id: int, started: float, *, timeout_s: float = 180) -> float | None:
    """Seconds from the burst's start until every order of the sale has its PaymentIntent."""
    from orders.models import Order

    orders = Order.objects.filter(items__flash_sale_id=sale_id, status=Order.Status.PENDING_PAYMENT)
    deadline = time.monotonic() + timeout_s
    waiting = orders.filter(payment__isnull=True).count()
    while waiting:
        if time.monotonic() > deadline:
            log(f"{waiting} orders still without a PaymentIntent after {timeout_s} s")
            return None
        time.sleep(0.25)
        waiting = orders.filter(payment__isnull=True).count()
    return round(time.monotonic() - started, 2)


def run_variant(variant: str, args: Any, env: dict[str, str], tokens: list[str], log_dir: Path) -> dict[str, Any]:
    """Start one server, warm it up, send the burst, stop it, check the units."""
    from bench import loadgen
    from rooms import flash_gate

    item_id, sale_id, _ = prepare_sale(units=args.units, label=variant)
    port = free_port()
    worker = None
    if variant.startswith("liveshop"):
        argv = uvicorn_argv("liveshop.asgi:application", port, args.workers)
        limited = variant == "liveshop"
        rate = str(args.stripe_rate if limited else 0)
        server_env = {**env, "STRIPE_WRITE_RATE": rate, "STRIPE_TASK_QUEUE": "stripe"}
        if limited:
            log(f"{variant}: starting the Stripe queue's Celery worker (25 threads) for the preparing payments")
            worker = start_worker(server_env, log_dir)
        clicks = [
            json_request(
                "/api/v1/orders/",
                {"items": [{"item": item_id, "quantity": 1}], "shipping": SHIPPING},
                f"Token {token}",
                **{"Idempotency-Key": f"bench-{sale_id}-{n}"},
            )
            for n, token in enumerate(tokens)
        ]
    elif variant == "naive":
        argv = uvicorn_argv("liveshop.asgi:application", port, args.workers)
        server_env = {**env, "DJANGO_SETTINGS_MODULE": "bench.naive_settings"}
        clicks = [
            json_request("/bench/naive-flash-buy/", {"flash_sale": sale_id, "quantity": 1}, f"Token {token}")
            for token in tokens
        ]
    else:
        argv = uvicorn_argv("bench.bare_gate:app", port, args.workers)
        server_env = {**env, "BARE_GATE_SALE": str(sale_id)}
        clicks = [json_request("/buy", {"flash_sale": sale_id, "quantity": 1}, token) for token in tokens]

    log(f"{variant}: starting {args.workers} uvicorn worker(s) on port {port}")
    server = start_server(variant, argv, server_env, port, log_dir)
    try:
        if variant != "bare":
            # Warm the server up: its connections, pools and code paths.
            profile = [
                loadgen.Request("/api/v1/me/", b"", {"Authorization": f"Token {t}"}, "GET") for t in tokens[:500]
            ]
            log(f"{variant}: warm-up, 500 buyers GET /api/v1/me/")
            warm = run_burst(port, profile, args.concurrency, f"{variant} warm-up")
            assert warm.codes() == {"200": len(profile)}, warm.codes()
        if variant.startswith("liveshop"):
            stripe_stats(env["STRIPE_API_BASE"], reset=True)
        log(f"{variant}: burst of {len(clicks)} clicks at concurrency {args.concurrency}")
        started = time.monotonic()
        run = run_burst(port, clicks, args.concurrency, variant)
        if variant.startswith("liveshop"):
            made = intents_made(sale_id, started, timeout_s=180 if worker else 5)
    finally:
        stop(server)
        if worker is not None:
            stop(worker)
    result = loadgen.summary(run)
    # The winners' phase: from the burst's start to the last winner's answer.
    won = [r for r in run.results if r.status == 201]
    winners = sorted(r.latency_s for r in won)
    phase_s = max((r.done_at - run.started_at for r in won), default=0.0)
    result["winners_phase_s"] = round(phase_s, 2)
    result["winners_per_s"] = round(len(won) / phase_s, 1) if phase_s else 0.0
    result["winners_p99_ms"] = (
        round(winners[min(len(winners) - 1, int(0.99 * len(winners)))] * 1000, 2) if winners else 0
    )
    if variant.startswith("liveshop"):
        result["stripe"] = stripe_stats(env["STRIPE_API_BASE"])
        result["intents_made_s"] = made
    if variant == "bare":
        remaining = flash_gate.gate_remaining(sale_id=sale_id) or 0
        created = run.codes().get("201", 0)
        result.update(orders=created, sold=args.units - remaining, oversold=max(0, created - args.units))
    else:
        result.update(sale_outcome(sale_id, args.units))
    log(f"{variant}: {result['rps']} req/s, p99 {result['p99_ms']} ms, sold {result['sold']}")
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--buyers", type=int, default=10_000)
    parser.add_argument("--units", type=int, default=500)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--workers", type=int, default=2, help="uvicorn worker processes per server")
    parser.add_argument("--only", choices=["liveshop", "liveshop-inline", "naive", "bare"], action="append")
    parser.add_argument("--stripe-latency-ms", type=int, default=300, help="Stripe's answer time")
    parser.add_argument("--stripe-rate", type=int, default=25, help="Stripe's writes a second (test mode: 25)")
    args = parser.parse_args()

    sys.path.insert(0, str(ROOT))
    setup_django()
    from django.conf import settings
    from django.core.management import call_command

    from orders import localstripe_server

    log("migrating the bench database")
    call_command("migrate", verbosity=0)
    tokens = prepare_buyers(args.buyers)
    # The buyers are in the room before the sale opens: their apps joined it and loaded
    # their profile, and each authenticated request mirrored its token into Redis
    # (liveshop.auth). Record that here rather than with 10,000 warm-up requests.
    from knox.crypto import hash_token
    from knox.models import AuthToken

    from liveshop.auth import token_cache_set

    rows = {
        digest: (user_id, expiry)
        for digest, user_id, expiry in AuthToken.objects.filter(
            digest__in=[hash_token(key) for key in tokens]
        ).values_list("digest", "user_id", "expiry")
    }
    for key in tokens:
        user_id, expiry = rows[hash_token(key)]
        token_cache_set(key=key, user_id=user_id, expiry=expiry)
    RESULTS.mkdir(parents=True, exist_ok=True)
    log_dir = RESULTS / "logs"
    log_dir.mkdir(exist_ok=True)

    stripe_port = free_port()
    env = {
        **os.environ,
        "PYTHONUNBUFFERED": "1",
        "DEBUG": "0",
        "SECRET_KEY": "bench-secret-key-not-for-production",
        # 10,000 buyers from one address: per-IP limits would refuse most of them.
        "RATE_LIMITS": "0",
        **localstripe_server.local_stripe_environment(port=stripe_port),
    }
    os.environ.update({k: env[k] for k in ("STRIPE_SECRET_KEY", "STRIPE_API_BASE", "STRIPE_WEBHOOK_SECRET")})
    settings.STRIPE_SECRET_KEY, settings.STRIPE_API_BASE = env["STRIPE_SECRET_KEY"], env["STRIPE_API_BASE"]
    stripe = start_server(
        "localstripe",
        [sys.executable, "-m", "orders.localstripe_server", "--port", str(stripe_port),
         "--latency-ms", str(args.stripe_latency_ms), "--write-rate", str(args.stripe_rate)],
        env, stripe_port, log_dir,
    )  # fmt: skip

    variants = args.only or ["naive", "bare", "liveshop-inline", "liveshop"]
    report: dict[str, Any] = {
        "benchmark": "flash_sale",
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "buyers": args.buyers,
        "units": args.units,
        "per_buyer_limit": 2,
        "concurrency": args.concurrency,
        "workers": args.workers,
        "stripe": {"latency_ms": args.stripe_latency_ms, "write_rate": args.stripe_rate},
        "cpus": os.cpu_count(),
        "results": {},
    }
    try:
        for variant in variants:
            report["results"][variant] = run_variant(variant, args, env, tokens, log_dir)
    finally:
        stop(stripe)

    results = report["results"]
    if {"liveshop", "liveshop-inline"} <= results.keys():
        ours, before = results["liveshop"], results["liveshop-inline"]
        report["winners"] = {
            "liveshop_vs_inline": round(ours["winners_per_s"] / max(before["winners_per_s"], 0.1), 2),
            "every_winner_answered": not any(code.startswith("5") for code in ours["codes"])
            and ours["orders"] == ours["codes"].get("201", 0)
            and ours["sold"] == args.units,
            "p99_under_250ms": ours["p99_ms"] < 250,
            "winners_3x_inline": ours["winners_per_s"] >= 3 * before["winners_per_s"],
            "oversold_0": ours["oversold"] == 0,
            "stripe_429s_0": ours["stripe"]["throttled"] == 0,
            "every_intent_made": ours["intents_made_s"] is not None,
        }
    if {"liveshop", "naive", "bare"} <= results.keys():
        ours = results["liveshop"]
        report["ratios"] = {
            "liveshop_vs_naive": round(ours["rps"] / results["naive"]["rps"], 2),
            "liveshop_vs_bare": round(ours["rps"] / results["bare"]["rps"], 2),
        }
        report["goals"] = {
            "sold_exactly_units": ours["sold"] == args.units and ours["oversold"] == 0,
            "rps_3x_naive": report["ratios"]["liveshop_vs_naive"] >= 3,
            "rps_40pct_bare": report["ratios"]["liveshop_vs_bare"] >= 0.4,
            "p99_under_100ms": ours["p99_ms"] < 100,
        }
    print_table(report)
    out = RESULTS / f"flash_sale-{datetime.now(UTC):%Y%m%dT%H%M%S}.json"
    out.write_text(json.dumps(report, indent=2))
    log(f"wrote {out.relative_to(ROOT)}")


def print_table(report: dict[str, Any]) -> None:
    print()
    print(
        f"flash sale: {report['buyers']} buyers, {report['units']} units, limit 2, concurrency "
        f"{report['concurrency']}, {report['workers']} uvicorn workers per server, {report['cpus']} cpus"
    )
    header = (
        f"{'server':<16}{'req/s':>7}{'p50 ms':>8}{'p99 ms':>8}{'won/s':>7}{'won p99':>9}{'orders':>7}{'sold':>6}"
        f"{'over':>5}  codes"
    )
    print(header)
    print("-" * len(header))
    for name, r in report["results"].items():
        print(
            f"{name:<16}{r['rps']:>7.0f}{r['p50_ms']:>8.1f}{r['p99_ms']:>8.1f}{r['winners_per_s']:>7.0f}"
            f"{r['winners_p99_ms']:>9.1f}{r['orders']:>7}{r['sold']:>6}{r['oversold']:>5}  {r['codes']}"
        )
        if "stripe" in r:
            print(f"{'':<16}Stripe: {r['stripe']['writes']} writes, {r['stripe']['throttled']} refused (429); "
                  f"every intent made {r['intents_made_s']} s after the burst began")  # fmt: skip
    if "winners" in report:
        w = report["winners"]
        print(f"\nwinners' orders/s, liveshop / liveshop-inline: {w['liveshop_vs_inline']}x")
        print(
            "goals: " + ", ".join(f"{k} {'OK' if v else 'MISSED'}" for k, v in w.items() if k != "liveshop_vs_inline")
        )
    if "ratios" in report:
        print(f"\nliveshop / naive: {report['ratios']['liveshop_vs_naive']}x   "
              f"liveshop / bare: {report['ratios']['liveshop_vs_bare']:.0%}")  # fmt: skip
        print("goals: " + ", ".join(f"{k} {'OK' if v else 'MISSED'}" for k, v in report["goals"].items()))


if __name__ == "__main__":
    main()
