"""An order whose database connection dies: 503 `unavailable`, the key released at once."""

from __future__ import annotations

import pytest
from django.db import connection

from liveshop.models import IdempotencyRecord
from orders.api import order_services
from orders.models import Order
from tests.helpers import assert_error, on_postgresql
from tests.orders.conftest import order_body, place

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_request_that_lost_its_connection_releases_its_key(client_for, buyer, sku, monkeypatch):
    if not on_postgresql():
        pytest.skip("terminates its own PostgreSQL backend")
    real_order_create = order_services.order_create

    def order_create_losing_the_database(**kwargs):
        # The request's own backend dies, as under a PostgreSQL restart: the statement
        # fails, and so would every later one on this connection.
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_terminate_backend(pg_backend_pid())")

    monkeypatch.setattr(order_services, "order_create", order_create_losing_the_database)
    body = order_body({"sku": sku.pk, "quantity": 1})
    response = place(client_for(buyer), body, key="k")

    assert_error(response, 503, "unavailable")
    assert int(response["Retry-After"]) >= 1
    # The key was released on a fresh connection: a retry need not wait for the lease.
    record = IdempotencyRecord.objects.get(user=buyer, key="k")
    assert record.locked_until is None
    assert record.response_status is None

    monkeypatch.setattr(order_services, "order_create", real_order_create)
    retry = place(client_for(buyer), body, key="k")
    assert retry.status_code == 201
    assert Order.objects.count() == 1
