"""Gifts racing on one wallet and prize claims racing each other and their forfeit, on
PostgreSQL with real threads: no coin spent twice, no prize unit given twice."""

from __future__ import annotations

import threading
import time
from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from catalog.models import Sku
from orders.models import LedgerAccount, LedgerTransaction, Order, PrizeClaim
from orders.services.wallet import earned_coins, wallet_coins
from rooms import services
from rooms.models import GiftSend, GiveawayWinner
from tests.coins import SHIPPING, assert_ledger_balanced, close, gift, giveaway, grant
from tests.factories import api_token
from tests.helpers import on_postgresql, run_concurrently

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _require_postgresql(db):
    if not on_postgresql():
        pytest.skip("concurrency tests need PostgreSQL (set DATABASE_URL)")


@pytest.fixture(autouse=True)
def _no_broadcast(monkeypatch):
    # The room events are not what these tests are about (and no hub listens).
    monkeypatch.setattr("rooms.broadcast.room_publish", lambda *args: 0)


def _client(user: Any) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {api_token(user)}")
    return client


def test_fifty_gifts_at_once_from_a_wallet_that_affords_twenty(viewer, host, live_room):
    hotpot = gift()  # 99 coins
    grant(viewer, 20 * 99)
    url = f"/api/v1/rooms/{live_room.pk}/gifts/"
    observed: list[int] = []
    done = threading.Event()

    def watch() -> None:
        # Reads the committed balance while the gifts race: never below zero.
        from django.db import connections

        try:
            while not done.is_set():
                observed.append(wallet_coins(user_id=viewer.pk))
        finally:
            connections.close_all()

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        statuses = run_concurrently(
            lambda i: (
                _client(viewer)
                .post(url, {"gift": hotpot.pk, "quantity": 1}, format="json", HTTP_IDEMPOTENCY_KEY=f"tap-{i}")
                .status_code
            ),
            50,
        )
    finally:
        done.set()
        watcher.join()

    assert sorted(statuses) == [201] * 20 + [402] * 30
    assert wallet_coins(user_id=viewer.pk) == 0
    assert observed
    assert min(observed) >= 0
    assert LedgerAccount.objects.get(kind="wallet", user=viewer).balance == 0
    assert GiftSend.objects.count() == 20
    assert LedgerTransaction.objects.filter(kind="gift").count() == 20
    assert earned_coins(user_id=host.pk) == 20 * 69  # 70% of 99, rounded down, each
    assert_ledger_balanced()
    board = _client(viewer).get(f"/api/v1/rooms/{live_room.pk}/gifts/leaderboard/").json()
    assert board == [{"user": {"id": viewer.pk, "display_name": "Viewer Li"}, "coins": 20 * 99}]


def test_concurrent_retries_of_one_gift_deduct_once(viewer, live_room):
    hotpot = gift()
    grant(viewer, 1000)
    url = f"/api/v1/rooms/{live_room.pk}/gifts/"

    statuses = run_concurrently(
        lambda i: (
            _client(viewer)
            .post(url, {"gift": hotpot.pk, "quantity": 1}, format="json", HTTP_IDEMPOTENCY_KEY="one-tap")
            .status_code
        ),
        10,
    )

    # One request sends it; the others replay its answer or are told it is in progress.
    assert set(statuses) <= {201, 409}
    assert 201 in statuses
    assert GiftSend.objects.count() == 1
    assert wallet_coins(user_id=viewer.pk) == 1000 - 99
    assert_ledger_balanced()


# --- Prize claims ---------------------------------------------------------------------------------


def _drawn_for(room: Any, winner: Any, sku: Any) -> Any:
    created = giveaway(room, winners=1, prize_sku=sku)
    services.giveaway_enter(giveaway=created, user=winner)
    close(created)
    assert services.giveaway_draw(giveaway_id=created.pk)
    return created


def test_concurrent_claims_of_one_prize_make_one_order(viewer, live_room, sku):
    created = _drawn_for(live_room, viewer, sku)

    statuses = run_concurrently(
        lambda i: (
            _client(viewer)
            .post(f"/api/v1/giveaways/{created.pk}/claim/", {"shipping": SHIPPING}, format="json")
            .status_code
        ),
        8,
    )

    assert sorted(statuses) == [200] * 7 + [201]
    assert Order.objects.count() == PrizeClaim.objects.count() == 1
    assert Sku.objects.get(pk=sku.pk).stock == 49


@pytest.mark.parametrize("round_", range(3))
def test_a_claim_racing_its_forfeit_gives_the_unit_once(viewer, live_room, sku, round_):
    created = _drawn_for(live_room, viewer, sku)
    deadline = timezone.now() + timedelta(milliseconds=150)
    GiveawayWinner.objects.filter(giveaway=created).update(claim_deadline=deadline)

    def act(index: int) -> Any:
        time.sleep(0.1 + index * 0.01)
        if index % 2:
            return services.giveaways_sweep()
        return (
            _client(viewer)
            .post(f"/api/v1/giveaways/{created.pk}/claim/", {"shipping": SHIPPING}, format="json")
            .status_code
        )

    run_concurrently(act, 10)

    winner = GiveawayWinner.objects.get(giveaway=created)
    if winner.status == GiveawayWinner.Status.CLAIMED:
        assert Order.objects.count() == 1
        assert Sku.objects.get(pk=sku.pk).stock == 49
    else:
        assert winner.status == GiveawayWinner.Status.FORFEITED
        assert not Order.objects.exists()
        assert Sku.objects.get(pk=sku.pk).stock == 50
