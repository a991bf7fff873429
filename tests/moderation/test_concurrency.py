"""Moderators acting at the same moment on PostgreSQL, on real threads: one act, one entry."""

from __future__ import annotations

import pytest

from liveshop.errors import Conflict
from rooms import services
from rooms.models import Ban, ModerationAction, Report
from tests import factories
from tests.helpers import on_postgresql, run_concurrently

pytestmark = pytest.mark.django_db(transaction=True)

THREADS = 8


@pytest.fixture(autouse=True)
def _postgresql_only() -> None:
    if not on_postgresql():
        pytest.skip("row locks need PostgreSQL")


def test_one_resolution_of_a_report_however_many_staff_click(staff, troll_comment, live_room):
    report = Report.objects.create(comment=troll_comment, room=live_room, reporter=staff, reason="spam")
    admins = [factories.UserFactory.create(is_staff=True) for _ in range(THREADS)]

    def resolve(index: int) -> str:
        try:
            services.report_resolve(actor=admins[index], report=report, resolution="ban")
        except Conflict:
            return "conflict"
        return "resolved"

    outcomes = run_concurrently(resolve, THREADS)

    assert sorted(outcomes) == ["conflict"] * (THREADS - 1) + ["resolved"]
    assert Ban.objects.count() == 1
    assert ModerationAction.objects.filter(action="report_resolve").count() == 1
    assert ModerationAction.objects.filter(action="ban").count() == 1


def test_one_ban_however_many_moderators_ban_at_once(staff, live_room, troll, monkeypatch):
    closes: list[int] = []
    monkeypatch.setattr("rooms.broadcast.room_user_close", lambda room_id, user_id, code=4403: closes.append(user_id))
    moderators = [factories.UserFactory.create(is_staff=True) for _ in range(THREADS)]

    created = run_concurrently(
        lambda i: services.room_ban(actor=moderators[i], room=live_room, user=troll, reason=f"by {i}")[1], THREADS
    )

    assert sorted(created) == [False] * (THREADS - 1) + [True]
    assert Ban.objects.count() == 1
    assert ModerationAction.objects.filter(action="ban").count() == 1
    assert closes == [troll.pk]
