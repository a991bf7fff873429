from __future__ import annotations

import pytest

from catalog.models import Product, Shop, Sku
from tests import factories
from tests.helpers import assert_error

pytestmark = pytest.mark.django_db

PERSONAS = ["anonymous", "viewer", "unverified_host", "host", "other_host", "staff"]


# --- Shops ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("who", "status"),
    [
        ("anonymous", 401),
        ("viewer", 403),
        ("unverified_host", 403),
        ("host", 201),
        ("other_host", 201),
        ("staff", 201),
    ],
)
def test_shop_create_matrix(client_for, persona, who, status):
    user = persona(who)
    response = client_for(user).post("/api/v1/shops/", {"name": "Tea Hills", "district": "Wulong"}, format="json")
    assert response.status_code == status, response.json()
    if status == 201:
        shop = Shop.objects.get()
        assert response.json() == {
            "id": shop.pk,
            "name": "Tea Hills",
            "name_en": "",
            "district": "Wulong",
            "owner": user.pk,
            "created_at": response.json()["created_at"],
        }
    else:
        assert not Shop.objects.exists()


def test_staff_may_open_a_shop_for_a_host(client_for, staff, host):
    response = client_for(staff).post(
        "/api/v1/shops/", {"name": "Tea Hills", "district": "Wulong", "owner": host.pk}, format="json"
    )
    assert response.status_code == 201
    assert Shop.objects.get().owner == host


def test_host_cannot_open_a_shop_for_someone_else(client_for, host, viewer):
    response = client_for(host).post(
        "/api/v1/shops/", {"name": "Tea Hills", "district": "Wulong", "owner": viewer.pk}, format="json"
    )
    assert response.status_code == 201
    assert Shop.objects.get().owner == host


@pytest.mark.parametrize("who", PERSONAS)
def test_shop_is_public(client_for, persona, who, shop):
    response = client_for(persona(who)).get(f"/api/v1/shops/{shop.pk}/")
    assert response.status_code == 200
    assert response.json()["name"] == "Wulong Hills Farm"


# --- Products ---------------------------------------------------------------------------


def product_body(shop_id, **overrides):
    body = {
        "shop": shop_id,
        "title": "Yangjiao Dried Tofu",
        "description": "Smoked over cypress.",
        "category": "tofu",
        "skus": [{"name": "5 pieces", "price": 2500, "stock": 200}, {"name": "10 pieces", "price": 4600, "stock": 80}],
    }
    body.update(overrides)
    return body


@pytest.mark.parametrize(
    ("who", "status"),
    [
        ("anonymous", 401),
        ("viewer", 403),
        ("unverified_host", 403),
        ("host", 201),
        ("other_host", 403),
        ("staff", 201),
    ],
)
def test_product_create_matrix(client_for, persona, shop, who, status):
    response = client_for(persona(who)).post("/api/v1/products/", product_body(shop.pk), format="json")
    assert response.status_code == status, response.json()
    if status == 201:
        product = Product.objects.get()
        body = response.json()
        assert body["title"] == "Yangjiao Dried Tofu"
        assert body["shop"] == shop.pk
        assert [(s["name"], s["price"], s["currency"], s["stock"]) for s in body["skus"]] == [
            ("5 pieces", 2500, "cny", 200),
            ("10 pieces", 4600, "cny", 80),
        ]
        assert product.skus.count() == 2
    else:
        assert not Product.objects.exists()
        assert not Sku.objects.exists()


BAD_PRODUCT_BODIES = [
    pytest.param({}, id="empty"),
    pytest.param({"title": "no shop"}, id="missing-shop"),
    pytest.param(product_body(None, shop="abc"), id="shop-not-int"),
    pytest.param(product_body(None, shop=999999), id="unknown-shop"),
    pytest.param(product_body(None, skus=[]), id="no-skus"),
    pytest.param(product_body(None, skus="many"), id="skus-not-list"),
    pytest.param(product_body(None, skus=[{"name": "x", "price": -1, "stock": 1}]), id="negative-price"),
    pytest.param(product_body(None, skus=[{"name": "x", "price": 0, "stock": 1}]), id="zero-price"),
    pytest.param(product_body(None, skus=[{"name": "x", "price": 10**12, "stock": 1}]), id="huge-price"),
    pytest.param(product_body(None, skus=[{"name": "x", "price": 12.5, "stock": 1}]), id="float-price"),
    pytest.param(product_body(None, skus=[{"name": "x", "price": "1e3", "stock": 1}]), id="string-price"),
    pytest.param(product_body(None, skus=[{"name": "x", "price": 100, "stock": -5}]), id="negative-stock"),
    pytest.param(product_body(None, skus=[{"name": "x", "price": 100, "stock": 10**10}]), id="huge-stock"),
    pytest.param(product_body(None, title="t" * 10_000), id="long-title"),
    pytest.param(product_body(None, description="d" * 10_000), id="long-description"),
    pytest.param(product_body(None, title="nul\x00byte"), id="nul-byte"),
    pytest.param(product_body(None, image_url="javascript:alert(1)"), id="bad-url"),
    pytest.param(product_body(None, skus=[{"name": "x", "price": 1, "stock": 1}] * 51), id="too-many-skus"),
]


@pytest.mark.parametrize("body", BAD_PRODUCT_BODIES)
def test_product_create_bad_input_writes_nothing(client_for, host, shop, body):
    if body.get("shop", "absent") is None:
        body = {**body, "shop": shop.pk}
    response = client_for(host).post("/api/v1/products/", body, format="json")
    assert_error(response, 400, "invalid")
    assert not Product.objects.exists()
    assert not Sku.objects.exists()


def test_product_create_non_object_body(client_for, host, shop):
    response = client_for(host).post("/api/v1/products/", [1, 2, 3], format="json")
    assert_error(response, 400, "invalid")


@pytest.fixture
def catalog_spread(db):
    wulong = factories.ShopFactory.create(name="Wulong Farm", district="Wulong")
    rongchang = factories.ShopFactory.create(name="Rongchang Farm", district="Rongchang")
    tea = factories.ProductFactory.create(
        shop=wulong, title="Xiannv Black Tea", category="tea", description="Spring leaves"
    )
    starch = factories.ProductFactory.create(shop=wulong, title="Batata Starch", category="starch")
    rice = factories.ProductFactory.create(
        shop=wulong, title="Loach Paddy Rice", category="rice", origin_district="Jiangjin"
    )
    goose = factories.ProductFactory.create(shop=rongchang, title="Braised Goose", category="meat")
    hidden = factories.ProductFactory.create(shop=wulong, title="Old Tea", category="tea", is_active=False)
    for product in (tea, starch, rice, goose, hidden):
        factories.SkuFactory.create(product=product)
    return {"wulong": wulong, "rongchang": rongchang, "tea": tea, "starch": starch, "rice": rice, "goose": goose}


def titles(response):
    assert response.status_code == 200, response.json()
    body = response.json()
    assert set(body) == {"count", "next", "previous", "results"}
    return sorted(p["title"] for p in body["results"])


def test_product_filters(client, catalog_spread):
    assert titles(client.get("/api/v1/products/")) == [
        "Batata Starch",
        "Braised Goose",
        "Loach Paddy Rice",
        "Xiannv Black Tea",
    ]
    assert titles(client.get(f"/api/v1/products/?shop={catalog_spread['rongchang'].pk}")) == ["Braised Goose"]
    assert titles(client.get("/api/v1/products/?category=tea")) == ["Xiannv Black Tea"]
    # The origin district wins over the shop's: the rice is from Jiangjin.
    assert titles(client.get("/api/v1/products/?district=Wulong")) == ["Batata Starch", "Xiannv Black Tea"]
    assert titles(client.get("/api/v1/products/?district=jiangjin")) == ["Loach Paddy Rice"]
    assert titles(client.get("/api/v1/products/?search=spring tea")) == ["Xiannv Black Tea"]


def test_product_filter_bad_value_is_400(client, catalog_spread):
    assert_error(client.get("/api/v1/products/?shop=abc"), 400, "invalid")


def test_product_list_paginates(client, catalog_spread):
    body = client.get("/api/v1/products/?page_size=2").json()
    assert body["count"] == 4
    assert len(body["results"]) == 2
    assert body["next"] is not None
    assert body["previous"] is None
    assert_error(client.get("/api/v1/products/?page=99"), 404, "not_found")


def test_inactive_product_hidden_from_public_but_not_owner(client_for, viewer, staff):
    product = factories.ProductFactory.create(is_active=False)
    owner = product.shop.owner
    assert_error(client_for(viewer).get(f"/api/v1/products/{product.pk}/"), 404, "not_found")
    assert client_for(owner).get(f"/api/v1/products/{product.pk}/").status_code == 200
    assert client_for(staff).get(f"/api/v1/products/{product.pk}/").status_code == 200


@pytest.mark.parametrize(
    ("who", "status"),
    [("anonymous", 401), ("viewer", 403), ("unverified_host", 403), ("host", 200), ("other_host", 403), ("staff", 200)],
)
def test_product_patch_matrix(client_for, persona, sku, who, status):
    product = sku.product
    response = client_for(persona(who)).patch(
        f"/api/v1/products/{product.pk}/", {"title": "Renamed tea"}, format="json"
    )
    assert response.status_code == status
    product.refresh_from_db()
    assert product.title == ("Renamed tea" if status == 200 else "Xiannv Black Tea")


# --- Skus -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("who", "status"),
    [("anonymous", 401), ("viewer", 403), ("unverified_host", 403), ("host", 200), ("other_host", 403), ("staff", 200)],
)
def test_sku_patch_matrix(client_for, persona, sku, who, status):
    response = client_for(persona(who)).patch(f"/api/v1/skus/{sku.pk}/", {"price": 5900, "stock": 7}, format="json")
    assert response.status_code == status
    sku.refresh_from_db()
    if status == 200:
        assert response.json() == {
            "id": sku.pk,
            "name": "250 g tin",
            "name_en": "",
            "price": 5900,
            "currency": "cny",
            "stock": 7,
        }
        assert (sku.price, sku.stock) == (5900, 7)
    else:
        assert (sku.price, sku.stock) == (6800, 50)


@pytest.mark.parametrize(
    "body",
    [
        {"price": -1},
        {"price": 0},
        {"price": "cheap"},
        {"stock": -1},
        {"stock": 2**40},
        {"price": None},
        {"price": True},
    ],
)
def test_sku_patch_bad_input(client_for, host, sku, body):
    assert_error(client_for(host).patch(f"/api/v1/skus/{sku.pk}/", body, format="json"), 400, "invalid")
    sku.refresh_from_db()
    assert (sku.price, sku.stock) == (6800, 50)


def test_sku_patch_unknown_is_404(client_for, host):
    assert_error(client_for(host).patch("/api/v1/skus/999999/", {"price": 1}, format="json"), 404, "not_found")


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"name": "Tea"},
        {"district": "Wulong"},
        {"name": "", "district": "Wulong"},
        {"name": "n" * 10_000, "district": "Wulong"},
        {"name": "Tea", "district": {"x": 1}},
        {"name": "Tea", "district": "Wulong", "owner": 999999},
    ],
)
def test_shop_create_bad_input_writes_nothing(client_for, staff, body):
    assert_error(client_for(staff).post("/api/v1/shops/", body, format="json"), 400, "invalid")
    assert not Shop.objects.exists()


@pytest.mark.parametrize("body", [{"title": ""}, {"title": "t" * 10_000}, {"is_active": "perhaps"}, {"image_url": "x"}])
def test_product_patch_bad_input(client_for, host, sku, body):
    response = client_for(host).patch(f"/api/v1/products/{sku.product_id}/", body, format="json")
    assert_error(response, 400, "invalid")
    sku.product.refresh_from_db()
    assert sku.product.title == "Xiannv Black Tea"
    assert sku.product.is_active is True
