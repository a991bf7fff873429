"""Schemathesis against the project's own OpenAPI schema (issue 8, "Bad input").

Every operation of the schema served at /api/schema/ is fuzzed in-process through
Django's WSGI handler, once per persona (a viewer, the host who owns the shop and the
live room, staff), against the PostgreSQL test database holding a small live show (see
`show`). Each response must not be a server error, must have a status code, content type
and body the schema declares, and must answer 401 where the schema requires credentials.

One test per operation and persona; Hypothesis' examples of one test share its database
transaction (rolled back at the end), so a DELETE in one example can make a later GET of
the same object a 404, as it would for a real client.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import pytest
import schemathesis
from django.core import signals
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from django.utils import timezone
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from rest_framework.authtoken.models import Token
from schemathesis.config import SchemathesisConfig

from catalog.models import Shop, Sku
from liveshop.models import User
from orders.models import Order
from orders.services.wallet import wallet_grant
from rooms.models import BannedWord, Comment, Giveaway, Host, Report, Room, RoomItem
from rooms.services import giveaways as giveaway_services
from rooms.services import live as live_services
from rooms.services import moderation as moderation_services
from tests import factories
from tests.orders.conftest import SHIPPING, WEBHOOK_SECRET, localstripe_url  # noqa: F401 (a fixture)

# Examples per operation in the fuzzing phase; the coverage phase adds its own boundary
# cases (a few to a few dozen per operation) on top. SCHEMATHESIS_MAX_EXAMPLES raises it
# for a longer run by hand.
MAX_EXAMPLES = int(os.environ.get("SCHEMATHESIS_MAX_EXAMPLES", "8"))

CONFIG = SchemathesisConfig.from_dict(
    {
        # Deterministic in CI: the same cases every run, so a failure is reproducible.
        "seed": int(os.environ.get("SCHEMATHESIS_SEED", "8")),
        "generation": {"max-examples": MAX_EXAMPLES, "database": "none"},
        # The stateful phase (chains of calls along OpenAPI links) needs links the schema
        # does not declare; the show's objects give the path ids instead (see the hook).
        "phases": {"stateful": {"enabled": False}},
        "checks": {
            # Both compare what the server accepts with what the schema describes. A schema
            # cannot say everything the server checks (that a shop id exists, a password is
            # strong enough, a Stripe signature is right, an Idempotency-Key was not used for
            # another body): those legitimately answer 400/422 to "schema-valid" requests.
            # And DRF accepts a number where a string is declared (`"bio": 0` is "0") and
            # ignores a bad `page_size`, on purpose. docs/reliability/schemathesis.md lists
            # what they found (the Idempotency-Key header's form is now in the schema).
            "positive_data_acceptance": {"enabled": False},
            "negative_data_rejection": {"enabled": False},
        },
    }
)

schema = schemathesis.openapi.from_wsgi("/api/schema/", get_wsgi_application(), config=CONFIG)


@dataclass
class Show:
    """The objects of the show, by the path parameter that names them."""

    users: dict[str, User]
    ids: dict[str, list[int]] = field(default_factory=dict)


# The show of the running test: the path-parameter hook below reads it while Hypothesis
# draws cases, which happens inside the test, after the fixtures.
_current: Show | None = None


# The path parameters' ids, by the first segment of the operation's path after /api/v1/
# (and the parameter's name).
def _id_kind(path: str, parameter: str) -> str | None:
    segments = path.removeprefix("/api/v1/").split("/")
    if parameter == "id":
        # moderation/reports/{id}, moderation/banned-words/{id}, wallet/top-ups/{id}
        return "/".join(segments[:2]) if segments[0] in {"moderation", "wallet"} else segments[0]
    if parameter == "item_id":
        return "items"
    if parameter == "user_id":
        return f"{segments[0]}/{segments[2]}"  # rooms/bans, rooms/mutes, rooms/moderators
    return None


@schema.hook
def flatmap_path_parameters(context: Any, path_parameters: dict[str, Any]) -> st.SearchStrategy[dict[str, Any]]:
    """Half the fuzzed cases name the show's real objects instead of random ids."""
    show = _current
    if show is None or not path_parameters:
        return st.just(path_parameters)
    real: dict[str, list[int]] = {}
    for name in path_parameters:
        kind = _id_kind(context.operation.path, name)
        if kind and show.ids.get(kind):
            real[name] = show.ids[kind]
    if not real:
        return st.just(path_parameters)
    with_real = st.fixed_dictionaries({name: st.sampled_from(ids) for name, ids in real.items()}).map(
        lambda chosen: {**path_parameters, **chosen}
    )
    return st.one_of(st.just(path_parameters), with_real)


@pytest.fixture
def _stripe(settings: Any, localstripe_url: str) -> None:  # noqa: F811
    settings.STRIPE_SECRET_KEY = "sk_test_liveshop"
    settings.STRIPE_API_BASE = localstripe_url
    settings.STRIPE_WEBHOOK_SECRET = WEBHOOK_SECRET


@pytest.fixture
def show(
    _stripe: None,
    client_for: Callable[[User | None], Any],
    viewer: User,
    host: User,
    host_profile: Host,
    other_host: User,
    staff: User,
    shop: Shop,
    sku: Sku,
    live_room: Room,
) -> Iterator[Show]:
    """A live show: the host's shop and shelf, the viewer's order, comment, report, coins,
    a giveaway open and one drawn with the viewer as its winner, a top-up, moderation."""
    global _current
    now = timezone.now()
    rice = factories.SkuFactory.create(
        product=factories.ProductFactory.create(shop=shop, title="Youyang rice", category="rice"),
        name="5 kg",
        price=9900,
        stock=40,
    )
    tofu = factories.SkuFactory.create(
        product=factories.ProductFactory.create(shop=shop, title="Dried tofu", category="tofu"),
        name="1 kg",
        price=2500,
        stock=30,
    )
    tea_item = factories.RoomItemFactory.create(room=live_room, sku=sku, live_price=5800)
    rice_item = factories.RoomItemFactory.create(room=live_room, sku=rice)
    live_room.featured_item = tea_item
    live_room.save(update_fields=["featured_item"])
    scheduled = factories.RoomFactory.create(host=host_profile, title="Rice harvest", scheduled_start=now)
    host_client = client_for(host)
    viewer_client = client_for(viewer)

    flash = host_client.post(
        f"/api/v1/rooms/{live_room.pk}/items/{rice_item.pk}/flash-sale/",
        {"price": 5000, "quantity": 10, "duration_s": 600, "per_buyer_limit": 2},
        format="json",
    )
    assert flash.status_code == 201, flash.content

    placed = viewer_client.post(
        "/api/v1/orders/",
        {"room": live_room.pk, "items": [{"item": tea_item.pk, "quantity": 1}], "shipping": SHIPPING},
        format="json",
        HTTP_IDEMPOTENCY_KEY="schema-order-1",
    )
    assert placed.status_code == 201, placed.content
    paid = viewer_client.post(
        "/api/v1/orders/",
        {"items": [{"sku": tofu.pk, "quantity": 2}], "shipping": SHIPPING},
        format="json",
        HTTP_IDEMPOTENCY_KEY="schema-order-2",
    )
    assert paid.status_code == 201, paid.content
    # Paid as the webhook would have settled it: ship and refund then reach their real paths.
    Order.objects.filter(pk=paid.json()["id"]).update(status=Order.Status.PAID, paid_at=now)

    top_up = viewer_client.post(
        "/api/v1/wallet/top-ups/", {"coins": 100}, format="json", HTTP_IDEMPOTENCY_KEY="schema-top-up-1"
    )
    assert top_up.status_code == 201, top_up.content
    wallet_grant(user=viewer, coins=500, key="schema-grant", reason="schemathesis")

    comment = live_services.comment_create(room=live_room, user=viewer, text="Is the tea this year's?", role="viewer")
    host_comment = live_services.comment_create(room=live_room, user=host, text="Picked in April.", role="host")
    report, _ = moderation_services.comment_report(reporter=other_host, comment=comment, reason="spam")
    banned_word = moderation_services.banned_word_add(actor=staff, word="fake")
    moderation_services.room_mute(actor=host, room=live_room, user=other_host, duration_s=600, reason="shouting")
    moderation_services.room_ban(actor=host, room=live_room, user=factories.UserFactory.create(username="troll"))
    moderation_services.room_moderator_add(actor=host, room=live_room, user=staff)

    open_giveaway = giveaway_services.giveaway_create(
        room=live_room, title="A tin of tea", winners=1, duration_s=600, prize_sku=sku, keyword="tea"
    )
    drawn = giveaway_services.giveaway_create(
        room=live_room, title="A bag of rice", winners=1, duration_s=60, prize_sku=rice
    )
    giveaway_services.giveaway_enter(giveaway=drawn, user=viewer)
    Giveaway.objects.filter(pk=drawn.pk).update(closes_at=now - timedelta(seconds=1))
    assert giveaway_services.giveaway_draw(giveaway_id=drawn.pk)

    users = {"viewer": viewer, "host": host, "staff": staff}
    _current = Show(
        users=users,
        ids={
            "rooms": [live_room.pk, scheduled.pk],
            "items": list(RoomItem.objects.filter(room=live_room).values_list("pk", flat=True)),
            "rooms/bans": [u.pk for u in User.objects.filter(room_bans__room=live_room)],
            "rooms/mutes": [other_host.pk],
            "rooms/moderators": [staff.pk],
            "hosts": [host_profile.pk, other_host.host.pk],
            "shops": [shop.pk],
            "products": [sku.product_id, rice.product_id, tofu.product_id],
            "skus": [sku.pk, rice.pk, tofu.pk],
            "orders": list(Order.objects.values_list("pk", flat=True)),
            "comments": [comment.pk, host_comment.pk],
            "moderation/reports": [report.pk],
            "moderation/banned-words": [banned_word.pk],
            "giveaways": [open_giveaway.pk, drawn.pk],
            "wallet/top-ups": [top_up.json()["id"]],
        },
    )
    assert Report.objects.exists()
    assert BannedWord.objects.exists()
    assert Comment.objects.count() == 2
    yield _current
    _current = None


PERSONAS = ["viewer", "host", "staff"]


@pytest.fixture
def app_in_test_transaction(show: Show) -> Iterator[None]:
    """Requests run in the test's thread, inside its transaction: as Django's test client
    does around each request, keep the request signals from closing the connection (which
    would end the transaction). After `show`, whose test-client calls reconnect them."""
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    yield
    signals.request_started.connect(close_old_connections)
    signals.request_finished.connect(close_old_connections)


@pytest.mark.parametrize("persona", PERSONAS)
@schema.parametrize()
@settings(suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
def test_api(case: Any, persona: str, show: Show, app_in_test_transaction: None) -> None:
    # A DELETE /auth/token/ example revokes the token: sign in again, as a client would.
    token, _ = Token.objects.get_or_create(user=show.users[persona])
    case.call_and_validate(headers={"Authorization": f"Token {token.key}"})


def test_schema_is_valid_json() -> None:
    """The schema the fuzzing reads is the one served (and it is JSON-serializable)."""
    assert json.loads(json.dumps(schema.raw_schema))["openapi"].startswith("3.")
