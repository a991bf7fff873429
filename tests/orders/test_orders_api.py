"""Placing, reading, cancelling, expiring and shipping orders over the API."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from catalog.models import Sku
from orders import stripe_api
from orders.models import Order, OrderItem, Payment
from orders.services.orders import orders_expire_due
from rooms.models import Room
from tests import factories
from tests.helpers import assert_error
from tests.orders.conftest import SHIPPING, order_body, place, settle

pytestmark = pytest.mark.django_db


def test_order_of_a_shelf_item_holds_units_at_the_live_price(client_for, buyer, shelf_item, sku, live_room):
    response = place(client_for(buyer), order_body({"item": shelf_item.pk, "quantity": 3}))

    assert response.status_code == 201, response.content
    order = Order.objects.get()
    body = response.json()
    payment = Payment.objects.get(order=order)
    assert body == {
        "id": order.pk,
        "number": order.number,
        "status": "pending_payment",
        "buyer": buyer.pk,
        "room": live_room.pk,
        "shop": sku.product.shop_id,
        "items": [
            {
                "sku": sku.pk,
                "title": "Xiannv Black Tea / 250 g tin",
                "quantity": 3,
                "unit_price": 5800,
                "flash_sale": None,
            }
        ],
        "subtotal": 17400,
        "total": 17400,
        "currency": "cny",
        "shipping": SHIPPING,
        "tracking": "",
        "created_at": body["created_at"],
        "expires_at": body["expires_at"],
        "paid_at": None,
        "shipped_at": None,
        "delivered_at": None,
        "payment": {
            "provider": "stripe",
            "payment_intent": payment.payment_intent_id,
            "client_secret": payment.client_secret,
            "status": "requires_payment",
        },
        "refunded_amount": 0,
        "refunds": [],
        "refund_claim": None,
    }
    assert payment.payment_intent_id.startswith("pi_")
    assert (order.expires_at - order.created_at).total_seconds() == pytest.approx(900, abs=2)
    sku.refresh_from_db()
    assert sku.stock == 47
    intent = stripe_api.payment_intent_retrieve(payment_intent_id=payment.payment_intent_id)
    assert (intent.amount, intent.currency) == (17400, "cny")


def test_sku_ordered_without_a_room_costs_its_list_price(client_for, buyer, sku):
    response = place(client_for(buyer), order_body({"sku": sku.pk, "quantity": 2}))
    assert response.status_code == 201
    assert response.json()["items"][0]["unit_price"] == 6800
    assert response.json()["room"] is None
    assert response.json()["total"] == 13600


def test_sku_ordered_in_a_room_gets_the_shelf_price(client_for, buyer, shelf_item, sku, live_room):
    response = place(client_for(buyer), order_body({"sku": sku.pk, "quantity": 1}, room=live_room.pk))
    assert response.status_code == 201
    assert response.json()["items"][0]["unit_price"] == 5800


def test_client_prices_are_ignored(client_for, buyer, sku):
    body = order_body({"sku": sku.pk, "quantity": 1})
    body["items"][0]["unit_price"] = 1
    body["total"] = 1
    assert place(client_for(buyer), body).json()["total"] == 6800


def test_out_of_stock_holds_nothing(client_for, buyer, sku):
    other = factories.SkuFactory.create(product=sku.product, name="1 kg", stock=5)

    response = place(client_for(buyer), order_body({"sku": sku.pk, "quantity": 2}, {"sku": other.pk, "quantity": 6}))

    assert_error(response, 409, "out_of_stock")
    assert not Order.objects.exists()
    assert Sku.objects.get(pk=sku.pk).stock == 50
    assert Sku.objects.get(pk=other.pk).stock == 5


def test_room_not_live(client_for, buyer, shelf_item, live_room):
    Room.objects.filter(pk=live_room.pk).update(status=Room.Status.ENDED)
    assert_error(place(client_for(buyer), order_body({"item": shelf_item.pk, "quantity": 1})), 409, "room_not_live")
    assert not Order.objects.exists()


def test_one_shop_per_order(client_for, buyer, sku):
    elsewhere = factories.SkuFactory.create()
    response = place(
        client_for(buyer), order_body({"sku": sku.pk, "quantity": 1}, {"sku": elsewhere.pk, "quantity": 1})
    )
    body = assert_error(response, 400, "invalid")
    assert "items" in body["fields"]
    assert not Order.objects.exists()


def test_item_of_another_room_is_invalid(client_for, buyer, shelf_item, host_profile):
    other_room = factories.RoomFactory.create(host=host_profile, status=Room.Status.LIVE)
    response = place(client_for(buyer), order_body({"item": shelf_item.pk, "quantity": 1}, room=other_room.pk))
    assert_error(response, 400, "invalid")


def test_inactive_product_is_invalid(client_for, buyer, sku):
    sku.product.is_active = False
    sku.product.save()
    assert_error(place(client_for(buyer), order_body({"sku": sku.pk, "quantity": 1})), 400, "invalid")


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"items": [], "shipping": SHIPPING},
        {"items": "tea", "shipping": SHIPPING},
        {"items": [{"quantity": 1}], "shipping": SHIPPING},
        {"items": [{"sku": "SKU", "quantity": 1}], "shipping": SHIPPING},
        {"items": [{"sku": 999999, "quantity": 1}], "shipping": SHIPPING},
        {"items": [{"item": 999999, "quantity": 1}], "shipping": SHIPPING},
        {"items": [{"sku": "<sku>", "item": "<item>", "quantity": 1}], "shipping": SHIPPING},
        {"items": [{"sku": "<sku>", "quantity": 0}], "shipping": SHIPPING},
        {"items": [{"sku": "<sku>", "quantity": -1}], "shipping": SHIPPING},
        {"items": [{"sku": "<sku>", "quantity": 101}], "shipping": SHIPPING},
        {"items": [{"sku": "<sku>", "quantity": 1.5}], "shipping": SHIPPING},
        {"items": [{"sku": "<sku>", "quantity": 1}, {"sku": "<sku>", "quantity": 1}], "shipping": SHIPPING},
        {"items": [{"sku": "<sku>", "quantity": 1}]},
        {"items": [{"sku": "<sku>", "quantity": 1}], "shipping": SHIPPING | {"phone": "call me"}},
        {"items": [{"sku": "<sku>", "quantity": 1}], "shipping": SHIPPING | {"address": ""}},
        {"items": [{"sku": "<sku>", "quantity": 1}], "shipping": SHIPPING | {"name": "x" * 65}},
        {"items": [{"sku": "<sku>", "quantity": 1}], "shipping": SHIPPING, "room": "live"},
        {"items": [{"sku": "<sku>", "quantity": 1}], "shipping": SHIPPING, "room": 999999},
        {"items": [{"sku": "<sku>", "quantity": 1}] * 21, "shipping": SHIPPING},
    ],
)
def test_order_bad_input(client_for, buyer, shelf_item, sku, body):
    def fill(value):
        if isinstance(value, dict):
            return {k: fill(v) for k, v in value.items()}
        if isinstance(value, list):
            return [fill(v) for v in value]
        return {"<sku>": sku.pk, "<item>": shelf_item.pk}.get(value, value) if isinstance(value, str) else value

    assert_error(place(client_for(buyer), fill(body)), 400, "invalid")
    assert not Order.objects.exists()
    assert Sku.objects.get(pk=sku.pk).stock == 50


def test_malformed_json_is_invalid(client_for, buyer):
    response = client_for(buyer).post("/api/v1/orders/", b"{items:", content_type="application/json")
    assert_error(response, 400, "invalid")


def test_anonymous_cannot_order(client_for, sku):
    assert_error(place(client_for(None), order_body({"sku": sku.pk, "quantity": 1})), 401, "not_authenticated")


# --- Reading ------------------------------------------------------------------------------------


@pytest.fixture
def order(client_for, buyer, sku):
    response = place(client_for(buyer), order_body({"sku": sku.pk, "quantity": 1}))
    assert response.status_code == 201
    return Order.objects.get(pk=response.json()["id"])


def test_buyers_list_only_their_orders(client_for, buyer, other_buyer, order, sku):
    place(client_for(other_buyer), order_body({"sku": sku.pk, "quantity": 1}))
    mine = client_for(buyer).get("/api/v1/orders/").json()
    assert mine["count"] == 1
    assert [o["id"] for o in mine["results"]] == [order.pk]
    assert client_for(other_buyer).get("/api/v1/orders/").json()["count"] == 1
    assert_error(client_for(None).get("/api/v1/orders/"), 401, "not_authenticated")


@pytest.mark.parametrize(
    ("who", "status"),
    [("anonymous", 401), ("buyer", 200), ("other_buyer", 404), ("host", 200), ("other_host", 404), ("staff", 200)],
)
def test_order_detail_matrix(client_for, persona, order, who, status):
    # `host` owns the order's shop (the seller); `other_host` sells elsewhere.
    response = client_for(persona(who)).get(f"/api/v1/orders/{order.pk}/")
    assert response.status_code == status
    if status == 200:
        body = response.json()
        assert body["number"] == order.number
        assert body["shipping"] == SHIPPING
        # Only the buyer sees the secret that lets one pay.
        assert (body["payment"]["client_secret"] is not None) == (who == "buyer")


def test_unknown_order_is_404(client_for, buyer):
    assert_error(client_for(buyer).get("/api/v1/orders/999999/"), 404, "not_found")


@pytest.mark.parametrize(
    ("who", "status"),
    [("anonymous", 401), ("viewer", 403), ("buyer", 403), ("host", 200), ("other_host", 403), ("staff", 200)],
)
def test_shop_orders_matrix(client_for, persona, order, shop, who, status):
    response = client_for(persona(who)).get(f"/api/v1/shops/{shop.pk}/orders/")
    assert response.status_code == status
    if status == 200:
        assert [o["id"] for o in response.json()["results"]] == [order.pk]


def test_shop_orders_of_unknown_shop_is_404(client_for, staff):
    assert_error(client_for(staff).get("/api/v1/shops/999999/orders/"), 404, "not_found")


# --- Cancel and expiry -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("who", "status"),
    [("anonymous", 401), ("buyer", 200), ("other_buyer", 404), ("host", 403), ("other_host", 404), ("staff", 403)],
)
def test_cancel_matrix(client_for, persona, order, sku, committed, who, status):
    with committed():
        response = client_for(persona(who)).post(f"/api/v1/orders/{order.pk}/cancel/")
    assert response.status_code == status
    order.refresh_from_db()
    sku.refresh_from_db()
    if status == 200:
        assert response.json()["status"] == "cancelled"
        assert order.status == Order.Status.CANCELLED
        assert sku.stock == 50
        # The PaymentIntent can no longer be paid.
        intent = stripe_api.payment_intent_retrieve(payment_intent_id=order.payment.payment_intent_id)
        assert intent.status == "canceled"
        assert Payment.objects.get(order=order).status == Payment.Status.CANCELED
    else:
        assert order.status == Order.Status.PENDING_PAYMENT
        assert sku.stock == 49


def test_cancel_twice_is_conflict(client_for, buyer, order, sku, committed):
    with committed():
        assert client_for(buyer).post(f"/api/v1/orders/{order.pk}/cancel/").status_code == 200
        assert_error(client_for(buyer).post(f"/api/v1/orders/{order.pk}/cancel/"), 409, "conflict")
    assert Sku.objects.get(pk=sku.pk).stock == 50


def test_cancel_a_paid_order_is_conflict(client_for, buyer, order, committed):
    settle(client_for(None), order, committed)
    assert_error(client_for(buyer).post(f"/api/v1/orders/{order.pk}/cancel/"), 409, "conflict")


def test_sweeper_expires_due_orders_and_returns_units(client_for, buyer, order, sku, committed):
    fresh = place(client_for(buyer), order_body({"sku": sku.pk, "quantity": 2})).json()
    Order.objects.filter(pk=order.pk).update(expires_at=timezone.now() - timedelta(seconds=1))

    with committed():
        assert orders_expire_due() == 1

    order.refresh_from_db()
    assert order.status == Order.Status.EXPIRED
    assert order.closed_at is not None
    assert Order.objects.get(pk=fresh["id"]).status == Order.Status.PENDING_PAYMENT
    assert Sku.objects.get(pk=sku.pk).stock == 48  # 50 - 2 still held by the fresh order
    assert stripe_api.payment_intent_retrieve(payment_intent_id=order.payment.payment_intent_id).status == "canceled"
    with committed():
        assert orders_expire_due() == 0  # idempotent


# --- Shipping ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("who", "status"),
    [("anonymous", 401), ("buyer", 403), ("other_buyer", 404), ("host", 200), ("other_host", 404), ("staff", 200)],
)
def test_ship_matrix(client_for, persona, order, committed, who, status):
    settle(client_for(None), order, committed)
    response = client_for(persona(who)).post(f"/api/v1/orders/{order.pk}/ship/", {"tracking": "SF1234"}, format="json")
    assert response.status_code == status
    order.refresh_from_db()
    if status == 200:
        assert response.json()["status"] == "shipped"
        assert response.json()["tracking"] == "SF1234"
        assert order.status == Order.Status.SHIPPED
    else:
        assert order.status == Order.Status.PAID


def test_ship_unpaid_is_conflict(client_for, host, order):
    assert_error(client_for(host).post(f"/api/v1/orders/{order.pk}/ship/", {}, format="json"), 409, "conflict")


@pytest.mark.parametrize("body", [{"tracking": "x" * 101}, {"tracking": ["SF"]}])
def test_ship_bad_input(client_for, host, order, committed, body):
    settle(client_for(None), order, committed)
    assert_error(client_for(host).post(f"/api/v1/orders/{order.pk}/ship/", body, format="json"), 400, "invalid")
    assert Order.objects.get(pk=order.pk).status == Order.Status.PAID


def test_order_items_keep_the_price_paid(client_for, buyer, sku):
    place(client_for(buyer), order_body({"sku": sku.pk, "quantity": 1}))
    Sku.objects.filter(pk=sku.pk).update(price=9999)
    assert OrderItem.objects.get().unit_price == 6800
