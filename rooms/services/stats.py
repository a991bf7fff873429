"""The durable report of a show's audience: written once, when the show ends.

A live room's views, visitors, peak and likes are Redis counters (rooms/realtime/). When
the room ends (or is suspended), the process that ended it reads them at once, at the
moment of the end (a reload of the ended room's page still counts a view afterwards),
and hands them to a Celery task that writes `RoomStatsReport`. The row is written once:
a second delivery of the task, or the sweeper, never overwrites it (with figures read
after a Redis flush, say). The sweeper writes the report of a room whose task was lost.

While a room is live, a beat task copies its counters to PostgreSQL every few seconds
(`room_counters_checkpoint`): a Redis that restarts empty gets them back, less what came
in after the last copy (rooms/realtime/redis_backend.py, `counters_restore`).
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from rooms.broadcast import room_counters
from rooms.models import Room, RoomSequence, RoomStatsReport
from rooms.realtime.backend import get_backend

logger = logging.getLogger(__name__)

# The sweeper leaves a just-ended room to its task for this long.
SWEEP_GRACE_S = 30
CLOSED_STATUSES = (Room.Status.ENDED, Room.Status.SUSPENDED)


@dataclass(frozen=True)
class AudienceFigures:
    views: int
    unique_viewers: int
    peak_viewers: int
    likes: int


def room_audience_figures(*, room_id: int) -> AudienceFigures:
    """The room's counters now (Redis; the web process's memory in the embedded default)."""
    counters = room_counters(room_id)
    return AudienceFigures(
        views=counters.views, unique_viewers=counters.unique, peak_viewers=counters.peak, likes=counters.likes
    )


def room_stats_report_write(*, room_id: int, figures: AudienceFigures | None = None) -> bool:
    """Write the ended room's report once, from `figures` (else the counters now).

    Returns whether this call wrote it: False when the room is not over, or its report
    exists already.
    """
    if not Room.objects.filter(pk=room_id, status__in=CLOSED_STATUSES).exists():
        return False
    if RoomStatsReport.objects.filter(room_id=room_id).exists():
        return False
    figures = figures or room_audience_figures(room_id=room_id)
    try:
        with transaction.atomic():
            RoomStatsReport.objects.create(room_id=room_id, **asdict(figures))
    except IntegrityError:  # written by a concurrent run
        return False
    return True


def room_stats_report_on_commit(*, room: Room) -> None:
    """After the transaction that ended the room commits: read its counters and enqueue
    the task that writes its report. A broker outage is logged; the sweeper catches up."""
    from rooms.tasks import room_stats_report_task

    room_id = room.pk

    def capture_and_enqueue() -> None:
        figures = room_audience_figures(room_id=room_id)
        room_stats_report_task.delay(room_id, asdict(figures))

    transaction.on_commit(capture_and_enqueue, robust=True)


def room_stats_reports_sweep(*, batch: int = 200) -> int:
    """The beat sweeper: write the reports of rooms over for a while without one.

    Only where any process can read the counters (Redis): in the embedded default they
    live in the web process's memory, which this worker cannot see.
    """
    if settings.REALTIME_BACKEND != "redis":
        return 0
    due = (
        Room.objects.filter(
            status__in=CLOSED_STATUSES,
            ended_at__lte=timezone.now() - timedelta(seconds=SWEEP_GRACE_S),
            stats_report__isnull=True,
        )
        .order_by("ended_at")
        .values_list("pk", flat=True)[:batch]
    )
    written = sum(room_stats_report_write(room_id=room_id) for room_id in list(due))
    if written:
        logger.info("wrote %s missing room stats report(s)", written)
    return written


def room_counters_checkpoint() -> int:
    """Copy the live rooms' counters to PostgreSQL (RoomSequence); returns how many."""
    room_ids = list(Room.objects.filter(status=Room.Status.LIVE).values_list("pk", flat=True))
    saved = get_backend().counters_checkpoint(room_ids) if room_ids else {}
    now = timezone.now()
    RoomSequence.objects.bulk_create(
        [
            RoomSequence(
                room_id=room_id,
                views=figures.views,
                likes=figures.likes,
                peak_viewers=figures.peak,
                visitors=figures.visitors,
                counted_at=now,
            )
            for room_id, figures in saved.items()
        ],
        update_conflicts=True,
        unique_fields=["room_id"],
        update_fields=["views", "likes", "peak_viewers", "visitors", "counted_at"],
    )
    return len(saved)
