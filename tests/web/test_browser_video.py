"""The room's video in Chromium: hls.js on the viewer page and in the host console,
playing what ffmpeg publishes through the real ingest server (deploy/nginx-rtmp.conf)
with the room's stream key, going off air and coming back without a reload."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.db import connection
from playwright.sync_api import expect

from liveshop.models import User
from rooms.models import Room
from streams import services
from tests.streams.ingest_support import Ingest, ffmpeg, running_ingest, stop
from tests.web.conftest import Pages, Stack, screenshot

pytestmark = [pytest.mark.django_db(transaction=True)]

# Loose on purpose (a loaded two-core machine): the figures are bench/video.py's job.
VIDEO_TIMEOUT_MS = 45_000


@dataclass
class VideoStack(Stack):
    ingest: Ingest | None = None


@pytest.fixture(scope="module")
def stack(
    realtime_prefix: str, tmp_path_factory: pytest.TempPathFactory, django_db_setup: Any, collected_static: None
) -> Iterator[VideoStack]:
    """This module's stack: a liveshop server and the ingest server answering to it."""
    if not settings.REDIS_URL or connection.vendor != "postgresql":
        pytest.skip("the browser tests need PostgreSQL and Redis (DATABASE_URL, REDIS_URL)")
    run_dir = tmp_path_factory.mktemp("video-stack")
    with running_ingest(
        run_dir=run_dir, redis_url=settings.REDIS_URL, prefix=realtime_prefix, env={"LIVESHOP_VAR_DIR": str(run_dir)}
    ) as ingest:
        yield VideoStack(web=ingest.liveshop.http, stripe="", logs=run_dir, ingest=ingest)


@pytest.fixture
def ingest(stack: VideoStack, settings: Any) -> Ingest:
    """The ingest server, its settings in this process too (its events name the playlist)."""
    assert stack.ingest is not None
    settings.HLS_PUBLIC_URL = stack.ingest.local.hls_url
    settings.RTMP_CONTROL_URL = stack.ingest.local.liveshop_env()["RTMP_CONTROL_URL"]
    return stack.ingest


def wait_playing(page: Any) -> None:
    """Until the page's video plays: hls.js says so, and time and decoded frames advance."""
    page.wait_for_function(
        "() => { const v = document.querySelector('#video');"
        " return !v.hidden && v.dataset.state === 'playing' && v.currentTime > 0; }",
        timeout=VIDEO_TIMEOUT_MS,
    )
    start = page.evaluate(
        "() => { const v = document.querySelector('#video');"
        " return [v.currentTime, v.getVideoPlaybackQuality().totalVideoFrames]; }"
    )
    page.wait_for_function(
        "([time, frames]) => { const v = document.querySelector('#video');"
        " return v.currentTime > time + 1 && v.getVideoPlaybackQuality().totalVideoFrames > frames + 10; }",
        arg=start,
        timeout=VIDEO_TIMEOUT_MS,
    )


def latency(page: Any) -> float:
    """hls.js's own estimate of the distance from the live edge, once it has one."""
    page.wait_for_function("() => document.querySelector('#video').dataset.latency", timeout=VIDEO_TIMEOUT_MS)
    return float(page.get_by_test_id("video").get_attribute("data-latency"))


def test_viewer_watches_the_show_go_off_air_and_come_back(
    pages: Pages, ingest: Ingest, live_room: Room, record_property: Any, tmp_path: Path
) -> None:
    page = pages.open(f"/rooms/{live_room.pk}/")
    poster = page.get_by_test_id("poster")
    expect(poster).to_contain_text("video is off")
    publisher = ffmpeg(ingest.rtmp_url(live_room.stream_key), tmp_path / "ffmpeg-1.log")
    again = None
    try:
        wait_playing(page)
        expect(poster).to_be_hidden()
        seconds = latency(page)
        record_property("hls_latency_s", seconds)
        print(f"hls.js latency at the live edge: {seconds:.2f} s")
        assert 0 < seconds < 15
        screenshot(page, "video-viewer-playing")

        # The publisher stops: the page says so, without a reload.
        stop(publisher)
        expect(poster).to_be_visible(timeout=VIDEO_TIMEOUT_MS)
        expect(poster).to_contain_text("video is off")
        expect(page.get_by_test_id("video")).to_be_hidden()

        # It comes back: the page plays again.
        again = ffmpeg(ingest.rtmp_url(live_room.stream_key), tmp_path / "ffmpeg-2.log")
        wait_playing(page)
    finally:
        stop(publisher)
        if again is not None:
            stop(again)


def test_a_stream_that_fails_shows_the_error_and_the_off_air_state_after(
    pages: Pages, ingest: Ingest, live_room: Room
) -> None:
    # On air as far as liveshop knows, but no video reaches the HLS server.
    services.stream_publish_start(key=live_room.stream_key, ingest_node="gone", client_addr="1.2.3.4", client_id="9")
    page = pages.open(f"/rooms/{live_room.pk}/")
    status = page.get_by_test_id("video-status")
    expect(status).to_contain_text("trouble", timeout=VIDEO_TIMEOUT_MS)
    assert page.get_by_test_id("video").get_attribute("data-state") == "error"
    services.stream_publish_done(ingest_node="gone", client_id="9", name=live_room.stream_key)
    expect(page.get_by_test_id("poster")).to_contain_text("video is off", timeout=VIDEO_TIMEOUT_MS)
    expect(status).to_be_hidden()


def test_host_console_shows_the_key_on_demand_and_previews_the_stream(
    pages: Pages, ingest: Ingest, live_room: Room, host: User, tmp_path: Path
) -> None:
    page = pages.open(f"/studio/rooms/{live_room.pk}/", user=host, phone=False)
    state = page.get_by_test_id("stream-state")
    expect(state).to_contain_text("No stream is reaching the server")
    page.get_by_test_id("stream-setup").locator("summary").click()
    expect(page.get_by_test_id("ingest-url")).to_have_text(ingest.local.rtmp_url())
    key = page.get_by_test_id("stream-key")
    expect(key).to_be_hidden()
    page.get_by_test_id("stream-key-show").click()
    expect(key).to_have_text(live_room.stream_key)

    publisher = ffmpeg(ingest.rtmp_url(live_room.stream_key), tmp_path / "ffmpeg.log")
    try:
        expect(state).to_contain_text("reaching the server (since", timeout=VIDEO_TIMEOUT_MS)
        wait_playing(page)
        expect(state).to_contain_text("behind the live edge", timeout=VIDEO_TIMEOUT_MS)
        stop(publisher)
        expect(state).to_contain_text("No stream is reaching the server", timeout=VIDEO_TIMEOUT_MS)
    finally:
        stop(publisher)
