"""The order intake in front of Django: certain flash-sale refusals from Redis alone."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from liveshop.auth import token_cache_key, token_cache_set
from orders.intake import OrderIntake
from rooms import flash_gate
from rooms.models import FlashSale
from rooms.services import flash_sale_start
from tests.factories import api_token
from tests.orders.conftest import SHIPPING, gate_redis, main_redis

# Each test runs with the gates on one Redis, then on a Redis Cluster.
pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("gates")]


class Downstream:
    """Stands for Django: records what reached it and answers 201."""

    def __init__(self) -> None:
        self.bodies: list[bytes] = []

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        self.bodies.append(body)
        await send({"type": "http.response.start", "status": 201, "headers": []})
        await send({"type": "http.response.body", "body": b"{}"})


def call(
    app: Any, body: dict[str, Any] | bytes, *, token: str | None, key: str | None = None, path: str = "/api/v1/orders/"
) -> tuple[int, bytes]:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    headers = [(b"content-type", b"application/json")]
    if token:
        headers.append((b"authorization", f"Token {token}".encode()))
    if key:
        headers.append((b"idempotency-key", key.encode()))
    scope = {"type": "http", "method": "POST", "path": path, "headers": headers}
    chunks: list[dict[str, Any]] = [
        {"type": "http.request", "body": raw[:10], "more_body": True},
        {"type": "http.request", "body": raw[10:]},
    ]
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return chunks.pop(0)

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    async def run() -> None:
        await app(scope, receive, send)

    asyncio.run(run())
    return sent[0]["status"], b"".join(m.get("body", b"") for m in sent[1:])


@pytest.fixture
def sale(shelf_item, committed):
    with committed():
        return flash_sale_start(item=shelf_item, price=990, quantity=3, duration_s=60, per_buyer_limit=1)


@pytest.fixture
def token(buyer):
    key = api_token(buyer)
    token_cache_set(key=key, user_id=buyer.pk)
    return key


def click(item, quantity=1):
    return {"items": [{"item": item.pk, "quantity": quantity}], "shipping": SHIPPING}


def test_sold_out_click_is_refused_before_django_in_the_contract_shape(sale, shelf_item, token):
    gate_redis().hset(flash_gate.sale_key(sale.pk), "remaining", 0)
    django = Downstream()
    status, body = call(OrderIntake(django), click(shelf_item), token=token)
    assert status == 409
    assert body == b'{"code":"flash_sold_out","detail":"The flash sale is sold out."}'
    assert django.bodies == []


def test_over_limit_click_is_refused(sale, shelf_item, token, buyer):
    gate_redis().hset(flash_gate.buyers_key(sale.pk), buyer.pk, 1)
    status, body = call(OrderIntake(Downstream()), click(shelf_item), token=token)
    assert (status, json.loads(body)["code"]) == (409, "limit_exceeded")


def test_everything_else_reaches_django_with_its_body(sale, shelf_item, token, buyer, sku):
    django = Downstream()
    intake = OrderIntake(django)
    gate_redis().hset(flash_gate.sale_key(sale.pk), "remaining", 0)
    passing = [
        (click(shelf_item), None, None),  # no token: Django answers 401
        (click(shelf_item), "unknown-token", None),  # not seen: Django authenticates
        ({"items": [{"sku": sku.pk, "quantity": 1}], "shipping": SHIPPING}, token, None),  # no shelf item
        (b"{not json", token, None),
        ({"items": [{"item": "x", "quantity": 1}]}, token, None),
    ]
    for body, bearer, key in passing:
        status, _ = call(intake, body, token=bearer, key=key)
        assert status == 201
    assert len(django.bodies) == len(passing)
    assert django.bodies[0] == json.dumps(click(shelf_item)).encode()
    # Not POST /api/v1/orders/: never looked at.
    status, _ = call(intake, click(shelf_item), token=token, path="/api/v1/orders/1/cancel/")
    assert status == 201


def test_a_retry_of_an_admitted_click_passes_even_when_sold_out(sale, shelf_item, token, buyer):
    assert flash_gate.gate_admit(sale_id=sale.pk, buyer_id=buyer.pk, quantity=1, idempotency_key="k1") == "ok"
    gate_redis().hset(flash_gate.sale_key(sale.pk), "remaining", 0)
    django = Downstream()
    assert call(OrderIntake(django), click(shelf_item), token=token, key="k1")[0] == 201  # Django replays it
    assert call(OrderIntake(django), click(shelf_item), token=token, key="k2")[0] == 409


def test_a_sale_past_its_end_passes(sale, shelf_item, token):
    gate_redis().hset(flash_gate.sale_key(sale.pk), "remaining", 0)
    FlashSale.objects.filter(pk=sale.pk).update(ends_at=timezone.now() - timedelta(seconds=1))
    gate_redis().hset(
        flash_gate.sale_key(sale.pk), "ends_at", int((timezone.now() - timedelta(seconds=1)).timestamp() * 1000)
    )
    # Django ends it and sells at the normal price.
    assert call(OrderIntake(Downstream()), click(shelf_item), token=token)[0] == 201


def test_the_token_mirror_follows_authentication_and_revocation(client_for, buyer):
    # The API-token mirror stays on REDIS_URL, with or without a cluster.
    key = api_token(buyer)
    main_redis().delete(token_cache_key(key))
    from liveshop import auth

    auth._written.clear()
    client = APIClient(HTTP_AUTHORIZATION=f"Token {key}")
    assert client.get("/api/v1/me/").status_code == 200
    assert main_redis().get(token_cache_key(key)) == str(buyer.pk).encode()
    assert client.delete("/api/v1/auth/token/").status_code == 204
    assert main_redis().get(token_cache_key(key)) is None
