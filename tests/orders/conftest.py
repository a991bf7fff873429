"""Fixtures for the order path: a real localstripe, signed webhooks, captured room events.

localstripe runs once per test session as its own process on a free loopback port; the
real `stripe` SDK talks to it. Webhooks in these tests are built and signed here with
the webhook secret, exactly as Stripe signs them (the integration test lets localstripe
deliver its own).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis
from redis.cluster import RedisCluster
from rest_framework.test import APIClient

from catalog.models import Sku
from liveshop.celery import app as celery_app
from liveshop.models import User
from liveshop.redis_client import redis_sync
from orders import stripe_api
from orders.models import Order
from rooms import flash_gate
from rooms.models import Room, RoomItem
from rooms.realtime.backend import reset_backend
from tests import factories
from tests.conftest import ClientFor
from tests.servers import localstripe

WEBHOOK_SECRET = "whsec_liveshop_tests"
SHIPPING = {"name": "Li Ming", "phone": "+86 138 0000 0000", "address": "8 Jiefangbei Rd", "district": "Yuzhong"}


@pytest.fixture(scope="session")
def localstripe_url() -> Iterator[str]:
    with localstripe() as url:
        yield url


@pytest.fixture(autouse=True)
def _stripe_settings(settings: Any, localstripe_url: str) -> None:
    settings.STRIPE_SECRET_KEY = "sk_test_liveshop"
    settings.STRIPE_API_BASE = localstripe_url
    settings.STRIPE_WEBHOOK_SECRET = WEBHOOK_SECRET


@pytest.fixture(autouse=True)
def _eager_celery() -> Iterator[None]:
    """Tasks run in-process when their on-commit hook fires (see `committed`)."""
    previous = celery_app.conf.task_always_eager
    celery_app.conf.task_always_eager = True
    yield
    celery_app.conf.task_always_eager = previous


def gate_redis() -> Any:
    """The flash gates' Redis: REDIS_URL's, or the cluster with the `gates` fixture's
    "cluster" (the suite needs REDIS_URL)."""
    client = flash_gate._client()
    assert client is not None, "set REDIS_URL"
    return client


def main_redis() -> redis.Redis:
    """REDIS_URL's Redis: the API-token mirror, tickets, the cache (never on the cluster)."""
    client = redis_sync()
    assert client is not None, "set REDIS_URL"
    return client


@pytest.fixture(params=["redis", "cluster"])
def gates(request: pytest.FixtureRequest, settings: Any) -> Iterator[str]:
    """Runs a flash-sale test with the gates on one Redis, then on a Redis Cluster (the
    session's: REDIS_CLUSTER_URL), where each sale's keys lie in a slot of their own."""
    if request.param == "redis":
        yield "redis"
        return
    if not settings.REDIS_URL:
        pytest.skip("a Redis Cluster goes with REDIS_URL")
    settings.REDIS_CLUSTER_URL = request.getfixturevalue("shared_redis_cluster")
    reset_backend()
    try:
        yield "cluster"
    finally:
        cluster = flash_gate._client()
        cluster.flushall(target_nodes=RedisCluster.PRIMARIES)
        settings.REDIS_CLUSTER_URL = ""
        reset_backend()


def _redis_clear() -> None:
    client = redis_sync()
    if client is None:
        return
    from django.conf import settings

    # Settlement's drainer slots too: a test that records tasks instead of running them
    # leaves its drainer's slot taken.
    for pattern in ("flash:*", "apitoken:*", f"{settings.LIVESHOP_REDIS_PREFIX}:settlement:*"):
        keys = list(client.scan_iter(match=pattern, count=1000))
        if keys:
            client.delete(*keys)


@pytest.fixture(autouse=True)
def _clean_redis() -> Iterator[None]:
    """Only this suite's key patterns, on the test Redis index (never FLUSHALL)."""
    _redis_clear()
    yield
    _redis_clear()


@pytest.fixture
def committed(django_capture_on_commit_callbacks: Any) -> Callable[..., Any]:
    """`with committed(): ...` runs the block's on-commit hooks (tasks, events) as a commit would."""
    return lambda: django_capture_on_commit_callbacks(execute=True)


@pytest.fixture
def published(monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, str, dict[str, Any]]]:
    """Room events, captured where the real-time branch will deliver them."""
    events: list[tuple[int, str, dict[str, Any]]] = []

    def record(room_id: int, event_type: str, data: dict[str, Any]) -> int:
        events.append((room_id, event_type, data))
        return len(events)

    monkeypatch.setattr("rooms.broadcast.room_publish", record)
    return events


@pytest.fixture
def buyer(db: Any) -> User:
    return factories.UserFactory.create(username="buyer", display_name="Zhang Wei", district="Jiangbei")


@pytest.fixture
def other_buyer(db: Any) -> User:
    return factories.UserFactory.create(username="buyer2", display_name="Wang Fang", district="Nanan")


@pytest.fixture
def shelf_item(live_room: Room, sku: Sku) -> RoomItem:
    """The tea on the live room's shelf at a live price of 5800 (list price 6800, stock 50)."""
    return factories.RoomItemFactory.create(room=live_room, sku=sku, live_price=5800)


@pytest.fixture
def order(client_for: ClientFor, buyer: User, shelf_item: RoomItem) -> Order:
    """3 units of the tea on the farmer's own live show, at 5800: 17,400 fen."""
    response = place(client_for(buyer), order_body({"item": shelf_item.pk, "quantity": 3}))
    assert response.status_code == 201, response.content
    return Order.objects.get(pk=response.json()["id"])


def order_body(*lines: dict[str, int], room: int | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"items": list(lines), "shipping": dict(SHIPPING)}
    if room is not None:
        body["room"] = room
    return body


def place(client: APIClient, body: dict[str, Any], key: str | None = None) -> Any:
    headers: dict[str, Any] = {"HTTP_IDEMPOTENCY_KEY": key} if key else {}
    return client.post("/api/v1/orders/", body, format="json", **headers)


def signed(payload: bytes, *, secret: str = WEBHOOK_SECRET, timestamp: int | None = None) -> str:
    """A `Stripe-Signature` header as Stripe computes it."""
    timestamp = int(time.time()) if timestamp is None else timestamp
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + payload, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def stripe_event(event_type: str, obj: dict[str, Any], event_id: str | None = None) -> dict[str, Any]:
    return {
        "id": event_id or f"evt_{secrets.token_hex(8)}",
        "object": "event",
        "type": event_type,
        "created": int(time.time()),
        "data": {"object": obj},
    }


def deliver(client: APIClient, event: dict[str, Any], **sign_kwargs: Any) -> Any:
    payload = json.dumps(event).encode()
    return client.post(
        "/api/v1/payments/stripe/webhook/",
        payload,
        content_type="application/json",
        HTTP_STRIPE_SIGNATURE=signed(payload, **sign_kwargs),
    )


def pay_at_stripe(order: Order, *, card: str = "pm_card_visa") -> dict[str, Any]:
    """The buyer pays the order's PaymentIntent at localstripe; returns the intent (a dict)."""
    payments = stripe_api.client().v1.payment_intents
    intent_id = order.payment.payment_intent_id
    payments.update(intent_id, params={"payment_method": card})
    payments.confirm(intent_id)
    return payments.retrieve(intent_id).to_dict()


def succeeded_event(order: Order, event_id: str | None = None) -> dict[str, Any]:
    """Pay the order at localstripe and build the `payment_intent.succeeded` Stripe sends."""
    return stripe_event("payment_intent.succeeded", pay_at_stripe(order), event_id=event_id)


def settle(client: APIClient, order: Order, committed: Callable[..., Any]) -> None:
    """Pay the order and deliver the webhook; the (eager) worker settles it on commit."""
    event = succeeded_event(order)
    with committed():
        assert deliver(client, event).status_code == 200
