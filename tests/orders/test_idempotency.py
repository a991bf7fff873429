"""`Idempotency-Key` on POST /orders/: replay byte for byte, 422 on reuse, one order under races."""

from __future__ import annotations

import socket
from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from catalog.models import Sku
from liveshop.idempotency import idempotency_records_purge
from liveshop.models import IdempotencyRecord
from orders.models import Order, Payment
from tests.factories import api_token
from tests.helpers import assert_error, on_postgresql, run_concurrently
from tests.orders.conftest import order_body, place


@pytest.mark.django_db
def test_retry_replays_the_first_response_byte_for_byte(client_for, buyer, sku):
    body = order_body({"sku": sku.pk, "quantity": 2})
    first = place(client_for(buyer), body, key="order-1")
    # The same body with its keys in another order is the same request.
    again = place(client_for(buyer), dict(reversed(list(body.items()))), key="order-1")

    assert first.status_code == again.status_code == 201
    assert again.content == first.content
    assert again["Idempotent-Replayed"] == "true"
    assert Order.objects.count() == 1
    assert Payment.objects.count() == 1
    assert Sku.objects.get(pk=sku.pk).stock == 48


@pytest.mark.django_db
def test_same_key_other_body_is_422(client_for, buyer, sku):
    place(client_for(buyer), order_body({"sku": sku.pk, "quantity": 1}), key="k")
    response = place(client_for(buyer), order_body({"sku": sku.pk, "quantity": 2}), key="k")
    assert_error(response, 422, "idempotency_key_reused")
    assert Order.objects.count() == 1
    assert Sku.objects.get(pk=sku.pk).stock == 49


@pytest.mark.django_db
def test_keys_are_per_user(client_for, buyer, other_buyer, sku):
    body = order_body({"sku": sku.pk, "quantity": 1})
    first = place(client_for(buyer), body, key="same")
    second = place(client_for(other_buyer), body, key="same")
    assert first.status_code == second.status_code == 201
    assert first.json()["id"] != second.json()["id"]


@pytest.mark.django_db
def test_a_refusal_keeps_nothing_so_the_key_may_be_retried(client_for, buyer, sku):
    Sku.objects.filter(pk=sku.pk).update(stock=1)
    body = order_body({"sku": sku.pk, "quantity": 2})
    assert_error(place(client_for(buyer), body, key="k"), 409, "out_of_stock")
    assert not IdempotencyRecord.objects.exists()

    Sku.objects.filter(pk=sku.pk).update(stock=5)
    assert place(client_for(buyer), body, key="k").status_code == 201
    # A corrected body after a validation error may reuse the key too.
    bad = place(client_for(buyer), {"items": []}, key="k2")
    assert_error(bad, 400, "invalid")
    assert place(client_for(buyer), order_body({"sku": sku.pk, "quantity": 1}), key="k2").status_code == 201


@pytest.mark.django_db
@pytest.mark.parametrize("key", ["", "x" * 256, "clé", "tab\there"])
def test_bad_keys_are_invalid(client_for, buyer, sku, key):
    response = client_for(buyer).post(
        "/api/v1/orders/", order_body({"sku": sku.pk, "quantity": 1}), format="json", HTTP_IDEMPOTENCY_KEY=key
    )
    assert_error(response, 400, "invalid")
    assert not Order.objects.exists()


@pytest.mark.django_db
def test_a_request_in_progress_answers_409_with_retry_after(client_for, buyer, sku):
    body = order_body({"sku": sku.pk, "quantity": 1})
    first = place(client_for(buyer), body, key="k")
    # As if a first attempt were still running: no response stored, lease not over.
    IdempotencyRecord.objects.update(
        response_status=None, response_body=None, locked_until=timezone.now() + timedelta(seconds=30)
    )
    response = place(client_for(buyer), body, key="k")
    assert_error(response, 409, "conflict")
    assert response["Retry-After"] == "1"
    # Once its lease runs out (the process died), a retry resumes with the order it made.
    IdempotencyRecord.objects.update(locked_until=timezone.now() - timedelta(seconds=1))
    resumed = place(client_for(buyer), body, key="k")
    assert resumed.status_code == 201
    assert resumed.json()["id"] == first.json()["id"]
    assert Order.objects.count() == 1


def _closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}"


@pytest.mark.django_db
def test_stripe_outage_is_503_and_a_retry_resumes_the_same_order(client_for, buyer, sku, settings, localstripe_url):
    body = order_body({"sku": sku.pk, "quantity": 1})
    settings.STRIPE_API_BASE = _closed_port_url()
    outage = place(client_for(buyer), body, key="k")
    assert_error(outage, 503, "unavailable")
    order = Order.objects.get()
    assert order.status == Order.Status.PENDING_PAYMENT  # the hold stays; expiry frees it otherwise
    assert not Payment.objects.exists()

    settings.STRIPE_API_BASE = localstripe_url
    retry = place(client_for(buyer), body, key="k")
    assert retry.status_code == 201
    assert retry.json()["id"] == order.pk
    assert retry.json()["payment"]["payment_intent"].startswith("pi_")
    assert Order.objects.count() == 1
    assert Sku.objects.get(pk=sku.pk).stock == 49


@pytest.mark.django_db
def test_records_are_kept_24_hours_then_purged(client_for, buyer, sku):
    place(client_for(buyer), order_body({"sku": sku.pk, "quantity": 1}), key="k")
    assert idempotency_records_purge() == 0
    IdempotencyRecord.objects.update(created_at=timezone.now() - timedelta(hours=24, seconds=1))
    assert idempotency_records_purge() == 1


@pytest.mark.django_db(transaction=True)
def test_two_concurrent_retries_create_one_order(buyer, sku):
    if not on_postgresql():
        pytest.skip("concurrency tests need PostgreSQL")
    token = api_token(buyer)
    body = order_body({"sku": sku.pk, "quantity": 3})

    for round_no in range(5):  # a few rounds, each with a fresh key, to meet the race both ways

        def attempt(_, key=f"double-click-{round_no}"):
            client = APIClient()
            client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
            response = place(client, body, key=key)
            return response.status_code, response.content

        results = run_concurrently(attempt, 2)
        statuses = sorted(status for status, _ in results)
        assert statuses in ([201, 201], [201, 409]), results
        created = {content for status, content in results if status == 201}
        assert len(created) == 1  # a replay is the same bytes
        assert Order.objects.count() == round_no + 1
        assert Sku.objects.get(pk=sku.pk).stock == 50 - 3 * (round_no + 1)
