"""GET /api/v1/replays/: the ended shows one can watch again, newest first, in one page of
a few queries whatever the page's size."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from liveshop.models import User
from rooms.models import Room
from streams.models import Replay
from tests import factories

pytestmark = pytest.mark.django_db


def ended_show(host: Any, *, hours_ago: int, replay: str | None = Replay.Status.READY, status: str = "ended") -> Room:
    room = factories.RoomFactory.create(
        host=host, status=status, ended_at=timezone.now() - timedelta(hours=hours_ago), title=f"Show {hours_ago} h ago"
    )
    if replay is not None:
        items = [factories.RoomItemFactory.create(room=room) for _ in range(2)]
        Replay.objects.create(
            room=room,
            status=replay,
            playlist=f"replays/{room.pk}/index.m3u8",
            duration_s=61.5,
            chapters=[{"at_s": 3.0 * n, "item": item.pk} for n, item in enumerate(items)],
            ready_at=timezone.now(),
        )
    return room


def test_lists_ended_shows_with_a_ready_replay_newest_first(client_for: Any, host_profile: Any):
    older = ended_show(host_profile, hours_ago=5)
    newer = ended_show(host_profile, hours_ago=1)
    ended_show(host_profile, hours_ago=2, replay=Replay.Status.PROCESSING)
    ended_show(host_profile, hours_ago=3, replay=Replay.Status.FAILED)
    ended_show(host_profile, hours_ago=4, replay=Replay.Status.EXPIRED)
    ended_show(host_profile, hours_ago=6, replay=None)

    answer = client_for(None).get("/api/v1/replays/")

    assert answer.status_code == 200
    rows = answer.json()["results"]
    assert [row["id"] for row in rows] == [newer.pk, older.pk]
    assert rows[0]["status"] == "ended"
    assert rows[0]["title"] == newer.title
    assert rows[0]["host"]["user"]["display_name"] == "Farmer Chen"
    assert rows[0]["replay"]["duration_s"] == 61.5
    assert rows[0]["replay"]["chapters"] == 2
    assert rows[0]["video"]["state"] == "off_air"
    assert "stream_key" not in rows[0]


def test_a_suspended_show_is_listed_for_nobody(client_for: Any, host_profile: Any, viewer: User, staff: User):
    # Its replay page says "none" too (GET /rooms/{id}/replay/ is for ended shows).
    suspended = ended_show(host_profile, hours_ago=1, status=Room.Status.SUSPENDED)
    for user in [None, viewer, host_profile.user, staff]:
        ids = [row["id"] for row in client_for(user).get("/api/v1/replays/").json()["results"]]
        assert suspended.pk not in ids, user


def test_filters_by_host_and_district(client_for: Any, host_profile: Any, other_host: User):
    mine = ended_show(host_profile, hours_ago=1)
    theirs = ended_show(other_host.host, hours_ago=2)
    client = client_for(None)
    assert [r["id"] for r in client.get(f"/api/v1/replays/?host={host_profile.pk}").json()["results"]] == [mine.pk]
    assert [r["id"] for r in client.get("/api/v1/replays/?district=jiangbei").json()["results"]] == [theirs.pk]
    assert client.get("/api/v1/replays/?host=x").status_code == 400


def test_a_page_costs_the_same_few_queries_for_one_show_or_twenty(
    client_for: Any, host_profile: Any, django_assert_max_num_queries: Any
):
    ended_show(host_profile, hours_ago=1)
    client = client_for(None)
    with django_assert_max_num_queries(6) as one:
        client.get("/api/v1/replays/")
    for hours in range(2, 21):
        ended_show(host_profile, hours_ago=hours)
    with django_assert_max_num_queries(len(one.captured_queries)):
        rows = client.get("/api/v1/replays/").json()["results"]
    assert len(rows) == 20
