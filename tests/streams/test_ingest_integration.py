"""deploy/nginx-rtmp.conf run for real, its callbacks answered by a real liveshop server,
ffmpeg publishing a test pattern with a room's stream key.

The config is used as written, with only its placeholders, ports and paths rewritten.
"""

from __future__ import annotations

import shutil
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from channels.db import database_sync_to_async

from rooms import services as room_services
from rooms.models import Room
from streams import services
from streams.ingest import local_ingest_config
from streams.models import StreamSession
from streams.selectors import stream_public_name
from tests.chaos.nodes_support import RoomClient, node_env, wait_until
from tests.servers import Server, free_port, start_uvicorn, wait_for_port

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

RTMP_MODULE = Path("/usr/lib/nginx/modules/ngx_rtmp_module.so")
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
SECRET = "integration-ingest-secret"


@dataclass
class Ingest:
    rtmp_port: int
    hls_port: int
    control_port: int
    run_dir: Path
    liveshop: Server
    process: subprocess.Popen[bytes]

    @property
    def hls_dir(self) -> Path:
        return self.run_dir / "rtmp" / "hls"

    def rtmp_url(self, key: str) -> str:
        return f"rtmp://127.0.0.1:{self.rtmp_port}/live/{key}"

    def playlist_url(self, room_id: int) -> str:
        return f"http://127.0.0.1:{self.hls_port}/hls/{stream_public_name(room_id=room_id)}.m3u8"


def ingest_config(*, liveshop: Server, rtmp_port: int, hls_port: int, control_port: int, run_dir: Path) -> str:
    return local_ingest_config(
        liveshop_url=liveshop.http, secret=SECRET, node="ingest-test", rtmp_port=rtmp_port,
        hls_port=hls_port, control_port=control_port, run_dir=run_dir,
    )  # fmt: skip


@pytest.fixture
def ingest(realtime_prefix: str, tmp_path: Path, settings: Any) -> Iterator[Ingest]:
    if not RTMP_MODULE.exists() or shutil.which("ffmpeg") is None:
        pytest.skip("needs nginx's RTMP module and ffmpeg: make system-deps installs libnginx-mod-rtmp ffmpeg")
    if not settings.REDIS_URL:
        pytest.skip("needs REDIS_URL")
    rtmp_port, hls_port, control_port = free_port(), free_port(), free_port()
    control = f"http://127.0.0.1:{control_port}/control"
    hls = f"http://127.0.0.1:{hls_port}/hls/"
    liveshop = start_uvicorn(
        node_env(
            redis_url=settings.REDIS_URL,
            prefix=realtime_prefix,
            INGEST_CALLBACK_SECRET=SECRET,
            RTMP_INGEST_URL=f"rtmp://127.0.0.1:{rtmp_port}/live",
            HLS_PUBLIC_URL=hls,
            RTMP_CONTROL_URL=control,
        ),
        tmp_path,
    )
    # This process ends and suspends rooms itself: it drops publishers through the same control.
    settings.RTMP_CONTROL_URL = control
    settings.HLS_PUBLIC_URL = hls
    (tmp_path / "rtmp" / "hls").mkdir(parents=True)
    config = tmp_path / "nginx-rtmp.conf"
    config.write_text(
        ingest_config(
            liveshop=liveshop, rtmp_port=rtmp_port, hls_port=hls_port, control_port=control_port, run_dir=tmp_path
        )
    )
    log = tmp_path / "nginx-out.log"
    nginx = subprocess.Popen(
        [NGINX, "-p", str(tmp_path), "-e", str(tmp_path / "rtmp-error.log"), "-c", str(config), "-g", "daemon off;"],
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
    )
    try:
        wait_for_port(rtmp_port, nginx)
        wait_for_port(hls_port, nginx)
        yield Ingest(rtmp_port, hls_port, control_port, tmp_path, liveshop, nginx)
    finally:
        nginx.terminate()
        try:
            nginx.wait(10)
        except subprocess.TimeoutExpired:
            nginx.kill()
        liveshop.stop()


def ffmpeg(url: str, log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [
            "ffmpeg",
            "-hide_banner",
            "-loglevel",
            "warning",
            "-re",
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=320x180:rate=15",
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-tune",
            "zerolatency",
            "-g",
            "15",
            "-f",
            "flv",
            url,
        ],
        stdin=subprocess.DEVNULL,
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
    )


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


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
