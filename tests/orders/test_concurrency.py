"""Races on stock, flash sales, refunds and settlement, on PostgreSQL with real threads.

Each test asserts invariants (nothing oversold, stock arithmetic exact, a limit held,
money given back at most once), not timings.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import pytest
from django.db import connections
from rest_framework.test import APIClient

from orders.models import LedgerTransaction, Order, OrderItem, Refund, StripeEvent
from orders.services.ledger import ledger_check
from orders.services.payments import stripe_event_process, stripe_event_record
from rooms import flash_gate
from rooms.models import Room
from rooms.services import flash_sale_start
from tests import factories
from tests.factories import api_token
from tests.helpers import on_postgresql
from tests.orders.conftest import gate_redis, order_body, pay_at_stripe, place, stripe_event

pytestmark = pytest.mark.django_db(transaction=True)

T = TypeVar("T")


@pytest.fixture(autouse=True)
def _require_postgresql(db):
    if not on_postgresql():
        pytest.skip("concurrency tests need PostgreSQL (set DATABASE_URL)")


@pytest.fixture(autouse=True)
def _tasks_by_hand(monkeypatch):
    """Tasks enqueued on commit are recorded, not run: each test drives the workers itself."""
    enqueued: list[tuple[str, tuple[Any, ...]]] = []
    for name in (
        "stripe_event_process_task",
        "stripe_events_drain_task",
        "order_payment_cancel_task",
        "refund_execute_task",
    ):
        monkeypatch.setattr(f"orders.tasks.{name}.delay", lambda *args, _name=name: enqueued.append((_name, args)))
    return enqueued


# PostgreSQL allows 100 connections, shared with whatever else runs on the machine: many
# buyers are served by a bounded pool of threads (each with its own connection), all
# released at once.
MAX_THREADS = 30


def run_buyers(worker: Callable[[int], T], count: int) -> list[T]:
    start = threading.Event()

    def run(index: int) -> T:
        start.wait(timeout=30)
        try:
            return worker(index)
        finally:
            connections.close_all()

    with ThreadPoolExecutor(max_workers=min(count, MAX_THREADS)) as pool:
        futures = [pool.submit(run, index) for index in range(count)]
        start.set()
        return [future.result(timeout=120) for future in futures]


def _clients(count: int) -> list[APIClient]:
    clients = []
    for _ in range(count):
        user = factories.UserFactory.create()
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Token {api_token(user)}")
        clients.append(client)
    return clients


def _live_item(stock: int):
    room = factories.RoomFactory.create(status=Room.Status.LIVE)
    sku = factories.SkuFactory.create(stock=stock, price=3800, product__shop__owner=room.host.user)
    return room, sku, factories.RoomItemFactory.create(room=room, sku=sku)


def test_120_buyers_on_20_units_hold_exactly_20(settings):
    _, sku, item = _live_item(stock=20)
    clients = _clients(120)

    statuses = run_buyers(lambda i: place(clients[i], order_body({"item": item.pk, "quantity": 1})).status_code, 120)

    assert statuses.count(201) == 20
    assert statuses.count(409) == 100
    sku.refresh_from_db()
    assert sku.stock == 0
    assert Order.objects.count() == 20
    assert sum(OrderItem.objects.values_list("quantity", flat=True)) == 20


@pytest.mark.usefixtures("gates")  # one Redis, then a Redis Cluster
def test_120_buyers_on_a_20_unit_flash_sale(published):
    _, sku, item = _live_item(stock=100)
    sale = flash_sale_start(item=item, price=990, quantity=20, duration_s=60, per_buyer_limit=2)
    assert flash_gate.gate_remaining(sale_id=sale.pk) == 20  # loaded when the start committed
    clients = _clients(120)

    responses = run_buyers(lambda i: place(clients[i], order_body({"item": item.pk, "quantity": 1})), 120)

    statuses = [r.status_code for r in responses]
    codes = {r.json()["code"] for r in responses if r.status_code == 409}
    assert statuses.count(201) == 20, statuses
    assert codes == {"flash_sold_out"}
    sale.refresh_from_db()
    assert sale.remaining == 0
    sku.refresh_from_db()
    assert sku.stock == 80  # 100 - 20 moved into the sale; none from the regular stock
    assert OrderItem.objects.filter(flash_sale=sale).count() == 20
    assert {r.json()["items"][0]["unit_price"] for r in responses if r.status_code == 201} == {990}
    assert flash_gate.gate_remaining(sale_id=sale.pk) == 0


@pytest.mark.parametrize("gate", ["redis", "postgresql only"])
@pytest.mark.usefixtures("gates")
def test_per_buyer_limit_holds_under_concurrent_clicks(gate, published):
    _, _, item = _live_item(stock=100)
    sale = flash_sale_start(item=item, price=990, quantity=50, duration_s=60, per_buyer_limit=2)
    if gate != "redis":
        gate_redis().delete(flash_gate.sale_key(sale.pk))  # as if Redis lost it: PostgreSQL alone decides
    (client,) = _clients(1)

    responses = run_buyers(lambda i: place(client, order_body({"item": item.pk, "quantity": 1})), 12)

    statuses = [r.status_code for r in responses]
    assert statuses.count(201) == 2, statuses
    assert {r.json()["code"] for r in responses if r.status_code == 409} == {"limit_exceeded"}
    sale.refresh_from_db()
    assert sale.remaining == 48


def test_concurrent_refunds_never_give_back_more_than_was_paid(settings, host_profile):
    _, sku, item = _live_item(stock=10)
    buyer = factories.UserFactory.create()
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {api_token(buyer)}")
    order = Order.objects.get(pk=place(client, order_body({"item": item.pk, "quantity": 1})).json()["id"])
    stripe_event_record(event=stripe_event("payment_intent.succeeded", pay_at_stripe(order), event_id="evt_paid"))
    stripe_event_process(event_id="evt_paid")
    owner = sku.product.shop.owner
    seller = APIClient()
    seller.credentials(HTTP_AUTHORIZATION=f"Token {api_token(owner)}")

    statuses = run_buyers(
        lambda i: (
            seller.post(
                f"/api/v1/orders/{order.pk}/refund/", {"amount": 1000, "reason": "race"}, format="json"
            ).status_code
        ),
        8,
    )

    order.refresh_from_db()
    # 3,800 paid: three refunds of 1,000 fit, the rest are refused.
    assert statuses.count(200) == 3
    assert statuses.count(400) == 5
    assert order.refunded_amount == 3000
    assert Refund.objects.filter(status=Refund.Status.SUCCEEDED).count() == 3
    assert ledger_check() == {"unbalanced_transactions": [], "drifted_balances": []}


def test_two_workers_on_duplicate_events_settle_once(settings):
    _, _, item = _live_item(stock=10)
    buyer = factories.UserFactory.create()
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {api_token(buyer)}")
    order = Order.objects.get(pk=place(client, order_body({"item": item.pk, "quantity": 2})).json()["id"])
    intent: dict[str, Any] = pay_at_stripe(order)
    for n in range(6):  # six deliveries of the fact, under distinct event ids
        stripe_event_record(event=stripe_event("payment_intent.succeeded", intent, event_id=f"evt_{n}"))

    run_buyers(lambda i: stripe_event_process(event_id=f"evt_{i % 6}"), 12)

    assert StripeEvent.objects.filter(outcome="settled").count() == 1
    assert StripeEvent.objects.filter(outcome="duplicate: already settled").count() == 5
    assert Order.objects.get(pk=order.pk).status == Order.Status.PAID
    assert LedgerTransaction.objects.filter(kind="order_payment").count() == 1
    assert StripeEvent.objects.filter(processed_at__isnull=True).count() == 0
    assert ledger_check() == {"unbalanced_transactions": [], "drifted_balances": []}


def test_expiry_racing_settlement_has_one_winner(settings):
    from datetime import timedelta

    from django.utils import timezone

    from orders.services.orders import order_expire

    _, sku, item = _live_item(stock=1)
    buyer = factories.UserFactory.create()
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {api_token(buyer)}")
    order = Order.objects.get(pk=place(client, order_body({"item": item.pk, "quantity": 1})).json()["id"])
    stripe_event_record(event=stripe_event("payment_intent.succeeded", pay_at_stripe(order), event_id="evt_race"))
    Order.objects.filter(pk=order.pk).update(expires_at=timezone.now() - timedelta(seconds=1))

    run_buyers(lambda i: order_expire(order_id=order.pk) if i == 0 else stripe_event_process(event_id="evt_race"), 2)

    order.refresh_from_db()
    sku.refresh_from_db()
    # Whichever came first, the payment is kept and the single unit is the buyer's.
    assert order.status == Order.Status.PAID
    assert sku.stock == 0
    assert LedgerTransaction.objects.filter(kind="order_payment").count() == 1
    assert not Refund.objects.exists()
