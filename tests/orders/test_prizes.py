"""Prize claims: a zero-total paid order per winner, once; forfeits give the units back."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from catalog.models import Sku
from orders.models import LedgerTransaction, Order, PrizeClaim
from rooms import services
from rooms.models import Giveaway, GiveawayWinner
from tests import factories
from tests.coins import SHIPPING, close, giveaway
from tests.helpers import assert_error

pytestmark = pytest.mark.django_db


def claim(client: Any, giveaway_id: int, body: Any = None) -> Any:
    return client.post(
        f"/api/v1/giveaways/{giveaway_id}/claim/",
        {"shipping": SHIPPING} if body is None else body,
        format="json",
    )


@pytest.fixture
def drawn(live_room, sku, viewer, other_host):
    """A drawn giveaway of 2 tins of the host's tea: the viewer and the cadre won, a third fan lost."""
    created = giveaway(live_room, winners=2, prize_sku=sku)
    loser = factories.UserFactory.create(username="loser")
    for user in (viewer, other_host, loser):
        services.giveaway_enter(giveaway=created, user=user)
    # A seed under which the third fan loses (found by trying: the draw is deterministic).
    from rooms.fairness import draw_winners

    seed = next(
        s
        for s in (f"{n:064x}" for n in range(1000))
        if set(draw_winners(s, [viewer.pk, other_host.pk, loser.pk], 2)) == {viewer.pk, other_host.pk}
    )
    Giveaway.objects.filter(pk=created.pk).update(seed=seed)
    close(created)
    assert services.giveaway_draw(giveaway_id=created.pk)
    created.refresh_from_db()
    created.loser = loser  # type: ignore[attr-defined]
    return created


def test_a_winner_claims_a_zero_total_paid_order_once(client_for, drawn, viewer, sku, shop, live_room):
    assert Sku.objects.get(pk=sku.pk).stock == 48
    first = claim(client_for(viewer), drawn.pk)

    assert first.status_code == 201, first.content
    order = first.json()
    assert (order["status"], order["total"], order["subtotal"]) == ("paid", 0, 0)
    assert (order["buyer"], order["room"], order["shop"]) == (viewer.pk, live_room.pk, shop.pk)
    assert order["shipping"] == SHIPPING
    assert order["paid_at"] is not None
    assert order["payment"] is None
    assert [(i["sku"], i["quantity"], i["unit_price"]) for i in order["items"]] == [(sku.pk, 1, 0)]
    assert order["items"][0]["title"] == "Giveaway prize: Xiannv Black Tea / 250 g tin"
    assert Sku.objects.get(pk=sku.pk).stock == 48  # the unit held since the start is this order's
    assert GiveawayWinner.objects.get(user=viewer).status == "claimed"
    assert not LedgerTransaction.objects.exists()  # no money moved

    again = claim(client_for(viewer), drawn.pk, {"shipping": {**SHIPPING, "address": "Elsewhere 1"}})
    assert again.status_code == 200
    assert again.json()["id"] == order["id"]
    assert again.json()["shipping"] == SHIPPING
    assert Order.objects.count() == PrizeClaim.objects.count() == 1
    # The host's shop sees it and ships it like any order.
    assert client_for(drawn.room.host.user).get(f"/api/v1/orders/{order['id']}/").status_code == 200


def test_claim_authorization_matrix(client_for, persona, drawn):
    loser = drawn.loser
    expected = {"anonymous": 401, "viewer": 201, "other_host": 201, "host": 403, "staff": 403}
    for name, status in expected.items():
        assert claim(client_for(persona(name)), drawn.pk).status_code == status, name
    assert_error(claim(client_for(loser), drawn.pk), 403, "permission_denied")
    assert Order.objects.count() == 2


def test_the_last_claim_fulfils_the_giveaway(client_for, drawn, viewer, other_host):
    claim(client_for(viewer), drawn.pk)
    assert Giveaway.objects.get(pk=drawn.pk).status == Giveaway.Status.DRAWN
    claim(client_for(other_host), drawn.pk)
    fulfilled = Giveaway.objects.get(pk=drawn.pk)
    assert fulfilled.status == Giveaway.Status.FULFILLED
    assert fulfilled.fulfilled_at is not None
    # Fulfilled is still drawn: the seed and the winners stay public, and claims answer.
    detail = client_for(None).get(f"/api/v1/giveaways/{drawn.pk}/").json()
    assert detail["seed"] == fulfilled.seed
    assert claim(client_for(viewer), drawn.pk).status_code == 200


def test_after_the_window_a_claim_is_409_and_the_sweeper_forfeits_the_unit(client_for, drawn, viewer, other_host, sku):
    claim(client_for(other_host), drawn.pk)
    GiveawayWinner.objects.filter(user=viewer).update(claim_deadline=timezone.now() - timedelta(seconds=1))

    assert_error(claim(client_for(viewer), drawn.pk), 409, "conflict")  # not swept yet: refused all the same
    assert Sku.objects.get(pk=sku.pk).stock == 48
    assert services.giveaways_sweep() == (0, 1)
    assert Sku.objects.get(pk=sku.pk).stock == 49  # the forfeited unit is back
    assert GiveawayWinner.objects.get(user=viewer).status == "forfeited"
    assert_error(claim(client_for(viewer), drawn.pk), 409, "conflict")
    assert Giveaway.objects.get(pk=drawn.pk).status == Giveaway.Status.FULFILLED
    assert services.giveaways_sweep() == (0, 0)  # a forfeit happens once
    assert Sku.objects.get(pk=sku.pk).stock == 49


def test_every_unit_is_accounted_for(client_for, live_room, sku, viewer):
    # Held at the start (3), 1 back at the draw (2 entrants), 1 claimed, 1 forfeited: 49 in stock.
    created = giveaway(live_room, winners=3, prize_sku=sku)
    late = factories.UserFactory.create()
    for user in (viewer, late):
        services.giveaway_enter(giveaway=created, user=user)
    close(created)
    services.giveaway_draw(giveaway_id=created.pk)
    assert Sku.objects.get(pk=sku.pk).stock == 48
    claim(client_for(viewer), created.pk)
    GiveawayWinner.objects.filter(user=late).update(claim_deadline=timezone.now())
    services.giveaways_sweep()
    assert Sku.objects.get(pk=sku.pk).stock == 49
    assert Order.objects.get().items.get().quantity == 1


def test_the_claim_window_is_a_setting(live_room, viewer, settings):
    settings.GIVEAWAY_CLAIM_WINDOW_S = 600
    created = giveaway(
        live_room, winners=1, prize_sku=factories.SkuFactory.create(product__shop__owner=live_room.host.user)
    )
    services.giveaway_enter(giveaway=created, user=viewer)
    close(created)
    services.giveaway_draw(giveaway_id=created.pk)
    winner = GiveawayWinner.objects.get()
    drawn_at = Giveaway.objects.get(pk=created.pk).drawn_at
    assert drawn_at is not None
    assert winner.claim_deadline == drawn_at + timedelta(seconds=600)


def test_no_claim_before_the_draw_after_a_cancel_or_without_a_prize(client_for, live_room, viewer, sku):
    open_one = giveaway(live_room, prize_sku=sku)
    services.giveaway_enter(giveaway=open_one, user=viewer)
    assert_error(claim(client_for(viewer), open_one.pk), 409, "conflict")
    services.giveaway_cancel(giveaway=open_one)
    assert_error(claim(client_for(viewer), open_one.pk), 409, "conflict")
    shout_out = giveaway(live_room, winners=1)
    services.giveaway_enter(giveaway=shout_out, user=viewer)
    close(shout_out)
    services.giveaway_draw(giveaway_id=shout_out.pk)
    assert_error(claim(client_for(viewer), shout_out.pk), 409, "conflict")
    assert_error(claim(client_for(viewer), 999_999), 404, "not_found")
    assert not Order.objects.exists()


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"shipping": None},
        {"shipping": {}},
        {"shipping": {**SHIPPING, "phone": "call me"}},
        {"shipping": {**SHIPPING, "name": ""}},
        {"shipping": {**SHIPPING, "address": "x" * 301}},
        {"shipping": "Jiefangbei"},
    ],
)
def test_bad_shipping_is_400_and_claims_nothing(client_for, drawn, viewer, body):
    assert_error(claim(client_for(viewer), drawn.pk, body), 400, "invalid")
    assert not Order.objects.exists()
    assert GiveawayWinner.objects.get(user=viewer).status == "pending"
