"""`manage.py serve`: every process of liveshop in one terminal, for `make run`.

Starts the ASGI server (uvicorn), a Celery worker and Celery beat, prefixes their output
with their names, and stops them all when any one exits or on Ctrl-C. Production runs
the same commands under a real supervisor (docker-compose, systemd, Kubernetes).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from typing import IO, Any

from django.conf import settings
from django.core.management.base import BaseCommand


@dataclass(frozen=True)
class Process:
    name: str
    argv: list[str]


def liveshop_processes(*, host: str, port: int) -> list[Process]:
    """The processes of a liveshop node. Later features append theirs here."""
    bin_dir = os.path.dirname(sys.executable)
    return [
        Process(
            "web",
            [
                os.path.join(bin_dir, "uvicorn"),
                "liveshop.asgi:application",
                "--host",
                host,
                "--port",
                str(port),
                "--ws",
                "websockets-sansio",
                # Compressing costs 2-2.3x the CPU per frame, for each socket (docs/PERFORMANCE.md).
                "--ws-per-message-deflate",
                "false",
                "--no-access-log",
            ],
        ),
        Process("worker", [sys.executable, "-m", "celery", "-A", "liveshop", "worker", "-l", "info", "-c", "2"]),
        Process(
            "beat",
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "liveshop",
                "beat",
                "-l",
                "info",
                "-s",
                settings.CELERY_BEAT_SCHEDULE_FILENAME,
            ],
        ),
    ]


class Command(BaseCommand):
    help = "Run the ASGI server, a Celery worker and beat together; Ctrl-C stops them all."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--host", default=os.environ.get("HOST", "127.0.0.1"))
        parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8000")))

    def handle(self, *args: Any, **options: Any) -> None:
        processes = liveshop_processes(host=options["host"], port=options["port"])
        width = max(len(p.name) for p in processes)
        lock = threading.Lock()
        running: list[tuple[Process, subprocess.Popen[bytes]]] = []

        stopping = threading.Event()

        def request_stop(signum: int, frame: object) -> None:
            stopping.set()

        signal.signal(signal.SIGINT, request_stop)
        signal.signal(signal.SIGTERM, request_stop)

        for process in processes:
            child = subprocess.Popen(
                process.argv,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # our Ctrl-C handling, not the terminal's, stops it
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
            )
            running.append((process, child))
            assert child.stdout is not None
            threading.Thread(target=_relay, args=(process.name.ljust(width), child.stdout, lock), daemon=True).start()
            self.stdout.write(f"started {process.name} (pid {child.pid}): {' '.join(process.argv)}")
        self.stdout.write(
            self.style.SUCCESS(f"liveshop is serving on http://{options['host']}:{options['port']}/ (Ctrl-C stops)")
        )

        try:
            while not stopping.is_set():
                exited = [(p, c) for p, c in running if c.poll() is not None]
                if exited:
                    process, child = exited[0]
                    self.stderr.write(f"{process.name} exited with {child.returncode}; stopping the others")
                    break
                stopping.wait(0.5)
        finally:
            _stop_all(running)
        self.stdout.write("all processes stopped")


def _relay(name: str, stream: IO[bytes], lock: threading.Lock) -> None:
    for raw in iter(stream.readline, b""):
        line = raw.decode(errors="replace").rstrip()
        with lock:
            print(f"{name} | {line}", flush=True)


def _stop_all(running: list[tuple[Process, subprocess.Popen[bytes]]], grace_s: float = 10) -> None:
    # SIGTERM to each main process lets it stop its own children (Celery's pool) cleanly;
    # the process group is killed only if it does not finish in time.
    for _, child in running:
        if child.poll() is None:
            child.terminate()
    deadline = time.monotonic() + grace_s
    for _, child in running:
        try:
            child.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            os.killpg(child.pid, signal.SIGKILL)
            child.wait()
