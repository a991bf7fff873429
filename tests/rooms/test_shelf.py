from __future__ import annotations

import pytest

from rooms.models import Room, RoomItem
from tests import factories
from tests.helpers import assert_error

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    ("who", "status"),
    [("anonymous", 401), ("viewer", 403), ("unverified_host", 403), ("host", 201), ("other_host", 403), ("staff", 403)],
)
def test_item_add_matrix(client_for, persona, room, sku, who, status):
    response = client_for(persona(who)).post(
        f"/api/v1/rooms/{room.pk}/items/", {"sku": sku.pk, "live_price": 5800}, format="json"
    )
    assert response.status_code == status
    if status == 201:
        item = RoomItem.objects.get()
        assert response.json() == {
            "id": item.pk,
            "sku": sku.pk,
            "sku_name": "250 g tin",
            "sku_name_en": "",
            "product": {
                "id": sku.product_id,
                "title": "Xiannv Black Tea",
                "title_en": "",
                "image": None,
                "photos": [],
            },
            "price": 6800,
            "live_price": 5800,
            "effective_price": 5800,
            "currency": "cny",
            "stock": 50,
            "offer": None,
            "flash_sale": None,
        }
    else:
        assert not RoomItem.objects.exists()


def test_cadre_may_shelve_another_farmers_product_under_its_offer(client_for, other_host, sku):
    offer = factories.OfferFactory.create(sku=sku, min_live_price=6000)
    cadre_room = factories.RoomFactory.create(host=other_host.host)
    response = client_for(other_host).post(f"/api/v1/rooms/{cadre_room.pk}/items/", {"sku": sku.pk}, format="json")
    assert response.status_code == 201
    assert (response.json()["effective_price"], response.json()["offer"]) == (6800, offer.pk)


def test_cadre_may_not_shelve_another_farmers_product_without_an_offer(client_for, other_host, sku):
    cadre_room = factories.RoomFactory.create(host=other_host.host)
    response = client_for(other_host).post(
        f"/api/v1/rooms/{cadre_room.pk}/items/", {"sku": sku.pk, "live_price": 1}, format="json"
    )
    assert_error(response, 403, "permission_denied")
    assert not RoomItem.objects.exists()


@pytest.mark.parametrize(
    "body",
    [{}, {"sku": "x"}, {"sku": 999999}, {"sku": None}, {"live_price": 100}, {"sku": 0, "live_price": -5}],
)
def test_item_add_bad_input(client_for, host, room, sku, body):
    assert_error(client_for(host).post(f"/api/v1/rooms/{room.pk}/items/", body, format="json"), 400, "invalid")
    assert not RoomItem.objects.exists()


def test_item_add_negative_live_price(client_for, host, room, sku):
    response = client_for(host).post(
        f"/api/v1/rooms/{room.pk}/items/", {"sku": sku.pk, "live_price": -1}, format="json"
    )
    assert_error(response, 400, "invalid")


def test_item_add_inactive_product_is_invalid(client_for, host, room):
    sku = factories.SkuFactory.create(product=factories.ProductFactory.create(is_active=False))
    assert_error(
        client_for(host).post(f"/api/v1/rooms/{room.pk}/items/", {"sku": sku.pk}, format="json"), 400, "invalid"
    )


def test_item_add_twice_is_conflict(client_for, host, room, item):
    response = client_for(host).post(f"/api/v1/rooms/{room.pk}/items/", {"sku": item.sku_id}, format="json")
    assert_error(response, 409, "conflict")
    assert RoomItem.objects.count() == 1


def test_item_add_to_ended_room_is_conflict(client_for, host, room, sku):
    room.status = Room.Status.ENDED
    room.save()
    response = client_for(host).post(f"/api/v1/rooms/{room.pk}/items/", {"sku": sku.pk}, format="json")
    assert_error(response, 409, "conflict")


def test_items_list_in_shelf_order_plain_array(client, room):
    first = factories.RoomItemFactory.create(room=room, position=2)
    second = factories.RoomItemFactory.create(room=room, position=1)
    body = client.get(f"/api/v1/rooms/{room.pk}/items/").json()
    assert isinstance(body, list)
    assert [i["id"] for i in body] == [second.pk, first.pk]


def test_items_of_unknown_room_is_404(client):
    assert_error(client.get("/api/v1/rooms/999999/items/"), 404, "not_found")


@pytest.mark.parametrize(
    ("who", "status"),
    [("anonymous", 401), ("viewer", 403), ("unverified_host", 403), ("host", 204), ("other_host", 403), ("staff", 403)],
)
def test_item_delete_matrix(client_for, persona, room, item, who, status):
    room.featured_item = item
    room.save()
    response = client_for(persona(who)).delete(f"/api/v1/rooms/{room.pk}/items/{item.pk}/")
    assert response.status_code == status
    assert RoomItem.objects.filter(pk=item.pk).exists() is (status != 204)
    room.refresh_from_db()
    assert (room.featured_item_id is None) is (status == 204)


def test_item_of_another_room_is_404(client_for, host, room, other_host):
    foreign = factories.RoomItemFactory.create(room=factories.RoomFactory.create(host=other_host.host))
    assert_error(client_for(host).delete(f"/api/v1/rooms/{room.pk}/items/{foreign.pk}/"), 404, "not_found")
    assert_error(client_for(host).post(f"/api/v1/rooms/{room.pk}/items/{foreign.pk}/feature/"), 404, "not_found")


@pytest.mark.parametrize(
    ("who", "status"),
    [("anonymous", 401), ("viewer", 403), ("unverified_host", 403), ("host", 200), ("other_host", 403), ("staff", 403)],
)
def test_item_feature_matrix(client_for, persona, room, item, who, status):
    response = client_for(persona(who)).post(f"/api/v1/rooms/{room.pk}/items/{item.pk}/feature/")
    assert response.status_code == status
    room.refresh_from_db()
    assert (room.featured_item_id == item.pk) is (status == 200)
    if status == 200:
        assert response.json()["id"] == item.pk
        assert client_for(None).get(f"/api/v1/rooms/{room.pk}/").json()["featured_item"]["id"] == item.pk


def test_feature_in_ended_room_is_conflict(client_for, host, room, item):
    room.status = Room.Status.ENDED
    room.save()
    assert_error(client_for(host).post(f"/api/v1/rooms/{room.pk}/items/{item.pk}/feature/"), 409, "conflict")
