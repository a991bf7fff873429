"""Video: how long from ffmpeg's start until the HLS playlist lists a segment.

    DATABASE_URL=postgres://... REDIS_URL=redis://.../N flock /tmp/liveshop-bench.lock \\
        .venv/bin/python -m bench.video [--runs 5]

Product: deploy/nginx-rtmp.conf (ports and paths rewritten to loopback and a tmp dir)
with its on_publish callback answered by liveshop (uvicorn), ffmpeg publishing a test
pattern with a room's stream key; the clock runs from ffmpeg's start to the first
playlist (fetched over HTTP from nginx) that lists a segment. Baseline, same run: ffmpeg
writing HLS straight to disk with the same fragment settings (1 s, 4 s playlist), no
nginx, no callback; the clock stops when the playlist on disk lists a segment.
Prints the median of `--runs` runs of each.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import tempfile
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.flash_sale import free_port, log, setup_django, start_server, stop, uvicorn_argv

SECRET = "bench-video-ingest-secret"
PATTERN = ["-re", "-f", "lavfi", "-i", "testsrc2=size=320x180:rate=15"]
X264 = ["-c:v", "libx264", "-preset", "ultrafast", "-tune", "zerolatency", "-g", "15"]


def wait(condition: Callable[[], bool], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError("no playlist with a segment")
        time.sleep(0.02)


def playlist_has_segment(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as answer:
            return b".ts" in answer.read()
    except OSError:
        return False


def ingest_config(liveshop: str, rtmp: int, hls: int, control: int, run_dir: Path) -> str:
    from streams.ingest import local_ingest_config

    return local_ingest_config(
        liveshop_url=liveshop, secret=SECRET, node="bench", rtmp_port=rtmp, hls_port=hls, control_port=control,
        run_dir=run_dir,
    )  # fmt: skip


def ffmpeg(args: list[str], log_path: Path) -> subprocess.Popen[Any]:
    return subprocess.Popen(
        ["ffmpeg", "-hide_banner", "-loglevel", "warning", *PATTERN, *X264, *args],
        stdin=subprocess.DEVNULL,
        stdout=log_path.open("ab"),
        stderr=subprocess.STDOUT,
    )


def run_baseline(run_dir: Path, index: int) -> float:
    out = run_dir / f"baseline-{index}"
    out.mkdir()
    started = time.monotonic()
    process = ffmpeg(
        [
            "-f",
            "hls",
            "-hls_time",
            "1",
            "-hls_list_size",
            "4",
            "-hls_flags",
            "delete_segments",
            str(out / "index.m3u8"),
        ],
        run_dir / "ffmpeg-baseline.log",
    )
    try:
        wait(lambda: (out / "index.m3u8").exists() and ".ts" in (out / "index.m3u8").read_text())
        return time.monotonic() - started
    finally:
        stop(process)


def run_product(rtmp: int, playlist: str, key: str, run_dir: Path) -> float:
    started = time.monotonic()
    process = ffmpeg(["-f", "flv", f"rtmp://127.0.0.1:{rtmp}/live/{key}"], run_dir / "ffmpeg-product.log")
    try:
        wait(lambda: playlist_has_segment(playlist))
        return time.monotonic() - started
    finally:
        stop(process)
        # Until nginx has let the stream go (hls_cleanup removes the playlist), so that
        # the next run starts from nothing.
        wait(lambda: not playlist_has_segment(playlist), timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    if not Path("/usr/lib/nginx/modules/ngx_rtmp_module.so").exists() or not shutil.which("ffmpeg"):
        raise SystemExit("needs libnginx-mod-rtmp and ffmpeg: make system-deps")
    setup_django()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    from liveshop.models import User
    from rooms.models import Host, Room
    from streams.selectors import stream_public_name

    user, _ = User.objects.get_or_create(username="bench-video-host")
    host, _ = Host.objects.get_or_create(user=user, defaults={"kind": "farmer", "district": "Wulong", "verified": True})
    room = Room.objects.create(host=host, title="Bench video", status=Room.Status.LIVE)

    run_dir = Path(tempfile.mkdtemp(prefix="bench-video-"))
    (run_dir / "rtmp" / "hls").mkdir(parents=True)
    web_port, rtmp, hls, control = free_port(), free_port(), free_port(), free_port()
    env = os.environ | {
        "INGEST_CALLBACK_SECRET": SECRET,
        "HLS_PUBLIC_URL": f"http://127.0.0.1:{hls}/hls/",
        "RTMP_CONTROL_URL": f"http://127.0.0.1:{control}/control",
    }
    web = start_server("web", uvicorn_argv("liveshop.asgi:application", web_port, 1), env, web_port, run_dir)
    config = run_dir / "nginx-rtmp.conf"
    config.write_text(ingest_config(f"http://127.0.0.1:{web_port}", rtmp, hls, control, run_dir))
    ingest = start_server(
        "nginx", [nginx, "-p", str(run_dir), "-c", str(config), "-g", "daemon off;"], dict(os.environ), rtmp, run_dir
    )
    playlist = f"http://127.0.0.1:{hls}/hls/{stream_public_name(room_id=room.pk)}.m3u8"
    product: list[float] = []
    baseline: list[float] = []
    try:
        for index in range(args.runs):
            baseline.append(run_baseline(run_dir, index))
            log(f"run {index + 1}/{args.runs}: baseline (ffmpeg -f hls to disk) {baseline[-1]:.2f} s")
            product.append(run_product(rtmp, playlist, room.stream_key, run_dir))
            log(f"run {index + 1}/{args.runs}: nginx-rtmp + liveshop callback {product[-1]:.2f} s")
    finally:
        stop(ingest)
        stop(web)
    log(
        f"median time from ffmpeg start to a playlist listing a segment over {args.runs} runs: "
        f"baseline {statistics.median(baseline):.2f} s, product {statistics.median(product):.2f} s "
        f"(product runs {', '.join(f'{t:.2f}' for t in product)})"
    )


if __name__ == "__main__":
    main()
