"""A followed host goes live: every follower is told, in batches, each batch its own task,
so that a host with 100,000 followers never holds a worker (or anything else) for long."""

from __future__ import annotations

from typing import Any

from celery import shared_task

from notifications import triggers

# Followers per task: one INSERT of this many rows and one pipeline of as many PUBLISHes.
FANOUT_BATCH = 1000


@shared_task(acks_late=True, ignore_result=True)
def host_live_fanout_task(room_id: int, after_follow_id: int = 0) -> dict[str, Any]:
    """Tell the next FANOUT_BATCH followers of the room's host (by follow id), then hand
    the rest to a new task. A redelivered batch adds nothing (one notification per user
    and show)."""
    told, last_follow_id = triggers.host_live_batch(room_id=room_id, after_follow_id=after_follow_id, size=FANOUT_BATCH)
    if last_follow_id is not None:
        host_live_fanout_task.delay(room_id, last_follow_id)
    return {"told": told, "next": last_follow_id}


@shared_task(acks_late=True, ignore_result=True)
def push_send_task(notification_ids: list[int]) -> dict[str, int]:
    """Web Push for stored notifications (notifications.push)."""
    from notifications.push import push_send

    return push_send(notification_ids=notification_ids)
