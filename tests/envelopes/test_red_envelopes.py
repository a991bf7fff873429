"""Red envelopes through the API: drop, grab, expiry, who may do what, every coin in the
ledger. PostgreSQL and the real Redis gate (the test settings' Redis)."""

from __future__ import annotations

import contextlib
import dataclasses
import random
from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from envelopes import gate, services
from envelopes.models import RedEnvelope, RedEnvelopeShare
from liveshop.errors import Conflict
from liveshop.redis_client import redis_key, redis_sync
from orders.models import LedgerAccount
from orders.services import ledger
from orders.services.wallet import COIN, wallet_coins
from rooms.models import Ban, Follow, Room
from tests import factories
from tests.coins import assert_ledger_balanced, grant
from tests.helpers import on_postgresql, run_concurrently

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def published(monkeypatch) -> list[tuple[int, str, dict[str, Any]]]:
    events: list[tuple[int, str, dict[str, Any]]] = []
    monkeypatch.setattr("rooms.broadcast.room_publish", lambda room, kind, data: events.append((room, kind, data)))
    services._facts.clear()
    return events


def drop(client_for, host, room, key: str | None = None, **body: Any) -> Any:
    headers = {"HTTP_IDEMPOTENCY_KEY": key} if key else {}
    return client_for(host).post(
        f"/api/v1/rooms/{room.pk}/red-envelopes/", {"coins": 1000, "shares": 10, **body}, format="json", **headers
    )


def grab(client_for, user, envelope_id: int) -> Any:
    return client_for(user).post(f"/api/v1/red-envelopes/{envelope_id}/grab/")


def escrow_coins() -> int:
    account = ledger.ledger_account(kind=LedgerAccount.Kind.RED_ENVELOPES, currency=COIN)
    return -ledger.ledger_balance(account=account)


@pytest.mark.parametrize(("coins", "shares"), [(1, 1), (7, 7), (100, 1), (1000, 10), (1_000_000, 1000), (1500, 999)])
def test_shares_are_random_at_least_one_coin_and_add_up(coins, shares):
    for _ in range(20):
        split = services.shares_split(coins, shares)
        assert len(split) == shares
        assert min(split) >= 1
        assert sum(split) == coins


def test_every_place_in_the_order_gets_the_same_share_on_average():
    # 10 shares of 100 coins, 4,000 times: each place averages 10 (the fastest tap wins no more).
    totals = [0] * 10
    for _ in range(4000):
        for place, share in enumerate(services.shares_split(100, 10)):
            totals[place] += share
    assert all(9.5 < total / 4000 < 10.5 for total in totals), totals


def test_a_drop_moves_the_coins_to_escrow_and_tells_the_room(client_for, host, live_room, published):
    grant(host, 5000)
    response = drop(client_for, host, live_room, coins=1000, shares=10, opens_in_s=30, followers_only=True)
    assert response.status_code == 201, response.content
    body = response.json()
    assert {k: body[k] for k in ("room", "coins", "shares", "remaining_shares", "status", "followers_only")} == {
        "room": live_room.pk,
        "coins": 1000,
        "shares": 10,
        "remaining_shares": 10,
        "status": "scheduled",
        "followers_only": True,
    }
    envelope = RedEnvelope.objects.get(pk=body["id"])
    assert envelope.expires_at - envelope.opens_at == timedelta(seconds=300)
    shares = list(RedEnvelopeShare.objects.filter(envelope=envelope).values_list("coins", flat=True))
    assert len(shares) == 10
    assert sum(shares) == 1000
    assert wallet_coins(user_id=host.pk) == 4000
    assert escrow_coins() == 1000
    assert [(room, kind) for room, kind, _ in published] == [(live_room.pk, "red_envelope.dropped")]
    assert published[0][2]["red_envelope"]["id"] == envelope.pk
    assert_ledger_balanced()


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"coins": 5, "shares": 6}, "shares"),
        ({"coins": 0}, "coins"),
        ({"shares": 0}, "shares"),
        ({"shares": 1001, "coins": 5000}, "shares"),
        ({"coins": 1_000_001}, "coins"),
        ({"opens_in_s": -1}, "opens_in_s"),
        ({"opens_in_s": 601}, "opens_in_s"),
        ({"coins": "lots"}, "coins"),
    ],
)
def test_a_bad_drop_is_400_and_moves_nothing(client_for, host, live_room, body, field):
    grant(host, 5000)
    response = drop(client_for, host, live_room, **body)
    assert response.status_code == 400, response.content
    assert field in response.json()["fields"]
    assert not RedEnvelope.objects.exists()
    assert wallet_coins(user_id=host.pk) == 5000


def test_who_may_drop(client_for, host, other_host, viewer, staff, live_room, room):
    grant(host, 100)
    for who in (viewer, other_host, staff):
        grant(who, 5000)
        assert drop(client_for, who, live_room).status_code == 403
    assert drop(client_for, None, live_room).status_code == 401
    response = drop(client_for, host, live_room)  # 1,000 coins, the wallet has 100
    assert response.status_code == 402
    assert response.json()["code"] == "insufficient_coins"
    Room.objects.filter(pk=live_room.pk).update(status=Room.Status.ENDED)
    grant(host, 5000)
    assert drop(client_for, host, live_room).json()["code"] == "room_not_live"
    assert not RedEnvelope.objects.exists()
    assert wallet_coins(user_id=host.pk) == 5100


def test_a_retried_drop_makes_one_envelope(client_for, host, live_room):
    grant(host, 5000)
    first = drop(client_for, host, live_room, key="drop-1")
    again = drop(client_for, host, live_room, key="drop-1")
    assert first.status_code == again.status_code == 201
    assert first.json()["id"] == again.json()["id"]
    assert RedEnvelope.objects.count() == 1
    assert wallet_coins(user_id=host.pk) == 4000


def test_grabs_first_come_first_served_then_all_gone(client_for, host, live_room, published):
    grant(host, 5000)
    envelope_id = drop(client_for, host, live_room, coins=50, shares=3).json()["id"]
    viewers = [factories.UserFactory.create() for _ in range(5)]
    won = []
    for user in viewers[:3]:
        response = grab(client_for, user, envelope_id)
        assert response.status_code == 201, response.content
        won.append(response.json()["coins"])
        again = grab(client_for, user, envelope_id)  # the same share, nothing moves
        assert (again.status_code, again.json()) == (200, {"coins": won[-1]})
        assert wallet_coins(user_id=user.pk) == won[-1]
    assert sum(won) == 50
    for user in viewers[3:]:
        response = grab(client_for, user, envelope_id)
        assert response.status_code == 409
        assert response.json()["code"] == "red_envelope_empty"
        assert wallet_coins(user_id=user.pk) == 0
    envelope = RedEnvelope.objects.get(pk=envelope_id)
    assert (envelope.status, envelope.remaining_shares) == ("empty", 0)
    assert ("red_envelope.empty", {"red_envelope": envelope_id}) in [(k, d) for _, k, d in published]
    detail = client_for(None).get(f"/api/v1/red-envelopes/{envelope_id}/").json()
    assert detail["status"] == "empty"
    assert [g["coins"] for g in detail["grabs"]] == won
    assert [g["user"]["id"] for g in detail["grabs"]] == [u.pk for u in viewers[:3]]
    assert escrow_coins() == 0
    assert_ledger_balanced()


def test_who_may_grab_and_when(client_for, host, viewer, live_room):
    grant(host, 5000)
    later = drop(client_for, host, live_room, opens_in_s=60).json()["id"]
    response = grab(client_for, viewer, later)
    assert (response.status_code, response.json()["code"]) == (409, "conflict")
    assert "opens at" in response.json()["detail"]
    fans_only = drop(client_for, host, live_room, followers_only=True).json()["id"]
    assert grab(client_for, host, fans_only).status_code == 403  # not your own
    assert grab(client_for, None, fans_only).status_code == 401
    response = grab(client_for, viewer, fans_only)
    assert (response.status_code, response.json()["code"]) == (403, "permission_denied")
    Follow.objects.create(user=viewer, host=live_room.host)
    assert grab(client_for, viewer, fans_only).status_code == 201
    assert grab(client_for, viewer, 999_999).status_code == 404
    # Banned from the room: no share (as no gift), nothing moves.
    troll = factories.UserFactory.create()
    Follow.objects.create(user=troll, host=live_room.host)
    Ban.objects.create(room=live_room, user=troll, created_by=host)
    response = grab(client_for, troll, fans_only)
    assert (response.status_code, response.json()["code"]) == (403, "banned")
    assert wallet_coins(user_id=troll.pk) == 0
    # Past its expiry: 409, and the sweeper gives back exactly what was not grabbed.
    RedEnvelope.objects.filter(pk=fans_only).update(expires_at=timezone.now() - timedelta(seconds=1))
    services._facts.clear()
    other = factories.UserFactory.create()
    Follow.objects.create(user=other, host=live_room.host)
    response = grab(client_for, other, fans_only)
    assert (response.status_code, response.json()["code"]) == (409, "conflict")


def test_expiry_returns_exactly_the_coins_not_grabbed_once(client_for, host, live_room):
    grant(host, 5000)
    envelope_id = drop(client_for, host, live_room, coins=1000, shares=10).json()["id"]
    winners = [factories.UserFactory.create() for _ in range(4)]
    won = sum(grab(client_for, user, envelope_id).json()["coins"] for user in winners)
    assert services.red_envelopes_expire_due() == 0  # not due yet
    RedEnvelope.objects.filter(pk=envelope_id).update(expires_at=timezone.now() - timedelta(seconds=1))
    assert services.red_envelopes_expire_due() == 1
    assert services.red_envelopes_expire_due() == 0  # once
    envelope = RedEnvelope.objects.get(pk=envelope_id)
    assert (envelope.status, envelope.returned_coins) == ("expired", 1000 - won)
    assert wallet_coins(user_id=host.pk) == 4000 + 1000 - won
    assert escrow_coins() == 0
    detail = client_for(None).get(f"/api/v1/red-envelopes/{envelope_id}/").json()
    assert detail["status"] == "expired"
    assert sum(g["coins"] for g in detail["grabs"]) == won
    assert_ledger_balanced()


def test_a_grab_racing_the_expiry_either_wins_or_is_returned_never_both(client_for, host, live_room):
    if not on_postgresql():
        pytest.skip("needs PostgreSQL")
    grant(host, 50_000)
    for _ in range(10):
        envelope_id = drop(client_for, host, live_room, coins=100, shares=2).json()["id"]
        user = factories.UserFactory.create()
        services._facts.clear()
        known = services.envelope_facts(envelope_id)
        assert known is not None
        RedEnvelope.objects.filter(pk=envelope_id).update(expires_at=timezone.now() + timedelta(milliseconds=30))
        # The grab's own check passes (the API read the facts a moment ago): the database decides.
        facts = dataclasses.replace(known, expires_at=timezone.now() + timedelta(seconds=5))

        def race(i: int, facts: services.Facts = facts, user: Any = user, envelope_id: int = envelope_id) -> Any:
            if i == 0:
                return services.red_envelope_grab(facts=facts, user=user)
            while services.red_envelope_expire(envelope_id=envelope_id) is None:
                pass
            return None

        with contextlib.suppress(Conflict):  # the grab lost the race: refused, nothing moved
            run_concurrently(race, 2)
        envelope = RedEnvelope.objects.get(pk=envelope_id)
        grabbed = sum(
            RedEnvelopeShare.objects.filter(envelope=envelope, user__isnull=False).values_list("coins", flat=True)
        )
        assert envelope.returned_coins + grabbed == 100
        assert wallet_coins(user_id=user.pk) == grabbed
    assert escrow_coins() == 0
    assert_ledger_balanced()


def test_the_gate_lost_mid_envelope_hands_out_nothing_twice(client_for, host, live_room):
    client = redis_sync()
    if client is None:
        pytest.skip("needs Redis")
    grant(host, 5000)
    envelope_id = drop(client_for, host, live_room, coins=300, shares=6).json()["id"]
    users = [factories.UserFactory.create() for _ in range(9)]
    first = {u.pk: grab(client_for, u, envelope_id).json()["coins"] for u in users[:3]}
    # Redis restarted empty: the gate is gone; PostgreSQL hands out the rest and sets it up again.
    client.delete(*(redis_key(f"redenv:{{{envelope_id}}}", name) for name in ("next", "claimed")))
    again = {u.pk: grab(client_for, u, envelope_id) for u in users[:3]}
    assert {pk: (r.status_code, r.json()["coins"]) for pk, r in again.items()} == {
        pk: (200, coins) for pk, coins in first.items()
    }
    rest = [grab(client_for, u, envelope_id) for u in users[3:]]
    assert [r.status_code for r in rest] == [201, 201, 201, 409, 409, 409]
    assert gate.gate_grab(envelope_id=envelope_id, user_id=users[-1].pk, shares=6) == gate.EMPTY
    claimed = RedEnvelopeShare.objects.filter(envelope_id=envelope_id, user__isnull=False)
    assert claimed.count() == 6
    assert len(set(claimed.values_list("user_id", flat=True))) == 6
    assert escrow_coins() == 0
    assert_ledger_balanced()


def test_the_snapshot_shows_the_rooms_open_envelopes(client_for, host, live_room):
    from rooms.payloads import snapshot_shared

    grant(host, 5000)
    envelope_id = drop(client_for, host, live_room).json()["id"]
    room = Room.objects.get(pk=live_room.pk)
    assert [e["id"] for e in snapshot_shared(room)["red_envelopes"]] == [envelope_id]
    RedEnvelope.objects.filter(pk=envelope_id).update(status="expired")
    assert snapshot_shared(room)["red_envelopes"] == []


def test_a_suspended_rooms_envelope_is_hidden_and_closed_at_the_next_sweep(client_for, host, viewer, live_room):
    grant(host, 5000)
    envelope_id = drop(client_for, host, live_room).json()["id"]
    first = factories.UserFactory.create()
    won = grab(client_for, first, envelope_id).json()["coins"]
    Room.objects.filter(pk=live_room.pk).update(status=Room.Status.SUSPENDED)
    assert client_for(viewer).get(f"/api/v1/red-envelopes/{envelope_id}/").status_code == 404
    assert client_for(host).get(f"/api/v1/red-envelopes/{envelope_id}/").status_code == 200
    # The sweeper closes it before its expiry: the host gets back what was not grabbed.
    assert services.red_envelopes_expire_due() == 1
    assert RedEnvelope.objects.get(pk=envelope_id).returned_coins == 1000 - won
    assert wallet_coins(user_id=host.pk) == 5000 - won
    response = grab(client_for, viewer, envelope_id)
    assert (response.status_code, response.json()["code"]) == (409, "conflict")
    assert escrow_coins() == 0
    assert_ledger_balanced()


def test_random_is_not_seeded_by_anyone():
    assert services._random.__class__ is random.SystemRandom


def test_staff_grant_a_cadre_host_coins_for_a_campaign_once_and_audited(client_for, host, viewer, staff):
    from rooms.models import ModerationAction

    body = {"user": host.pk, "coins": 5000, "reason": "Wulong tea festival", "key": "wulong-2026-12"}
    for who, code in ((None, 401), (viewer, 403), (host, 403)):
        assert client_for(who).post("/api/v1/wallets/grants/", body, format="json").status_code == code
    first = client_for(staff).post("/api/v1/wallets/grants/", body, format="json")
    assert (first.status_code, first.json()["coins"]) == (201, 5000)
    again = client_for(staff).post("/api/v1/wallets/grants/", body, format="json")
    assert (again.status_code, again.json()["coins"]) == (200, 5000)  # one grant per key
    assert wallet_coins(user_id=host.pk) == 5000
    entry = ModerationAction.objects.get(action="coin_grant")
    assert (entry.actor, entry.target_user, entry.reason) == (staff, host, "Wulong tea festival")
    assert entry.details == {"coins": 5000, "key": "staff:wulong-2026-12"}
    bad = client_for(staff).post("/api/v1/wallets/grants/", {**body, "coins": 0, "key": "x"}, format="json")
    assert bad.status_code == 400
    # The host drops the campaign's coins as a red envelope.
    from rooms.models import Room as RoomModel

    room = factories.RoomFactory.create(host=host.host, status=RoomModel.Status.LIVE)
    assert drop(client_for, host, room, coins=5000, shares=100).status_code == 201
    assert wallet_coins(user_id=host.pk) == 0
    assert_ledger_balanced()
