"""`manage.py publish_test_pattern --room N`: a moving test pattern with the show's title,
published into room N through the ingest server with the room's stream key, as a host's
OBS would; `make run` runs it into the demo's live room.

It runs until stopped: when ffmpeg ends (the ingest server is not up yet, the key was
rotated, another publisher holds the room, the room ended) it tries again, with the
room's key as it is then, after a backoff.
"""

from __future__ import annotations

import signal
import socket
import subprocess
import threading
import time
import unicodedata
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from rooms.models import Room
from streams.ingest import pattern_publisher_argv, video_tools_missing

MAX_BACKOFF_S = 30.0
# A publish that lasted this long was a success: the next failure starts the backoff afresh.
HEALTHY_S = 30.0
# The title at h/14 on testsrc2 (streams.ingest): about this many Latin letters a line.
TITLE_COLUMNS = 44
MAX_TITLE_LINES = 3


class Command(BaseCommand):
    help = "Publish a test pattern with the show's title into a room through the ingest server, until stopped."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--room", type=int, required=True)
        parser.add_argument(
            "--rtmp",
            default=settings.RTMP_INGEST_URL,
            help="the ingest server's RTMP application URL (default: RTMP_INGEST_URL)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if video_tools_missing() or not options["rtmp"]:
            raise CommandError("needs ffmpeg and an ingest server (--rtmp or RTMP_INGEST_URL)")
        room_id: int = options["room"]
        base = options["rtmp"].rstrip("/")
        stopping = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stopping.set())
        signal.signal(signal.SIGINT, lambda *_: stopping.set())
        title_file = settings.VAR_DIR / f"test-pattern-title-{room_id}.txt"
        backoff = 1.0
        last_said = ""

        def say(text: str) -> None:
            nonlocal last_said
            if text != last_said:  # a retry loop says a thing once, not every few seconds
                self.stdout.write(text)
                last_said = text

        while not stopping.is_set():
            room = Room.objects.filter(pk=room_id).first()
            if room is None:
                raise CommandError(f"room {room_id} does not exist")
            if not _accepts(base):
                say(f"waiting for the ingest server at {base}")
                stopping.wait(1)
                continue
            title_file.write_text(title_lines(room.title))
            started = time.monotonic()
            ffmpeg = subprocess.Popen(
                pattern_publisher_argv(f"{base}/{room.stream_key}", title_file=title_file),
                stdin=subprocess.DEVNULL,
            )
            say(f"publishing a test pattern into room {room_id} ('{room.title}')")
            while ffmpeg.poll() is None and not stopping.is_set():
                stopping.wait(0.5)
            if ffmpeg.poll() is None:
                ffmpeg.terminate()
                try:
                    ffmpeg.wait(10)
                except subprocess.TimeoutExpired:
                    ffmpeg.kill()
                break
            if time.monotonic() - started > HEALTHY_S:
                backoff = 1.0
            say(f"the ingest server let the test pattern go (room {room.status}); trying again")
            stopping.wait(backoff)
            backoff = min(backoff * 2, MAX_BACKOFF_S)


def title_lines(title: str, columns: int = TITLE_COLUMNS) -> str:
    """The title broken into lines that fit the picture: a Chinese character takes two
    columns, a Latin letter one; lines break at spaces where there are any."""
    lines: list[str] = []
    line = ""
    for word in title.replace(" ", " \0").split("\0"):
        while word:
            room = columns - _width(line)
            if _width(word) <= room:
                line, word = line + word, ""
            elif line.strip() and " " in word:
                lines.append(line.rstrip())
                line = ""
            else:  # one word wider than what is left (Chinese has no spaces): cut it
                cut = 0
                while cut < len(word) and _width(word[: cut + 1]) <= room:
                    cut += 1
                if cut == 0:
                    lines.append(line.rstrip())
                    line = ""
                    continue
                lines.append((line + word[:cut]).rstrip())
                line, word = "", word[cut:]
    if line.strip():
        lines.append(line.rstrip())
    return "\n".join(lines[:MAX_TITLE_LINES])


def _width(text: str) -> int:
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)


def _accepts(rtmp_url: str) -> bool:
    parts = urlsplit(rtmp_url)
    try:
        with socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 1935), timeout=1):
            return True
    except OSError:
        return False
