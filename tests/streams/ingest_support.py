"""The ingest server for tests: a liveshop server (uvicorn) and deploy/nginx-rtmp.conf's
nginx answering to it, on free loopback ports, and ffmpeg publishing a test pattern."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from streams.ingest import LocalIngest, pattern_publisher_argv, video_tools_missing
from streams.selectors import stream_public_name
from tests.chaos.nodes_support import node_env
from tests.servers import Server, free_port, start_uvicorn, wait_for_port

SECRET = "integration-ingest-secret"


@dataclass
class Ingest:
    local: LocalIngest
    liveshop: Server
    process: subprocess.Popen[bytes]

    @property
    def run_dir(self) -> Path:
        return self.local.run_dir

    @property
    def hls_dir(self) -> Path:
        return self.local.hls_dir

    def rtmp_url(self, key: str) -> str:
        return self.local.rtmp_url(key)

    def playlist_url(self, room_id: int) -> str:
        return f"{self.local.hls_url}{stream_public_name(room_id=room_id)}.m3u8"


@contextmanager
def running_ingest(
    *, run_dir: Path, redis_url: str, prefix: str, env: dict[str, str] | None = None
) -> Iterator[Ingest]:
    """A liveshop server (uvicorn) and deploy/nginx-rtmp.conf's nginx answering to it, on
    free loopback ports; `env` goes to the liveshop server on top of the ingest settings."""
    missing = video_tools_missing()
    if missing:
        pytest.skip(f"needs {', '.join(missing)}: make system-deps installs them")
    local = LocalIngest(
        run_dir=run_dir, secret=SECRET, node="ingest-test",
        rtmp_port=free_port(), hls_port=free_port(), control_port=free_port(),
    )  # fmt: skip
    liveshop = start_uvicorn(
        node_env(redis_url=redis_url, prefix=prefix, **local.liveshop_env(), **(env or {})), run_dir
    )
    log = run_dir / "nginx-out.log"
    nginx = subprocess.Popen(local.argv(liveshop_url=liveshop.http), stdout=log.open("ab"), stderr=subprocess.STDOUT)
    try:
        wait_for_port(local.rtmp_port, nginx)
        wait_for_port(local.hls_port, nginx)
        yield Ingest(local, liveshop, nginx)
    finally:
        stop(nginx)
        liveshop.stop()


def ffmpeg(url: str, log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        pattern_publisher_argv(url, size="320x180"),
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
