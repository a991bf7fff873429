"""`manage.py serve`: every process of liveshop in one terminal, for `make run`.

Starts the ASGI server (uvicorn), a Celery worker and Celery beat, prefixes their output
with their names, and stops them all when any one exits or on Ctrl-C. Production runs
the same commands under a real supervisor (docker-compose, systemd, Kubernetes).

Without STRIPE_SECRET_KEY it also starts localstripe (the Stripe stand-in) on the
loopback interface, points every process's Stripe SDK at it, and registers the webhook
to this server, so orders can be paid locally (`manage.py pay_order`).

Where nginx with the RTMP module and ffmpeg are installed (`make system-deps`), it also
runs the ingest server (deploy/nginx-rtmp.conf on loopback) and a test pattern published
into the demo's live room; VIDEO=0 leaves video out, TEST_PATTERN=0 leaves the room free
for OBS. Ports: INGEST_RTMP_PORT (1935), INGEST_HLS_PORT (8080), INGEST_CONTROL_PORT (8081).
"""

from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from typing import IO, Any

from django.conf import settings
from django.core.management.base import BaseCommand

from liveshop.management.commands.seed_demo import demo_live_room
from orders import localstripe_server
from streams.ingest import LocalIngest, video_tools_missing


@dataclass(frozen=True)
class Process:
    name: str
    argv: list[str]


@dataclass(frozen=True)
class Video:
    """The ingest server and the test pattern, what liveshop's processes need to know of
    them, and what to tell the person at the terminal."""

    processes: list[Process]
    env: dict[str, str]
    notes: list[str]


def uses_localstripe() -> bool:
    return not settings.STRIPE_SECRET_KEY


def liveshop_environment() -> dict[str, str]:
    """Variables every child process gets on top of ours (localstripe's, when it runs)."""
    if uses_localstripe():
        return localstripe_server.local_stripe_environment(port=settings.LOCALSTRIPE_PORT)
    return {}


def liveshop_processes(*, host: str, port: int) -> list[Process]:
    """The processes of a liveshop node. Later features append theirs here."""
    bin_dir = os.path.dirname(sys.executable)
    stripe: list[Process] = []
    if uses_localstripe():
        stripe.append(
            Process(
                "stripe",
                [
                    sys.executable,
                    "-m",
                    "orders.localstripe_server",
                    "--port",
                    str(settings.LOCALSTRIPE_PORT),
                    "--state",
                    str(settings.VAR_DIR / "localstripe.pickle"),
                ],
            )
        )
    return [
        *stripe,
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
                # Client frames are small JSON (the consumer closes past WS_MAX_FRAME_BYTES
                # with 1009); uvicorn's default would buffer up to 16 MiB per frame.
                "--ws-max-size",
                "65536",
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


def local_video(*, web_port: int) -> Video:
    """Video for `make run` when this machine can have it; otherwise one line on how."""
    if os.environ.get("VIDEO") == "0":
        return Video([], {}, ["video: off (VIDEO=0)"])
    missing = video_tools_missing()
    if missing:
        return Video([], {}, [f"video: off ({', '.join(missing)} missing): `sudo make system-deps` turns it on"])
    ports = {name: int(os.environ.get(name, default)) for name, default in INGEST_PORTS.items()}
    taken = [f"{name}={port}" for name, port in ports.items() if _port_taken(port)]
    if taken:
        return Video([], {}, [f"video: off (port in use: {', '.join(taken)}): set another and run again"])
    ingest = LocalIngest(
        run_dir=settings.VAR_DIR / "ingest",
        # The callbacks' secret: this run's own unless one is configured.
        secret=settings.INGEST_CALLBACK_SECRET or secrets.token_urlsafe(24),
        rtmp_port=ports["INGEST_RTMP_PORT"],
        hls_port=ports["INGEST_HLS_PORT"],
        control_port=ports["INGEST_CONTROL_PORT"],
    )
    processes = [Process("ingest", ingest.argv(liveshop_url=f"http://127.0.0.1:{web_port}"))]
    notes = [f"video: ingest server at {ingest.rtmp_url()}, HLS at {ingest.hls_url}"]
    room = demo_live_room()
    if room is not None:
        obs = f"Server {ingest.rtmp_url()}; Stream Key {room.stream_key}"
        notes.append(f"  OBS for the demo host: Settings → Stream → Service: Custom…; {obs}")
        if os.environ.get("TEST_PATTERN") != "0":
            manage = str(settings.BASE_DIR / "manage.py")
            argv = [sys.executable, manage, "publish_test_pattern", "--room", str(room.pk), "--rtmp", ingest.rtmp_url()]
            processes.append(Process("camera", argv))
            notes.append(f"  a test pattern is on air in room {room.pk}; TEST_PATTERN=0 make run leaves it to OBS")
    return Video(processes, ingest.liveshop_env(), notes)


INGEST_PORTS = {"INGEST_RTMP_PORT": 1935, "INGEST_HLS_PORT": 8080, "INGEST_CONTROL_PORT": 8081}


def _port_taken(port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return True
    return False


class Command(BaseCommand):
    help = "Run the ASGI server, a Celery worker and beat together; Ctrl-C stops them all."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--host", default=os.environ.get("HOST", "127.0.0.1"))
        parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8000")))

    def handle(self, *args: Any, **options: Any) -> None:
        video = local_video(web_port=options["port"])
        processes = [*liveshop_processes(host=options["host"], port=options["port"]), *video.processes]
        width = max(len(p.name) for p in processes)
        lock = threading.Lock()
        running: list[tuple[Process, subprocess.Popen[bytes]]] = []

        stopping = threading.Event()

        def request_stop(signum: int, frame: object) -> None:
            stopping.set()

        signal.signal(signal.SIGINT, request_stop)
        signal.signal(signal.SIGTERM, request_stop)

        child_env = {**os.environ, "PYTHONUNBUFFERED": "1", **liveshop_environment(), **video.env}
        for process in processes:
            child = subprocess.Popen(
                process.argv,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # our Ctrl-C handling, not the terminal's, stops it
                env=child_env,
            )
            running.append((process, child))
            assert child.stdout is not None
            threading.Thread(target=_relay, args=(process.name.ljust(width), child.stdout, lock), daemon=True).start()
            self.stdout.write(f"started {process.name} (pid {child.pid}): {' '.join(process.argv)}")
        self.stdout.write(
            self.style.SUCCESS(f"liveshop is serving on http://{options['host']}:{options['port']}/ (Ctrl-C stops)")
        )
        for note in video.notes:
            self.stdout.write(note)
        if uses_localstripe():
            threading.Thread(target=self._register_local_webhook, args=(options["port"],), daemon=True).start()

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

    def _register_local_webhook(self, port: int) -> None:
        env = liveshop_environment()
        webhook = f"http://127.0.0.1:{port}/api/v1/payments/stripe/webhook/"
        try:
            localstripe_server.webhook_register(
                api_base=env["STRIPE_API_BASE"], url=webhook, secret=env["STRIPE_WEBHOOK_SECRET"]
            )
        except OSError as exc:
            self.stderr.write(f"could not register the webhook with localstripe: {exc}")
            return
        self.stdout.write(
            f"payments: localstripe at {env['STRIPE_API_BASE']} sends signed webhooks to {webhook}; "
            "pay an order with `python manage.py pay_order <order number>`"
        )


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
