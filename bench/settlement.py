"""Benchmark 3: settlement keeps up with Stripe's webhooks, exactly once.

    DATABASE_URL=postgres://... REDIS_URL=redis://.../N flock /tmp/liveshop-bench.lock \\
        .venv/bin/python -m bench.settlement [--orders 10000] [--workers 2] [--concurrency 2]
        .venv/bin/python -m bench.settlement --paced 150,200,250,300 [--seconds 15]

10,000 pending orders (sold in a cadre's room: fee, seller share and host commission),
each paid: its `payment_intent.succeeded` webhook, signed with the webhook secret, plus
10 % delivered twice, all shuffled, are POSTed to the webhook endpoint of the product
served as in production (uvicorn, --workers N); Celery workers (prefork, --concurrency
C) on the Redis broker settle them. The reference is the intake itself: settlement
keeps up when the settled count follows the accepted count (the backlog stays flat and
drains at once when the webhooks stop). Checks: every order paid and settled exactly
once, one ledger transaction per order, the ledger sums to zero.

`--paced R1,R2,...` delivers instead at each rate in turn (settlements/s; the duplicates
come on top), `--seconds` long, each round with fresh orders: a rate is kept up with when
the backlog does not grow over the round's second half (by more than a quarter second
of webhooks) and is gone within two seconds of the last webhook. The highest such rate is
what this machine settles in a steady stream.
Writes bench/results/settlement-<time>.json.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import hmac
import json
import os
import random
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from bench.flash_sale import ROOT, free_port, log, setup_django, start_server, stop, uvicorn_argv

RESULTS = ROOT / "bench" / "results"
SECRET = "whsec_bench_settlement"


def prepare_orders(count: int) -> list[dict[str, Any]]:
    """`count` pending orders with PaymentIntents; returns the intents Stripe would report paid."""
    from django.utils import timezone

    from catalog.models import Offer, Product, Shop, Sku
    from liveshop.models import User
    from orders.models import Order, OrderItem, Payment
    from orders.services.orders import order_number_new
    from rooms.models import Host, Room, RoomItem

    farmer, _ = User.objects.get_or_create(username="bench-farmer", defaults={"display_name": "Bench Farmer"})
    cadre, _ = User.objects.get_or_create(username="bench-cadre", defaults={"display_name": "Bench Cadre"})
    host, _ = Host.objects.get_or_create(
        user=cadre, defaults={"kind": "cadre", "district": "Jiangbei", "verified": True}
    )
    shop, _ = Shop.objects.get_or_create(owner=farmer, name="Bench Farm", defaults={"district": "Wulong"})
    sku = Sku.objects.create(product=Product.objects.create(shop=shop, title="Bench rice"), name="5 kg", price=6900)
    room = Room.objects.create(host=host, title="Bench settlement show", status=Room.Status.LIVE)
    # The cadre sells the farmer's rice under the farmer's offer: settlement pays a commission.
    offer = Offer.objects.create(sku=sku, created_by=farmer, commission_bps=1000, min_live_price=sku.price)
    item = RoomItem.objects.create(room=room, sku=sku, offer=offer)
    buyers = list(User.objects.filter(username__startswith="bench-buyer-").values_list("pk", flat=True)[:count])
    if not buyers:
        buyers = [farmer.pk]
    run = random.getrandbits(32)
    expires = timezone.now() + timedelta(hours=1)
    orders = Order.objects.bulk_create(
        [
            Order(
                number=order_number_new(),
                buyer_id=buyers[n % len(buyers)],
                shop=shop,
                room=room,
                subtotal=6900 * (1 + n % 3),
                total=6900 * (1 + n % 3),
                shipping={"name": "Bench", "phone": "13800000000", "address": "1 Rd", "district": "Yuzhong"},
                expires_at=expires,
            )
            for n in range(count)
        ],
        batch_size=2000,
    )
    OrderItem.objects.bulk_create(
        [
            OrderItem(
                order=order,
                sku=sku,
                room_item=item,
                title="Bench rice / 5 kg",
                quantity=order.total // 6900,
                unit_price=6900,
                line_total=order.total,
            )
            for order in orders
        ],
        batch_size=2000,
    )
    Payment.objects.bulk_create(
        [
            Payment(
                order=order,
                payment_intent_id=f"pi_bench_{run:x}_{order.pk}",
                client_secret=f"pi_bench_{run:x}_{order.pk}_secret",
                amount=order.total,
                currency="cny",
            )
            for order in orders
        ],
        batch_size=2000,
    )
    return [
        {
            "id": f"pi_bench_{run:x}_{order.pk}",
            "object": "payment_intent",
            "amount": order.total,
            "amount_received": order.total,
            "currency": "cny",
            "status": "succeeded",
            "metadata": {"liveshop_order": order.number},
            "_order": order.pk,
        }
        for order in orders
    ]


def signed_requests(intents: list[dict[str, Any]], duplicates: float) -> tuple[list[Any], list[int]]:
    from bench import loadgen

    events = []
    for intent in intents:
        order_id = intent.pop("_order")
        event = {
            "id": f"evt_{intent['id'][3:]}",
            "object": "event",
            "type": "payment_intent.succeeded",
            "created": int(time.time()),
            "data": {"object": intent},
        }
        events.append((order_id, json.dumps(event).encode()))
    deliveries = events + random.sample(events, int(len(events) * duplicates))
    random.shuffle(deliveries)
    requests = []
    for _, payload in deliveries:
        timestamp = int(time.time())
        digest = hmac.new(SECRET.encode(), f"{timestamp}.".encode() + payload, hashlib.sha256).hexdigest()
        requests.append(
            loadgen.Request(
                "/api/v1/payments/stripe/webhook/",
                payload,
                {"Content-Type": "application/json", "Stripe-Signature": f"t={timestamp},v1={digest}"},
            )
        )
    return requests, [order_id for order_id, _ in events]


def start_servers(args: Any) -> tuple[Any, Any, int, Any]:
    env = {
        **os.environ,
        "PYTHONUNBUFFERED": "1",
        "DEBUG": "0",
        "SECRET_KEY": "bench-secret-key-not-for-production",
        "STRIPE_SECRET_KEY": "sk_test_bench",
        "STRIPE_WEBHOOK_SECRET": SECRET,
        "LOG_LEVEL": "WARNING",
    }
    log_dir = RESULTS / "logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    log(f"starting {args.workers} uvicorn worker(s) and {args.concurrency} Celery worker process(es)")
    web = start_server(
        "settlement-web", uvicorn_argv("liveshop.asgi:application", port, args.workers), env, port, log_dir
    )
    worker_log = (log_dir / "settlement-worker.log").open("w")
    worker = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "liveshop", "worker", "-c", str(args.concurrency), "-l", "warning",
         "--without-mingle", "--without-gossip", "--prefetch-multiplier", "4"],
        cwd=ROOT, env=env, stdout=worker_log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    time.sleep(2)  # the worker connects to the broker
    return web, worker, port, worker_log


def settle_round(port: int, args: Any, orders: int, per_s: float | None) -> dict[str, Any]:
    """Deliver `orders` orders' webhooks (and the duplicates), as fast as they are taken
    or at `per_s`, and follow the backlog until every order is settled. Checks the outcome."""
    from bench import loadgen
    from orders.models import LedgerTransaction, Order, StripeEvent

    label = f"{per_s:.0f}/s" if per_s else "flood"
    log(f"{label}: creating {orders} pending orders with PaymentIntents")
    intents = prepare_orders(orders)
    event_ids = [f"evt_{i['id'][3:]}" for i in intents]
    requests, order_ids = signed_requests(intents, args.duplicates)
    first, last = min(order_ids), max(order_ids)
    samples: list[dict[str, float]] = []
    stop_sampling = threading.Event()
    run = loadgen.Run()

    def settled_count() -> int:
        return Order.objects.filter(pk__gte=first, pk__lte=last, status=Order.Status.PAID).count()

    def sample() -> None:
        from django.db import connection

        while not stop_sampling.is_set():
            accepted = len(run.results)
            settled = settled_count()
            t = time.perf_counter() - run.started_at if run.started_at else 0.0
            samples.append({"t": round(t, 2), "accepted": accepted, "settled": settled})
            stop_sampling.wait(0.5)
        connection.close()

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    log(f"{label}: delivering {len(requests)} webhooks ({args.duplicates:.0%} duplicates, shuffled)")
    try:
        if per_s:
            asyncio.run(
                loadgen.paced(
                    "127.0.0.1", port, requests, per_s=per_s * len(requests) / orders,
                    concurrency=args.http_concurrency, run=run, label="webhooks",
                )
            )  # fmt: skip
        else:
            run = asyncio.run(
                loadgen.burst("127.0.0.1", port, requests, concurrency=args.http_concurrency, label="webhooks")
            )
        delivered_at = time.perf_counter()
        deadline = time.monotonic() + 120
        while settled_count() < orders and time.monotonic() < deadline:
            time.sleep(0.1)
        settled_at = time.perf_counter()
    finally:
        stop_sampling.set()
        sampler.join(timeout=5)
    settled = settled_count()
    elapsed = settled_at - run.started_at
    # The backlog (orders whose webhook came, not settled yet) over the second half of the
    # delivery: flat when settlement keeps up, growing when it does not.
    half = [s for s in samples if run.elapsed_s / 2 <= s["t"] <= run.elapsed_s]
    backlog = [max(0.0, s["accepted"] * orders / len(requests) - s["settled"]) for s in half]
    transactions = LedgerTransaction.objects.filter(order_id__gte=first, order_id__lte=last, kind="order_payment")
    events = StripeEvent.objects.filter(event_id__in=event_ids)
    drain_s = round(max(0.0, settled_at - delivered_at), 2)
    # Flat: over the second half the backlog does not grow (by more than a quarter second
    # of webhooks), and it is gone within two seconds of the last webhook.
    quarter = max(1, len(backlog) // 4)
    growth = sum(backlog[-quarter:]) / quarter - sum(backlog[:quarter]) / quarter if backlog else 0.0
    flat = per_s is not None and drain_s <= 2.0 and growth <= per_s / 4
    result: dict[str, Any] = {
        "rate": label,
        "orders": orders,
        "webhooks": len(requests),
        "webhooks_per_s": round(len(run.results) / run.elapsed_s, 1),
        "webhook_p99_ms": round(run.percentile_ms(99), 1),
        "webhook_codes": run.codes(),
        "settled": settled,
        "settlements_per_s": round(settled / elapsed, 1),
        "drain_after_last_webhook_s": drain_s,
        "flat": flat,
        "backlog_growth": round(growth),
        "backlog_second_half": [round(b) for b in backlog],
        "checks": {
            "every_order_paid": settled == orders,
            "one_ledger_transaction_per_order": transactions.count() == orders,
            "events_stored_once": events.count() == orders,
            "events_all_processed": not events.filter(processed_at__isnull=True).exists(),
        },
        "samples": samples,
    }
    log(
        f"{label}: {result['settlements_per_s']} settled/s, drained {drain_s} s after the last webhook, "
        f"backlog over the second half {[round(b) for b in backlog][:12]}"
    )
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--orders", type=int, default=10_000)
    parser.add_argument("--duplicates", type=float, default=0.10)
    parser.add_argument("--workers", type=int, default=2, help="uvicorn worker processes")
    parser.add_argument("--concurrency", type=int, default=2, help="Celery worker processes (prefork)")
    parser.add_argument("--http-concurrency", type=int, default=32)
    parser.add_argument(
        "--paced", default="", help="settlements/s to deliver at, comma separated (instead of the flood)"
    )
    parser.add_argument("--seconds", type=float, default=15.0, help="length of each paced round")
    args = parser.parse_args()

    setup_django()
    from django.core.management import call_command

    from liveshop.celery import app as celery_app
    from orders.services.ledger import ledger_check

    log("migrating the bench database")
    call_command("migrate", verbosity=0)
    RESULTS.mkdir(parents=True, exist_ok=True)
    celery_app.control.purge()
    rates = [float(r) for r in args.paced.split(",") if r]
    web, worker, port, worker_log = start_servers(args)
    try:
        if rates:
            rounds = [settle_round(port, args, int(rate * args.seconds), rate) for rate in rates]
        else:
            rounds = [settle_round(port, args, args.orders, None)]
    finally:
        stop(worker)
        stop(web)
        worker_log.close()
    balanced = ledger_check() == {"unbalanced_transactions": [], "drifted_balances": []}
    report = {
        "benchmark": "settlement",
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "uvicorn_workers": args.workers,
        "celery_processes": args.concurrency,
        "cpus": os.cpu_count(),
        "rounds": rounds,
        "ledger_balanced": balanced,
    }
    print()
    print(f"settlement: {args.workers} uvicorn + {args.concurrency} celery processes, {os.cpu_count()} cpus")
    print("| delivery | orders | webhooks/s | settled/s | drained after last webhook | backlog flat | checks |")
    print("|---|---:|---:|---:|---:|---|---|")
    for r in rounds:
        checks = "OK" if all(r["checks"].values()) else "FAILED " + ",".join(k for k, v in r["checks"].items() if not v)
        print(
            f"| {r['rate']} | {r['orders']} | {r['webhooks_per_s']} | {r['settlements_per_s']} | "
            f"{r['drain_after_last_webhook_s']} s | {'yes' if r['flat'] else 'no'} | {checks} |"
        )
    flat = [r for r in rounds if r["flat"]]
    if rates:
        print(f"highest paced rate with a flat backlog: {flat[-1]['rate'] if flat else 'none'}")
    print(f"ledger balanced: {'OK' if balanced else 'FAILED'}")
    out = RESULTS / f"settlement-{datetime.now(UTC):%Y%m%dT%H%M%S}.json"
    out.write_text(json.dumps(report, indent=2))
    log(f"wrote {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
