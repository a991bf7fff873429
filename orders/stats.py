"""Reads for the statistics endpoints: a room's show figures and the district report.

They live in `orders` because they aggregate orders, and dependencies point one way
(`orders` may import `rooms`, never the reverse); the audience half comes from a rooms
selector (`rooms.selectors.room_audience`, `rooms_views`).

Order figures are computed from the orders when asked, never kept as running totals: a
per-room counter would be one more hot row for every settlement to update, and the
settlement path was made fast by removing exactly such rows (docs/PERFORMANCE.md,
benchmark 3). The aggregates read indexed columns (an order's room) and stay cheap.

Definitions (CONTRACT.md, "Statistics"):
- paid orders are those in `paid`, `shipped`, `delivered` or `refunded` (a payment was
  taken and kept, at least until a refund);
- `gmv` and `sales`: the paid orders' totals less what was refunded on them;
- `refunds`: what was refunded on paid orders (a late payment for an order that had
  expired is refunded too, but was never a sale, so it counts in neither);
- `orders` and `items_sold`: paid orders not refunded in full, and their units (a
  partial refund returns money, not units, so the units still count);
- `gmv_pending`: totals of orders waiting for payment.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from dataclasses import asdict, dataclass, field
from typing import Any

from django.conf import settings
from django.db.models import Count, F, Q, QuerySet, Sum

from orders.models import Order, OrderItem
from rooms import selectors as room_selectors
from rooms.models import GiftSend, Room, RoomItem

PAID = (Order.Status.PAID, Order.Status.SHIPPED, Order.Status.DELIVERED, Order.Status.REFUNDED)
SOLD = (Order.Status.PAID, Order.Status.SHIPPED, Order.Status.DELIVERED)


def room_gift_coins(*, room_id: int) -> int:
    """Coins of the gifts sent in the room (each `GiftSend` row moved its coins in the ledger)."""
    return int(GiftSend.objects.filter(room_id=room_id).aggregate(coins=Sum("coins"))["coins"] or 0)


def sales_orders() -> QuerySet[Order]:
    """Orders that count as sales: not the zero-total orders that ship giveaway prizes."""
    return Order.objects.filter(prize_claim__isnull=True)


def _order_figures(orders: Any) -> dict[str, int]:
    """gmv, refunds and gmv_pending of a queryset of orders, in one query."""
    figures = orders.aggregate(
        gmv=Sum(F("total") - F("refunded_amount"), filter=Q(status__in=PAID)),
        refunds=Sum("refunded_amount", filter=Q(status__in=PAID)),
        gmv_pending=Sum("total", filter=Q(status=Order.Status.PENDING_PAYMENT)),
        orders=Count("pk", filter=Q(status__in=SOLD)),
    )
    return {name: int(value or 0) for name, value in figures.items()}


def room_stats(*, room: Room) -> dict[str, Any]:
    """`GET /rooms/{id}/stats/`: the audience (live counters, or the durable report once
    the show ended) and the money (the room's orders, always current)."""
    audience = room_selectors.room_audience(room=room)
    money = _order_figures(sales_orders().filter(room=room))
    items_sold = OrderItem.objects.filter(
        order__room=room, order__status__in=SOLD, order__prize_claim__isnull=True
    ).aggregate(units=Sum("quantity"))
    return {
        "viewers_now": audience.viewers_now,
        "peak_viewers": audience.peak_viewers,
        "views": audience.views,
        "unique_viewers": audience.unique_viewers,
        "likes": audience.likes,
        "comments": audience.comments,
        "orders": money["orders"],
        "items_sold": int(items_sold["units"] or 0),
        "gmv": money["gmv"],
        "gmv_pending": money["gmv_pending"],
        "refunds": money["refunds"],
        "gift_coins": room_gift_coins(room_id=room.pk),
        "currency": settings.CURRENCY,
        "final": audience.final,
    }


# --- The district report ------------------------------------------------------------------------


@dataclass
class DistrictRow:
    district: str
    shows: int = 0
    views: int = 0
    products: int = 0
    items_sold: int = 0
    sales: int = 0


@dataclass
class DistrictReport:
    start: dt.date
    end: dt.date
    time_zone: str
    rows: list[DistrictRow]
    totals: DistrictRow = field(default_factory=lambda: DistrictRow(district=""))

    def as_dict(self) -> dict[str, Any]:
        totals = asdict(self.totals)
        totals.pop("district")
        return {
            "from": self.start.isoformat(),
            "to": self.end.isoformat(),
            "time_zone": self.time_zone,
            "currency": settings.CURRENCY,
            "rows": [asdict(row) for row in self.rows],
            "totals": totals,
        }


def district_report(*, start: dt.date, end: dt.date) -> DistrictReport:
    """Per host district: the shows that went live from `start` to `end` (whole days in
    STATS_TIME_ZONE, both included), their views, the distinct products on their shelves,
    and the units and sales of the orders placed in them. Rows by district name; the
    totals count a product shown in two districts once."""
    zone = zoneinfo.ZoneInfo(settings.STATS_TIME_ZONE)
    since = dt.datetime.combine(start, dt.time.min, tzinfo=zone)
    until = dt.datetime.combine(end + dt.timedelta(days=1), dt.time.min, tzinfo=zone)
    shows = Room.objects.filter(started_at__gte=since, started_at__lt=until)

    district_of = dict(shows.values_list("pk", "host__district"))
    rows: dict[str, DistrictRow] = {}

    def row(district: str) -> DistrictRow:
        # Read apart from the shows, a host that moved district meanwhile gets a row too.
        return rows.setdefault(district, DistrictRow(district=district))

    for district in district_of.values():
        row(district).shows += 1
    for room_id, views in room_selectors.rooms_views(room_ids=list(district_of)).items():
        row(district_of[room_id]).views += views

    shelves = RoomItem.objects.filter(room__in=shows).order_by()
    for district, products in shelves.values_list("room__host__district").annotate(
        products=Count("sku__product", distinct=True)
    ):
        row(district).products = products
    for district, units in (
        OrderItem.objects.filter(order__room__in=shows, order__status__in=SOLD, order__prize_claim__isnull=True)
        .values_list("order__room__host__district")
        .annotate(units=Sum("quantity"))
    ):
        row(district).items_sold = int(units or 0)
    for district, sales in (
        sales_orders()
        .filter(room__in=shows, status__in=PAID)
        .values_list("room__host__district")
        .annotate(sales=Sum(F("total") - F("refunded_amount")))
    ):
        row(district).sales = int(sales or 0)

    ordered = sorted(rows.values(), key=lambda row: row.district.casefold())
    totals = DistrictRow(
        district="",
        shows=sum(row.shows for row in ordered),
        views=sum(row.views for row in ordered),
        products=shelves.values("sku__product").distinct().count(),
        items_sold=sum(row.items_sold for row in ordered),
        sales=sum(row.sales for row in ordered),
    )
    return DistrictReport(start=start, end=end, time_zone=settings.STATS_TIME_ZONE, rows=ordered, totals=totals)
