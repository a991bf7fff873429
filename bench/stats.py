"""Benchmark 4: statistics at the Commission's scale.

    DATABASE_URL=postgres://... REDIS_URL=redis://.../N flock /tmp/liveshop-bench.lock \\
        .venv/bin/python -m bench.stats [--shows 20000] [--orders-per-show 10] [--big-room-orders 10000]

A quarter of shows (the Commission's Q1: 20,000 shows, 41,000 products) in Chongqing's 38
districts and counties, each show with 8 products on its shelf, its orders (paid, shipped,
delivered, partly and fully refunded, unpaid) and its durable audience report, created once
and reused by later runs. Measured, median of several runs:

- the district report over the quarter: the selector alone, and `GET /stats/districts/`
  as JSON and as CSV through Django (serialisation and rendering included);
- against a reference in the same run: what a team would write first, a loop over the
  shows with a few queries each, on one week of shows (all of it would take minutes),
  beside liveshop's report on the same week;
- `GET /rooms/{id}/stats/`'s figures for a show with --big-room-orders orders, computed
  from the orders as liveshop does, against reading one row of running totals (the
  design liveshop refuses, because every settlement would update that row).

Writes bench/results/stats-<time>.json.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import random
import statistics
import time
import zoneinfo
from collections.abc import Callable
from typing import Any

from bench.flash_sale import ROOT, log, setup_django

RESULTS = ROOT / "bench" / "results"
TAG = "bench-stats"
QUARTER = (dt.date(2026, 1, 1), dt.date(2026, 3, 31))
FIRST_WEEK = (dt.date(2026, 1, 5), dt.date(2026, 1, 11))
DISTRICTS = (
    "Yuzhong",
    "Dadukou",
    "Jiangbei",
    "Shapingba",
    "Jiulongpo",
    "Nanan",
    "Beibei",
    "Yubei",
    "Banan",
    "Wanzhou",
    "Fuling",
    "Qianjiang",
    "Changshou",
    "Jiangjin",
    "Hechuan",
    "Yongchuan",
    "Nanchuan",
    "Qijiang",
    "Dazu",
    "Bishan",
    "Tongliang",
    "Tongnan",
    "Rongchang",
    "Kaizhou",
    "Liangping",
    "Wulong",
    "Chengkou",
    "Fengdu",
    "Dianjiang",
    "Zhongxian",
    "Yunyang",
    "Fengjie",
    "Wushan",
    "Wuxi",
    "Shizhu",
    "Xiushan",
    "Youyang",
    "Pengshui",
)
ITEMS_PER_SHOW = 8
PRODUCTS = 41_000


def timed(func: Callable[[], Any], runs: int) -> tuple[float, Any]:
    """Median seconds of `runs` calls, and the last result."""
    times = []
    result = None
    for _ in range(runs):
        started = time.perf_counter()
        result = func()
        times.append(time.perf_counter() - started)
    return statistics.median(times), result


def prepare(shows: int, orders_per_show: int) -> None:
    """The quarter's data, created once (tagged) and reused."""
    from django.contrib.auth.hashers import make_password
    from django.db import transaction
    from django.utils import timezone

    from catalog.models import Product, Shop, Sku
    from liveshop.models import User
    from orders.models import Order, OrderItem
    from rooms.models import Host, Room, RoomItem, RoomStatsReport

    have = Room.objects.filter(title__startswith=TAG).count()
    if have >= shows:
        log(f"reusing {have} bench shows")
        return
    if have:
        raise SystemExit(f"{have} bench shows exist, fewer than --shows {shows}: use a fresh database")
    rng = random.Random(6)
    password = make_password(None)
    zone = zoneinfo.ZoneInfo("Asia/Shanghai")
    with transaction.atomic():
        log(f"creating hosts and shops in {len(DISTRICTS)} districts")
        users = User.objects.bulk_create(
            [
                User(username=f"{TAG}-{n}", display_name=f"Host {n}", password=password)
                for n in range(2 * len(DISTRICTS))
            ]
        )
        hosts = Host.objects.bulk_create(
            [Host(user=user, kind="farmer", district=DISTRICTS[n // 2], verified=True) for n, user in enumerate(users)]
        )
        shops = Shop.objects.bulk_create(
            [Shop(owner=user, name=f"{TAG} shop {n}", district=DISTRICTS[n // 2]) for n, user in enumerate(users)]
        )
        log(f"creating {PRODUCTS} products and skus")
        products = Product.objects.bulk_create(
            [Product(shop=shops[n % len(shops)], title=f"{TAG} product {n}") for n in range(PRODUCTS)],
            batch_size=5000,
        )
        skus = Sku.objects.bulk_create(
            [Sku(product=product, name="1 kg", price=rng.randint(990, 19900), stock=10**6) for product in products],
            batch_size=5000,
        )
        skus_by_shop: dict[int, list[Sku]] = {}
        for sku, product in zip(skus, products, strict=True):
            skus_by_shop.setdefault(product.shop_id, []).append(sku)

        log(f"creating {shows} shows over the quarter, {ITEMS_PER_SHOW} shelf items each")
        span = dt.datetime.combine(QUARTER[1], dt.time.max, zone) - dt.datetime.combine(QUARTER[0], dt.time.min, zone)
        start = dt.datetime.combine(QUARTER[0], dt.time.min, zone)
        rooms = Room.objects.bulk_create(
            [
                Room(
                    host=hosts[n % len(hosts)],
                    title=f"{TAG} show {n}",
                    status=Room.Status.ENDED,
                    started_at=start + span * rng.random(),
                    ended_at=timezone.now(),
                )
                for n in range(shows)
            ],
            batch_size=5000,
        )
        shelves: dict[int, list[RoomItem]] = {}
        items = []
        for room, host_index in zip(rooms, (n % len(hosts) for n in range(shows)), strict=True):
            # A host sells mostly its own shop's goods, and some of its district neighbour's.
            pool = skus_by_shop[shops[host_index].pk] + skus_by_shop[shops[host_index ^ 1].pk]
            shelf = [RoomItem(room=room, sku=sku, position=i) for i, sku in enumerate(rng.sample(pool, ITEMS_PER_SHOW))]
            shelves[room.pk] = shelf
            items.extend(shelf)
        RoomItem.objects.bulk_create(items, batch_size=10_000)
        RoomStatsReport.objects.bulk_create(
            [
                RoomStatsReport(
                    room=room,
                    views=rng.randint(100, 20_000),
                    unique_viewers=rng.randint(50, 10_000),
                    peak_viewers=rng.randint(10, 2000),
                    likes=rng.randint(0, 50_000),
                )
                for room in rooms
            ],
            batch_size=5000,
        )

        log(f"creating {shows * orders_per_show} orders")
        buyer = users[0]
        statuses = ["paid"] * 5 + ["shipped"] * 6 + ["delivered"] * 5 + ["refunded", "pending_payment", "expired"]
        orders, lines = [], []
        expires = timezone.now()
        for room in rooms:
            for n in range(orders_per_show):
                item = rng.choice(shelves[room.pk])
                quantity = rng.randint(1, 4)
                total = item.sku.price * quantity
                status = rng.choice(statuses)
                refunded = total if status == "refunded" else (total // 4 if rng.random() < 0.05 else 0)
                if status in ("pending_payment", "expired"):
                    refunded = 0
                order = Order(
                    number=f"B{room.pk}-{n}",
                    buyer=buyer,
                    shop_id=item.sku.product.shop_id,
                    room=room,
                    status=status,
                    subtotal=total,
                    total=total,
                    refunded_amount=refunded,
                    shipping={},
                    expires_at=expires,
                )
                orders.append(order)
                lines.append((order, item, quantity))
        Order.objects.bulk_create(orders, batch_size=10_000)
        OrderItem.objects.bulk_create(
            [
                OrderItem(
                    order=order,
                    sku=item.sku,
                    room_item=item,
                    title="x",
                    quantity=quantity,
                    unit_price=item.sku.price,
                    line_total=order.total,
                )
                for order, item, quantity in lines
            ],
            batch_size=10_000,
        )


def naive_district_report(start: dt.date, end: dt.date) -> dict[str, dict[str, int]]:
    """The reference: a loop over the shows, a few queries each."""
    from django.db.models import F, Sum

    from orders.models import Order, OrderItem
    from rooms.models import Room, RoomItem, RoomStatsReport

    zone = zoneinfo.ZoneInfo("Asia/Shanghai")
    since = dt.datetime.combine(start, dt.time.min, zone)
    until = dt.datetime.combine(end + dt.timedelta(days=1), dt.time.min, zone)
    rows: dict[str, dict[str, Any]] = {}
    for room in Room.objects.filter(started_at__gte=since, started_at__lt=until).select_related("host"):
        row = rows.setdefault(
            room.host.district, {"shows": 0, "views": 0, "products": set(), "items_sold": 0, "sales": 0}
        )
        row["shows"] += 1
        report = RoomStatsReport.objects.filter(room=room).first()
        row["views"] += report.views if report else 0
        row["products"].update(RoomItem.objects.filter(room=room).values_list("sku__product_id", flat=True))
        paid = Order.objects.filter(room=room, status__in=["paid", "shipped", "delivered", "refunded"])
        row["sales"] += paid.aggregate(s=Sum(F("total") - F("refunded_amount")))["s"] or 0
        sold = OrderItem.objects.filter(order__room=room, order__status__in=["paid", "shipped", "delivered"])
        row["items_sold"] += sold.aggregate(u=Sum("quantity"))["u"] or 0
    return {district: {**row, "products": len(row["products"])} for district, row in rows.items()}


def prepare_big_room(orders: int) -> int:
    """One show with `orders` orders (a flash-sale hit), created once."""
    from django.utils import timezone

    from catalog.models import Sku
    from orders.models import Order, OrderItem
    from rooms.models import Host, Room, RoomItem

    title = f"{TAG} big show {orders}"
    room = Room.objects.filter(title=title).first()
    if room is not None:
        return room.pk
    log(f"creating a show with {orders} orders")
    host = Host.objects.filter(user__username__startswith=TAG).first()
    assert host is not None
    room = Room.objects.create(host=host, title=title, status=Room.Status.LIVE, started_at=timezone.now())
    sku = Sku.objects.filter(product__shop__owner=host.user).select_related("product").first()
    assert sku is not None
    item = RoomItem.objects.create(room=room, sku=sku)
    made = Order.objects.bulk_create(
        [
            Order(
                number=f"BB{room.pk}-{n}",
                buyer=host.user,
                shop_id=sku.product.shop_id,
                room=room,
                status="paid" if n % 10 else "pending_payment",
                subtotal=sku.price,
                total=sku.price,
                shipping={},
                expires_at=timezone.now(),
            )
            for n in range(orders)
        ],
        batch_size=10_000,
    )
    OrderItem.objects.bulk_create(
        [
            OrderItem(order=o, sku=sku, room_item=item, title="x", quantity=1, unit_price=o.total, line_total=o.total)
            for o in made
        ],
        batch_size=10_000,
    )
    return room.pk


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shows", type=int, default=20_000)
    parser.add_argument("--orders-per-show", type=int, default=10)
    parser.add_argument("--big-room-orders", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    setup_django()

    from django.db import connection
    from django.test import Client

    from liveshop.models import User
    from orders import stats
    from rooms.models import Room, RoomStatsReport

    prepare(args.shows, args.orders_per_show)
    big_room = prepare_big_room(args.big_room_orders)
    log("analysing the tables")
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    staff, _ = User.objects.get_or_create(username=f"{TAG}-staff", defaults={"is_staff": True})
    client = Client()
    client.force_login(staff)
    quarter = f"/api/v1/stats/districts/?from={QUARTER[0]}&to={QUARTER[1]}"

    log("district report over the quarter (selector)")
    quarter_s, report = timed(lambda: stats.district_report(start=QUARTER[0], end=QUARTER[1]), args.runs)
    log("district report over the quarter (HTTP, JSON and CSV)")
    json_s, response = timed(lambda: client.get(quarter), args.runs)
    assert response.status_code == 200, response.content[:300]
    csv_s, response = timed(lambda: client.get(quarter + "&format=csv"), args.runs)
    assert response.status_code == 200

    log("one week: liveshop's report and the naive loop (the reference)")
    week_s, week = timed(lambda: stats.district_report(start=FIRST_WEEK[0], end=FIRST_WEEK[1]), args.runs)
    naive_s, naive = timed(lambda: naive_district_report(*FIRST_WEEK), max(1, args.runs // 2))
    ours = {row.district: {k: v for k, v in vars(row).items() if k != "district"} for row in week.rows}
    assert ours == naive, "the two reports disagree"

    log("a big show's figures: from its orders, against one running-totals row")
    room = Room.objects.select_related("host").get(pk=big_room)
    room_s, figures = timed(lambda: stats.room_stats(room=room), args.runs * 4)
    row_s, _ = timed(lambda: RoomStatsReport.objects.filter(room_id=big_room).first(), args.runs * 4)

    results = {
        "shows": report.totals.shows,
        "views": report.totals.views,
        "products": report.totals.products,
        "items_sold": report.totals.items_sold,
        "sales": report.totals.sales,
        "quarter_report_ms": round(quarter_s * 1000, 1),
        "quarter_http_json_ms": round(json_s * 1000, 1),
        "quarter_http_csv_ms": round(csv_s * 1000, 1),
        "week_shows": week.totals.shows,
        "week_report_ms": round(week_s * 1000, 1),
        "week_naive_ms": round(naive_s * 1000, 1),
        "week_speedup": round(naive_s / week_s, 1),
        "big_room_orders": figures["orders"],
        "room_stats_ms": round(room_s * 1000, 2),
        "running_totals_row_ms": round(row_s * 1000, 2),
    }
    print()
    print(f"{'measure':<58} {'value':>14}")
    print("-" * 73)
    lines = [
        ("quarter: shows / views / products", f"{results['shows']:,} / {results['views']:,} / {results['products']:,}"),
        ("quarter: items sold / sales (fen)", f"{results['items_sold']:,} / {results['sales']:,}"),
        ("district report, quarter, selector (ms)", results["quarter_report_ms"]),
        ("district report, quarter, GET JSON (ms)", results["quarter_http_json_ms"]),
        ("district report, quarter, GET CSV (ms)", results["quarter_http_csv_ms"]),
        (f"one week ({results['week_shows']:,} shows): liveshop (ms)", results["week_report_ms"]),
        ("one week: naive loop over the shows, reference (ms)", results["week_naive_ms"]),
        ("one week: speed-up over the reference", f"{results['week_speedup']}x"),
        (f"room stats, {args.big_room_orders:,} orders, from the orders (ms)", results["room_stats_ms"]),
        ("room stats from one running-totals row, reference (ms)", results["running_totals_row_ms"]),
    ]
    for name, value in lines:
        print(f"{name:<58} {value!s:>14}")
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / f"stats-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.write_text(json.dumps(results, indent=2))
    log(f"wrote {out}")


if __name__ == "__main__":
    main()
