"""`manage.py seed_demo`: the demo story, idempotently.

A verified tea farmer in Wulong with a shop of Wulong specialties, a cadre host in
Jiangbei, a live show with the shelf set and the tea featured, a viewer and an admin.
The viewer starts with demo coins for gifts: a staff grant (orders.services.wallet.
wallet_grant: balanced ledger entries from the platform's promotions account, kept
apart from bought coins); more come from a top-up paid at localstripe.
Running it again changes nothing and prints the same logins and tokens.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.core.management.base import BaseCommand
from django.db import transaction
from django.utils import timezone

from catalog.models import Product, Shop, Sku
from liveshop.models import User
from liveshop.services import user_token
from orders.services.wallet import wallet_coins, wallet_grant
from rooms.models import Host, Room, RoomItem

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


class Command(BaseCommand):
    help = "Load the demo data (idempotent) and print the demo logins and tokens."

    def handle(self, *args: Any, **options: Any) -> None:
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
            self._host(cadre, Host.Kind.CADRE, "Jiangbei", "Deputy head of the Jiangbei commerce bureau.")
            self._step("hosts: farmer (Wulong), cadre (Jiangbei), both verified")

            shop, _ = Shop.objects.get_or_create(
                owner=farmer, name="Xiannv Mountain Farm", defaults={"district": "Wulong"}
            )
            skus = [sku for spec in WULONG_PRODUCTS for sku in self._product(shop, spec)]
            self._step(f"shop '{shop.name}' with {len(WULONG_PRODUCTS)} products and {len(skus)} skus")

            room = self._live_room(farmer_host, skus)
            self._step(f"room {room.pk} '{room.title}' is live with {room.items.count()} items")

            wallet_grant(user=viewer, coins=DEMO_VIEWER_COINS, key="seed_demo:viewer", reason="demo coins")
            self._step(f"viewer's wallet: {wallet_coins(user_id=viewer.pk)} coins (a staff grant, once)")

        self.stdout.write(self.style.SUCCESS(f"\nDemo data ready. Logins (password for all: {DEMO_PASSWORD}):"))
        for user, role in (
            (admin, "staff, /admin/"),
            (farmer, "verified farmer host"),
            (cadre, "verified cadre host"),
            (viewer, "viewer"),
        ):
            self.stdout.write(f"  {user.username:<8} {role:<22} Authorization: Token {user_token(user=user)}")
        self.stdout.write(f"  live room: /api/v1/rooms/{room.pk}/   API docs: /api/docs/")

    def _step(self, text: str) -> None:
        self.stdout.write(f"  - {text}")

    def _user(self, username: str, display_name: str, district: str, **flags: bool) -> User:
        user, created = User.objects.get_or_create(
            username=username, defaults={"display_name": display_name, "district": district, **flags}
        )
        if created:
            user.set_password(DEMO_PASSWORD)
            user.save(update_fields=["password"])
        return user

    def _host(self, user: User, kind: str, district: str, bio: str) -> Host:
        host, _ = Host.objects.get_or_create(user=user, defaults={"kind": kind, "district": district, "bio": bio})
        if not host.verified:
            Host.objects.filter(pk=host.pk).update(verified=True, verified_at=timezone.now())
            host.refresh_from_db()
        return host

    def _product(self, shop: Shop, spec: DemoProduct) -> list[Sku]:
        product, _ = Product.objects.get_or_create(
            shop=shop,
            title=spec.title,
            defaults={"category": spec.category, "description": spec.description, "origin_district": "Wulong"},
        )
        return [
            Sku.objects.get_or_create(product=product, name=name, defaults={"price": price, "stock": stock})[0]
            for name, price, stock in spec.skus
        ]

    def _live_room(self, host: Host, skus: list[Sku]) -> Room:
        """The live demo show; a new one if an earlier demo show has ended."""
        title = "Spring tea and Yangjiao specialties, live from Xiannv Mountain"
        room = Room.objects.filter(host=host, title=title, status=Room.Status.LIVE).first()
        if room is not None:
            return room
        room = Room.objects.create(
            host=host,
            title=title,
            description="Farmer Chen picks tea at dawn and shows the tofu workshop; order during the show.",
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
