"""`make run` (manage.py serve) adds the ingest server and the test pattern where it can,
and otherwise says in one line how to turn video on."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

import pytest

from liveshop.management.commands import serve
from liveshop.management.commands.seed_demo import DEMO_LIVE_TITLE
from rooms.models import Host, Room
from tests import factories

pytestmark = pytest.mark.django_db

PORTS = {"INGEST_RTMP_PORT": "21935", "INGEST_HLS_PORT": "28080", "INGEST_CONTROL_PORT": "28081"}


@pytest.fixture
def tools(monkeypatch: pytest.MonkeyPatch, settings: Any, tmp_path: Path) -> None:
    """nginx-rtmp and ffmpeg present (whether or not this machine has them), free ports."""
    monkeypatch.setattr(serve, "video_tools_missing", list)
    monkeypatch.setattr("streams.ingest.nginx_binary", lambda: "/usr/sbin/nginx")
    for name, port in PORTS.items():
        monkeypatch.setenv(name, port)
    monkeypatch.delenv("VIDEO", raising=False)
    monkeypatch.delenv("TEST_PATTERN", raising=False)
    settings.VAR_DIR = tmp_path
    settings.INGEST_CALLBACK_SECRET = ""


@pytest.fixture
def demo_room() -> Room:
    user = factories.UserFactory.create(username="farmer")
    host = Host.objects.create(user=user, kind="farmer", district="Wulong", verified=True)
    return Room.objects.create(host=host, title=DEMO_LIVE_TITLE, status=Room.Status.LIVE)


def test_with_the_tools_the_ingest_server_and_the_test_pattern_run(
    tools: None, demo_room: Room, tmp_path: Path
) -> None:
    video = serve.local_video(web_port=8000)
    argv = {p.name: p.argv for p in video.processes}
    assert list(argv) == ["ingest", "camera"]
    assert argv["ingest"][-2:] == ["-g", "daemon off;"]
    config = (tmp_path / "ingest" / "nginx-rtmp.conf").read_text()
    assert "listen 127.0.0.1:21935;" in config
    assert "http://127.0.0.1:8000/api/v1/streams/on-publish/?secret=" in config
    assert argv["camera"][2:] == [
        "publish_test_pattern",
        "--room",
        str(demo_room.pk),
        "--rtmp",
        "rtmp://127.0.0.1:21935/live",
    ]
    assert video.env["HLS_PUBLIC_URL"] == "http://127.0.0.1:28080/hls/"
    assert video.env["RTMP_CONTROL_URL"] == "http://127.0.0.1:28081/control"
    assert video.env["INGEST_CALLBACK_SECRET"]  # this run's own: never an empty secret
    assert video.env["INGEST_CALLBACK_SECRET"] in config
    assert any(demo_room.stream_key in note and "rtmp://127.0.0.1:21935/live" in note for note in video.notes)


def test_test_pattern_off_leaves_the_room_to_obs(tools: None, demo_room: Room, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TEST_PATTERN", "0")
    video = serve.local_video(web_port=8000)
    assert [p.name for p in video.processes] == ["ingest"]
    assert any(demo_room.stream_key in note for note in video.notes)


def test_without_the_tools_one_line_says_how(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("VIDEO", raising=False)
    monkeypatch.setattr(serve, "video_tools_missing", lambda: ["libnginx-mod-rtmp", "ffmpeg"])
    video = serve.local_video(web_port=8000)
    assert video.processes == []
    assert video.env == {}
    assert video.notes == ["video: off (libnginx-mod-rtmp, ffmpeg missing): `sudo make system-deps` turns it on"]


def test_video_off_and_a_taken_port_leave_video_out(tools: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VIDEO", "0")
    assert serve.local_video(web_port=8000).processes == []
    monkeypatch.delenv("VIDEO")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        monkeypatch.setenv("INGEST_HLS_PORT", str(taken.getsockname()[1]))
        video = serve.local_video(web_port=8000)
    assert video.processes == []
    assert "port in use: INGEST_HLS_PORT=" in video.notes[0]
