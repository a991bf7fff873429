"""Races on room state, on PostgreSQL with real threads."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from rooms.models import Follow, Host, Room
from tests import factories
from tests.factories import api_token
from tests.helpers import on_postgresql, run_concurrently

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _require_postgresql(db):
    if not on_postgresql():
        pytest.skip("concurrency tests need PostgreSQL (set DATABASE_URL)")


def _client(user):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {api_token(user)}")
    return client


def test_two_concurrent_starts_one_wins():
    room = factories.RoomFactory.create()
    host_user = room.host.user

    statuses = run_concurrently(lambda _: _client(host_user).post(f"/api/v1/rooms/{room.pk}/start/").status_code, 8)

    assert sorted(statuses) == [200] + [409] * 7
    room.refresh_from_db()
    assert room.status == Room.Status.LIVE


def test_end_racing_suspend_leaves_one_final_state():
    room = factories.RoomFactory.create(status=Room.Status.LIVE)
    staff = factories.UserFactory.create(is_staff=True)

    def act(i):
        client = _client(staff)
        if i % 2:
            return client.post(f"/api/v1/rooms/{room.pk}/end/").status_code
        return client.post(f"/api/v1/rooms/{room.pk}/suspend/", {"reason": "r"}, format="json").status_code

    statuses = run_concurrently(act, 6)

    room.refresh_from_db()
    assert room.status in (Room.Status.ENDED, Room.Status.SUSPENDED)
    assert all(s in (200, 409) for s in statuses)


def test_concurrent_follows_count_once():
    host = factories.HostFactory.create()
    fans = [factories.UserFactory.create() for _ in range(10)]

    def follow(i):
        client = _client(fans[i // 2])  # every fan follows twice at once
        return client.post(f"/api/v1/hosts/{host.pk}/follow/").status_code

    statuses = run_concurrently(follow, 20)

    assert statuses == [204] * 20
    assert Follow.objects.filter(host=host).count() == 10
    assert Host.objects.get(pk=host.pk).followers_count == 10
