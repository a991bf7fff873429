"""Replays: how long an ended show waits for its replay.

    DATABASE_URL=postgres://... REDIS_URL=redis://.../N flock /tmp/liveshop-bench.lock \\
        .venv/bin/python -m bench.replay [--minutes 20] [--publishes 2] [--chapters 10]

A show of `--minutes` of video (640x360, 15 fps, H.264 and AAC at OBS-like bitrates,
a key frame a second) recorded in `--publishes` parts, as nginx-rtmp records a host who
reconnected, with `--chapters` featured items: `streams.replays.replay_build` in this
process (what the Celery task runs) makes the HLS VOD, the chapters and a clip per
chapter, and stores them (the file system storage). Baseline, same run and files: the
floor of the same work, ffmpeg alone joining the parts and writing the HLS playlist with
stream copy (no validation, no clips, no storage, no database). Prints progress, the
figures and the ratio, and writes bench/results/replay.json.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import tempfile
import time
from datetime import timedelta
from pathlib import Path

from bench.flash_sale import ROOT, log, setup_django

RESULTS = ROOT / "bench" / "results"


def record(path: Path, seconds: int) -> None:
    subprocess.run(
        ["ffmpeg", "-hide_banner", "-loglevel", "error", "-y",
         "-f", "lavfi", "-i", "testsrc2=size=640x360:rate=15", "-f", "lavfi", "-i", "sine=frequency=330",
         "-t", str(seconds), "-c:v", "libx264", "-preset", "ultrafast", "-b:v", "800k", "-g", "15",
         "-pix_fmt", "yuv420p", "-c:a", "aac", "-b:a", "64k", "-f", "flv", str(path)],
        check=True,
    )  # fmt: skip


def baseline(parts: list[Path], work: Path) -> float:
    listing = work / "baseline.txt"
    listing.write_text("".join(f"file '{part}'\n" for part in parts))
    out = work / "baseline"
    out.mkdir()
    started = time.perf_counter()
    subprocess.run(
        ["ffmpeg", "-hide_banner", "-loglevel", "error", "-y", "-f", "concat", "-safe", "0", "-i", str(listing),
         "-c", "copy", "-f", "hls", "-hls_time", "4", "-hls_playlist_type", "vod", "-hls_list_size", "0",
         str(out / "index.m3u8")],
        check=True,
    )  # fmt: skip
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--minutes", type=int, default=20)
    parser.add_argument("--publishes", type=int, default=2)
    parser.add_argument("--chapters", type=int, default=10)
    args = parser.parse_args()
    setup_django()
    from django.conf import settings
    from django.core.management import call_command
    from django.test.utils import override_settings
    from django.utils import timezone

    call_command("migrate", verbosity=0)
    from rooms.models import Host, Room, RoomItem
    from streams import replays
    from streams.models import FeaturedMoment, Recording, Replay
    from streams.selectors import stream_public_name
    from tests import factories

    with tempfile.TemporaryDirectory(prefix="liveshop-bench-replay-") as scratch:
        work = Path(scratch)
        recordings = work / "rec"
        recordings.mkdir()
        seconds = args.minutes * 60 // args.publishes
        host = Host.objects.filter(user__username="bench-replay-host").first() or factories.HostFactory.create(
            user=factories.UserFactory.create(username="bench-replay-host"), verified=True
        )
        room = Room.objects.create(host=host, title="Bench replay", status=Room.Status.ENDED, ended_at=timezone.now())
        items = [factories.RoomItemFactory.create(room=room, position=n) for n in range(args.chapters)]
        parts = []
        ended = timezone.now() - timedelta(hours=1)
        for part in range(args.publishes):
            path = recordings / f"{stream_public_name(room_id=room.pk)}-{part}.flv"
            log(f"recording part {part + 1}/{args.publishes}: {seconds} s of video")
            record(path, seconds)
            ended += timedelta(seconds=seconds + 30)  # the host was off air 30 s between parts
            Recording.objects.create(room=room, path=path.name, ingest_node="bench", ended_at=ended)
            parts.append(path)
        origin = ended - timedelta(seconds=(seconds + 30) * args.publishes)
        step = args.minutes * 60 / max(args.chapters, 1)
        for n, item in enumerate(items):
            FeaturedMoment.objects.create(room=room, item=item, at=origin + timedelta(seconds=n * step + 5))
        replay = Replay.objects.create(room=room)
        size_mb = sum(p.stat().st_size for p in parts) / 1e6

        log("baseline: ffmpeg alone, the parts joined into an HLS playlist (stream copy)")
        floor_s = baseline(parts, work)
        log(f"baseline: {floor_s:.2f} s")
        log("liveshop: replay_build (validate, join, playlist, chapters, clips, storage, commit)")
        with override_settings(INGEST_RECORDINGS_DIR=str(recordings), MEDIA_ROOT=str(work / "media")):
            started = time.perf_counter()
            outcome = replays.replay_build(room_id=room.pk, version=replay.version)
            build_s = time.perf_counter() - started
        replay.refresh_from_db()
        chapters = len(replay.chapters)
        log(f"liveshop: {outcome} in {build_s:.2f} s, {replay.duration_s:.0f} s of video, {chapters} chapters")
        RoomItem.objects.filter(room=room).delete()
        room.delete()

    figures = {
        "video_minutes": args.minutes, "publishes": args.publishes, "chapters": args.chapters,
        "recordings_mb": round(size_mb, 1), "replay_build_s": round(build_s, 2), "baseline_s": round(floor_s, 2),
        "ratio": round(build_s / floor_s, 2), "video_s_per_build_s": round(args.minutes * 60 / build_s, 1),
        "storage": settings.STORAGES["default"]["BACKEND"],
    }  # fmt: skip
    print()
    print(f"{'':34}{'seconds':>10}")
    print(f"{'ffmpeg alone (join + playlist)':34}{floor_s:>10.2f}")
    print(f"{'liveshop replay_build':34}{build_s:>10.2f}   ({figures['ratio']}x the floor)")
    print(f"{args.minutes} min of video ({size_mb:.0f} MB in {args.publishes} parts): "
          f"{figures['video_s_per_build_s']} s of video built per second")  # fmt: skip
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "replay.json").write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
