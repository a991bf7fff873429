"""`manage.py seed_demo`: the demo story, idempotently.

A verified tea farmer in Wulong with a shop of Wulong specialties, a cadre host in
Jiangbei with a show coming up, a live show with the shelf set and the tea featured, a
viewer and an admin. Past shows in four districts (Wulong, Jiangbei, Fengjie, Rongchang)
with their orders, so that the district report (`GET /api/v1/stats/districts/`) has real
rows: the orders are placed, paid and refunded through the same services as real ones
(the payment as a Stripe `payment_intent.succeeded` event through the webhook's outbox
and settlement, so the ledger holds them too), without calling Stripe.
The viewer starts with demo coins for gifts: a staff grant (orders.services.wallet.
wallet_grant: balanced ledger entries from the platform's promotions account, kept
apart from bought coins); more come from a top-up paid at localstripe.
Running it again changes nothing and prints the same logins and tokens.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.auth.hashers import make_password
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction
from django.db.models import Q
from django.test.utils import override_settings
from django.utils import timezone

from catalog.models import Offer, Product, ProductPhoto, Shop, Sku
from catalog.services import OfferTerms, offer_create, product_photo_add
from liveshop import demo_pictures
from liveshop.models import User
from liveshop.services import user_token_create
from orders.models import Order, Payment, StripeEvent
from orders.services.orders import LineRequest, order_create, order_deliver, order_ship
from orders.services.payments import stripe_events_process
from orders.services.refunds import refund_apply_result, refund_request
from orders.services.wallet import wallet_coins, wallet_grant
from payouts.models import Payout
from payouts.services.balances import orders_release_due
from payouts.services.payouts import payouts_build
from rooms.models import Comment, Host, Room, RoomItem, RoomStatsReport
from rooms.services import room_cover_set, room_item_offer
from streams import replays
from streams.models import FeaturedMoment, Recording, Replay
from streams.selectors import stream_public_name

DEMO_PASSWORD = "liveshop-demo"
DEMO_VIEWER_COINS = 500


@dataclass(frozen=True)
class DemoProduct:
    title: str
    category: str
    description: str
    skus: tuple[tuple[str, int, int], ...]  # (name, price in fen, stock)


WULONG_PRODUCTS = (
    DemoProduct(
        "Xiannv Black Tea",
        "tea",
        "Spring black tea picked on Xiannv Mountain at 1,200 m, rolled and fermented by hand.",
        (("100 g tin", 4800, 300), ("250 g gift box", 12800, 120)),
    ),
    DemoProduct(
        "Yangjiao Dried Tofu",
        "tofu",
        "Yangjiao town's dried tofu, pressed and smoked over cypress the old way.",
        (("5 pieces", 1500, 800), ("Family pack, 20 pieces", 5200, 200)),
    ),
    DemoProduct(
        "Wulong Batata Starch",
        "starch",
        "Sweet-potato starch from Wulong's hills, for hot-and-sour noodles at home.",
        (("500 g", 2500, 500), ("2 kg", 8800, 150)),
    ),
    DemoProduct(
        "Loach Paddy Rice",
        "rice",
        "Rice grown in terraced paddies where loaches keep the weeds down: no herbicide.",
        (("5 kg", 6900, 400), ("10 kg", 12900, 120)),
    ),
    DemoProduct(
        "Yangjiao Well-aged Vinegar",
        "vinegar",
        "Grain vinegar aged three years in clay jars in Yangjiao.",
        (("500 ml", 1800, 600), ("Twin bottles", 3300, 250)),
    ),
)


FENGJIE_PRODUCTS = (
    DemoProduct(
        "Fengjie Navel Oranges",
        "fruit",
        "Navel oranges from the slopes above the Yangtze at Fengjie, picked to order.",
        (("5 kg box", 5900, 400), ("10 kg box", 9900, 200)),
    ),
    DemoProduct(
        "Fengjie Orange Blossom Honey",
        "honey",
        "Honey from the orange groves' spring bloom.",
        (("500 g jar", 6800, 150),),
    ),
)

RONGCHANG_PRODUCTS = (
    DemoProduct(
        "Rongchang Summer Cloth Scarf",
        "textile",
        "Ramie summer cloth woven in Rongchang, light and cool.",
        (("One scarf", 8800, 100),),
    ),
    DemoProduct(
        "Rongchang Pottery Teapot",
        "pottery",
        "An Anfu-kiln teapot of Rongchang red clay.",
        (("Teapot, 300 ml", 16800, 60),),
    ),
)


@dataclass(frozen=True)
class DemoSale:
    buyer: str  # username
    product: str  # the product's title; its first sku
    quantity: int
    refund: int = 0  # fen refunded after payment (the order's total for a full refund)


@dataclass(frozen=True)
class PastShow:
    host: str  # username
    title: str
    days_ago: int
    products: tuple[str, ...]  # titles, on the shelf in this order
    sales: tuple[DemoSale, ...]
    audience: tuple[int, int, int, int]  # views, unique viewers, peak viewers, likes


# The first past show's replay: a recording this long, and what viewers said during it.
DEMO_REPLAY_S = 40
DEMO_REPLAY_COMMENTS = (
    (4, "viewer", "今年的头春茶出来了？"),
    (9, "buyer_wang", "红茶怎么泡，水温多少？"),
    (15, "viewer", "罐子好看，送人合适"),
    (24, "buyer_wang", "豆腐干辣不辣？"),
    (31, "viewer", "来两包尝尝"),
)

PAST_SHOWS = (
    PastShow(
        "farmer",
        "First flush of Xiannv black tea",
        12,
        ("Xiannv Black Tea", "Yangjiao Dried Tofu"),
        (DemoSale("viewer", "Xiannv Black Tea", 2), DemoSale("buyer_wang", "Yangjiao Dried Tofu", 3, refund=500)),
        (1840, 1215, 312, 9650),
    ),
    PastShow(
        "cadre",
        "Jiangbei bureau presents Wulong and Fengjie specialties",
        9,
        ("Xiannv Black Tea", "Fengjie Navel Oranges", "Loach Paddy Rice"),
        (
            DemoSale("viewer", "Fengjie Navel Oranges", 1),
            DemoSale("buyer_wang", "Xiannv Black Tea", 1),
            DemoSale("buyer_liu", "Loach Paddy Rice", 2),
        ),
        (5120, 3904, 870, 22010),
    ),
    PastShow(
        "orchard",
        "Navel orange harvest on the Yangtze",
        5,
        ("Fengjie Navel Oranges", "Fengjie Orange Blossom Honey"),
        (DemoSale("buyer_liu", "Fengjie Navel Oranges", 3), DemoSale("viewer", "Fengjie Orange Blossom Honey", 1)),
        (2675, 2011, 455, 13380),
    ),
    PastShow(
        "weaver",
        "Rongchang summer cloth and Anfu pottery",
        2,
        ("Rongchang Summer Cloth Scarf", "Rongchang Pottery Teapot"),
        (
            DemoSale("buyer_wang", "Rongchang Summer Cloth Scarf", 2),
            DemoSale("viewer", "Rongchang Pottery Teapot", 1, refund=16800),
        ),
        (960, 702, 148, 4120),
    ),
)


DEMO_LIVE_TITLE = "Spring tea and Yangjiao specialties, live from Xiannv Mountain"

# The demo's content as a Chongqing seller writes it (Chinese, stored as written), by its
# English (stored in the `*_en` fields for English pages, and the key this module finds
# the rows by, so that a database seeded before the content was Chinese is updated).
ZH = {
    # Products, their descriptions and skus
    "Xiannv Black Tea": "仙女山红茶",
    "Spring black tea picked on Xiannv Mountain at 1,200 m, rolled and fermented by hand.": (
        "海拔1200米的仙女山春茶，手工揉捻、发酵。"
    ),
    "100 g tin": "100克罐装",
    "250 g gift box": "250克礼盒",
    "Yangjiao Dried Tofu": "羊角豆腐干",
    "Yangjiao town's dried tofu, pressed and smoked over cypress the old way.": "羊角镇老手艺豆腐干，压制后柏枝熏烤。",
    "5 pieces": "5片装",
    "Family pack, 20 pieces": "家庭装20片",
    "Wulong Batata Starch": "武隆红薯淀粉",
    "Sweet-potato starch from Wulong's hills, for hot-and-sour noodles at home.": "武隆山里的红薯淀粉，在家做酸辣粉。",
    "500 g": "500克",
    "2 kg": "2公斤",
    "Loach Paddy Rice": "稻鳅米",
    "Rice grown in terraced paddies where loaches keep the weeds down: no herbicide.": (
        "梯田里养泥鳅除草种出的大米，不打除草剂。"
    ),
    "5 kg": "5公斤",
    "10 kg": "10公斤",
    "Yangjiao Well-aged Vinegar": "羊角老陈醋",
    "Grain vinegar aged three years in clay jars in Yangjiao.": "羊角粮食醋，陶缸陈酿三年。",
    "500 ml": "500毫升",
    "Twin bottles": "两瓶装",
    "Fengjie Navel Oranges": "奉节脐橙",
    "Navel oranges from the slopes above the Yangtze at Fengjie, picked to order.": (
        "长江边奉节山坡上的脐橙，现摘现发。"
    ),
    "5 kg box": "5公斤箱装",
    "10 kg box": "10公斤箱装",
    "Fengjie Orange Blossom Honey": "奉节橙花蜜",
    "Honey from the orange groves' spring bloom.": "橙园春季花期的蜂蜜。",
    "500 g jar": "500克瓶装",
    "Rongchang Summer Cloth Scarf": "荣昌夏布围巾",
    "Ramie summer cloth woven in Rongchang, light and cool.": "荣昌手织苎麻夏布，轻薄凉爽。",
    "One scarf": "一条",
    "Rongchang Pottery Teapot": "荣昌陶茶壶",
    "An Anfu-kiln teapot of Rongchang red clay.": "安富窑荣昌红泥茶壶。",
    "Teapot, 300 ml": "茶壶 300毫升",
    # Shops
    "Xiannv Mountain Farm": "仙女山农场",
    "Fengjie Orange Groves": "奉节脐橙园",
    "Rongchang Crafts": "荣昌手艺坊",
    # Shows
    DEMO_LIVE_TITLE: "仙女山直播：春茶和羊角特产",
    "Jiangbei specialties: hot pot base and Ciqikou mahua": "江北特产：火锅底料和磁器口麻花",
    "First flush of Xiannv black tea": "仙女山头春红茶",
    "Jiangbei bureau presents Wulong and Fengjie specialties": "江北商务局推介武隆、奉节特产",
    "Navel orange harvest on the Yangtze": "长江边的脐橙丰收",
    "Rongchang summer cloth and Anfu pottery": "荣昌夏布和安富陶器",
}


def _by_english(rows: Any, field: str, english: str) -> Any:
    """The row whose `<field>_en` is `english`, or (seeded before) whose `<field>` is."""
    return rows.filter(Q(**{f"{field}_en": english}) | Q(**{field: english})).first()


def demo_live_room() -> Room | None:
    """The demo's live show (the farmer's), if seeded."""
    rooms = Room.objects.filter(host__user__username="farmer", status=Room.Status.LIVE)
    room: Room | None = _by_english(rooms, "title", DEMO_LIVE_TITLE)
    return room


class Command(BaseCommand):
    help = (
        "Load the demo data (idempotent) and print the demo logins and tokens. For demos and "
        "development only: it creates a superuser and hosts with a published password, so it "
        "refuses to run with DEBUG off unless given --this-is-a-demo."
    )

    _password_hash: str | None = None

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--this-is-a-demo",
            action="store_true",
            help="Seed even with DEBUG off: this server is a demo, and its accounts may be known to anyone.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if not settings.DEBUG and not options["this_is_a_demo"]:
            raise CommandError(
                "seed_demo creates a superuser and hosts whose password is published: it runs with "
                "DEBUG on (make run), or with --this-is-a-demo on a server that is only a demo."
            )
        self.stdout.write("Seeding demo data...")
        with transaction.atomic():
            admin = self._user("admin", "Platform Admin", "Yuzhong", is_staff=True, is_superuser=True)
            farmer = self._user("farmer", "Farmer Chen", "Wulong")
            cadre = self._user("cadre", "Cadre Zhou", "Jiangbei")
            viewer = self._user("viewer", "Viewer Li", "Yuzhong")
            self._step("users: admin, farmer, cadre, viewer")

            farmer_host = self._host(
                farmer, Host.Kind.FARMER, "Wulong", "Third-generation tea farmer on Xiannv Mountain."
            )
            cadre_host = self._host(cadre, Host.Kind.CADRE, "Jiangbei", "Deputy head of the Jiangbei commerce bureau.")
            self._step("hosts: farmer (Wulong), cadre (Jiangbei), both verified")

            shop = self._shop(farmer, "Xiannv Mountain Farm", "Wulong")
            skus = [sku for spec in WULONG_PRODUCTS for sku in self._product(shop, spec)]
            self._step(f"shop '{shop.name}' with {len(WULONG_PRODUCTS)} products and {len(skus)} skus")

            self._step(f"{self._photos(shop)} product photos (drawn here with Pillow)")

            room = self._live_room(farmer_host, skus)
            self._step(f"room {room.pk} '{room.title}' is live with {room.items.count()} items")
            if not room.cover.name:
                room_cover_set(room=room, upload=demo_pictures.jpeg(demo_pictures.live_cover()))
            self._step("the live room has its cover")
            upcoming = self._upcoming_room(cadre_host)
            self._step(f"room {upcoming.pk} '{upcoming.title}' is coming up")

            self._user("buyer_wang", "Buyer Wang", "Nanan")
            self._user("buyer_liu", "Buyer Liu", "Shapingba")
            orchard = self._user("orchard", "Grower Tan", "Fengjie")
            weaver = self._user("weaver", "Weaver Huang", "Rongchang")
            self._host(orchard, Host.Kind.FARMER, "Fengjie", "Navel orange grower above the Yangtze.")
            self._host(weaver, Host.Kind.MERCHANT, "Rongchang", "Sells Rongchang summer cloth and pottery.")
            for owner, name, district, specs in (
                (orchard, "Fengjie Orange Groves", "Fengjie", FENGJIE_PRODUCTS),
                (weaver, "Rongchang Crafts", "Rongchang", RONGCHANG_PRODUCTS),
            ):
                other_shop = self._shop(owner, name, district)
                for spec in specs:
                    self._product(other_shop, spec)
            self._step("buyers buyer_wang and buyer_liu; hosts orchard (Fengjie) and weaver (Rongchang) with shops")
            offers = self._offers(owners=[farmer, orchard, weaver])
            self._step(f"{offers} promotion offers: the sellers' terms for hosts (cadre Zhou sells under them)")
            self._shelve(upcoming, ["Xiannv Black Tea", "Fengjie Navel Oranges"])
            for show in PAST_SHOWS:
                self._step(self._past_show(show))
            self._step(self._money_out())

            wallet_grant(user=viewer, coins=DEMO_VIEWER_COINS, key="seed_demo:viewer", reason="demo coins")
            self._step(f"viewer's wallet: {wallet_coins(user_id=viewer.pk)} coins (a staff grant, once)")
        self._step(self._past_replay(PAST_SHOWS[0]))

        self.stdout.write(self.style.SUCCESS(f"\nDemo data ready. Logins (password for all: {DEMO_PASSWORD}):"))
        for user, role in (
            (admin, "staff, /admin/"),
            (farmer, "verified farmer host"),
            (cadre, "verified cadre host"),
            (viewer, "viewer"),
        ):
            self.stdout.write(f"  {user.username:<8} {role:<22} Authorization: Token {user_token_create(user=user)}")
        self.stdout.write(f"  live room: /api/v1/rooms/{room.pk}/   API docs: /api/docs/")
        self.stdout.write(
            f"  web: / (the shows), /rooms/{room.pk}/ (watch and buy as viewer), "
            f"/studio/rooms/{room.pk}/ (the host console as farmer), /money/ (the farmer's and cadre's money)"
        )
        today = timezone.localdate()
        self.stdout.write(
            f"  district report (staff): /api/v1/stats/districts/?from={today - timedelta(days=30)}&to={today}"
        )

    def _step(self, text: str) -> None:
        self.stdout.write(f"  - {text}")

    def _user(self, username: str, display_name: str, district: str, **flags: bool) -> User:
        user, created = User.objects.get_or_create(
            username=username, defaults={"display_name": display_name, "district": district, **flags}
        )
        if created:
            # One hash for every demo account: hashing is slow on purpose (~0.7 s each).
            if self._password_hash is None:
                self._password_hash = make_password(DEMO_PASSWORD)
            User.objects.filter(pk=user.pk).update(password=self._password_hash)
        return user

    def _host(self, user: User, kind: str, district: str, bio: str) -> Host:
        host, _ = Host.objects.get_or_create(user=user, defaults={"kind": kind, "district": district, "bio": bio})
        if not host.verified:
            Host.objects.filter(pk=host.pk).update(verified=True, verified_at=timezone.now())
            host.refresh_from_db()
        return host

    def _shop(self, owner: User, name: str, district: str) -> Shop:
        shop: Shop | None = _by_english(Shop.objects.filter(owner=owner), "name", name)
        if shop is None:
            return Shop.objects.create(owner=owner, name=ZH[name], name_en=name, district=district)
        Shop.objects.filter(pk=shop.pk).update(name=ZH[name], name_en=name)
        return shop

    def _product(self, shop: Shop, spec: DemoProduct) -> list[Sku]:
        names = {"title": ZH[spec.title], "title_en": spec.title}
        texts = {"description": ZH[spec.description], "description_en": spec.description}
        product: Product | None = _by_english(Product.objects.filter(shop=shop), "title", spec.title)
        if product is None:
            product = Product.objects.create(
                shop=shop, category=spec.category, origin_district="Wulong", **names, **texts
            )
        else:
            Product.objects.filter(pk=product.pk).update(**names, **texts)
        skus = []
        for name, price, stock in spec.skus:
            sku: Sku | None = _by_english(product.skus.all(), "name", name)
            if sku is None:
                sku = Sku.objects.create(product=product, name=ZH[name], name_en=name, price=price, stock=stock)
            else:
                Sku.objects.filter(pk=sku.pk).update(name=ZH[name], name_en=name)
            skus.append(sku)
        return skus

    def _photos(self, shop: Shop) -> int:
        """A photo for each of the farm's products that has none (drawn, not downloaded)."""
        for title, draw in demo_pictures.PRODUCT_PICTURES.items():
            product = Product.objects.filter(shop=shop, title_en=title).first()
            if product is not None and not product.photos.exists():
                product_photo_add(product=product, upload=demo_pictures.jpeg(draw()))
        return ProductPhoto.objects.filter(product__shop=shop).count()

    def _live_room(self, host: Host, skus: list[Sku]) -> Room:
        """The live demo show; a new one if an earlier demo show has ended."""
        room = demo_live_room()
        if room is not None:
            Room.objects.filter(pk=room.pk).update(title=ZH[DEMO_LIVE_TITLE], title_en=DEMO_LIVE_TITLE)
            room.refresh_from_db()
            return room
        room = Room.objects.create(
            host=host,
            title=ZH[DEMO_LIVE_TITLE],
            title_en=DEMO_LIVE_TITLE,
            description="陈大哥清晨上山采茶，再带大家看羊角豆腐干作坊，边看边下单。",
            status=Room.Status.LIVE,
            scheduled_start=timezone.now(),
            started_at=timezone.now(),
        )
        # One sku of each product on the shelf, the first (the tea) at a live price.
        first_skus = {sku.product_id: sku for sku in reversed(skus)}
        items = [
            RoomItem.objects.create(
                room=room, sku=sku, position=position, live_price=sku.price - 800 if position == 1 else None
            )
            for position, sku in enumerate(sorted(first_skus.values(), key=lambda s: s.pk), start=1)
        ]
        Room.objects.filter(pk=room.pk).update(featured_item=items[0])
        room.refresh_from_db()
        return room

    def _past_show(self, show: PastShow) -> str:
        """An ended show with its orders, paid (and some refunded) through the real path."""
        host = Host.objects.select_related("user").get(user__username=show.host)
        existing: Room | None = _by_english(Room.objects.filter(host=host), "title", show.title)
        if existing is not None:
            Room.objects.filter(pk=existing.pk).update(title=ZH[show.title], title_en=show.title)
            return f"past show {existing.pk} '{show.title}' ({host.district}) is there"
        started = timezone.now() - timedelta(days=show.days_ago, hours=2)
        # Live while its orders are placed (live prices need a live room), then ended.
        room = Room.objects.create(
            host=host, title=ZH[show.title], title_en=show.title, status=Room.Status.LIVE, started_at=started
        )
        # Made a day before the show, as it would have been (comments follow their room).
        Room.objects.filter(pk=room.pk).update(created_at=started - timedelta(days=1))
        items = self._shelve(room, list(show.products))
        for sale in show.sales:
            self._paid_order(room=room, item=items[sale.product], sale=sale)
        Room.objects.filter(pk=room.pk).update(status=Room.Status.ENDED, ended_at=started + timedelta(hours=2))
        views, unique, peak, likes = show.audience
        RoomStatsReport.objects.create(room=room, views=views, unique_viewers=unique, peak_viewers=peak, likes=likes)
        return (
            f"past show {room.pk} '{show.title}' ({host.district}, {show.days_ago} days ago): {len(show.sales)} orders"
        )

    def _money_out(self) -> str:
        """The past shows' paid orders shipped the day after the show and received two days
        later; those past the hold are released, and the last period's payouts built,
        waiting for staff's approval in the admin (Money out > Payouts)."""
        paid = Order.objects.filter(status=Order.Status.PAID, room__status=Room.Status.ENDED).select_related("room")
        for order in paid:
            assert order.room is not None
            assert order.room.started_at is not None
            order_ship(order=order, tracking=f"SF{order.pk:010d}")
            order_deliver(order_id=order.pk)
            shown = order.room.started_at
            Order.objects.filter(pk=order.pk).update(
                shipped_at=shown + timedelta(days=1), delivered_at=shown + timedelta(days=3)
            )
        released = orders_release_due()
        built = payouts_build()
        waiting = Payout.objects.filter(status=Payout.Status.PENDING).count()
        return f"money out: {released} orders payable, {len(built)} payouts built; {waiting} wait for approval"

    def _past_replay(self, show: PastShow) -> str:
        """The first past show's replay, built by the real path from a recording ffmpeg
        makes here (a test pattern): chapters, comments at their moments, product clips."""
        room: Room = _by_english(Room.objects.filter(host__user__username=show.host), "title", show.title)
        if Replay.objects.filter(room=room, status=Replay.Status.READY).exists():
            return f"past show {room.pk} has its replay"
        if shutil.which("ffmpeg") is None:
            return "no replay for the past shows: ffmpeg is missing (sudo make system-deps)"
        assert room.started_at is not None
        items = list(room.items.order_by("position"))
        origin = room.started_at + timedelta(minutes=5)
        with tempfile.TemporaryDirectory(prefix="liveshop-demo-rec-") as recordings:
            name = f"{stream_public_name(room_id=room.pk)}-{int(origin.timestamp())}.flv"
            subprocess.run(
                ["ffmpeg", "-hide_banner", "-loglevel", "error", "-y",
                 "-f", "lavfi", "-i", "testsrc2=size=640x360:rate=15", "-f", "lavfi", "-i", "sine=frequency=330",
                 "-t", str(DEMO_REPLAY_S), "-c:v", "libx264", "-preset", "veryfast", "-g", "15", "-pix_fmt", "yuv420p",
                 "-c:a", "aac", "-b:a", "64k", "-f", "flv", str(Path(recordings) / name)],
                check=True, timeout=300,
            )  # fmt: skip
            with transaction.atomic():
                Recording.objects.create(
                    room=room, path=name, ingest_node="demo", ended_at=origin + timedelta(seconds=DEMO_REPLAY_S)
                )
                for index, item in enumerate(items):
                    at = origin + timedelta(seconds=2 + index * DEMO_REPLAY_S // max(len(items), 1))
                    FeaturedMoment.objects.create(room=room, item=item, at=at)
                for seconds, username, text in DEMO_REPLAY_COMMENTS:
                    user = User.objects.get(username=username)
                    comment = Comment.objects.create(room=room, user=user, text=text)
                    Comment.objects.filter(pk=comment.pk).update(created_at=origin + timedelta(seconds=seconds))
                replay, _created = Replay.objects.update_or_create(
                    room=room, defaults={"status": Replay.Status.PROCESSING}
                )
            with override_settings(INGEST_RECORDINGS_DIR=recordings):
                replays.replay_build(room_id=room.pk, version=replay.version)
            Recording.objects.filter(room=room).update(path="")  # the file was this command's only
        replay.refresh_from_db()
        chapters = len(replay.chapters)
        return f"past show {room.pk}: a replay of {replay.duration_s or 0:.0f} s ({replay.status}), {chapters} chapters"

    def _paid_order(self, *, room: Room, item: RoomItem, sale: DemoSale) -> Order:
        buyer = User.objects.get(username=sale.buyer)
        shipping = {
            "name": buyer.public_name,
            "phone": "+86 138 0000 0000",
            "address": "Demo Rd 1",
            "district": buyer.district,
        }
        order = order_create(
            buyer=buyer, lines=[LineRequest(item=item, quantity=sale.quantity)], room=room, shipping=shipping
        )
        # The PaymentIntent Stripe would have made, and the event it would send once paid:
        # settled by the webhook's outbox processing, as a real payment is.
        intent_id = f"pi_demo_{order.number}"
        Payment.objects.create(
            order=order,
            payment_intent_id=intent_id,
            client_secret=f"{intent_id}_secret_demo",
            amount=order.total,
            currency=order.currency,
        )
        event_id = f"evt_demo_{order.number}"
        intent = {
            "id": intent_id,
            "object": "payment_intent",
            "amount": order.total,
            "amount_received": order.total,
            "currency": order.currency,
            "status": "succeeded",
        }
        StripeEvent.objects.create(
            event_id=event_id,
            type="payment_intent.succeeded",
            payload={"id": event_id, "object": "event", "type": "payment_intent.succeeded", "data": {"object": intent}},
            enqueued_at=timezone.now(),
        )
        stripe_events_process(event_id=event_id, batch=1)
        if sale.refund:
            seller = order.shop.owner
            refund = refund_request(
                order=order, reason="Demo: damaged in transit.", requested_by=seller, amount=sale.refund
            )
            refund_apply_result(refund_id=refund.pk, stripe_refund_id=f"re_demo_{refund.pk}", status="succeeded")
        return order

    def _offers(self, *, owners: list[User]) -> int:
        """Each seller's offer on each of its skus, open to every verified host: 8 %
        commission, live prices down to 90 % of the list price, flash sales down to 70 %."""
        skus = Sku.objects.filter(product__shop__owner__in=owners).exclude(offers__status=Offer.Status.ACTIVE)
        for sku in skus.select_related("product__shop").order_by("pk"):
            offer_create(
                sku=sku,
                created_by=sku.product.shop.owner,
                terms=OfferTerms(
                    commission_bps=800,
                    min_live_price=sku.price * 9 // 10,
                    flash_allowed=True,
                    min_flash_price=sku.price * 7 // 10,
                    flash_max_units=100,
                ),
            )
        return Offer.objects.filter(sku__product__shop__owner__in=owners, status=Offer.Status.ACTIVE).count()

    def _shelve(self, room: Room, titles: list[str]) -> dict[str, RoomItem]:
        """The first sku of each product on the room's shelf: the host's own goods, or
        another seller's under its offer (room_item_offer refuses anything else)."""
        shelf: dict[str, RoomItem] = {}
        for position, title in enumerate(titles, start=1):
            sku = Sku.objects.select_related("product__shop").filter(product__title_en=title).order_by("pk")[0]
            shelf[title] = RoomItem.objects.get_or_create(
                room=room,
                sku=sku,
                defaults={"position": position, "offer": room_item_offer(room=room, sku=sku)},
            )[0]
        return shelf

    def _upcoming_room(self, host: Host) -> Room:
        """The cadre's show, scheduled for tomorrow evening (the front page's "coming up")."""
        title = "Jiangbei specialties: hot pot base and Ciqikou mahua"
        scheduled = Room.objects.filter(host=host, status=Room.Status.SCHEDULED)
        room: Room | None = _by_english(scheduled, "title", title)
        if room is not None:
            Room.objects.filter(pk=room.pk).update(title=ZH[title], title_en=title)
            return room
        tomorrow = timezone.now().replace(hour=11, minute=0, second=0, microsecond=0) + timedelta(days=1)
        return Room.objects.create(
            host=host,
            title=ZH[title],
            title_en=title,
            description="周干部和师傅们一起品尝江北火锅底料和磁器口麻花。",
            scheduled_start=tomorrow,  # 19:00 in Chongqing (UTC+8)
        )
