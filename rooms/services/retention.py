"""How long comments are kept: COMMENT_RETENTION_DAYS (0: for ever).

In PostgreSQL the comments are partitioned by month (rooms/migrations/0011): the beat
creates the months ahead, and drops each month once all of it is older than the
retention, after deleting the reports of its comments and clearing the moderation log's
links to them (the log keeps the act). Elsewhere (SQLite) old rows are deleted in
batches, as Django would.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db import connection
from django.utils import timezone

from liveshop import partitions
from rooms.models import Comment, ModerationAction, Report

TABLE = "rooms_comment"


def _forget_references(partition: str) -> None:
    """What refers to a month's comments, before the month is dropped (no foreign keys)."""
    with connection.cursor() as cursor:
        cursor.execute(f"DELETE FROM rooms_report WHERE comment_id IN (SELECT id FROM {partition})")
        cursor.execute(
            f"UPDATE rooms_moderationaction SET comment_id = NULL WHERE comment_id IN (SELECT id FROM {partition})"
        )


@dataclass(frozen=True)
class Retention:
    created: list[str]  # partitions made
    dropped: list[str]  # partitions dropped
    deleted: int = 0  # rows deleted (without partitions)


def comments_retention_apply(*, batch: int = 10_000) -> Retention:
    """The beat's hourly pass: the months ahead created; comments past retention gone."""
    created = partitions.ensure_monthly(TABLE, months_ahead=2)
    days = settings.COMMENT_RETENTION_DAYS
    if days <= 0:
        return Retention(created=created, dropped=[])
    cutoff = timezone.now() - timedelta(days=days)
    if partitions.is_partitioned(TABLE):
        return Retention(created=created, dropped=partitions.drop_before(TABLE, cutoff, before_drop=_forget_references))
    deleted = 0
    while ids := list(Comment.objects.filter(created_at__lt=cutoff).values_list("pk", flat=True)[:batch]):
        Report.objects.filter(comment_id__in=ids).delete()
        ModerationAction.objects.filter(comment_id__in=ids).update(comment=None)
        deleted += Comment.objects.filter(pk__in=ids).delete()[0]
    return Retention(created=created, dropped=[], deleted=deleted)
