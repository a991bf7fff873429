"""Comments partitioned by month (PostgreSQL), and their retention (issue 16, part 3).

- a comment lands in its month's partition; ids stay unique and in order;
- the beat makes the months ahead, and a month made late takes its rows from the
  default partition;
- retention drops the months wholly past COMMENT_RETENTION_DAYS, with their reports,
  keeps the moderation log (its link cleared), and keeps everything younger;
- without partitions (SQLite) the same retention deletes rows.
"""

from __future__ import annotations

import datetime as dt
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from liveshop import partitions
from rooms.models import Comment, ModerationAction, Report
from rooms.services.retention import comments_retention_apply
from tests.helpers import on_postgresql

pytestmark = pytest.mark.django_db

postgresql_only = pytest.mark.skipif(not on_postgresql(), reason="partitions are PostgreSQL's")


def _comment(room, user, *, days_ago: float = 0, text: str = "Fresh tea?") -> Comment:
    comment = Comment.objects.create(room=room, user=user, text=text)
    if days_ago:
        Comment.objects.filter(pk=comment.pk).update(created_at=timezone.now() - timedelta(days=days_ago))
        comment.refresh_from_db()
    return comment


def _partition_of(comment: Comment) -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT tableoid::regclass::text FROM rooms_comment WHERE id = %s", [comment.pk])
        return str(cursor.fetchone()[0])


@postgresql_only
def test_a_comment_lands_in_its_months_partition(room, viewer):
    assert partitions.is_partitioned("rooms_comment")
    partitions.ensure_monthly("rooms_comment", start=timezone.now() - timedelta(days=60))
    now = _comment(room, viewer)
    old = _comment(room, viewer, days_ago=40)  # moved across partitions by the update
    assert _partition_of(now) == f"rooms_comment_p{timezone.now():%Y%m}"
    assert _partition_of(old) == f"rooms_comment_p{old.created_at.astimezone(dt.UTC):%Y%m}"
    later = Comment.objects.create(room=room, user=viewer, text="and again")
    assert now.pk < old.pk < later.pk  # one sequence: unique, in order
    assert [c.pk for c in Comment.objects.filter(room=room).order_by("-id")] == [later.pk, old.pk, now.pk]


@postgresql_only
def test_the_months_ahead_are_made_and_a_late_month_takes_its_rows_from_the_default(room, viewer):
    far = timezone.now() + timedelta(days=200)
    stray = Comment.objects.create(room=room, user=viewer, text="from the future")
    Comment.objects.filter(pk=stray.pk).update(created_at=far)
    assert _partition_of(stray) == "rooms_comment_pdefault"

    made = partitions.ensure_monthly("rooms_comment", months_ahead=8)

    assert f"rooms_comment_p{far.astimezone(dt.UTC):%Y%m}" in made
    assert _partition_of(stray) == f"rooms_comment_p{far.astimezone(dt.UTC):%Y%m}"
    assert partitions.ensure_monthly("rooms_comment", months_ahead=8) == []  # once


@postgresql_only
def test_retention_drops_whole_months_with_their_reports(settings, room, viewer, staff):
    settings.COMMENT_RETENTION_DAYS = 60
    gone = _comment(room, viewer, days_ago=120, text="an old show")
    kept_in_a_late_month = _comment(room, viewer, days_ago=59)
    recent = _comment(room, viewer)
    report = Report.objects.create(comment=gone, room=room, reporter=staff, reason="rude")
    act = ModerationAction.objects.create(actor=staff, action="comment_delete", room=room, comment=gone)
    partitions.ensure_monthly("rooms_comment", start=gone.created_at)

    result = comments_retention_apply()

    assert f"rooms_comment_p{gone.created_at.astimezone(dt.UTC):%Y%m}" in result.dropped
    assert not Comment.objects.filter(pk=gone.pk).exists()
    assert set(Comment.objects.values_list("pk", flat=True)) == {kept_in_a_late_month.pk, recent.pk}
    assert not Report.objects.filter(pk=report.pk).exists()
    act.refresh_from_db()
    assert act.comment_id is None  # the act stays in the log
    assert comments_retention_apply().dropped == []


def test_retention_without_partitions_deletes_rows(settings, monkeypatch, room, viewer, staff):
    monkeypatch.setattr(partitions, "is_partitioned", lambda table: False)
    settings.COMMENT_RETENTION_DAYS = 30
    gone = _comment(room, viewer, days_ago=31)
    kept = _comment(room, viewer, days_ago=29)
    Report.objects.create(comment=gone, room=room, reporter=staff, reason="spam")

    assert comments_retention_apply().deleted == 1

    assert list(Comment.objects.values_list("pk", flat=True)) == [kept.pk]
    assert not Report.objects.exists()


def test_retention_off_keeps_everything(settings, room, viewer):
    settings.COMMENT_RETENTION_DAYS = 0
    old = _comment(room, viewer, days_ago=400)
    comments_retention_apply()
    assert Comment.objects.filter(pk=old.pk).exists()
