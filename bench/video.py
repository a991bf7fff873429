"""Video: how long from ffmpeg's start until the HLS playlist lists a segment, and how far
behind the live edge the viewer page plays, as hls.js measures it in Chromium.

    DATABASE_URL=postgres://... REDIS_URL=redis://.../N flock /tmp/liveshop-bench.lock \\
        .venv/bin/python -m bench.video [--runs 5]

Product: deploy/nginx-rtmp.conf (ports and paths rewritten to loopback and a tmp dir)
with its callbacks answered by liveshop (uvicorn), ffmpeg publishing a test pattern with
a room's stream key as OBS would (streams.ingest.pattern_publisher_argv: 15 fps, a key
frame a second). The viewer page (/rooms/{id}/, Debian's Chromium) opens as ffmpeg starts.

Baseline, same run: the same ffmpeg writing HLS straight to disk with the same fragment
settings (1 s fragments, a 4 s playlist), no RTMP, no nginx-rtmp, no callback, into the
directory nginx serves, under a second room's public name; the same viewer page plays it.

Per run and side: the seconds from ffmpeg's start to a playlist listing a segment (over
HTTP for the product, on disk for the baseline), to the first frame the page plays, and
hls.js's latency (`hls.latency`: distance from the live edge) once playback has settled,
the median of samples over a few seconds. Prints the medians over `--runs` and the ratios.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import tempfile
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from bench.flash_sale import free_port, log, setup_django, start_server, stop, uvicorn_argv

SECRET = "bench-video-ingest-secret"
CHROMIUM = "/usr/bin/chromium"
# After the first frame, playback settles (hls.js seeks to its target, speeds up to it)
# for this long before the latency is sampled; then it is sampled for SAMPLE_S.
SETTLE_S = 6.0
SAMPLE_S = 4.0
# The baseline's muxer: HLS as deploy/nginx-rtmp.conf writes it (1 s fragments, 4 s playlist).
HLS_TO_DISK = ("-f", "hls", "-hls_time", "1", "-hls_list_size", "4", "-hls_flags", "delete_segments")


@dataclass
class Side:
    playlist_s: list[float] = field(default_factory=list)
    first_frame_s: list[float] = field(default_factory=list)
    latency_s: list[float] = field(default_factory=list)

    def summary(self, pick: Callable[[list[float]], float] = statistics.median) -> str:
        return (
            f"playlist {pick(self.playlist_s):.2f} s, first frame {pick(self.first_frame_s):.2f} s, "
            f"hls.js latency {pick(self.latency_s):.2f} s"
        )

    def last(self) -> str:
        return self.summary(lambda values: values[-1])


def wait(condition: Callable[[], bool], what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(what)
        time.sleep(0.02)


def playlist_has_segment(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as answer:
            return b".ts" in answer.read()
    except OSError:
        return False


def disk_playlist_has_segment(path: Path) -> bool:
    return path.exists() and ".ts" in path.read_text()


def publish(url: str, log_path: Path, muxer: tuple[str, ...] = ("-f", "flv")) -> subprocess.Popen[Any]:
    from streams.ingest import pattern_publisher_argv

    return subprocess.Popen(
        pattern_publisher_argv(url, muxer=muxer), stdin=subprocess.DEVNULL, stdout=log_path.open("ab"),
        stderr=subprocess.STDOUT,
    )  # fmt: skip


def watch(browser: Any, page_url: str, started: float, side: Side) -> None:
    """Open the viewer page; record the first frame's time and the settled latency."""
    context = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True)
    try:
        page = context.new_page()
        page.goto(page_url)
        page.wait_for_function(
            "() => { const v = document.querySelector('#video');"
            " return v.dataset.state === 'playing' && v.currentTime > 0; }",
            timeout=60_000,
            polling=20,
        )
        side.first_frame_s.append(time.monotonic() - started)
        time.sleep(SETTLE_S)
        samples = []
        until = time.monotonic() + SAMPLE_S
        while time.monotonic() < until:
            value = page.get_by_test_id("video").get_attribute("data-latency")
            if value:
                samples.append(float(value))
            time.sleep(0.25)
        if not samples:
            raise RuntimeError("hls.js reported no latency")
        side.latency_s.append(statistics.median(samples))
    finally:
        context.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    setup_django()
    from django.core.management import call_command

    from streams.ingest import LocalIngest, video_tools_missing

    missing = video_tools_missing()
    if missing or not Path(CHROMIUM).exists():
        raise SystemExit(f"needs {', '.join(missing) or 'chromium'}: make system-deps")
    call_command("migrate", verbosity=0)
    call_command("collectstatic", "--noinput", verbosity=0)  # DEBUG off: WhiteNoise serves STATIC_ROOT
    from playwright.sync_api import sync_playwright

    from liveshop.models import User
    from rooms.models import Host, Room
    from streams import services
    from streams.selectors import stream_public_name

    user, _ = User.objects.get_or_create(username="bench-video-host")
    host, _ = Host.objects.get_or_create(user=user, defaults={"kind": "farmer", "district": "Wulong", "verified": True})
    room = Room.objects.create(host=host, title="Bench video", status=Room.Status.LIVE)
    baseline_room = Room.objects.create(host=host, title="Bench video baseline", status=Room.Status.LIVE)

    run_dir = Path(tempfile.mkdtemp(prefix="bench-video-"))
    web_port = free_port()
    ingest = LocalIngest(
        run_dir=run_dir, secret=SECRET, node="bench", rtmp_port=free_port(), hls_port=free_port(),
        control_port=free_port(),
    )  # fmt: skip
    env = os.environ | ingest.liveshop_env()
    web = start_server("web", uvicorn_argv("liveshop.asgi:application", web_port, 1), env, web_port, run_dir)
    nginx = start_server(
        "nginx", ingest.argv(liveshop_url=f"http://127.0.0.1:{web_port}"), env, ingest.rtmp_port, run_dir
    )
    # This process goes on air for the baseline room itself (its events name the playlist).
    from django.conf import settings

    settings.HLS_PUBLIC_URL = ingest.hls_url
    page = f"http://127.0.0.1:{web_port}/rooms/{{}}/"
    playlist = f"{ingest.hls_url}{stream_public_name(room_id=room.pk)}.m3u8"
    baseline_name = stream_public_name(room_id=baseline_room.pk)
    product, baseline = Side(), Side()
    # Playwright's sync API leaves an event loop marked running in this thread, which Django
    # takes for async code; this process's ORM calls run between browser steps, never in it.
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
        try:
            for index in range(args.runs):
                # Baseline: ffmpeg -f hls into nginx's HLS dir, the room put on air by hand.
                for old in ingest.hls_dir.glob(f"{baseline_name}*"):
                    old.unlink()
                on_disk = ingest.hls_dir / f"{baseline_name}.m3u8"
                started = time.monotonic()
                process = publish(str(on_disk), run_dir / "ffmpeg-baseline.log", HLS_TO_DISK)
                try:
                    services.stream_publish_start(
                        key=baseline_room.stream_key,
                        ingest_node="bench-disk",
                        client_addr="127.0.0.1",
                        client_id=str(index),
                    )
                    wait(partial(disk_playlist_has_segment, on_disk), "a baseline playlist")
                    baseline.playlist_s.append(time.monotonic() - started)
                    watch(browser, page.format(baseline_room.pk), started, baseline)
                finally:
                    stop(process)
                    services.stream_publish_done(
                        name=baseline_room.stream_key, ingest_node="bench-disk", client_id=str(index)
                    )
                log(f"run {index + 1}/{args.runs}: baseline (ffmpeg -f hls to disk) {baseline.last()}")

                # Product: RTMP into nginx-rtmp, liveshop's callback, the relay, nginx's HLS.
                started = time.monotonic()
                process = publish(ingest.rtmp_url(room.stream_key), run_dir / "ffmpeg.log")
                try:
                    wait(lambda: playlist_has_segment(playlist), "a playlist with a segment")
                    product.playlist_s.append(time.monotonic() - started)
                    watch(browser, page.format(room.pk), started, product)
                finally:
                    stop(process)
                    # Until nginx has let the stream go (hls_cleanup removes the playlist),
                    # so that the next run starts from nothing.
                    wait(lambda: not playlist_has_segment(playlist), "the playlist removed", timeout=30)
                log(f"run {index + 1}/{args.runs}: nginx-rtmp + liveshop {product.last()}")
        finally:
            browser.close()
            stop(nginx)
            stop(web)

    def ratio(a: list[float], b: list[float]) -> str:
        return f"{statistics.median(a) / statistics.median(b):.2f}x"

    log(f"medians over {args.runs} runs (the same page, the same hls.js, the same encoding):")
    log(f"  baseline (ffmpeg HLS to disk): {baseline.summary()}")
    log(f"  product (RTMP ingest):         {product.summary()}")
    log(
        f"  product/baseline: playlist {ratio(product.playlist_s, baseline.playlist_s)}, "
        f"first frame {ratio(product.first_frame_s, baseline.first_frame_s)}, "
        f"latency {ratio(product.latency_s, baseline.latency_s)}"
    )
    for name, side in (("baseline", baseline), ("product", product)):
        log(f"  {name} latency per run: {', '.join(f'{t:.2f}' for t in side.latency_s)} s")


if __name__ == "__main__":
    main()
