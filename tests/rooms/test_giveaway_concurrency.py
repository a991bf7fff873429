"""Giveaway entries racing each other and the draw, on PostgreSQL with real threads."""

from __future__ import annotations

import random
import time

import pytest
from django.db import connections
from django.utils import timezone
from rest_framework.test import APIClient

from liveshop.errors import Conflict
from rooms import fairness, services
from rooms.models import Giveaway, GiveawayEntry, GiveawayWinner
from rooms.services import giveaways as giveaway_rules
from tests import factories
from tests.coins import giveaway
from tests.factories import api_token
from tests.helpers import on_postgresql, run_concurrently

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _require_postgresql(db):
    if not on_postgresql():
        pytest.skip("concurrency tests need PostgreSQL (set DATABASE_URL)")


@pytest.fixture(autouse=True)
def _no_broadcast(monkeypatch):
    monkeypatch.setattr("rooms.broadcast.room_publish", lambda *args: 0)


def test_one_entry_per_user_however_many_requests_race(viewer, live_room):
    created = giveaway(live_room)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {api_token(viewer)}")

    statuses = run_concurrently(lambda i: client.post(f"/api/v1/giveaways/{created.pk}/entries/").status_code, 12)

    assert sorted(statuses) == [200] * 11 + [201]
    assert GiveawayEntry.objects.filter(giveaway=created).count() == 1


def test_entries_racing_the_draw_are_either_in_the_draw_or_refused(live_room, monkeypatch):
    """The public entrant list must be exactly the set drawn from, or the public
    recomputation fails: an entry committed after the draw read the entries would break it."""
    entrants = [factories.UserFactory.create() for _ in range(40)]
    created = giveaway(live_room, winners=100)  # everyone who gets in wins: the winners are the drawn set
    hold_open = giveaway_rules._hold_open_for_entry

    def slow_hold_open(**kwargs):
        # Widen the gap between an entry's check and its commit, where a draw could slip in.
        is_open = hold_open(**kwargs)
        time.sleep(0.05)
        return is_open

    monkeypatch.setattr(giveaway_rules, "_hold_open_for_entry", slow_hold_open)

    def act(index: int) -> str:
        try:
            if index == len(entrants):  # close the giveaway while entries pour in, then draw
                time.sleep(0.15)
                Giveaway.objects.filter(pk=created.pk).update(closes_at=timezone.now())
                while not services.giveaway_draw(giveaway_id=created.pk):
                    time.sleep(0.005)
                return "drew"
            time.sleep(random.uniform(0, 0.3))
            try:
                services.giveaway_enter(giveaway=created, user=entrants[index])
            except Conflict:
                return "refused"
            return "entered"
        finally:
            connections.close_all()

    outcomes = run_concurrently(act, len(entrants) + 1)

    assert outcomes.count("drew") == 1
    assert 0 < outcomes.count("entered") < len(entrants)  # the close fell among the entries
    entered = set(GiveawayEntry.objects.filter(giveaway=created).values_list("user_id", flat=True))
    winners = list(GiveawayWinner.objects.filter(giveaway=created).order_by("rank").values_list("user_id", flat=True))
    assert set(winners) == entered
    assert outcomes.count("entered") == len(entered)
    created.refresh_from_db()
    assert winners == fairness.draw_winners(created.seed, entered, 100)
