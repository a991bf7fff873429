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
import zlib
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from django.core import signals
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from django.utils import timezone
from hypothesis import HealthCheck, settings
from schemathesis.config import SchemathesisConfig
from schemathesis.core.parameters import ParameterLocation
from schemathesis.generation.modes import GenerationMode

from catalog.models import Shop, Sku
from envelopes import services as envelope_services
from liveshop.models import User
from orders.models import Order
from orders.services.wallet import wallet_grant
from rooms.models import Gift, Giveaway, Host, Room, RoomItem
from rooms.services import giveaways as giveaway_services
from rooms.services import live as live_services
from rooms.services import moderation as moderation_services
from tests import factories
from tests.factories import api_token
from tests.orders.conftest import SHIPPING, WEBHOOK_SECRET, localstripe_url  # noqa: F401 (a fixture)

# Examples per operation and persona in the fuzzing phase; the coverage phase adds its own
# deterministic boundary and negative cases on top (from 3 to about 130 per operation,
# ~37 on average). SCHEMATHESIS_MAX_EXAMPLES raises it for a longer run by hand.
MAX_EXAMPLES = int(os.environ.get("SCHEMATHESIS_MAX_EXAMPLES", "8"))

CONFIG = SchemathesisConfig.from_dict(
    {
        # Deterministic in CI: the same cases every run, so a failure is reproducible.
        "seed": int(os.environ.get("SCHEMATHESIS_SEED", "8")),
        "generation": {"max-examples": MAX_EXAMPLES, "database": "none"},
        # The stateful phase (chains of calls along OpenAPI links) needs links the schema
        # does not declare; the show's objects give the path ids instead (`aim_at_show`).
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
    """The personas, and the ids of the show's objects by kind (`_id_kind`, `_BODY_IDS`)."""

    users: dict[str, User]
    ids: dict[str, list[int]]


# The path parameters' ids, by the first segment of the operation's path after /api/v1/
# (and the parameter's name).
def _id_kind(path: str, parameter: str) -> str | None:
    segments = path.removeprefix("/api/v1/").split("/")
    if parameter == "id" and "{item_id}" in path:
        return "rooms/items"  # the room whose shelf holds the items
    if parameter == "id":
        # moderation/reports/{id}, moderation/banned-words/{id}, wallet/top-ups/{id}
        return "/".join(segments[:2]) if segments[0] in {"moderation", "wallet"} else segments[0]
    if parameter == "item_id":
        return "items"
    if parameter == "user_id":
        return f"{segments[0]}/{segments[2]}"  # rooms/bans, rooms/mutes, rooms/moderators
    return None


# Ids in request bodies, by field name (at any depth): the kind of show object they name.
_BODY_IDS = {
    "room": "rooms/items",
    "item": "items",
    "sku": "skus",
    "prize_sku": "skus",
    "gift": "gifts",
    "shop": "shops",
    "user": "users",
    "owner": "users",
}


def aim_at_show(case: Any, show: Show) -> None:
    """Point the case's ids at the show's objects, unless the case probes them.

    Generated ids almost never exist, so every case would stop at a 404 (path) or a 400
    (body) before the rest of it reached the code. Cases whose subject is a path
    parameter (a negative id, a word where an id goes, an id at a boundary) keep their
    path and test the 404s, and bodies generated to break the schema keep theirs; all
    others name real objects, picked from the show by the generated request so that
    several objects are reached.
    """
    pick = zlib.crc32(repr((case.path_parameters, case.query, case.body)).encode())
    meta = case.meta
    if meta is None or meta.phase.data.parameter_location != ParameterLocation.PATH:
        for name in list(case.path_parameters or {}):
            ids = show.ids.get(_id_kind(case.operation.path, name) or "", [])
            if ids:
                case.path_parameters[name] = ids[pick % len(ids)]
    body_mode = meta.components.get(ParameterLocation.BODY) if meta is not None else None
    if body_mode is None or body_mode.mode == GenerationMode.POSITIVE:
        _aim_body(case.body, show, pick)


def _aim_body(value: Any, show: Show, pick: int) -> None:
    if isinstance(value, list):
        for element in value:
            _aim_body(element, show, pick)
    elif isinstance(value, dict):
        for key, element in value.items():
            ids = show.ids.get(_BODY_IDS.get(key, ""), [])
            if ids and isinstance(element, int) and not isinstance(element, bool):
                value[key] = ids[(pick + element) % len(ids)]
            else:
                _aim_body(element, show, pick)


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
) -> Show:
    """A live show: the host's shop and shelf, the viewer's order, comment, report, coins,
    a giveaway open and one drawn with the viewer as its winner, a top-up, moderation."""
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
    troll = factories.UserFactory.create(username="troll")
    moderation_services.room_ban(actor=host, room=live_room, user=troll)
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

    wallet_grant(user=host, coins=1000, key="schema-show", reason="red envelopes")
    envelope = envelope_services.red_envelope_drop(room=live_room, sender=host, coins=500, shares=5)

    users = {"viewer": viewer, "host": host, "staff": staff}
    return Show(
        users=users,
        ids={
            "rooms": [live_room.pk, scheduled.pk],
            "rooms/items": [live_room.pk],
            "users": [viewer.pk, other_host.pk, staff.pk, troll.pk],
            "gifts": list(Gift.objects.values_list("pk", flat=True)),
            "items": list(RoomItem.objects.filter(room=live_room).values_list("pk", flat=True)),
            "rooms/bans": [troll.pk],
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
            "red-envelopes": [envelope.pk],
            "wallet/top-ups": [top_up.json()["id"]],
            # The farmer's offer on the rice, open to every verified host.
            "offers": [factories.OfferFactory.create(sku=rice).pk],
        },
    )


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


# What each operation answered, by persona, over this session: for the check below and
# for the record (tests/artifacts/schemathesis-statuses.json; docs/reliability/schemathesis.md).
_answered: dict[str, dict[str, Counter[int]]] = defaultdict(lambda: defaultdict(Counter))


@pytest.mark.parametrize("persona", PERSONAS)
@schema.parametrize()
@settings(suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
def test_api(case: Any, persona: str, show: Show, app_in_test_transaction: None) -> None:
    # A DELETE /auth/token/ or a logout example revokes the token: sign in again, as a client would.
    token = api_token(show.users[persona])
    aim_at_show(case, show)
    response = case.call_and_validate(headers={"Authorization": f"Token {token}"})
    if case.method.upper() == case.operation.method.upper():  # not a probe with another method
        _answered[case.operation.label][persona][response.status_code] += 1


def test_fuzzing_reached_the_show() -> None:
    """Runs after test_api: every operation with an id in its path also reached a real
    object of the show (some answer was not a 404), so the hook that puts the show's ids
    into the paths works, and the operations' real code paths ran, not only 404s."""
    operations = [
        (f"{method.upper()} {path}", "{" in path)
        for path, methods in schema.raw_schema["paths"].items()
        for method in methods
        if method in {"get", "post", "put", "patch", "delete"}
    ]
    if any(label not in _answered or len(_answered[label]) < len(PERSONAS) for label, _ in operations):
        pytest.skip("only part of test_api ran in this session")
    artifacts = Path(__file__).resolve().parents[1] / "artifacts"
    artifacts.mkdir(exist_ok=True)
    (artifacts / "schemathesis-statuses.json").write_text(
        json.dumps(
            {label: {p: dict(sorted(c.items())) for p, c in by.items()} for label, by in _answered.items()}, indent=1
        )
    )
    only_not_found = [
        label
        for label, has_ids in operations
        if has_ids and all(set(counts) == {404} for counts in _answered[label].values())
    ]
    assert not only_not_found
