"""The statistics endpoints: who may read them, the district report's figures (days in
Chongqing's time zone, views from the durable report or the live counters, products
counted once, sales less refunds), its CSV, bad input, and the durable report's task."""

from __future__ import annotations

import csv
import datetime as dt
import io
import secrets
from typing import Any

import pytest
from django.utils import timezone

from catalog.models import Sku
from liveshop.models import User
from liveshop.redis_client import redis_sync
from orders.models import Order, OrderItem
from rooms.models import Host, Room, RoomModerator, RoomStatsReport
from rooms.realtime.backend import get_backend
from rooms.services import stats as stats_service
from rooms.tasks import room_stats_report_task
from tests import factories
from tests.helpers import assert_error

pytestmark = pytest.mark.django_db

UTC = dt.UTC


@pytest.fixture(autouse=True)
def _clean_counters() -> Any:
    """The room ids of these (rolled back) tests come again: start every test with no counters."""

    def clear() -> None:
        backend = get_backend()
        client = redis_sync()
        assert client is not None, "set REDIS_URL"
        keys = list(client.scan_iter(match=f"{backend.prefix}:r{{*", count=1000))  # type: ignore[attr-defined]
        if keys:
            client.delete(*keys)

    clear()
    yield
    clear()


def set_counters(room: Room, *, views: int = 0, visitors: int = 0, peak: int = 0, likes: int = 0) -> None:
    """What the hub and the consumer write while a show runs (rooms/realtime/redis_backend.py)."""
    backend: Any = get_backend()
    client = redis_sync()
    assert client is not None
    client.set(backend.room_key(room.pk, "views"), views)
    client.set(backend.room_key(room.pk, "peak"), peak)
    client.set(backend.room_key(room.pk, "likes"), likes)
    if visitors:
        client.pfadd(backend.room_key(room.pk, "visitors"), *[f"u:{i}" for i in range(visitors)])


def make_order(room: Room, sku: Sku, *, status: str, units: int, total: int, refunded: int = 0) -> Order:
    buyer = factories.UserFactory.create()
    order = Order.objects.create(
        number=f"LS{secrets.token_hex(6)}",
        buyer=buyer,
        shop=sku.product.shop,
        room=room,
        status=status,
        subtotal=total,
        total=total,
        shipping={"name": "Li", "phone": "+86 1", "address": "x", "district": "Yuzhong"},
        expires_at=timezone.now(),
        refunded_amount=refunded,
        paid_at=timezone.now() if status in ("paid", "shipped", "delivered", "refunded") else None,
    )
    OrderItem.objects.create(
        order=order, sku=sku, title="x", quantity=units, unit_price=total // units, line_total=total
    )
    return order


# --- GET /rooms/{id}/stats/ --------------------------------------------------------------------------


@pytest.fixture
def moderator(room: Room) -> User:
    user = factories.UserFactory.create(username="mod")
    RoomModerator.objects.create(room=room, user=user)
    return user


@pytest.fixture
def other_moderator(other_host: User) -> User:
    user = factories.UserFactory.create(username="othermod")
    RoomModerator.objects.create(room=factories.RoomFactory.create(host=other_host.host), user=user)
    return user


@pytest.mark.parametrize(
    ("who", "status"),
    [
        ("anonymous", 401),
        ("viewer", 403),
        ("moderator", 403),
        ("other_moderator", 403),
        ("host", 200),
        ("other_host", 403),
        ("staff", 200),
    ],
)
def test_room_stats_matrix(client_for, persona, live_room, moderator, other_moderator, who, status):
    response = client_for(persona(who)).get(f"/api/v1/rooms/{live_room.pk}/stats/")
    assert response.status_code == status
    if status == 200:
        assert set(response.json()) == {
            "viewers_now",
            "peak_viewers",
            "views",
            "unique_viewers",
            "likes",
            "comments",
            "orders",
            "items_sold",
            "gmv",
            "gmv_pending",
            "refunds",
            "gift_coins",
            "currency",
            "final",
        }
    else:
        assert response.json()["code"] == {401: "not_authenticated", 403: "permission_denied"}[status]


def test_room_stats_of_a_room_one_may_not_see_is_not_found(client_for, viewer, host, staff, live_room):
    Room.objects.filter(pk=live_room.pk).update(status=Room.Status.SUSPENDED)
    assert_error(client_for(viewer).get(f"/api/v1/rooms/{live_room.pk}/stats/"), 404, "not_found")
    assert client_for(host).get(f"/api/v1/rooms/{live_room.pk}/stats/").status_code == 200
    assert_error(client_for(staff).get("/api/v1/rooms/999999/stats/"), 404, "not_found")


def test_ended_room_before_its_report_reads_the_counters(client_for, host, live_room):
    Room.objects.filter(pk=live_room.pk).update(status=Room.Status.ENDED, ended_at=timezone.now())
    set_counters(live_room, views=9, visitors=4, peak=3, likes=20)
    body = client_for(host).get(f"/api/v1/rooms/{live_room.pk}/stats/").json()
    assert (body["views"], body["unique_viewers"], body["peak_viewers"], body["likes"], body["final"]) == (
        9,
        4,
        3,
        20,
        False,
    )


# --- The durable report ----------------------------------------------------------------------------------


def test_report_is_written_once_and_only_for_rooms_that_are_over(live_room):
    figures = {"views": 10, "unique_viewers": 7, "peak_viewers": 5, "likes": 99}
    assert room_stats_report_task.delay(live_room.pk, figures).get() is False  # still live
    Room.objects.filter(pk=live_room.pk).update(status=Room.Status.ENDED, ended_at=timezone.now())
    assert room_stats_report_task.delay(live_room.pk, figures).get() is True
    # A second delivery, or one after Redis lost the counters, changes nothing.
    assert room_stats_report_task.delay(live_room.pk, {**figures, "views": 0}).get() is False
    report = RoomStatsReport.objects.get()
    assert (report.views, report.unique_viewers, report.peak_viewers, report.likes) == (10, 7, 5, 99)


def test_sweeper_writes_reports_whose_task_was_lost(host_profile):
    long_ago = timezone.now() - dt.timedelta(minutes=5)
    missing = factories.RoomFactory.create(host=host_profile, status=Room.Status.ENDED, ended_at=long_ago)
    just_ended = factories.RoomFactory.create(host=host_profile, status=Room.Status.ENDED, ended_at=timezone.now())
    live = factories.RoomFactory.create(host=host_profile, status=Room.Status.LIVE)
    for room in (missing, just_ended, live):
        set_counters(room, views=6, visitors=2, peak=2, likes=1)

    assert stats_service.room_stats_reports_sweep() == 1
    assert list(RoomStatsReport.objects.values_list("room_id", "views")) == [(missing.pk, 6)]
    assert stats_service.room_stats_reports_sweep() == 0


def test_room_end_captures_the_counters_at_the_end(client_for, host, live_room, django_capture_on_commit_callbacks):
    set_counters(live_room, views=12, visitors=5, peak=4, likes=30)
    with django_capture_on_commit_callbacks(execute=True):
        assert client_for(host).post(f"/api/v1/rooms/{live_room.pk}/end/").status_code == 200
    set_counters(live_room, views=13)  # someone opened the ended room's page afterwards
    report = RoomStatsReport.objects.get(room=live_room)
    assert (report.views, report.unique_viewers, report.peak_viewers, report.likes) == (12, 5, 4, 30)
    assert client_for(host).get(f"/api/v1/rooms/{live_room.pk}/stats/").json()["views"] == 12


# --- GET /stats/districts/ -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("who", "status"),
    [("anonymous", 401), ("viewer", 403), ("host", 403), ("other_host", 403), ("staff", 200)],
)
def test_district_report_matrix(client_for, persona, who, status):
    response = client_for(persona(who)).get("/api/v1/stats/districts/?from=2026-04-01&to=2026-04-30")
    assert response.status_code == status
    response = client_for(persona(who)).get("/api/v1/stats/districts/?from=2026-04-01&to=2026-04-30&format=csv")
    assert response.status_code == status


def _host(district: str) -> Host:
    return factories.HostFactory.create(district=district)


def _show(host: Host, started_at: dt.datetime, products: list[Sku], status: str = Room.Status.ENDED) -> Room:
    room = factories.RoomFactory.create(host=host, status=status, started_at=started_at)
    for sku in products:
        factories.RoomItemFactory.create(room=room, sku=sku)
    return room


@pytest.fixture
def april() -> dict[str, Any]:
    """Shows around April 2026 in Chongqing (UTC+8), with their orders."""
    tea, tofu, oranges = (factories.SkuFactory.create(product__title=t) for t in ("tea", "tofu", "oranges"))
    wulong, jiangbei, fengjie = _host("Wulong"), _host("Jiangbei"), _host("Fengjie")
    # 00:30 on 1 April in Chongqing, still 31 March in UTC: in.
    first = _show(wulong, dt.datetime(2026, 3, 31, 16, 30, tzinfo=UTC), [tea, tofu])
    RoomStatsReport.objects.create(room=first, views=100, unique_viewers=80, peak_viewers=30, likes=5)
    # 23:59 on 31 March in Chongqing: out.
    before = _show(wulong, dt.datetime(2026, 3, 31, 15, 59, tzinfo=UTC), [tea])
    RoomStatsReport.objects.create(room=before, views=1000)
    # 23:00 on 30 April in Chongqing: in; still live, its views in the counters.
    last = _show(jiangbei, dt.datetime(2026, 4, 30, 15, 0, tzinfo=UTC), [tea, oranges], status=Room.Status.LIVE)
    set_counters(last, views=40)
    # 00:00 on 1 May in Chongqing: out. Never started: out.
    after = _show(fengjie, dt.datetime(2026, 4, 30, 16, 0, tzinfo=UTC), [oranges])
    never = factories.RoomFactory.create(host=fengjie)

    make_order(first, tea, status="paid", units=2, total=2000)
    make_order(first, tea, status="shipped", units=3, total=3000, refunded=1000)  # partly refunded
    make_order(first, tofu, status="refunded", units=1, total=500, refunded=500)  # all back: not sold
    make_order(first, tofu, status="pending_payment", units=4, total=600)  # not paid
    make_order(first, tofu, status="expired", units=1, total=700, refunded=700)  # a late payment, refunded
    make_order(first, tofu, status="cancelled", units=1, total=900)
    make_order(last, oranges, status="delivered", units=2, total=2500)
    make_order(last, tea, status="paid", units=1, total=1500)
    for room in (before, after, never):
        make_order(room, oranges, status="paid", units=9, total=9999)
    return {"last": last}


def test_district_report_figures(client_for, staff, april):
    response = client_for(staff).get("/api/v1/stats/districts/?from=2026-04-01&to=2026-04-30")
    assert response.status_code == 200
    assert response.json() == {
        "from": "2026-04-01",
        "to": "2026-04-30",
        "time_zone": "Asia/Shanghai",
        "currency": "cny",
        "rows": [
            {"district": "Jiangbei", "shows": 1, "views": 40, "products": 2, "items_sold": 3, "sales": 4000},
            {"district": "Wulong", "shows": 1, "views": 100, "products": 2, "items_sold": 5, "sales": 4000},
        ],
        # The tea was shown in both districts: one product in the totals.
        "totals": {"shows": 2, "views": 140, "products": 3, "items_sold": 8, "sales": 8000},
    }
    empty = client_for(staff).get("/api/v1/stats/districts/?from=2025-01-01&to=2025-01-31").json()
    assert empty["rows"] == []
    assert empty["totals"] == {"shows": 0, "views": 0, "products": 0, "items_sold": 0, "sales": 0}


def test_district_report_csv(client_for, staff, april):
    Host.objects.filter(district="Jiangbei").update(district="=HYPERLINK(evil)")
    response = client_for(staff).get("/api/v1/stats/districts/?from=2026-04-01&to=2026-04-30&format=csv")
    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"] == 'attachment; filename="liveshop-districts-2026-04-01-2026-04-30.csv"'
    text = response.content.decode("utf-8")
    assert text.startswith("\ufeff")
    assert list(csv.reader(io.StringIO(text[1:]))) == [
        ["district", "shows", "views", "products", "items_sold", "sales", "currency"],
        ["'=HYPERLINK(evil)", "1", "40", "2", "3", "4000", "cny"],  # a formula, neutralised
        ["Wulong", "1", "100", "2", "5", "4000", "cny"],
        ["TOTAL", "2", "140", "3", "8", "8000", "cny"],
    ]
    assert text.endswith("\r\n")


@pytest.mark.parametrize(
    "query",
    [
        "",
        "?from=2026-04-01",
        "?to=2026-04-30",
        "?from=2026-04-31&to=2026-05-01",
        "?from=yesterday&to=2026-05-01",
        "?from=2026-04-01T00:00:00Z&to=2026-05-01",
        "?from=2026-05-01&to=2026-04-30",
        "?from=2026-04-01&to=2026-04-30&format=xml",
        "?from=2026-05-01&to=2026-04-30&format=csv",
    ],
)
def test_district_report_bad_input(client_for, staff, query):
    response = client_for(staff).get(f"/api/v1/stats/districts/{query}")
    assert_error(response, 400, "invalid")
    assert response["Content-Type"] == "application/json"
