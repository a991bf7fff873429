"""Celery tasks of streams: load by id, call a service, nothing else."""

from __future__ import annotations

from typing import Any

from celery import Task, shared_task
from django.db import OperationalError

from streams import replays


class ReplayBuildTask(Task):
    def on_failure(self, exc: BaseException, task_id: str, args: Any, kwargs: Any, einfo: Any) -> None:
        # Retries spent (or an error nobody retries): the replay ends failed, with the reason.
        room_id, version = args
        replays.replay_build_failed(room_id=room_id, version=version, reason=f"{type(exc).__name__}: {exc}")


@shared_task(
    base=ReplayBuildTask,
    acks_late=True,
    autoretry_for=(replays.ReplayBuildError, OperationalError, OSError),
    retry_backoff=5,
    max_retries=3,
)
def replay_build_task(room_id: int, version: int) -> str:
    """Build the room's replay (its recordings as one HLS VOD, chapters, product clips)."""
    return replays.replay_build(room_id=room_id, version=version)


@shared_task(ignore_result=True)
def replays_sweep_task() -> tuple[int, int]:
    """Beat, every five minutes: replays whose recordings never said they were done, lost
    builds, and replays past their retention."""
    return replays.replays_sweep()
