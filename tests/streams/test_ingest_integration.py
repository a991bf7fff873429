"""deploy/nginx-rtmp.conf run for real, its callbacks answered by a real liveshop server,
ffmpeg publishing a test pattern with a room's stream key.

The config is used as written, with only its placeholders, ports and paths rewritten.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from channels.db import database_sync_to_async

from rooms import services as room_services
from rooms.models import Room
from streams import services
from streams.management.commands.publish_test_pattern import title_lines
from streams.models import StreamSession
from tests.chaos.nodes_support import RoomClient, node_env, wait_until
from tests.servers import BASE_DIR
from tests.streams.ingest_support import Ingest, ffmpeg, running_ingest, stop

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def ingest(realtime_prefix: str, tmp_path: Path, settings: Any) -> Iterator[Ingest]:
    if not settings.REDIS_URL:
        pytest.skip("needs REDIS_URL")
    with running_ingest(run_dir=tmp_path, redis_url=settings.REDIS_URL, prefix=realtime_prefix) as ingest:
        # This process ends and suspends rooms itself: it drops publishers through the same control.
        settings.RTMP_CONTROL_URL = ingest.local.liveshop_env()["RTMP_CONTROL_URL"]
        settings.HLS_PUBLIC_URL = ingest.local.hls_url
        yield ingest


async def exited(process: subprocess.Popen[bytes], *, timeout: float, what: str) -> int:
    await wait_until(lambda: process.poll() is not None, timeout=timeout, what=what)
    return int(process.returncode)


def fetch(url: str) -> tuple[int, dict[str, str], bytes]:
    try:
        with urllib.request.urlopen(url, timeout=5) as answer:
            return answer.status, dict(answer.headers), answer.read()
    except OSError:
        return 0, {}, b""


def kinds(client: RoomClient) -> list[str]:
    return [event["type"] for event in client.events]


def everything_written(ingest: Ingest) -> str:
    """The HLS dir's file names and playlists, and nginx's logs (not ffmpeg's: the test's own)."""
    hls = list(ingest.hls_dir.rglob("*"))
    texts = [p.read_text(errors="replace") for p in hls if p.suffix == ".m3u8"]
    logs = [(ingest.run_dir / name).read_text(errors="replace") for name in ("rtmp-error.log", "nginx-out.log")]
    return "\n".join([str(p) for p in hls] + texts + logs)


async def test_publish_watch_refuse_and_drop(ingest: Ingest, live_room: Room) -> None:
    room = live_room
    key = room.stream_key
    client = RoomClient(name="viewer", room_id=room.pk, nodes=[ingest.liveshop], home=0)
    client.start()
    publisher = ffmpeg(ingest.rtmp_url(key), ingest.run_dir / "ffmpeg-1.log")
    others: list[subprocess.Popen[bytes]] = [publisher]
    try:
        await client.connected()
        # On air, heard on the room's socket within 3 s of nginx accepting the stream.
        await wait_until(lambda: "video.on_air" in kinds(client), timeout=30, what="video.on_air")
        heard_at = time.time()
        on_air = next(e for e in client.events if e["type"] == "video.on_air")
        session = await database_sync_to_async(StreamSession.objects.get)(room=room)
        # From liveshop accepting the stream to the socket hearing it (the wait above polls
        # every 50 ms, so this bound is loose by that much).
        assert heard_at - session.started_at.timestamp() < 3
        assert on_air["data"] == {"playback_url": ingest.playlist_url(room.pk)}

        # The playlist and a segment are served over HTTP, under the public name.
        def playlist_lists_a_segment() -> bool:
            code, _, body = fetch(ingest.playlist_url(room.pk))
            return code == 200 and b".ts" in body

        await wait_until(playlist_lists_a_segment, timeout=30, what="a playlist with a segment")
        code, headers, body = fetch(ingest.playlist_url(room.pk))
        assert headers["Content-Type"] == "application/vnd.apple.mpegurl"
        assert headers["Access-Control-Allow-Origin"] == "*"
        assert "no-cache" in headers["Cache-Control"]
        segment = next(line for line in body.decode().splitlines() if line.endswith(".ts"))
        code, headers, data = fetch(ingest.playlist_url(room.pk).rsplit("/", 1)[0] + "/" + segment)
        assert code == 200
        assert headers["Content-Type"] == "video/mp2t"
        assert len(data) > 0

        # A second publisher with the same key is refused; the first stays on.
        second = ffmpeg(ingest.rtmp_url(key), ingest.run_dir / "ffmpeg-2.log")
        others.append(second)
        assert await exited(second, timeout=30, what="the second publisher refused") != 0
        assert publisher.poll() is None

        # A wrong key is refused.
        wrong = ffmpeg(ingest.rtmp_url("not-the-key"), ingest.run_dir / "ffmpeg-3.log")
        others.append(wrong)
        assert await exited(wrong, timeout=30, what="a wrong key refused") != 0

        # Stopping the publisher takes the room off the air.
        stop(publisher)
        await wait_until(lambda: "video.off_air" in kinds(client), timeout=30, what="video.off_air")

        # A rotated key is refused, the new one accepted.
        room = await database_sync_to_async(services.stream_key_rotate)(room=room)
        old = ffmpeg(ingest.rtmp_url(key), ingest.run_dir / "ffmpeg-4.log")
        others.append(old)
        assert await exited(old, timeout=30, what="the rotated key refused") != 0
        client.events.clear()
        again = ffmpeg(ingest.rtmp_url(room.stream_key), ingest.run_dir / "ffmpeg-5.log")
        others.append(again)
        await wait_until(lambda: "video.on_air" in kinds(client), timeout=30, what="on air with the new key")

        # Suspending the room drops the publisher within 2 s and takes it off the air.
        started = time.monotonic()
        await database_sync_to_async(room_services.room_suspend)(room=room, reason="test")
        await exited(again, timeout=30, what="the publisher dropped")
        dropped_after = time.monotonic() - started
        await wait_until(lambda: "video.off_air" in kinds(client), timeout=30, what="off air after suspension")
        assert dropped_after < 2, dropped_after

        # A suspended room refuses its key.
        closed = ffmpeg(ingest.rtmp_url(room.stream_key), ingest.run_dir / "ffmpeg-6.log")
        others.append(closed)
        assert await exited(closed, timeout=30, what="a suspended room refused") != 0
    finally:
        for process in others:
            stop(process)
        await client.stop()

    # No file name, playlist or nginx log line carries either key.
    written = everything_written(ingest)
    assert key not in written
    assert room.stream_key not in written


async def test_ended_room_refuses_its_key(ingest: Ingest, room: Room) -> None:
    await database_sync_to_async(room_services.room_end)(room=room)
    refused = ffmpeg(ingest.rtmp_url(room.stream_key), ingest.run_dir / "ffmpeg.log")
    try:
        assert await exited(refused, timeout=30, what="an ended room refused") != 0
    finally:
        stop(refused)


async def test_make_runs_test_pattern_keeps_the_room_on_air(
    ingest: Ingest, live_room: Room, realtime_prefix: str, settings: Any
) -> None:
    """`manage.py publish_test_pattern` (what `make run` starts): on air, back on air with
    the new key after a rotation drops it, and gone with its ffmpeg on SIGTERM."""
    client = RoomClient(name="viewer", room_id=live_room.pk, nodes=[ingest.liveshop], home=0)
    client.start()
    env = os.environ | node_env(
        redis_url=settings.REDIS_URL, prefix=realtime_prefix, LIVESHOP_VAR_DIR=str(ingest.run_dir)
    )
    command = subprocess.Popen(
        [sys.executable, "manage.py", "publish_test_pattern", "--room", str(live_room.pk),
         "--rtmp", ingest.local.rtmp_url()],
        cwd=BASE_DIR, env=env, stdout=(ingest.run_dir / "pattern.log").open("ab"), stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        await client.connected()
        await wait_until(lambda: "video.on_air" in kinds(client), timeout=30, what="the test pattern on air")
        assert (ingest.run_dir / f"test-pattern-title-{live_room.pk}.txt").read_text() == live_room.title
        client.events.clear()
        await database_sync_to_async(services.stream_key_rotate)(room=live_room)
        await wait_until(lambda: "video.off_air" in kinds(client), timeout=30, what="dropped by the rotation")
        await wait_until(lambda: "video.on_air" in kinds(client), timeout=60, what="back on air with the new key")
        client.events.clear()
        command.send_signal(signal.SIGTERM)
        assert await exited(command, timeout=30, what="the command stopped") == 0
        await wait_until(lambda: "video.off_air" in kinds(client), timeout=30, what="off air once stopped")
    finally:
        stop(command)
        await client.stop()


def test_title_lines_fit_the_picture() -> None:
    assert title_lines("Spring tea and Yangjiao specialties, live from Xiannv Mountain") == (
        "Spring tea and Yangjiao specialties, live\nfrom Xiannv Mountain"
    )
    chinese = "仙女山春茶与羊角特产直播武隆农家现场带货欢迎大家下单购买新鲜好茶叶"  # 33 characters, 2 columns each
    assert title_lines(chinese) == f"{chinese[:22]}\n{chinese[22:]}"
    assert title_lines("短标题") == "短标题"
    assert title_lines("x" * 200).count("\n") == 2  # three lines at most
