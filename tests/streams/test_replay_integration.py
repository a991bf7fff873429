"""Replays for real: deploy/nginx-rtmp.conf records what ffmpeg publishes and tells a real
liveshop server; a real Celery worker on the Redis broker builds the replay once the show
ends. And a worker SIGKILLed in the middle of a build: nothing is marked ready, the task
comes back, and a fresh worker finishes it."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from django.conf import settings as django_settings
from django.core.files.storage import default_storage
from django.db import connection
from django.utils import timezone

from rooms import services as room_services
from rooms.models import Room, RoomItem
from rooms.services.moderation import comment_delete
from streams import replays
from streams.ingest import pattern_publisher_argv
from streams.models import FeaturedMoment, ProductClip, Recording, Replay, StreamSession
from tests import factories
from tests.chaos.worker_support import Worker, broker_clear, worker_start
from tests.servers import database_url, wait_until
from tests.streams.ingest_support import Ingest, running_ingest, stop
from tests.streams.replay_support import ffprobe, needs_ffmpeg, recorded

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def media(tmp_path: Path, settings: Any) -> Path:
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


@pytest.fixture
def workers(tmp_path: Path) -> Iterator[list[Worker]]:
    if connection.vendor != "postgresql" or not django_settings.REDIS_URL:
        pytest.skip("needs PostgreSQL and Redis (DATABASE_URL, REDIS_URL)")
    broker_clear()
    started: list[Worker] = []
    yield started
    for worker in started:
        worker.stop()
    broker_clear()


def start_worker(workers: list[Worker], tmp_path: Path, name: str, recordings: Path, media: Path) -> Worker:
    env = {"INGEST_RECORDINGS_DIR": str(recordings), "MEDIA_ROOT": str(media)}
    worker = worker_start(tmp_path, name=name, concurrency=1, env=env)
    workers.append(worker)
    worker.wait_ready()
    return worker


@pytest.fixture
def ingest(realtime_prefix: str, tmp_path: Path, settings: Any, media: Path) -> Iterator[Ingest]:
    if not settings.REDIS_URL:
        pytest.skip("needs REDIS_URL")
    run_dir = tmp_path / "ingest"
    run_dir.mkdir()
    with running_ingest(
        run_dir=run_dir, redis_url=settings.REDIS_URL, prefix=realtime_prefix, env={"MEDIA_ROOT": str(media)}
    ) as ingest:
        settings.RTMP_CONTROL_URL = ingest.local.liveshop_env()["RTMP_CONTROL_URL"]
        settings.HLS_PUBLIC_URL = ingest.local.hls_url
        settings.INGEST_RECORDINGS_DIR = str(ingest.local.recordings_dir)
        yield ingest


PUBLISHED_S = 9
PUBLISHED = ("-t", str(PUBLISHED_S), "-f", "flv")


def shelf(room: Room) -> list[RoomItem]:
    return [factories.RoomItemFactory.create(room=room, position=n) for n in range(2)]


def test_a_published_show_becomes_a_replay_with_its_moments(
    ingest: Ingest, workers: list[Worker], tmp_path: Path, media: Path, live_room: Room, viewer: Any, client: Any
) -> None:
    tea, tofu = shelf(live_room)
    log = tmp_path / "ffmpeg.log"
    start_worker(workers, tmp_path, "replays", ingest.local.recordings_dir, media)
    # Nine seconds of picture and sound, published as OBS would, then a clean end.
    argv = pattern_publisher_argv(ingest.rtmp_url(live_room.stream_key), size="320x180", muxer=PUBLISHED)
    publisher = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log.open("ab"), stderr=subprocess.STDOUT)
    try:
        session = wait_until(lambda: StreamSession.objects.filter(room=live_room).first(), timeout=30, what="on air")
        began = session.started_at

        def at(seconds: float) -> None:  # the show's clock: wait until it reads `seconds`
            wait_until(lambda: (timezone.now() - began).total_seconds() >= seconds, timeout=seconds + 30)

        happened: dict[str, float] = {}

        def mark(name: str) -> None:
            happened[name] = (timezone.now() - began).total_seconds()

        at(2)
        room_services.room_item_feature(item=tea)
        mark("tea")
        at(3)
        first = room_services.comment_create(room=live_room, user=viewer, text="How is it brewed?", role="viewer")
        mark("first")
        at(5)
        room_services.room_item_feature(item=tofu)
        mark("tofu")
        at(6)
        second = room_services.comment_create(room=live_room, user=viewer, text="Two packs please", role="viewer")
        mark("second")
        rude = room_services.comment_create(room=live_room, user=viewer, text="rude words", role="viewer")
        comment_delete(actor=live_room.host.user, comment=rude, reason="rude")
        wait_until(lambda: publisher.poll() is not None, timeout=60, what="the publisher done")
    finally:
        stop(publisher)

    # The recording is done (nginx said so); the show ends; the worker builds the replay.
    wait_until(lambda: Recording.objects.filter(room=live_room).exists(), timeout=30, what="on_record_done")
    room_services.room_end(room=Room.objects.get(pk=live_room.pk))
    replay = wait_until(
        lambda: Replay.objects.filter(room=live_room).exclude(status=Replay.Status.PROCESSING).first(),
        timeout=120, what="the replay built",
    )  # fmt: skip
    assert replay.status == Replay.Status.READY, replay.error

    body = client.get(f"/api/v1/rooms/{live_room.pk}/replay/").json()
    assert body["duration_s"] == pytest.approx(PUBLISHED_S, abs=1)
    chapters = {chapter["item"]["id"]: chapter["at_s"] for chapter in body["chapters"]}
    assert chapters == {tea.pk: pytest.approx(happened["tea"], abs=1), tofu.pk: pytest.approx(happened["tofu"], abs=1)}
    comments = client.get(f"/api/v1/rooms/{live_room.pk}/replay/comments/").json()["results"]
    assert [comment["id"] for comment in comments] == [first.pk, second.pk]  # the removed one is not there
    assert comments[0]["at_s"] == pytest.approx(happened["first"], abs=1)
    assert comments[1]["at_s"] == pytest.approx(happened["second"], abs=1)

    # What viewers play: the playlist and its segments, served, one VOD.
    playlist = body["playback_url"]
    answer = client.get(playlist)
    assert answer.status_code == 200
    assert answer["Content-Type"] == "application/vnd.apple.mpegurl"
    text = b"".join(answer.streaming_content).decode()
    assert "#EXT-X-PLAYLIST-TYPE:VOD" in text
    assert "#EXT-X-ENDLIST" in text
    assert float(ffprobe(default_storage.path(replay.playlist))["format"]["duration"]) == pytest.approx(
        PUBLISHED_S, abs=1
    )
    # The product clips exist and play.
    for clip in ProductClip.objects.filter(room=live_room):
        probed = ffprobe(default_storage.path(clip.file))
        assert float(probed["format"]["duration"]) > 1
        assert {stream["codec_type"] for stream in probed["streams"]} == {"video", "audio"}
    assert {clip.product_id for clip in ProductClip.objects.filter(room=live_room)} == {
        tea.sku.product_id,
        tofu.sku.product_id,
    }
    # The recording's file name carries the public name, never the stream key.
    assert live_room.stream_key not in Recording.objects.get(room=live_room).path


def _waiting_on_a_lock(worker: Worker) -> bool:
    return any(backend.get("wait_event_type") == "Lock" for backend in worker.backends())


def test_a_worker_killed_mid_build_leaves_nothing_ready_and_the_build_runs_again(
    workers: list[Worker], tmp_path: Path, media: Path, live_room: Room, settings: Any
) -> None:
    needs_ffmpeg()
    recordings = tmp_path / "rec"
    recordings.mkdir()
    settings.INGEST_RECORDINGS_DIR = str(recordings)
    tea = shelf(live_room)[0]
    room = room_services.room_end(room=live_room)
    recorded(room, recordings, seconds=12, ended_at=timezone.now())
    FeaturedMoment.objects.create(room=room, item=tea, at=timezone.now())
    replay = replays.replay_request(room_id=room.pk)  # committed: the task is on the broker

    # Hold the replay's row: the build does all its work, stores its files, and then
    # waits to mark the replay ready. It is killed there, its files stored, its row not.
    with psycopg.connect(database_url()) as holder:
        holder.execute("SELECT id FROM streams_replay WHERE id = %s FOR UPDATE", [replay.pk])
        first = start_worker(workers, tmp_path, "first", recordings, media)
        wait_until(lambda: _waiting_on_a_lock(first), timeout=120, interval=0.05, what="the build at its commit")
        first.kill()
        holder.rollback()
    replay.refresh_from_db()
    assert (replay.status, replay.playlist, replay.attempts) == (Replay.Status.PROCESSING, "", 0)
    builds, _files = default_storage.listdir(f"replays/{room.pk}")
    assert len(builds) == 1  # stored, and referred to by nothing

    started = time.monotonic()
    start_worker(workers, tmp_path, "second", recordings, media)
    wait_until(
        lambda: Replay.objects.get(pk=replay.pk).status != Replay.Status.PROCESSING, timeout=120, what="the rebuild"
    )
    replay.refresh_from_db()
    assert replay.status == Replay.Status.READY
    assert replay.attempts == 1
    print(f"rebuilt {time.monotonic() - started:.1f} s after the second worker started")
    # The finished build is a new one; every segment its playlist names is there.
    listing = Path(default_storage.path(replay.playlist))
    assert all((listing.parent / line).exists() for line in listing.read_text().splitlines() if line.endswith(".ts"))
    builds, _files = default_storage.listdir(f"replays/{room.pk}")
    assert len(builds) == 2
