"""Who may write what: every endpoint that writes, tried by every persona (audit, "Done when").

The world: a farmer `host` with a shop, a live room and a scheduled one; a `moderator`
of the live room; a `buyer` with a paid and an unpaid order there; a `viewer` who
commented; `rival`, a verified host who owns another shop; `other_host`, a verified host
with no shop; `staff`; and `anonymous`. Each case names the personas allowed and what
they get; every other signed-in persona gets `denied` (403, or 404 where the thing is not
theirs to see), and anonymous gets 401. A refusal must change nothing, so each refused
case also checks the row it aimed at is as it was.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from types import SimpleNamespace
from typing import Any

import pytest
from django.utils import timezone

from catalog.models import Offer, Product, Shop, Sku
from liveshop.models import User
from orders.models import Order, Payment, RefundClaim
from orders.services.orders import LineRequest, order_create
from payouts.models import CoinCashOut, Payout, PayoutAccount
from rooms.models import (
    Ban,
    BannedWord,
    Comment,
    FlashSale,
    Giveaway,
    Host,
    Mute,
    Report,
    Room,
    RoomItem,
    RoomModerator,
)
from rooms.services import giveaway_create
from tests import factories
from tests.coins import gift, grant
from tests.orders.conftest import SHIPPING, order_body

pytestmark = pytest.mark.django_db

PERSONAS = ("anonymous", "viewer", "buyer", "rival", "host", "other_host", "moderator", "staff")


@dataclass(frozen=True)
class Case:
    method: str
    path: str  # formatted with the world's attributes
    allowed: dict[str, int]
    body: dict[str, Any] | Callable[[SimpleNamespace], dict[str, Any]] = field(default_factory=dict)
    denied: int = 403
    hidden: frozenset[str] = frozenset()  # personas answered 404: not theirs to see
    # A fingerprint of what the case writes; a refused request must leave it unchanged.
    state: Callable[[SimpleNamespace], Any] = lambda world: None


def _state_room(world: SimpleNamespace) -> Any:
    return Room.objects.filter(pk=world.room.pk).values_list("status", "title", "slow_mode_s").get()


def _state_order(world: SimpleNamespace) -> Any:
    return Order.objects.filter(pk=world.order.pk).values_list("status", "refunded_amount").get()


def _state_paid(world: SimpleNamespace) -> Any:
    return (
        Order.objects.filter(pk=world.paid.pk).values_list("status", "tracking", "refunded_amount").get(),
        world.paid.refunds.count(),
    )


ROOM_MODERATORS = ("host", "moderator", "staff")


def _every_user(code: int, **overrides: int) -> dict[str, int]:
    """Every signed-in persona gets `code`, but for the named exceptions."""
    return {**{p: code for p in PERSONAS if p != "anonymous"}, **overrides}


CASES: dict[str, Case] = {
    # --- accounts and hosts
    "auth.logout": Case("POST", "/api/v1/auth/logout/", _every_user(204)),
    "auth.logout_all": Case("POST", "/api/v1/auth/logout-all/", _every_user(204)),
    "auth.token_revoke": Case("DELETE", "/api/v1/auth/token/", _every_user(204)),
    "me.update": Case("PATCH", "/api/v1/me/", _every_user(200), {"display_name": "New name"}),
    "host.create": Case(
        "POST",
        "/api/v1/hosts/",
        {"viewer": 201, "buyer": 201, "moderator": 201, "staff": 201, "host": 409, "rival": 409, "other_host": 409},
        {"kind": "farmer", "district": "Wulong"},
        state=lambda w: Host.objects.count(),
    ),
    "host.verify": Case(
        "POST",
        "/api/v1/hosts/{newcomer_host.pk}/verify/",
        {"staff": 200},
        state=lambda w: Host.objects.get(pk=w.newcomer_host.pk).verified,
    ),
    "host.follow": Case("POST", "/api/v1/hosts/{host_profile.pk}/follow/", _every_user(204, host=400)),
    "host.unfollow": Case("DELETE", "/api/v1/hosts/{host_profile.pk}/follow/", _every_user(204)),
    # --- catalog
    "shop.create": Case(
        "POST",
        "/api/v1/shops/",
        {"host": 201, "rival": 201, "other_host": 201, "staff": 201},
        {"name": "New shop", "district": "Wulong"},
        state=lambda w: Shop.objects.count(),
    ),
    "product.create": Case(
        "POST",
        "/api/v1/products/",
        {"host": 201, "staff": 201},
        lambda w: {"shop": w.shop.pk, "title": "Vinegar", "skus": [{"name": "1 l", "price": 1200, "stock": 5}]},
        state=lambda w: Product.objects.count(),
    ),
    "product.update": Case(
        "PATCH",
        "/api/v1/products/{sku.product_id}/",
        {"host": 200, "staff": 200},
        {"title": "Renamed"},
        state=lambda w: Product.objects.get(pk=w.sku.product_id).title,
    ),
    "sku.update": Case(
        "PATCH",
        "/api/v1/skus/{sku.pk}/",
        {"host": 200, "staff": 200},
        {"price": 1},
        state=lambda w: Sku.objects.filter(pk=w.sku.pk).values_list("price", "stock").get(),
    ),
    "offer.create": Case(
        "POST",
        "/api/v1/offers/",
        {"host": 201},
        lambda w: {"sku": w.tofu.pk, "commission_bps": 5000},
        state=lambda w: Offer.objects.count(),
    ),
    "offer.withdraw": Case(
        "POST",
        "/api/v1/offers/{offer.pk}/withdraw/",
        {"host": 200, "staff": 200},
        state=lambda w: Offer.objects.get(pk=w.offer.pk).status,
    ),
    # --- rooms and the shelf
    "room.create": Case(
        "POST",
        "/api/v1/rooms/",
        {"host": 201, "rival": 201, "other_host": 201},
        {"title": "A show"},
        state=lambda w: Room.objects.count(),
    ),
    "room.update": Case("PATCH", "/api/v1/rooms/{room.pk}/", {"host": 200}, {"title": "Hijacked"}, state=_state_room),
    "room.start": Case(
        "POST",
        "/api/v1/rooms/{scheduled.pk}/start/",
        {"host": 200},
        state=lambda w: Room.objects.get(pk=w.scheduled.pk).status,
    ),
    "room.end": Case("POST", "/api/v1/rooms/{room.pk}/end/", {"host": 200, "staff": 200}, state=_state_room),
    "room.suspend": Case(
        "POST", "/api/v1/rooms/{room.pk}/suspend/", {"staff": 200}, {"reason": "test"}, state=_state_room
    ),
    "room.ws_ticket": Case("POST", "/api/v1/rooms/{room.pk}/ws-ticket/", _every_user(201)),
    "item.add": Case(
        "POST",
        "/api/v1/rooms/{room.pk}/items/",
        {"host": 201},
        lambda w: {"sku": w.tofu.pk, "live_price": 1},
        state=lambda w: RoomItem.objects.count(),
    ),
    "item.remove": Case(
        "DELETE",
        "/api/v1/rooms/{room.pk}/items/{item.pk}/",
        {"host": 204},
        state=lambda w: RoomItem.objects.count(),
    ),
    "item.feature": Case(
        "POST",
        "/api/v1/rooms/{room.pk}/items/{item.pk}/feature/",
        {"host": 200},
        state=lambda w: Room.objects.get(pk=w.room.pk).featured_item_id,
    ),
    "item.flash_sale": Case(
        "POST",
        "/api/v1/rooms/{room.pk}/items/{item.pk}/flash-sale/",
        {"host": 201},
        {"price": 1, "quantity": 5, "duration_s": 60},
        state=lambda w: FlashSale.objects.count(),
    ),
    "room.stream_key": Case(
        "POST",
        "/api/v1/rooms/{room.pk}/stream-key/",
        {"host": 200},
        state=lambda w: Room.objects.get(pk=w.room.pk).stream_key,
    ),
    # --- moderation
    "moderator.add": Case(
        "POST",
        "/api/v1/rooms/{room.pk}/moderators/",
        {"host": 201},
        lambda w: {"user": w.victim.pk},
        state=lambda w: RoomModerator.objects.count(),
    ),
    "moderator.remove": Case(
        "DELETE",
        "/api/v1/rooms/{room.pk}/moderators/{moderator.pk}/",
        {"host": 204},
        state=lambda w: RoomModerator.objects.count(),
    ),
    "mute.add": Case(
        "POST",
        "/api/v1/rooms/{room.pk}/mutes/",
        dict.fromkeys(ROOM_MODERATORS, 201),
        lambda w: {"user": w.victim.pk, "duration_s": 60},
        state=lambda w: Mute.objects.count(),
    ),
    "mute.remove": Case(
        "DELETE",
        "/api/v1/rooms/{room.pk}/mutes/{muted.pk}/",
        dict.fromkeys(ROOM_MODERATORS, 204),
        state=lambda w: Mute.objects.count(),
    ),
    "ban.add": Case(
        "POST",
        "/api/v1/rooms/{room.pk}/bans/",
        dict.fromkeys(ROOM_MODERATORS, 201),
        lambda w: {"user": w.victim.pk},
        state=lambda w: Ban.objects.count(),
    ),
    "ban.remove": Case(
        "DELETE",
        "/api/v1/rooms/{room.pk}/bans/{banned.pk}/",
        dict.fromkeys(ROOM_MODERATORS, 204),
        state=lambda w: Ban.objects.count(),
    ),
    "comment.delete": Case(
        "DELETE",
        "/api/v1/comments/{comment.pk}/",
        {"viewer": 204, **dict.fromkeys(ROOM_MODERATORS, 204)},
        state=lambda w: Comment.objects.filter(pk=w.comment.pk).values_list("deleted_at", flat=True).get(),
    ),
    "comment.report": Case(
        "POST",
        "/api/v1/comments/{comment.pk}/reports/",
        _every_user(201, viewer=400, buyer=200),  # the buyer reported it already
        {"reason": "spam"},
    ),
    "report.resolve": Case(
        "POST",
        "/api/v1/moderation/reports/{report.pk}/resolve/",
        {"staff": 200},
        {"action": "dismiss"},
        state=lambda w: Report.objects.get(pk=w.report.pk).status,
    ),
    "banned_word.add": Case(
        "POST",
        "/api/v1/moderation/banned-words/",
        {"staff": 201},
        {"word": "scam"},
        state=lambda w: BannedWord.objects.count(),
    ),
    "banned_word.remove": Case(
        "DELETE",
        "/api/v1/moderation/banned-words/{banned_word.pk}/",
        {"staff": 204},
        state=lambda w: BannedWord.objects.count(),
    ),
    # --- gifts and giveaways
    "gift.send": Case(
        "POST",
        "/api/v1/rooms/{room.pk}/gifts/",
        _every_user(201, host=403),  # no gifts to oneself
        lambda w: {"gift": w.gift.pk},
    ),
    "giveaway.create": Case(
        "POST",
        "/api/v1/rooms/{room.pk}/giveaways/",
        {"host": 201},
        {"title": "Tea for two", "winners": 1, "duration_s": 60},
        state=lambda w: Giveaway.objects.count(),
    ),
    "giveaway.enter": Case("POST", "/api/v1/giveaways/{giveaway.pk}/entries/", _every_user(201, host=403)),
    "giveaway.cancel": Case(
        "POST",
        "/api/v1/giveaways/{giveaway.pk}/cancel/",
        {"host": 200, "staff": 200},
        state=lambda w: Giveaway.objects.get(pk=w.giveaway.pk).status,
    ),
    # --- orders
    "order.create": Case(
        "POST",
        "/api/v1/orders/",
        _every_user(201),
        lambda w: order_body({"item": w.item.pk, "quantity": 1}),
    ),
    "order.cancel": Case(
        "POST",
        "/api/v1/orders/{order.pk}/cancel/",
        {"buyer": 200},
        hidden=frozenset({"viewer", "rival", "other_host", "moderator"}),
        state=_state_order,
    ),
    "order.ship": Case(
        "POST",
        "/api/v1/orders/{paid.pk}/ship/",
        {"host": 200, "staff": 200},
        {"tracking": "SF123"},
        hidden=frozenset({"viewer", "rival", "other_host", "moderator"}),
        state=_state_paid,
    ),
    "order.refund": Case(
        "POST",
        "/api/v1/orders/{paid.pk}/refund/",
        {"host": 200, "staff": 200},
        {"reason": "broken"},
        hidden=frozenset({"viewer", "rival", "other_host", "moderator"}),
        state=_state_paid,
    ),
    "order.refund_claim": Case(
        "POST",
        "/api/v1/orders/{paid.pk}/refund-claim/",
        {"buyer": 201},
        {"reason": "The tin arrived dented."},
        hidden=frozenset({"viewer", "rival", "other_host", "moderator"}),
        state=lambda w: list(RefundClaim.objects.values_list("order_id", "reason")),
    ),
    "order.deliver": Case(
        "POST",
        "/api/v1/orders/{shipped.pk}/deliver/",
        {"buyer": 200, "staff": 200},
        hidden=frozenset({"viewer", "rival", "other_host", "moderator"}),
        state=lambda w: Order.objects.filter(pk=w.shipped.pk).values_list("status", "delivered_at").get(),
    ),
    "top_up.create": Case("POST", "/api/v1/wallet/top-ups/", _every_user(201), {"coins": 100}),
    # --- money out
    "shop.payout_account": Case(
        "POST",
        "/api/v1/shops/{shop.pk}/payout-account/",
        {"host": 200, "staff": 200},
        {"bank_name": "Chongqing Rural Bank", "bank_account_number": "6228 0000 1111"},
        state=lambda w: list(PayoutAccount.objects.values_list("shop_id", "bank_name", "bank_account_number")),
    ),
    "host.payout_account": Case(
        "POST",
        "/api/v1/hosts/{host_profile.pk}/payout-account/",
        {"host": 200, "staff": 200},
        {"bank_account_number": "6228 0000 2222"},
        state=lambda w: list(PayoutAccount.objects.values_list("user_id", "bank_account_number")),
    ),
    "payout.approve": Case(
        "POST",
        "/api/v1/payouts/{payout.pk}/approve/",
        {"staff": 200},
        state=lambda w: Payout.objects.filter(pk=w.payout.pk).values_list("status", "approved_by").get(),
    ),
    # Hosts only; a host that earned no coins is told so (402), the others may not (403).
    "cash_out.create": Case(
        "POST",
        "/api/v1/wallet/cash-outs/",
        {"host": 402, "rival": 402, "other_host": 402},
        {"coins": 100},
        state=lambda w: CoinCashOut.objects.count(),
    ),
}


@pytest.fixture
def world(host, host_profile, shop, sku, live_room, viewer, other_host, staff) -> SimpleNamespace:
    tofu_product = factories.ProductFactory.create(shop=shop, title="Yangjiao Dried Tofu")
    tofu = factories.SkuFactory.create(product=tofu_product, price=1500, stock=40)
    rival = factories.UserFactory.create(username="rival", display_name="Rival Shop")
    factories.HostFactory.create(user=rival, district="Fengjie")
    factories.SkuFactory.create(product__shop__owner=rival)
    moderator = factories.UserFactory.create(username="moderator")
    RoomModerator.objects.create(room=live_room, user=moderator)
    buyer = factories.UserFactory.create(username="buyer")
    victim, muted, banned = (factories.UserFactory.create() for _ in range(3))
    Mute.objects.create(room=live_room, user=muted, until=timezone.now() + timedelta(hours=1), created_by=host)
    Ban.objects.create(room=live_room, user=banned, created_by=host)
    item = factories.RoomItemFactory.create(room=live_room, sku=sku, live_price=5800)
    order = order_create(buyer=buyer, lines=[LineRequest(item=item, quantity=1)], room=live_room, shipping=SHIPPING)
    paid = order_create(buyer=buyer, lines=[LineRequest(item=item, quantity=2)], room=live_room, shipping=SHIPPING)
    Order.objects.filter(pk=paid.pk).update(status=Order.Status.PAID, paid_at=timezone.now())
    Payment.objects.create(
        order=paid, payment_intent_id="pi_matrix", client_secret="pi_matrix_secret", amount=paid.total
    )
    shipped = order_create(buyer=buyer, lines=[LineRequest(item=item, quantity=1)], room=live_room, shipping=SHIPPING)
    Order.objects.filter(pk=shipped.pk).update(
        status=Order.Status.SHIPPED, paid_at=timezone.now(), shipped_at=timezone.now()
    )
    comment = Comment.objects.create(room=live_room, user=viewer, text="Is the tea from this year?")
    users = {"viewer": viewer, "buyer": buyer, "rival": rival, "host": host, "other_host": other_host}
    users |= {"moderator": moderator, "staff": staff}
    for user in users.values():
        grant(user, 1000)
    return SimpleNamespace(
        users=users,
        host_profile=host_profile,
        newcomer_host=factories.HostFactory.create(verified=False),
        shop=shop,
        sku=sku,
        tofu=tofu,
        offer=factories.OfferFactory.create(sku=sku),
        room=live_room,
        scheduled=factories.RoomFactory.create(host=host_profile),
        item=item,
        moderator=moderator,
        victim=victim,
        muted=muted,
        banned=banned,
        order=order,
        paid=Order.objects.get(pk=paid.pk),
        shipped=shipped,
        payout=Payout.objects.create(
            shop=shop,
            amount=5000,
            built_amount=5000,
            currency="cny",
            period_start=timezone.localdate(),
            period_end=timezone.localdate(),
        ),
        comment=comment,
        report=Report.objects.create(comment=comment, room=live_room, reporter=buyer, reason="rude"),
        banned_word=BannedWord.objects.create(word="fake"),
        gift=gift(),
        giveaway=giveaway_create(room=live_room, title="A tin of tea", winners=1, duration_s=600),
    )


@pytest.mark.parametrize("persona", PERSONAS)
@pytest.mark.parametrize("name", list(CASES))
def test_authorization_matrix(client_for, world, name, persona):
    case = CASES[name]
    user: User | None = world.users.get(persona)
    expected = 401 if user is None else case.allowed.get(persona) or (404 if persona in case.hidden else case.denied)
    body = case.body(world) if callable(case.body) else case.body
    before = case.state(world)

    response = client_for(user).generic(
        case.method,
        case.path.format(**vars(world)),
        data=json.dumps(body),
        content_type="application/json",
    )

    assert response.status_code == expected, (name, persona, response.content[:300])
    if expected >= 400:
        assert set(response.json()) >= {"code", "detail"}
        assert case.state(world) == before, f"{name}: a refused {persona} changed something"
