"""Promotion offers: a seller's terms for hosts who sell its goods (CONTRACT "Promotion offers").

The audit's critical finding: a host put another shop's sku on its shelf at 1 fen and ran
a 24-hour flash sale of it. These tests prove each door that was open is shut.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from catalog.models import Offer, Sku
from rooms.models import FlashSale, Room, RoomItem
from rooms.services import flash_sales_sweep
from tests import factories
from tests.helpers import assert_error

pytestmark = pytest.mark.django_db


@pytest.fixture
def cadre_room(other_host) -> Room:
    return factories.RoomFactory.create(host=other_host.host, title="Jiangbei presents Wulong tea")


def _offer_body(sku: Sku, **terms) -> dict:
    return {"sku": sku.pk, "commission_bps": 1000, **terms}


def _shelve(client, room: Room, sku: Sku, **body):
    return client.post(f"/api/v1/rooms/{room.pk}/items/", {"sku": sku.pk, **body}, format="json")


def _flash(client, item: RoomItem, **body):
    body = {"price": 5000, "quantity": 10, "duration_s": 600, **body}
    return client.post(f"/api/v1/rooms/{item.room_id}/items/{item.pk}/flash-sale/", body, format="json")


# --- Creating offers ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("who", "status"),
    [("anonymous", 401), ("viewer", 403), ("other_host", 403), ("staff", 403), ("host", 201)],
)
def test_offer_create_matrix(client_for, persona, sku, who, status):
    response = client_for(persona(who)).post("/api/v1/offers/", _offer_body(sku), format="json")
    assert response.status_code == status, response.content
    assert Offer.objects.count() == (1 if status == 201 else 0)


def test_offer_create_defaults_to_the_list_price(client_for, host, sku, other_host):
    response = client_for(host).post(
        "/api/v1/offers/", _offer_body(sku, hosts=[other_host.host.pk], flash_allowed=True), format="json"
    )
    assert response.status_code == 201
    offer = Offer.objects.get()
    assert response.json() == {
        "id": offer.pk,
        "sku": sku.pk,
        "shop": sku.product.shop_id,
        "commission_bps": 1000,
        "min_live_price": 6800,
        "flash_allowed": True,
        "min_flash_price": 6800,
        "flash_max_units": None,
        "hosts": [other_host.host.pk],
        "ends_at": None,
        "status": "active",
        "created_at": response.json()["created_at"],
        "withdrawn_at": None,
    }


@pytest.mark.parametrize(
    "terms",
    [
        {"commission_bps": 5001},
        {"commission_bps": -1},
        {"commission_bps": "ten"},
        {"min_live_price": 0},
        {"min_live_price": -100},
        {"min_flash_price": 0},
        {"flash_max_units": 0},
        {"hosts": [999999]},
        {"hosts": "everyone"},
        {"ends_at": "2001-01-01T00:00:00Z"},
        {"sku": 999999},
    ],
)
def test_offer_create_bad_input_is_invalid(client_for, host, sku, terms):
    response = client_for(host).post("/api/v1/offers/", {**_offer_body(sku), **terms}, format="json")
    assert_error(response, 400, "invalid")
    assert not Offer.objects.exists()


def test_a_second_active_offer_on_a_sku_is_a_conflict(client_for, host, sku):
    factories.OfferFactory.create(sku=sku)
    assert_error(client_for(host).post("/api/v1/offers/", _offer_body(sku), format="json"), 409, "conflict")
    assert Offer.objects.count() == 1


def test_an_expired_offer_makes_way_for_a_new_one(client_for, host, sku):
    old = factories.OfferFactory.create(sku=sku, ends_at=timezone.now() - timedelta(seconds=1))
    assert client_for(host).post("/api/v1/offers/", _offer_body(sku), format="json").status_code == 201
    old.refresh_from_db()
    assert old.status == Offer.Status.EXPIRED


# --- Browsing, the shop's list, withdrawal --------------------------------------------------------


def test_hosts_see_the_offers_open_to_them(client_for, host, other_host, unverified_host, viewer, sku):
    everyone = factories.OfferFactory.create(sku=sku)
    third_host = factories.HostFactory.create()
    only_third = factories.OfferFactory.create(hosts=[third_host])
    factories.OfferFactory.create(status=Offer.Status.WITHDRAWN)
    factories.OfferFactory.create(ends_at=timezone.now() - timedelta(seconds=1))
    only_cadre = factories.OfferFactory.create(hosts=[other_host.host])

    listed = client_for(other_host).get("/api/v1/offers/").json()["results"]
    assert [offer["id"] for offer in listed] == [only_cadre.pk, everyone.pk]
    assert listed[1]["product"]["title"] == "Xiannv Black Tea"
    assert listed[1]["sku_detail"]["price"] == 6800
    assert client_for(third_host.user).get("/api/v1/offers/").json()["count"] == 2  # everyone's and its own
    assert [o["id"] for o in client_for(third_host.user).get("/api/v1/offers/").json()["results"]] == [
        only_third.pk,
        everyone.pk,
    ]
    assert_error(client_for(viewer).get("/api/v1/offers/"), 403, "permission_denied")
    assert_error(client_for(unverified_host).get("/api/v1/offers/"), 403, "permission_denied")
    assert_error(client_for(None).get("/api/v1/offers/"), 401, "not_authenticated")


def test_offers_filter_by_district_category_search_and_shop(client_for, other_host, sku):
    tea = factories.OfferFactory.create(sku=sku)
    rice = factories.OfferFactory.create(
        sku__product__title="Loach Paddy Rice", sku__product__category="rice", sku__product__origin_district="Fengjie"
    )

    def ids(query: str) -> list[int]:
        return [offer["id"] for offer in client_for(other_host).get(f"/api/v1/offers/?{query}").json()["results"]]

    assert ids("district=wulong") == [tea.pk]
    assert ids("district=Fengjie") == [rice.pk]
    assert ids("category=rice") == [rice.pk]
    assert ids("search=paddy") == [rice.pk]
    assert ids(f"shop={sku.product.shop_id}") == [tea.pk]


@pytest.mark.parametrize(
    ("who", "status"), [("anonymous", 401), ("viewer", 403), ("other_host", 403), ("staff", 200), ("host", 200)]
)
def test_shop_offers_matrix(client_for, persona, shop, sku, who, status):
    factories.OfferFactory.create(sku=sku)
    response = client_for(persona(who)).get(f"/api/v1/shops/{shop.pk}/offers/")
    assert response.status_code == status
    if status == 200:
        assert [(o["sku"], o["sold_units"], o["sales"]) for o in response.json()["results"]] == [(sku.pk, 0, 0)]


def test_shop_offers_of_an_unknown_shop_is_not_found(client_for, staff):
    assert_error(client_for(staff).get("/api/v1/shops/999999/offers/"), 404, "not_found")


@pytest.mark.parametrize(
    ("who", "status"),
    [("anonymous", 401), ("viewer", 403), ("other_host", 403), ("staff", 200), ("host", 200)],
)
def test_offer_withdraw_matrix(client_for, persona, sku, who, status):
    offer = factories.OfferFactory.create(sku=sku)
    response = client_for(persona(who)).post(f"/api/v1/offers/{offer.pk}/withdraw/")
    assert response.status_code == status
    offer.refresh_from_db()
    assert offer.status == ("withdrawn" if status == 200 else "active")
    if status == 200:
        assert response.json()["status"] == "withdrawn"
        assert_error(client_for(persona(who)).post(f"/api/v1/offers/{offer.pk}/withdraw/"), 409, "conflict")


def test_withdrawing_an_unknown_offer_is_not_found(client_for, host):
    assert_error(client_for(host).post("/api/v1/offers/999999/withdraw/"), 404, "not_found")


# --- The shelf ----------------------------------------------------------------------------


def test_the_audit_exploit_another_shops_sku_at_1_fen_is_refused(client_for, other_host, cadre_room, sku):
    response = _shelve(client_for(other_host), cadre_room, sku, live_price=1)
    assert_error(response, 403, "permission_denied")
    assert not RoomItem.objects.exists()


def test_under_an_offer_the_live_price_has_the_sellers_floor(client_for, other_host, cadre_room, sku):
    offer = factories.OfferFactory.create(sku=sku, min_live_price=6000)
    client = client_for(other_host)

    assert_error(_shelve(client, cadre_room, sku, live_price=1), 400, "invalid")
    assert_error(_shelve(client, cadre_room, sku, live_price=5999), 400, "invalid")
    assert not RoomItem.objects.exists()
    response = _shelve(client, cadre_room, sku, live_price=6000)
    assert response.status_code == 201
    assert (response.json()["offer"], response.json()["effective_price"]) == (offer.pk, 6000)


def test_an_offer_for_other_hosts_does_not_open_the_shelf(client_for, other_host, cadre_room, sku):
    factories.OfferFactory.create(sku=sku, hosts=[factories.HostFactory.create()])
    assert_error(_shelve(client_for(other_host), cadre_room, sku), 403, "permission_denied")


def test_a_withdrawn_or_expired_offer_does_not_open_the_shelf(client_for, other_host, cadre_room, sku):
    offer = factories.OfferFactory.create(sku=sku, status=Offer.Status.WITHDRAWN)
    assert_error(_shelve(client_for(other_host), cadre_room, sku), 403, "permission_denied")
    Offer.objects.filter(pk=offer.pk).update(status=Offer.Status.ACTIVE, ends_at=timezone.now())
    assert_error(_shelve(client_for(other_host), cadre_room, sku), 403, "permission_denied")


def test_a_hosts_own_goods_need_no_offer(client_for, host, room, sku):
    response = _shelve(client_for(host), room, sku, live_price=1)
    assert response.status_code == 201
    assert response.json()["offer"] is None


def test_the_shelf_price_never_falls_below_the_offers_floor(client_for, other_host, cadre_room, sku, host):
    factories.OfferFactory.create(sku=sku, min_live_price=6000)
    item_id = _shelve(client_for(other_host), cadre_room, sku).json()["id"]
    # The seller later lowers its list price under the floor it gave hosts.
    assert client_for(host).patch(f"/api/v1/skus/{sku.pk}/", {"price": 4000}, format="json").status_code == 200

    items = client_for(None).get(f"/api/v1/rooms/{cadre_room.pk}/items/").json()
    assert [(item["id"], item["price"], item["effective_price"]) for item in items] == [(item_id, 4000, 6000)]


# --- Flash sales ------------------------------------------------------------------------


@pytest.fixture
def cadre_item(cadre_room: Room, sku: Sku) -> RoomItem:
    Room.objects.filter(pk=cadre_room.pk).update(status=Room.Status.LIVE)
    offer = factories.OfferFactory.create(
        sku=sku, min_live_price=6000, flash_allowed=True, min_flash_price=4800, flash_max_units=20
    )
    return factories.RoomItemFactory.create(room=cadre_room, sku=sku, offer=offer)


def test_a_flash_sale_under_an_offer_keeps_to_its_terms(client_for, other_host, cadre_item, sku):
    client = client_for(other_host)
    assert_error(_flash(client, cadre_item, price=1), 400, "invalid")
    assert_error(_flash(client, cadre_item, price=4799), 400, "invalid")
    assert_error(_flash(client, cadre_item, price=4800, quantity=21), 400, "invalid")
    assert not FlashSale.objects.exists()
    sku.refresh_from_db()
    assert sku.stock == 50

    assert _flash(client, cadre_item, price=4800, quantity=20).status_code == 201
    sku.refresh_from_db()
    assert sku.stock == 30


def test_no_flash_sale_unless_the_offer_allows_it(client_for, other_host, cadre_item):
    Offer.objects.filter(pk=cadre_item.offer_id).update(flash_allowed=False)
    assert_error(_flash(client_for(other_host), cadre_item, price=6000), 403, "permission_denied")
    assert not FlashSale.objects.exists()


def test_no_flash_sale_of_another_shops_goods_shelved_without_an_offer(client_for, other_host, cadre_room, sku):
    # An item shelved before offers existed (the audit's exploit): it can no longer be sold.
    Room.objects.filter(pk=cadre_room.pk).update(status=Room.Status.LIVE)
    legacy = RoomItem.objects.create(room=cadre_room, sku=sku, live_price=1, position=1)
    assert_error(_flash(client_for(other_host), legacy, price=1, quantity=20), 403, "permission_denied")
    sku.refresh_from_db()
    assert sku.stock == 50


def test_withdrawing_the_offer_ends_its_flash_sales_and_gives_the_units_back(client_for, other_host, host, cadre_item):
    sale_id = _flash(client_for(other_host), cadre_item, price=5000, quantity=20).json()["id"]
    assert client_for(host).post(f"/api/v1/offers/{cadre_item.offer_id}/withdraw/").status_code == 200

    assert flash_sales_sweep() == 1
    sale = FlashSale.objects.get(pk=sale_id)
    assert (sale.status, sale.returned) == (FlashSale.Status.ENDED, 20)
    cadre_item.sku.refresh_from_db()
    assert cadre_item.sku.stock == 50
    assert_error(_flash(client_for(other_host), cadre_item, price=5000), 403, "permission_denied")


# --- The admin ----------------------------------------------------------------------------


def test_staff_withdraw_offers_in_the_admin_but_never_rewrite_their_terms(client, sku):
    offer = factories.OfferFactory.create(sku=sku, commission_bps=800)
    client.force_login(factories.UserFactory.create(username="root", is_staff=True, is_superuser=True))

    change = client.get(reverse("admin:catalog_offer_change", args=[offer.pk]))
    assert change.status_code == 200
    assert b'name="commission_bps"' not in change.content  # read-only: shown, not editable
    response = client.post(
        reverse("admin:catalog_offer_changelist"), {"action": "withdraw", "_selected_action": [offer.pk]}, follow=True
    )
    assert response.status_code == 200
    offer.refresh_from_db()
    assert (offer.status, offer.commission_bps) == (Offer.Status.WITHDRAWN, 800)
