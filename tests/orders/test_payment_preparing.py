"""Stripe's rate limit: PaymentIntents are created under a write limiter shared by every
process (orders/stripe_limiter.py). An order placed when no write is free is answered at
once with its payment "preparing"; a worker creates the intent in the slot reserved for
it, the buyer's sockets hear `order.payment_ready`, and POST /orders/{id}/payment/ gives
it (or makes it when a write is free). Its deadline does not run out meanwhile."""

from __future__ import annotations

import io
import json
import time
import urllib.request
from datetime import timedelta
from typing import Any

import pytest
import stripe
from django.core.management import call_command
from django.db import connection
from django.db.models import F
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from orders import stripe_api
from orders.models import Order, Payment
from orders.services import payments
from orders.services.orders import PAYMENT_PREPARE_MAX, orders_expire_due
from orders.stripe_limiter import _LocalBucket, stripe_write_slot
from tests.orders.conftest import gate_redis, order_body, place
from tests.orders.test_flash_sales import sale  # noqa: F401  (a fixture)
from tests.servers import localstripe

pytestmark = pytest.mark.django_db


@pytest.fixture
def limit(settings: Any) -> Any:
    """Stripe's writes limited to `limit(n)` a second, on a fresh bucket."""

    def set_rate(rate: int) -> None:
        settings.STRIPE_WRITE_RATE = rate
        gate_redis().delete(f"{settings.LIVESHOP_REDIS_PREFIX}:stripe:writes")

    yield set_rate
    gate_redis().delete(f"{settings.LIVESHOP_REDIS_PREFIX}:stripe:writes")


@pytest.fixture
def scheduled(monkeypatch: pytest.MonkeyPatch) -> list[tuple[tuple[Any, ...], float]]:
    """The intents handed to the worker: (args, countdown), not run."""
    calls: list[tuple[tuple[Any, ...], float]] = []
    monkeypatch.setattr(
        "orders.tasks.order_payment_prepare_task.apply_async",
        lambda args, countdown=0, **kwargs: calls.append((tuple(args), countdown)),
    )
    return calls


@pytest.fixture
def ready_frames(monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, int, dict[str, Any]]]:
    frames: list[tuple[int, int, dict[str, Any]]] = []
    monkeypatch.setattr("rooms.broadcast.room_user_send", lambda room, user, frame: frames.append((room, user, frame)))
    return frames


def preparing_order(client, shelf_item, limit, committed) -> int:
    """At one write a second, a first order takes the write; the second's payment is preparing."""
    limit(1)
    place(client, order_body({"item": shelf_item.pk, "quantity": 1}), key="k1")
    with committed():
        return int(place(client, order_body({"item": shelf_item.pk, "quantity": 1}), key="k2").json()["id"])


# --- the limiter ---------------------------------------------------------------------------------


def test_reservations_queue_up_at_the_rate_and_a_mere_ask_never_jumps_the_queue(limit):
    limit(10)  # bursts of 2 (a fifth of a second's worth), then one every 0.1 s
    assert [stripe_write_slot() for _ in range(2)] == [0.0] * 2
    waits = [stripe_write_slot() for _ in range(3)]
    assert waits == [pytest.approx(0.1, abs=0.03), pytest.approx(0.2, abs=0.03), pytest.approx(0.3, abs=0.03)]
    assert stripe_write_slot(reserve=False) > 0  # nothing free now: nothing reserved either
    assert stripe_write_slot() == pytest.approx(0.4, abs=0.03)


def test_without_redis_the_bucket_is_the_processs_own():
    bucket = _LocalBucket()
    assert [bucket.take(2, 2, reserve=True) for _ in range(2)] == [0.0, 0.0]
    assert bucket.take(2, 2, reserve=False) > 0
    assert bucket.take(2, 2, reserve=True) == pytest.approx(0.5, abs=0.05)
    assert bucket.take(2, 2, reserve=True) == pytest.approx(1.0, abs=0.05)


def test_no_limit_when_the_rate_is_zero(limit):
    limit(0)
    assert {stripe_write_slot() for _ in range(100)} == {0.0}


# --- orders ---------------------------------------------------------------------------------------


def test_past_the_limit_an_order_is_answered_preparing_and_the_worker_fills_it_in(
    client_for, buyer, shelf_item, limit, scheduled, ready_frames, committed
):
    limit(1)
    client = client_for(buyer)
    first = place(client, order_body({"item": shelf_item.pk, "quantity": 1}), key="k1").json()
    assert first["payment"]["client_secret"]  # a write was free: made inline, as before
    with committed():
        answer = place(client, order_body({"item": shelf_item.pk, "quantity": 1}), key="k2")
    assert answer.status_code == 201
    second = answer.json()
    assert second["payment"] == {
        "provider": "stripe",
        "payment_intent": None,
        "client_secret": None,
        "status": "preparing",
    }
    assert second["status"] == "pending_payment"
    assert [(args, pytest.approx(countdown, abs=0.2)) for args, countdown in scheduled] == [((second["id"],), 1.0)]
    assert client.get(f"/api/v1/orders/{second['id']}/").json()["payment"]["status"] == "preparing"

    # The same request again (a retry with its key) schedules nothing more.
    assert place(client, order_body({"item": shelf_item.pk, "quantity": 1}), key="k2").json()["id"] == second["id"]
    assert len(scheduled) == 1

    # The worker, in its slot: the intent, a fresh deadline, the buyer's sockets told.
    order = Order.objects.get(pk=second["id"])
    waited = timedelta(seconds=100)  # the order waited 100 s of its 900 for its intent
    Order.objects.filter(pk=order.pk).update(created_at=F("created_at") - waited, expires_at=F("expires_at") - waited)
    assert payments.order_payment_prepare(order_id=order.pk) == 0
    order.refresh_from_db()
    assert order.payment.client_secret
    window = timedelta(seconds=900)
    assert order.expires_at == pytest.approx(timezone.now() + window, abs=timedelta(seconds=5))
    assert ready_frames == [(order.room_id, buyer.pk, {"type": "order.payment_ready", "data": {"order": order.pk}})]
    paid_by = client.post(f"/api/v1/orders/{order.pk}/payment/")
    assert paid_by.status_code == 200
    assert paid_by.json()["payment_intent"] == order.payment.payment_intent_id
    assert paid_by.json()["client_secret"] == order.payment.client_secret

    # Run again (delivered twice): nothing more.
    assert payments.order_payment_prepare(order_id=order.pk) == 0
    assert Payment.objects.filter(order=order).count() == 1
    assert len(ready_frames) == 1


def test_asking_for_the_payment_makes_it_when_a_write_is_free_and_schedules_nothing(
    client_for, buyer, shelf_item, limit, scheduled, committed
):
    client = client_for(buyer)
    order_id = preparing_order(client, shelf_item, limit, committed)
    assert len(scheduled) == 1
    for _ in range(5):  # a page polling: no write free yet, nothing reserved, nothing scheduled
        answer = client.post(f"/api/v1/orders/{order_id}/payment/")
        assert (answer.status_code, answer.json()["status"]) == (200, "preparing")
    assert len(scheduled) == 1
    limit(1)  # a second later: a write is free
    answer = client.post(f"/api/v1/orders/{order_id}/payment/")
    assert answer.status_code == 200
    assert answer.json()["client_secret"] == Payment.objects.get(order_id=order_id).client_secret


@pytest.mark.parametrize(("who", "code"), [("anonymous", 401), ("other_buyer", 404), ("host", 403), ("staff", 403)])
def test_only_the_buyer_asks_for_the_payment(client_for, persona, order, who, code):
    answer = client_for(persona(who)).post(f"/api/v1/orders/{order.pk}/payment/")
    assert answer.status_code == code
    assert answer.json()["code"] in {"not_authenticated", "not_found", "permission_denied"}


def test_an_order_closed_before_its_intent_came_has_no_payment_to_ask_for(
    client_for, buyer, shelf_item, limit, scheduled, committed
):
    client = client_for(buyer)
    order_id = preparing_order(client, shelf_item, limit, committed)
    assert client.post(f"/api/v1/orders/{order_id}/cancel/").status_code == 200
    answer = client.post(f"/api/v1/orders/{order_id}/payment/")
    assert (answer.status_code, answer.json()["code"]) == (409, "conflict")
    assert payments.order_payment_prepare(order_id=order_id) == 0  # the worker's turn: nothing
    assert not Payment.objects.filter(order_id=order_id).exists()


def test_stripe_refusing_with_429_or_unreachable_is_tried_again_later(
    client_for, buyer, shelf_item, limit, scheduled, committed, monkeypatch
):
    client = client_for(buyer)
    order_id = preparing_order(client, shelf_item, limit, committed)
    real = stripe_api.payment_intent_create
    monkeypatch.setattr(
        stripe_api, "payment_intent_create", lambda **kwargs: (_ for _ in ()).throw(stripe.RateLimitError("slow down"))
    )
    assert payments.order_payment_prepare(order_id=order_id, attempt=0) >= 1
    assert payments.order_payment_prepare(order_id=order_id, attempt=3) >= 8
    assert not Payment.objects.filter(order_id=order_id).exists()
    monkeypatch.setattr(stripe_api, "payment_intent_create", real)
    assert payments.order_payment_prepare(order_id=order_id) == 0
    assert Payment.objects.filter(order_id=order_id).exists()


def test_a_preparing_order_does_not_expire_until_it_has_waited_too_long(
    client_for, buyer, shelf_item, limit, scheduled, committed
):
    limit(1)
    client = client_for(buyer)
    paid_later = Order.objects.get(
        pk=place(client, order_body({"item": shelf_item.pk, "quantity": 1}), key="k1").json()["id"]
    )
    with committed():
        preparing = Order.objects.get(
            pk=place(client, order_body({"item": shelf_item.pk, "quantity": 1}), key="k2").json()["id"]
        )
    past = timezone.now() - timedelta(seconds=1)
    Order.objects.filter(pk__in=[paid_later.pk, preparing.pk]).update(expires_at=past)

    assert orders_expire_due() == 1  # the one with its intent, at its deadline
    assert Order.objects.get(pk=paid_later.pk).status == Order.Status.EXPIRED
    assert Order.objects.get(pk=preparing.pk).status == Order.Status.PENDING_PAYMENT

    # Stripe gave nothing for half an hour: its units come back.
    assert Order.objects.get(pk=preparing.pk).payment_prepare_until == pytest.approx(
        timezone.now() + PAYMENT_PREPARE_MAX, abs=timedelta(seconds=30)
    )
    Order.objects.filter(pk=preparing.pk).update(payment_prepare_until=timezone.now() - timedelta(seconds=1))
    assert orders_expire_due() == 1
    assert Order.objects.get(pk=preparing.pk).status == Order.Status.EXPIRED


def test_the_sweeper_schedules_a_preparing_order_whose_task_was_lost(
    client_for, buyer, shelf_item, limit, monkeypatch, committed
):
    limit(1)
    client = client_for(buyer)
    place(client, order_body({"item": shelf_item.pk, "quantity": 1}), key="k1")
    monkeypatch.setattr("orders.tasks.order_payment_prepare_task.apply_async", lambda *a, **k: None)  # lost
    with committed():
        order_id = place(client, order_body({"item": shelf_item.pk, "quantity": 1}), key="k2").json()["id"]
    swept: list[tuple[Any, ...]] = []
    monkeypatch.setattr("orders.tasks.order_payment_prepare_task.delay", lambda *a, **k: swept.append((a, k)))
    assert payments.order_payments_prepare_lost() == 0  # too young: its task may still come
    Order.objects.filter(pk=order_id).update(created_at=timezone.now() - timedelta(seconds=61))
    assert payments.order_payments_prepare_lost() == 1
    assert swept == [((order_id,), {"slot_taken": False})]


# --- what placing an order costs ---------------------------------------------------------------------


# Every query of placing a flash order, its PaymentIntent made inline, as they run:
#   1      the API token with its user
#   2-4    the Idempotency-Key claimed (savepoint, insert, release)
#   5      the shelf item with its room, sku and product
#   6      the buyer's ban in the room
#   7      the item's running flash sale
#   8-16   one transaction (savepoint): the order, its lines, the key pointed at it, the
#          buyer locked, the buyer's unpaid units, the sale's units taken (a guarded
#          UPDATE), the buyer's units of the sale, release
#   17     the Payment stored
#   18-20  the answer: the order with its payment, shop and claim; its lines; its refunds
#   21     the answer stored under the key
# Redis does the gate and the write limiter. A query per line or per check added to this
# path fails here.
FLASH_ORDER_MAX_QUERIES = 21


def test_placing_a_flash_order_costs_a_bounded_number_of_queries(client_for, buyer, sale, shelf_item):  # noqa: F811
    client = client_for(buyer)
    with CaptureQueriesContext(connection) as queries:
        answer = place(client, order_body({"item": shelf_item.pk, "quantity": 1}), key="flash-1")
    assert answer.status_code == 201, answer.content
    assert answer.json()["items"][0]["flash_sale"] == sale.pk
    assert len(queries) <= FLASH_ORDER_MAX_QUERIES, "\n".join(q["sql"][:160] for q in queries.captured_queries)


def test_pay_order_pays_a_preparing_order_making_its_intent_first(
    client_for, buyer, shelf_item, limit, scheduled, committed
):
    client = client_for(buyer)
    order_id = preparing_order(client, shelf_item, limit, committed)
    out = io.StringIO()
    call_command("pay_order", str(order_id), stdout=out)
    assert "its payment is preparing" in out.getvalue()
    payment = Payment.objects.get(order_id=order_id)
    assert stripe_api.payment_intent_retrieve(payment_intent_id=payment.payment_intent_id).status == "succeeded"


def test_the_benchmarks_stripe_answers_late_and_refuses_writes_past_its_rate(settings):
    """bench/flash_sale.py's Stripe: localstripe at Stripe's own pace (latency, 429s)."""
    with localstripe("--latency-ms", "100", "--write-rate", "2") as url:
        settings.STRIPE_API_BASE = url
        create = lambda n: stripe_api.payment_intent_create(  # noqa: E731
            order_number=f"sim-{n}", amount=100, currency="cny", metadata={}
        )
        started = time.monotonic()
        create(1)
        assert time.monotonic() - started >= 0.1
        create(2)
        with pytest.raises(stripe.RateLimitError):
            create(3)
        stats = json.load(urllib.request.urlopen(f"{url}/_sim/stats", timeout=5))
        assert stats == {"writes": 2, "throttled": 1}
