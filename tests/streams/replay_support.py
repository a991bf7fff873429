"""Recordings for replay tests, as nginx-rtmp writes them (FLV, H.264 and AAC, a key frame
a second), made by ffmpeg without a server: fast, and of a known length."""

from __future__ import annotations

import json
import shutil
import subprocess
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from rooms.models import Room
from streams.models import Recording
from streams.selectors import stream_public_name


def needs_ffmpeg() -> None:
    if shutil.which("ffmpeg") is None or shutil.which("ffprobe") is None:
        pytest.skip("needs ffmpeg: make system-deps installs it")


def make_recording(path: Path, *, seconds: float, size: str = "160x90", rate: int = 15) -> Path:
    subprocess.run(
        [
            "ffmpeg", "-hide_banner", "-loglevel", "error", "-y",
            "-f", "lavfi", "-i", f"testsrc2=size={size}:rate={rate}",
            "-f", "lavfi", "-i", "sine=frequency=330:sample_rate=44100",
            "-t", str(seconds), "-c:v", "libx264", "-preset", "ultrafast", "-g", str(rate), "-pix_fmt", "yuv420p",
            "-c:a", "aac", "-b:a", "32k", "-f", "flv", str(path),
        ],
        check=True, timeout=120,
    )  # fmt: skip
    return path


def recorded(
    room: Room, directory: Path, *, seconds: float, ended_at: datetime, size: str = "160x90", node: str = "ingest-1"
) -> Recording:
    """A recording of the room's stream that closed at `ended_at`, `seconds` long, in
    `directory` (INGEST_RECORDINGS_DIR), named as nginx-rtmp's `record_unique` names it."""
    name = f"{stream_public_name(room_id=room.pk)}-{int((ended_at - timedelta(seconds=seconds)).timestamp())}.flv"
    make_recording(directory / name, seconds=seconds, size=size)
    return Recording.objects.create(room=room, path=name, ingest_node=node, ended_at=ended_at)


def ffprobe(path: Path | str) -> dict[str, Any]:
    done = subprocess.run(
        ["ffprobe", "-v", "error", "-show_entries", "format=duration:stream=codec_type,width,height", "-of", "json",
         str(path)],
        capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    return dict(json.loads(done.stdout))
