"""Replays: the recording callback, building a show's replay from its recordings (real
ffmpeg on real files), the timeline that places comments and chapters, the API and who
may read it, buying from a replay, and retention."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from django.core.files.storage import default_storage
from django.utils import timezone

from rooms import services as room_services
from rooms.models import Comment, Room, RoomItem
from streams import replays
from streams.models import FeaturedMoment, ProductClip, Recording, Replay
from streams.replays import Piece, Timeline
from streams.selectors import stream_public_name
from tests import factories
from tests.helpers import assert_error
from tests.streams.conftest import SECRET
from tests.streams.replay_support import ffprobe, needs_ffmpeg, recorded

pytestmark = pytest.mark.django_db

T0 = datetime(2026, 12, 1, 10, 0, 0, tzinfo=timezone.get_current_timezone())


@pytest.fixture
def recordings_dir(tmp_path: Path, settings: Any) -> Path:
    directory = tmp_path / "rec"
    directory.mkdir()
    settings.INGEST_RECORDINGS_DIR = str(directory)
    settings.MEDIA_ROOT = tmp_path / "media"
    return directory


@pytest.fixture
def ended_room(live_room: Room) -> Room:
    return room_services.room_end(room=live_room)


@pytest.fixture
def shelf(live_room: Room) -> list[RoomItem]:
    return [factories.RoomItemFactory.create(room=live_room, live_price=900 + n) for n in range(2)]


# --- the timeline --------------------------------------------------------------------------


def test_the_timeline_plays_recordings_back_to_back_and_skips_the_gap():
    # 0-10 s of video from T0, then the host was off air 20 s, then 5 s more.
    timeline = Timeline([Piece(T0, 10.0, 0.0), Piece(T0 + timedelta(seconds=30), 5.0, 10.0)])
    at = lambda seconds: T0 + timedelta(seconds=seconds)  # noqa: E731
    assert timeline.duration == 15.0
    assert [timeline.offset(at(s)) for s in (-5, 0, 4.5, 10, 12, 29, 30, 33, 40)] == [0, 0, 4.5, 10, 10, 10, 10, 13, 15]
    assert Timeline.load(timeline.dump()).pieces == timeline.pieces

    # The wall-clock bounds of offsets: a range's comments are those whose offset is in it.
    moments = [at(s / 2) for s in range(-10, 90)]
    for low_s, high_s in [(0, 3), (4, 10), (10, 10), (10, 12), (9.5, 14), (15, 15), (3, None), (None, 2), (12, 100)]:
        low, high = timeline.wall_range(low_s, high_s)
        selected = {m for m in moments if (low is None or m >= low) and (high is None or m <= high)}
        expected = {
            m for m in moments
            if (low_s is None or timeline.offset(m) >= low_s) and (high_s is None or timeline.offset(m) <= high_s)
        }  # fmt: skip
        assert selected == expected, (low_s, high_s)


# --- the recording callback -------------------------------------------------------------------


def record_done(client: Any, room: Room, path: str, *, secret: str = SECRET, **extra: str) -> Any:
    form = {"call": "record_done", "app": "hls", "name": stream_public_name(room_id=room.pk), "path": path, **extra}
    return client.post(f"/api/v1/streams/on-record-done/?secret={secret}&node=ingest-1", form)


def test_a_recording_is_kept_once_and_only_from_the_recordings_dir(client, live_room, recordings_dir):
    name = f"{stream_public_name(room_id=live_room.pk)}-1764583200.flv"
    assert record_done(client, live_room, str(recordings_dir / name)).status_code == 200
    assert record_done(client, live_room, str(recordings_dir / name)).status_code == 200  # again: once
    assert list(Recording.objects.values_list("room_id", "path", "ingest_node")) == [(live_room.pk, name, "ingest-1")]
    assert not Replay.objects.exists()  # the show goes on

    other_room = factories.RoomFactory.create(host=live_room.host)
    for path in [
        "/etc/passwd",
        str(recordings_dir / ".." / name),
        str(recordings_dir / "sub" / name),
        str(recordings_dir / f"{stream_public_name(room_id=other_room.pk)}-1.flv"),  # another room's file
    ]:
        assert record_done(client, live_room, path).status_code == 200
    assert Recording.objects.count() == 1
    # A name that is not a room's public name (say, a stream key) is not ours either.
    assert (
        client.post(
            f"/api/v1/streams/on-record-done/?secret={SECRET}",
            {"call": "record_done", "app": "hls", "name": live_room.stream_key, "path": str(recordings_dir / "x.flv")},
        ).status_code
        == 200
    )
    assert Recording.objects.count() == 1


def test_the_recording_callback_needs_the_secret_and_its_fields(client, live_room, recordings_dir):
    path = str(recordings_dir / f"{stream_public_name(room_id=live_room.pk)}-1.flv")
    assert_error(record_done(client, live_room, path, secret="wrong"), 403, "permission_denied")
    missing = client.post(f"/api/v1/streams/on-record-done/?secret={SECRET}", {"call": "record_done"})
    assert_error(missing, 400, "invalid")
    assert_error(record_done(client, live_room, path, call="publish"), 400, "invalid")
    assert_error(record_done(client, live_room, path, app="live"), 403, "stream_refused")
    assert not Recording.objects.exists()


def test_an_ended_shows_last_recording_asks_for_its_replay(
    client, live_room, recordings_dir, django_capture_on_commit_callbacks, monkeypatch
):
    asked: list[tuple[int, int]] = []
    monkeypatch.setattr("streams.tasks.replay_build_task.delay", lambda *args: asked.append(args))
    with django_capture_on_commit_callbacks(execute=True):
        room_services.room_end(room=live_room)  # no recording yet: nothing to build
    assert asked == []
    assert not Replay.objects.exists()
    name = f"{stream_public_name(room_id=live_room.pk)}-1.flv"
    with django_capture_on_commit_callbacks(execute=True):
        record_done(client, live_room, str(recordings_dir / name))
    assert asked == [(live_room.pk, 1)]
    assert Replay.objects.get(room=live_room).status == Replay.Status.PROCESSING


# --- building -------------------------------------------------------------------------------------


def test_two_recordings_become_one_replay_with_chapters_comments_and_clips(
    client, live_room, shelf, viewer, recordings_dir
):
    needs_ffmpeg()
    tea, tofu = shelf
    # Two publishes: 0-8 s of the video from T0, then (the host reconnected) 6 s more
    # from T0+20 s, at another resolution: joined by re-encoding.
    recorded(live_room, recordings_dir, seconds=8, ended_at=T0 + timedelta(seconds=8))
    recorded(live_room, recordings_dir, seconds=6, ended_at=T0 + timedelta(seconds=26), size="192x108")
    FeaturedMoment.objects.create(room=live_room, item=tea, at=T0 - timedelta(seconds=30))  # before: at 0
    FeaturedMoment.objects.create(room=live_room, item=tofu, at=T0 + timedelta(seconds=22))  # 8 + 2
    said = {}
    for offset, text in [(3, "how much?"), (15, "in the gap"), (24, "great tofu"), (25, "removed")]:
        comment = Comment.objects.create(room=live_room, user=viewer, text=text)
        Comment.objects.filter(pk=comment.pk).update(created_at=T0 + timedelta(seconds=offset))
        said[text] = comment
    Comment.objects.filter(pk=said["removed"].pk).update(deleted_at=T0 + timedelta(seconds=40))
    room_services.room_end(room=live_room)
    replay = replays.replay_request(room_id=live_room.pk)

    assert replays.replay_build(room_id=live_room.pk, version=replay.version) == "ready"

    replay.refresh_from_db()
    assert replay.status == Replay.Status.READY
    assert replay.attempts == 1
    assert replay.duration_s == pytest.approx(14, abs=0.5)
    assert replay.chapters == [{"at_s": 0.0, "item": tea.pk}, {"at_s": pytest.approx(10, abs=0.5), "item": tofu.pk}]
    playlist = default_storage.path(replay.playlist)
    assert "#EXT-X-ENDLIST" in Path(playlist).read_text()
    probed = ffprobe(playlist)
    assert float(probed["format"]["duration"]) == pytest.approx(14, abs=0.5)

    body = client.get(f"/api/v1/rooms/{live_room.pk}/replay/").json()
    assert body["status"] == "ready"
    assert body["error"] == ""
    assert body["playback_url"] == f"http://testserver/media/{replay.playlist}"
    chapters = [(c["at_s"], c["item"]["id"]) for c in body["chapters"]]
    assert chapters == [(0.0, tea.pk), (replay.chapters[1]["at_s"], tofu.pk)]
    assert client.get(body["playback_url"]).status_code == 200  # served from MEDIA_ROOT

    comments = client.get(f"/api/v1/rooms/{live_room.pk}/replay/comments/").json()["results"]
    expected = [("how much?", 3.0), ("in the gap", 8.0), ("great tofu", 12.0)]  # the gap's at the 2nd's start
    assert [(c["text"], pytest.approx(c["at_s"], abs=0.2)) for c in comments] == expected
    assert comments[0]["user"] == {"id": viewer.pk, "display_name": viewer.public_name}
    window = client.get(f"/api/v1/rooms/{live_room.pk}/replay/comments/?from_s=5&to_s=9").json()["results"]
    assert [c["text"] for c in window] == ["in the gap"]

    # A clip per chapter, on the product, playable.
    clips = {clip.product_id: clip for clip in ProductClip.objects.filter(room=live_room)}
    assert set(clips) == {tea.sku.product_id, tofu.sku.product_id}
    assert clips[tofu.sku.product_id].duration_s == pytest.approx(4, abs=1.5)
    assert {s["codec_type"] for s in ffprobe(default_storage.path(clips[tea.sku.product_id].file))["streams"]} == {
        "video",
        "audio",
    }
    product = client.get(f"/api/v1/products/{tofu.sku.product_id}/").json()
    assert [(c["room"], c["at_s"]) for c in product["clips"]] == [(live_room.pk, replay.chapters[1]["at_s"])]
    assert client.get(product["clips"][0]["url"]).status_code == 200


def test_a_recording_ffmpeg_cannot_read_ends_the_replay_failed_with_the_reason(client, ended_room, recordings_dir):
    needs_ffmpeg()
    name = f"{stream_public_name(room_id=ended_room.pk)}-1.flv"
    (recordings_dir / name).write_bytes(b"FLV\x01 this is not a video" * 100)
    Recording.objects.create(room=ended_room, path=name, ended_at=T0)
    replay = replays.replay_request(room_id=ended_room.pk)

    assert replays.replay_build(room_id=ended_room.pk, version=replay.version) == "failed"

    body = client.get(f"/api/v1/rooms/{ended_room.pk}/replay/").json()
    assert body["status"] == "failed"
    assert body["playback_url"] is None
    assert "could not read any recording" in body["error"]
    assert name in body["error"]
    assert not default_storage.exists(f"replays/{ended_room.pk}")


def test_a_build_overtaken_by_a_newer_one_stores_nothing(ended_room, recordings_dir):
    needs_ffmpeg()
    recorded(ended_room, recordings_dir, seconds=3, ended_at=T0)
    first = replays.replay_request(room_id=ended_room.pk)
    second = replays.replay_request(room_id=ended_room.pk)  # another recording came
    assert (first.version, second.version) == (1, 2)
    assert replays.replay_build(room_id=ended_room.pk, version=1) == "stale"
    assert replays.replay_build(room_id=ended_room.pk, version=2) == "ready"
    assert replays.replay_build(room_id=ended_room.pk, version=2) == "stale"  # delivered twice: once
    replay = Replay.objects.get(room=ended_room)
    _dirs, _files = default_storage.listdir(f"replays/{ended_room.pk}")
    assert len(_dirs) == 1
    assert replay.prefix.endswith(_dirs[0])


# --- who may read it, and buying from it ------------------------------------------------------------


@pytest.fixture
def ready_replay(ended_room: Room, shelf: list[RoomItem]) -> Replay:
    return Replay.objects.create(
        room=ended_room, status=Replay.Status.READY, playlist="replays/x/index.m3u8", duration_s=60,
        chapters=[{"at_s": 5.0, "item": shelf[0].pk}], timeline=Timeline([Piece(T0, 60.0, 0.0)]).dump(),
    )  # fmt: skip


@pytest.mark.parametrize("who", ["anonymous", "viewer", "other_host", "moderator", "host", "staff"])
def test_anyone_reads_an_ended_shows_replay_and_a_suspended_one_only_its_host_and_staff(
    client_for, ready_replay, who, request
):
    room = ready_replay.room
    user = None if who == "anonymous" else request.getfixturevalue({"host": "host"}.get(who, who))
    client = client_for(user)
    assert client.get(f"/api/v1/rooms/{room.pk}/replay/").json()["status"] == "ready"
    Room.objects.filter(pk=room.pk).update(status=Room.Status.SUSPENDED)
    answer = client.get(f"/api/v1/rooms/{room.pk}/replay/")
    comments = client.get(f"/api/v1/rooms/{room.pk}/replay/comments/")
    if who in ("host", "staff"):
        assert answer.status_code == 200
        assert comments.status_code == 200
    else:
        assert_error(answer, 404, "not_found")
        assert_error(comments, 404, "not_found")


def test_a_live_or_unrecorded_show_has_no_replay_and_bad_offsets_are_400(client, live_room, recordings_dir):
    none: dict[str, object] = {"status": "none", "playback_url": None, "duration_s": None, "chapters": [], "error": ""}
    assert client.get(f"/api/v1/rooms/{live_room.pk}/replay/").json() == none
    assert client.get(f"/api/v1/rooms/{live_room.pk}/replay/comments/").json()["results"] == []
    for query in ["from_s=abc", "to_s=-1", "from_s=1e9", "to_s=nan"]:
        assert_error(client.get(f"/api/v1/rooms/{live_room.pk}/replay/comments/?{query}"), 400, "invalid")
    assert_error(client.get("/api/v1/rooms/999999/replay/"), 404, "not_found")


# --- retention -------------------------------------------------------------------------------------


def test_replays_clips_and_recordings_go_after_the_retention_and_the_stats_stay(
    client, ended_room, shelf, recordings_dir, settings
):
    needs_ffmpeg()
    recording = recorded(ended_room, recordings_dir, seconds=6, ended_at=T0)
    FeaturedMoment.objects.create(room=ended_room, item=shelf[0], at=T0 - timedelta(seconds=5))
    replay = replays.replay_request(room_id=ended_room.pk)
    assert replays.replay_build(room_id=ended_room.pk, version=replay.version) == "ready"
    replay.refresh_from_db()
    clip = ProductClip.objects.get(room=ended_room)
    # Young: kept.
    assert replays.replays_sweep() == (0, 0)

    later = ended_room.ended_at + timedelta(days=settings.REPLAY_RETENTION_DAYS, minutes=1)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("django.db.transaction.on_commit", lambda func, robust=False: func())
        assert replays.replays_sweep(now=later) == (0, 1)
    assert client.get(f"/api/v1/rooms/{ended_room.pk}/replay/").json()["status"] == "none"
    assert not default_storage.exists(replay.playlist)
    assert not default_storage.exists(clip.file)
    assert not (recordings_dir / recording.path).exists()
    assert not ProductClip.objects.exists()
    assert Room.objects.get(pk=ended_room.pk).status == Room.Status.ENDED  # the show and its figures stay
    assert replays.replays_sweep(now=later) == (0, 0)  # once


def test_a_ready_replay_stays_watchable_while_a_late_recording_is_added(client, ended_room, recordings_dir):
    needs_ffmpeg()
    recorded(ended_room, recordings_dir, seconds=3, ended_at=T0)
    first = replays.replay_request(room_id=ended_room.pk)
    assert replays.replay_build(room_id=ended_room.pk, version=first.version) == "ready"
    before = client.get(f"/api/v1/rooms/{ended_room.pk}/replay/").json()

    # A recording reported late asks for version 2; version 1 plays meanwhile.
    late = recorded(ended_room, recordings_dir, seconds=4, ended_at=T0 + timedelta(seconds=10))
    second = replays.replay_request(room_id=ended_room.pk)
    assert (second.version, second.status) == (2, Replay.Status.READY)
    assert client.get(f"/api/v1/rooms/{ended_room.pk}/replay/").json() == before
    # Its build fails (the late file is unreadable, the first gone): still version 1, the reason kept.
    (recordings_dir / late.path).write_bytes(b"not a video")
    Recording.objects.exclude(pk=late.pk).update(path="")
    assert replays.replay_build(room_id=ended_room.pk, version=2) == "failed"
    assert client.get(f"/api/v1/rooms/{ended_room.pk}/replay/").json() == before
    assert "could not read" in Replay.objects.get(room=ended_room).error
