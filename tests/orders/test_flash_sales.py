"""Flash sales: starting one, buying through the gate, and units coming back when it ends."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone
from redis.crc import key_slot

from catalog.models import Sku
from orders.models import Order
from orders.services.orders import order_expire
from rooms import flash_gate
from rooms.models import FlashSale, Room
from rooms.services import flash_sales_sweep, room_end
from tests.helpers import assert_error
from tests.orders.conftest import gate_redis, main_redis, order_body, place

# Each test runs with the gates on one Redis, then on a Redis Cluster.
pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("gates")]

START = {"price": 3900, "quantity": 10, "duration_s": 60, "per_buyer_limit": 2}


def start_url(item):
    return f"/api/v1/rooms/{item.room_id}/items/{item.pk}/flash-sale/"


@pytest.fixture
def sale(client_for, host, shelf_item, committed):
    with committed():
        response = client_for(host).post(start_url(shelf_item), START, format="json")
    assert response.status_code == 201, response.content
    return FlashSale.objects.get(pk=response.json()["id"])


def flash_order(client, item, quantity=1):
    return place(client, order_body({"item": item.pk, "quantity": quantity}))


# --- Starting a sale -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("who", "status"),
    [("anonymous", 401), ("viewer", 403), ("host", 201), ("other_host", 403), ("staff", 403)],
)
def test_start_matrix(client_for, persona, shelf_item, sku, who, status):
    response = client_for(persona(who)).post(start_url(shelf_item), START, format="json")
    assert response.status_code == status
    sku.refresh_from_db()
    if status == 201:
        assert sku.stock == 40
        assert FlashSale.objects.count() == 1
    else:
        assert sku.stock == 50
        assert not FlashSale.objects.exists()


def test_start_moves_units_announces_and_opens_the_gate(client_for, host, shelf_item, sku, committed, published):
    with committed():
        response = client_for(host).post(start_url(shelf_item), START, format="json")

    sale = FlashSale.objects.get()
    body = response.json()
    assert body == {
        "id": sale.pk,
        "item": shelf_item.pk,
        "price": 3900,
        "quantity": 10,
        "remaining": 10,
        "per_buyer_limit": 2,
        "starts_at": body["starts_at"],
        "ends_at": body["ends_at"],
        "status": "active",
    }
    assert (sale.ends_at - sale.starts_at).total_seconds() == 60
    assert Sku.objects.get(pk=sku.pk).stock == 40
    assert published == [(shelf_item.room_id, "flash.started", {"flash_sale": body})]
    assert flash_gate.gate_remaining(sale_id=sale.pk) == 10
    shelf = client_for(None).get(f"/api/v1/rooms/{shelf_item.room_id}/items/").json()
    assert shelf[0]["flash_sale"]["id"] == sale.pk
    assert shelf[0]["effective_price"] == 3900


@pytest.mark.parametrize(
    "body",
    [
        {},
        {**START, "price": 0},
        {**START, "price": "cheap"},
        {**START, "quantity": 0},
        {**START, "quantity": -1},
        {**START, "duration_s": 0},
        {**START, "duration_s": 86401},
        {**START, "per_buyer_limit": 0},
        {**START, "per_buyer_limit": 11},  # more than the quantity
        {"price": 3900, "duration_s": 60},
    ],
)
def test_start_bad_input(client_for, host, shelf_item, sku, body):
    assert_error(client_for(host).post(start_url(shelf_item), body, format="json"), 400, "invalid")
    assert not FlashSale.objects.exists()
    assert Sku.objects.get(pk=sku.pk).stock == 50


def test_start_more_than_in_stock_is_out_of_stock(client_for, host, shelf_item, sku):
    response = client_for(host).post(start_url(shelf_item), {**START, "quantity": 51}, format="json")
    assert_error(response, 409, "out_of_stock")
    assert not FlashSale.objects.exists()
    assert Sku.objects.get(pk=sku.pk).stock == 50


def test_one_active_sale_per_item(client_for, host, sale, shelf_item, sku):
    assert_error(client_for(host).post(start_url(shelf_item), START, format="json"), 409, "conflict")
    assert Sku.objects.get(pk=sku.pk).stock == 40


def test_start_in_a_room_not_live(client_for, host, shelf_item, live_room, sku):
    Room.objects.filter(pk=live_room.pk).update(status=Room.Status.SCHEDULED)
    assert_error(client_for(host).post(start_url(shelf_item), START, format="json"), 409, "room_not_live")
    assert Sku.objects.get(pk=sku.pk).stock == 50


def test_start_on_an_unknown_item_is_404(client_for, host, live_room):
    response = client_for(host).post(f"/api/v1/rooms/{live_room.pk}/items/999999/flash-sale/", START, format="json")
    assert_error(response, 404, "not_found")


# --- Buying ---------------------------------------------------------------------------------------


def test_flash_order_takes_the_flash_price_and_the_short_deadline(client_for, buyer, sale, shelf_item, sku):
    response = flash_order(client_for(buyer), shelf_item, quantity=2)
    assert response.status_code == 201
    body = response.json()
    assert body["items"][0]["unit_price"] == 3900
    assert body["items"][0]["flash_sale"] == sale.pk
    order = Order.objects.get()
    assert (order.expires_at - order.created_at).total_seconds() == pytest.approx(300, abs=2)
    sale.refresh_from_db()
    assert sale.remaining == 8
    assert Sku.objects.get(pk=sku.pk).stock == 40  # the regular stock is untouched
    assert flash_gate.gate_remaining(sale_id=sale.pk) == 8


def test_per_buyer_limit(client_for, buyer, other_buyer, sale, shelf_item):
    assert flash_order(client_for(buyer), shelf_item, quantity=2).status_code == 201
    assert_error(flash_order(client_for(buyer), shelf_item), 409, "limit_exceeded")
    assert flash_order(client_for(other_buyer), shelf_item).status_code == 201
    # Refused by PostgreSQL too when the gate is gone (Redis lost it).
    gate_redis().delete(flash_gate.sale_key(sale.pk))
    assert_error(flash_order(client_for(buyer), shelf_item), 409, "limit_exceeded")
    sale.refresh_from_db()
    assert sale.remaining == 7


def test_sold_out_at_the_gate_and_in_postgresql(client_for, buyer, other_buyer, sale, shelf_item, staff):
    FlashSale.objects.filter(pk=sale.pk).update(remaining=1)
    gate_redis().hset(flash_gate.sale_key(sale.pk), "remaining", 1)
    assert flash_order(client_for(buyer), shelf_item).status_code == 201
    assert_error(flash_order(client_for(other_buyer), shelf_item), 409, "flash_sold_out")
    gate_redis().delete(flash_gate.sale_key(sale.pk))
    assert_error(flash_order(client_for(staff), shelf_item), 409, "flash_sold_out")
    assert Order.objects.count() == 1


def test_flash_stock_is_throttled_and_the_sweeper_sends_the_last_value(
    client_for, buyer, other_buyer, staff, sale, shelf_item, committed, published
):
    for user in (buyer, other_buyer, staff):
        with committed():
            assert flash_order(client_for(user), shelf_item).status_code == 201
    stock = [data for _, kind, data in published if kind == "flash.stock"]
    assert stock == [{"flash_sale": sale.pk, "remaining": 9}]  # one per 250 ms window

    with committed():
        flash_sales_sweep()
        flash_sales_sweep()  # nothing new the second time
    stock = [data for _, kind, data in published if kind == "flash.stock"]
    assert stock == [{"flash_sale": sale.pk, "remaining": 9}, {"flash_sale": sale.pk, "remaining": 7}]


# --- Ending --------------------------------------------------------------------------------------


def test_sweeper_ends_a_due_sale_and_returns_unsold_units(
    client_for, buyer, sale, shelf_item, sku, committed, published
):
    flash_order(client_for(buyer), shelf_item, quantity=2)
    FlashSale.objects.filter(pk=sale.pk).update(ends_at=timezone.now() - timedelta(seconds=1))

    with committed():
        assert flash_sales_sweep() == 1

    sale.refresh_from_db()
    assert (sale.status, sale.returned) == (FlashSale.Status.ENDED, 8)
    assert Sku.objects.get(pk=sku.pk).stock == 48
    assert (shelf_item.room_id, "flash.ended", {"flash_sale": sale.pk, "sold": 2}) in published
    assert gate_redis().hget(flash_gate.sale_key(sale.pk), "active") == b"0"
    assert not gate_redis().exists(flash_gate.item_key(shelf_item.pk))
    # The item sells at its live price again, from the regular stock.
    again = flash_order(client_for(buyer), shelf_item)
    assert again.json()["items"][0]["unit_price"] == 5800
    assert again.json()["items"][0]["flash_sale"] is None


def test_a_due_sale_is_ended_by_the_first_order_that_sees_it(client_for, buyer, sale, shelf_item, sku, committed):
    FlashSale.objects.filter(pk=sale.pk).update(ends_at=timezone.now() - timedelta(seconds=1))
    with committed():
        response = flash_order(client_for(buyer), shelf_item)
    assert response.json()["items"][0]["unit_price"] == 5800
    assert FlashSale.objects.get(pk=sale.pk).status == FlashSale.Status.ENDED
    assert Sku.objects.get(pk=sku.pk).stock == 49


def test_sweeper_ends_a_sold_out_sale(client_for, buyer, other_buyer, staff, host, sale, committed, published):
    FlashSale.objects.filter(pk=sale.pk).update(remaining=0)
    with committed():
        assert flash_sales_sweep() == 1
    assert FlashSale.objects.get(pk=sale.pk).status == FlashSale.Status.ENDED
    assert [kind for _, kind, _ in published][-1] == "flash.ended"


def test_room_end_ends_its_sales(client_for, host, sale, live_room, sku, committed, published):
    with committed():
        room_end(room=live_room)
    assert FlashSale.objects.get(pk=sale.pk).status == FlashSale.Status.ENDED
    assert Sku.objects.get(pk=sku.pk).stock == 50
    assert (live_room.pk, "flash.ended", {"flash_sale": sale.pk, "sold": 0}) in published


def test_expired_flash_order_gives_units_back_to_the_sale_then_to_the_sku(
    client_for, buyer, sale, shelf_item, sku, committed
):
    first = Order.objects.get(pk=flash_order(client_for(buyer), shelf_item, quantity=2).json()["id"])
    Order.objects.filter(pk=first.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    with committed():
        assert order_expire(order_id=first.pk)
    sale.refresh_from_db()
    assert sale.remaining == 10
    assert flash_gate.gate_remaining(sale_id=sale.pk) == 10
    # The buyer's limit is free again.
    second = Order.objects.get(pk=flash_order(client_for(buyer), shelf_item, quantity=2).json()["id"])

    FlashSale.objects.filter(pk=sale.pk).update(ends_at=timezone.now() - timedelta(seconds=1))
    with committed():
        flash_sales_sweep()
    assert Sku.objects.get(pk=sku.pk).stock == 48
    Order.objects.filter(pk=second.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    with committed():
        assert order_expire(order_id=second.pk)
    assert Sku.objects.get(pk=sku.pk).stock == 50  # the sale had ended: back to the sku
    assert FlashSale.objects.get(pk=sale.pk).remaining == 8


def test_sweeper_reloads_a_gate_redis_lost(sale, committed):
    gate_redis().delete(flash_gate.sale_key(sale.pk))
    with committed():
        flash_sales_sweep()
    assert flash_gate.gate_remaining(sale_id=sale.pk) == 10


def test_a_sales_gate_lives_where_the_rooms_do(gates, sale, shelf_item):
    """On a cluster a sale's keys share its hash tag (one slot, one node: its scripts stay
    atomic) and nothing of it is on REDIS_URL; on one Redis, there."""
    keys = [flash_gate.sale_key(sale.pk), flash_gate.buyers_key(sale.pk), flash_gate.requests_key(sale.pk)]
    assert len({key_slot(key.encode()) for key in keys}) == 1
    assert gate_redis().hget(keys[0], "remaining") == str(sale.remaining).encode()
    assert gate_redis().get(flash_gate.item_key(shelf_item.pk)) == str(sale.pk).encode()
    on_redis_url = main_redis().exists(keys[0], flash_gate.item_key(shelf_item.pk))
    assert on_redis_url == (0 if gates == "cluster" else 2)
