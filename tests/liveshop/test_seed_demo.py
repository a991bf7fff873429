from __future__ import annotations

import re
import zoneinfo
from datetime import timedelta
from io import StringIO

import pytest
from django.conf import settings
from django.core.files.storage import default_storage
from django.core.management import CommandError, call_command
from django.db.models import F
from django.utils import timezone
from rest_framework.test import APIClient

from catalog.models import Offer, Product, ProductPhoto, Shop, Sku
from liveshop.models import User
from orders.models import LedgerTransaction, Order, Refund
from orders.services.ledger import ledger_check, ledger_forget
from rooms.models import Host, Room, RoomItem, RoomStatsReport
from streams.models import ProductClip, Replay

pytestmark = pytest.mark.django_db

MODELS = (
    User,
    Host,
    Shop,
    Product,
    ProductPhoto,
    Sku,
    Offer,
    Room,
    RoomItem,
    Order,
    Refund,
    LedgerTransaction,
    RoomStatsReport,
)


@pytest.fixture(autouse=True)
def _forget_ledger_accounts():
    yield
    ledger_forget()  # the accounts the demo's payments created are rolled back


def _counts():
    return {model.__name__: model.objects.count() for model in MODELS}


def test_seed_demo_refuses_to_run_with_debug_off_unless_told_this_is_a_demo(settings):
    settings.DEBUG = False
    with pytest.raises(CommandError, match="--this-is-a-demo"):
        call_command("seed_demo", stdout=StringIO())
    assert _counts() == dict.fromkeys(_counts(), 0)  # nothing written, no admin, no token

    settings.DEBUG = True
    call_command("seed_demo", stdout=StringIO())
    assert User.objects.filter(username="admin", is_superuser=True).exists()


def test_seed_demo_is_idempotent_and_prints_tokens():
    first = StringIO()
    call_command("seed_demo", "--this-is-a-demo", stdout=first)
    counts = _counts()
    second = StringIO()
    call_command("seed_demo", "--this-is-a-demo", stdout=second)

    assert _counts() == counts
    assert counts == {
        "User": 8,
        "Host": 4,
        "Shop": 3,
        "Product": 9,
        "ProductPhoto": 5,  # one drawn photo for each of the farmer's products
        "Sku": 15,
        "Offer": 15,  # every seller's terms on every sku
        "Room": 6,  # the live show, one coming up, four past shows
        "RoomItem": 16,
        "Order": 9,
        "Refund": 2,
        # 9 payments, 2 refunds, the viewer's coin grant; the first show's 2 orders
        # released (delivered 9 days ago), and the farmer's payout
        "LedgerTransaction": 15,
        "RoomStatsReport": 4,
    }
    assert "past show" in first.getvalue()
    # The first past show has its replay, made once: chapters, comments, clips that exist.
    replay = Replay.objects.get()
    assert (replay.status, len(replay.chapters), replay.attempts) == (Replay.Status.READY, 2, 1)
    assert replay.duration_s == pytest.approx(40, abs=1)
    assert "has its replay" in second.getvalue()
    assert ProductClip.objects.count() == 2
    assert all(default_storage.exists(clip.file) for clip in ProductClip.objects.all())
    # Each run prints a fresh API token (only their hashes are stored), each one working.
    tokens = re.findall(r"farmer .* Authorization: Token (\w+)", first.getvalue() + second.getvalue())
    assert len(tokens) == 2
    assert tokens[0] != tokens[1]
    for token in tokens:
        client = APIClient(HTTP_AUTHORIZATION=f"Token {token}")
        assert client.get("/api/v1/me/").json()["username"] == "farmer"


def test_seed_demo_story():
    call_command("seed_demo", "--this-is-a-demo", stdout=StringIO())
    farmer = Host.objects.get(user__username="farmer")
    cadre = Host.objects.get(user__username="cadre")
    assert (farmer.kind, farmer.district, farmer.verified) == ("farmer", "Wulong", True)
    assert (cadre.kind, cadre.district, cadre.verified) == ("cadre", "Jiangbei", True)
    # Named as a Chongqing seller writes them, with English for English pages.
    titles = set(Product.objects.filter(shop__owner__username="farmer").values_list("title", "title_en"))
    assert titles == {
        ("仙女山红茶", "Xiannv Black Tea"),
        ("羊角豆腐干", "Yangjiao Dried Tofu"),
        ("武隆红薯淀粉", "Wulong Batata Starch"),
        ("稻鳅米", "Loach Paddy Rice"),
        ("羊角老陈醋", "Yangjiao Well-aged Vinegar"),
    }
    room = Room.objects.get(status=Room.Status.LIVE)
    upcoming = Room.objects.get(status=Room.Status.SCHEDULED)
    assert (upcoming.host, upcoming.scheduled_start is not None) == (cadre, True)
    assert room.featured_item is not None
    assert room.featured_item.sku.product.title == "仙女山红茶"
    assert (room.featured_item.sku.name, room.featured_item.sku.name_en) == ("100克罐装", "100 g tin")
    assert (room.title, room.title_en) == (
        "仙女山直播：春茶和羊角特产",
        "Spring tea and Yangjiao specialties, live from Xiannv Mountain",
    )
    assert User.objects.get(username="admin").is_staff


def test_a_demo_seeded_in_english_becomes_chinese_without_duplicates():
    call_command("seed_demo", "--this-is-a-demo", stdout=StringIO())
    # As an earlier seed left them: English titles, no *_en.
    Product.objects.update(title=F("title_en"), title_en="")
    Room.objects.update(title=F("title_en"), title_en="")
    products, rooms = Product.objects.count(), Room.objects.count()
    call_command("seed_demo", "--this-is-a-demo", stdout=StringIO())
    assert (Product.objects.count(), Room.objects.count()) == (products, rooms)
    assert Product.objects.filter(title="仙女山红茶", title_en="Xiannv Black Tea").exists()
    assert not Room.objects.filter(title_en="").exists()


def test_seed_demo_draws_its_photos_and_the_live_shows_cover(client_for):
    call_command("seed_demo", "--this-is-a-demo", stdout=StringIO())
    room = Room.objects.get(status=Room.Status.LIVE)

    shelf = client_for(None).get(f"/api/v1/rooms/{room.pk}/items/").json()
    cover = client_for(None).get(f"/api/v1/rooms/{room.pk}/").json()["cover"]

    assert all(item["product"]["image"] for item in shelf)
    assert cover is not None
    for url in [item["product"]["image"]["thumb_url"] for item in shelf] + [cover["url"], cover["thumb_url"]]:
        assert client_for(None).get(url).status_code == 200, url
    photo = ProductPhoto.objects.get(product__title_en="Xiannv Black Tea")
    assert (photo.width, photo.height) == (1080, 1080)


def test_seed_demo_cadre_sells_the_farmers_goods_under_their_offers():
    call_command("seed_demo", "--this-is-a-demo", stdout=StringIO())
    cadre_items = RoomItem.objects.filter(room__host__user__username="cadre").select_related("sku__product__shop")
    assert cadre_items.count() == 5  # three in the past show, two in the show coming up
    for item in cadre_items:
        assert item.offer is not None
        assert (item.offer.sku_id, item.offer.status) == (item.sku_id, "active")
        assert item.sku.product.shop.owner.username != "cadre"
    # The cadre's past show: 8 % of each line, nothing on the farmer's own show.
    cadre_orders = Order.objects.filter(room__host__user__username="cadre")
    assert [order.host_commission for order in cadre_orders.order_by("pk")] == [
        order.total * 800 // 10_000 for order in cadre_orders.order_by("pk")
    ]
    assert all(order.host_commission > 0 for order in cadre_orders)
    assert not Order.objects.filter(room__host__user__username="farmer", host_commission__gt=0).exists()


def test_seed_demo_opens_a_new_show_when_the_demo_show_ended(client_for):
    call_command("seed_demo", "--this-is-a-demo", stdout=StringIO())
    Room.objects.filter(status=Room.Status.LIVE).update(status=Room.Status.ENDED)
    call_command("seed_demo", "--this-is-a-demo", stdout=StringIO())
    assert Room.objects.filter(status=Room.Status.LIVE).count() == 1
    # The ended demo show, the new live one, the cadre's upcoming one, four past shows.
    assert Room.objects.count() == 7


def test_seed_demo_past_shows_fill_the_district_report(client_for):
    """The past shows' orders went through settlement and refunds: the ledger balances,
    and the report has a row per district."""
    call_command("seed_demo", "--this-is-a-demo", stdout=StringIO())
    assert ledger_check() == {"unbalanced_transactions": [], "drifted_balances": []}
    # Shipped the day after their show and received two days later.
    assert set(Order.objects.values_list("status", flat=True)) == {"delivered", "refunded"}
    # The report's days are days in STATS_TIME_ZONE (Chongqing's): 00:30 there is still
    # yesterday in UTC.
    today = timezone.localdate(timezone=zoneinfo.ZoneInfo(settings.STATS_TIME_ZONE))
    staff = User.objects.get(username="admin")
    report = client_for(staff).get(f"/api/v1/stats/districts/?from={today - timedelta(days=30)}&to={today}").json()
    rows = {row["district"]: row for row in report["rows"]}
    assert set(rows) == {"Wulong", "Jiangbei", "Fengjie", "Rongchang"}
    # Wulong: the live demo show and a past one; 2 tins of tea (9,600) and 3 packs of tofu
    # (4,500, of which 500 refunded).
    assert rows["Wulong"] == {
        "district": "Wulong",
        "shows": 2,
        "views": 1840,
        "products": 5,
        "items_sold": 5,
        "sales": 13600,
    }
    # Rongchang: the teapot came back in full; the scarves (2 x 8,800) stay sold.
    assert (rows["Rongchang"]["items_sold"], rows["Rongchang"]["sales"]) == (2, 17600)
    assert report["totals"]["shows"] == 5


def test_seed_demo_pays_the_farmer_what_the_first_show_earned(client_for):
    """The first past show (12 days ago) is past its hold: its orders are payable and in
    the farmer's payout, waiting for staff; the later shows' money is still pending."""
    from payouts.models import Payout

    call_command("seed_demo", "--this-is-a-demo", stdout=StringIO())
    farmer = User.objects.get(username="farmer")
    shop = Shop.objects.get(owner=farmer)
    first_show = Order.objects.filter(room__title_en="First flush of Xiannv black tea")
    # Each order's total less its fee, less what was refunded but for the refund's share
    # of the fee, which the platform gave back.
    owed = sum(
        o.total - o.platform_fee - o.refunded_amount + o.refunded_amount * o.platform_fee // o.total for o in first_show
    )
    payout = Payout.objects.get()
    assert (payout.shop_id, payout.status, payout.amount) == (shop.pk, "pending", owed)
    balance = client_for(farmer).get(f"/api/v1/shops/{shop.pk}/balance/").json()
    assert (balance["available"], balance["in_payout"]) == (0, payout.amount)
    assert balance["pending"] > 0  # the cadre's show sold the farmer's tea 9 days ago
    assert ledger_check() == {"unbalanced_transactions": [], "drifted_balances": []}
