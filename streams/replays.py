"""Replays: a show's recordings become one HLS VOD, with chapters and product clips.

The ingest server records each publish (nginx-rtmp `record` in the `hls` application, so
file names carry the public stream name, never the key) and calls on_record_done. Once
the room has ended, a Celery task (replay_build) turns its recordings into:

- one HLS VOD (ffmpeg, stream copy; re-encoded only when the recordings' streams differ,
  say the host changed the resolution between two publishes), stored through Django's
  storage API under `replays/<room>/<build>/`, the playlist written last;
- the `timeline` that maps the show's wall clock onto the video: each recording's origin
  (when it closed less its duration), its duration, and where it starts in the video
  (recordings are played back to back: a gap while the host was off air is skipped);
- chapters: each item featured during the show, at its offset;
- a clip per chapter (stream copy from the key frame at or before it), listed on the
  product.

A build marks the replay ready in one transaction, and only if no newer build was asked
for meanwhile (`version`); everything it stored before that is unreferenced until then,
and deleted if the transaction does not happen. A worker killed mid-build leaves the
replay `processing`; the task is delivered again (acks_late) and builds afresh.
"""

from __future__ import annotations

import bisect
import json
import logging
import subprocess
import tempfile
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.files import File
from django.core.files.storage import default_storage
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from rooms.models import Room, RoomItem
from streams.models import FeaturedMoment, ProductClip, Recording, Replay, StreamSession
from streams.selectors import stream_room_id_from_name

logger = logging.getLogger(__name__)

FFMPEG_TIMEOUT_S = 1800
# An ended room whose last recording never reported done is built anyway after this long.
RECORDING_GRACE = timedelta(minutes=2)
# A build that neither finished nor failed in this long is asked for again.
STUCK_AFTER = timedelta(minutes=30)
# A build goes ahead for a replay being made, or remade while its last version plays.
BUILDABLE = (Replay.Status.PROCESSING, Replay.Status.READY)


class RecordingUnreadable(Exception):
    """No recording of the show could be read: the replay fails, not retried."""


class ReplayBuildError(Exception):
    """ffmpeg failed on readable recordings, or storage did: retried, then failed."""


# --- recordings ------------------------------------------------------------------------


def recording_relative_path(path: str) -> str | None:
    """`path` (as nginx-rtmp reports it) relative to INGEST_RECORDINGS_DIR, or None when it
    is not a file directly inside it (no `..`, no other directory, no hidden name)."""
    if not settings.INGEST_RECORDINGS_DIR:
        return None
    root = Path(settings.INGEST_RECORDINGS_DIR).resolve()
    candidate = Path(path)
    if not candidate.is_absolute():
        candidate = root / candidate
    try:
        relative = candidate.resolve().relative_to(root)
    except ValueError:
        return None
    name = str(relative)
    if len(relative.parts) != 1 or name.startswith(".") or len(name) > 255:
        return None
    return name


def recording_done(*, name: str, path: str, ingest_node: str) -> Recording | None:
    """Keep a finished recording of a room's stream (idempotent by node and path), and ask
    for the room's replay if the show has ended. None when the recording is not one of
    ours (another stream name, a path outside INGEST_RECORDINGS_DIR)."""
    room_id = stream_room_id_from_name(name)
    relative = recording_relative_path(path)
    if room_id is None or relative is None or not relative.startswith(f"{name}-"):
        logger.warning("Ignoring a recording of %r at %r", name, path)
        return None
    with transaction.atomic():
        room = Room.objects.filter(pk=room_id).first()
        if room is None:
            return None
        try:
            with transaction.atomic():
                recording = Recording.objects.create(
                    room=room, path=relative, ingest_node=ingest_node[:255], ended_at=timezone.now()
                )
        except IntegrityError:
            return Recording.objects.get(ingest_node=ingest_node[:255], path=relative)
        if room.status == Room.Status.ENDED:
            replay_request(room_id=room.pk)
    return recording


def recording_file(recording: Recording) -> Path:
    return Path(settings.INGEST_RECORDINGS_DIR) / recording.path


# --- asking for a build ------------------------------------------------------------------


def replay_request(*, room_id: int) -> Replay:
    """Ask for the room's replay to be (re)built: a new version, built on commit."""
    replay, created = Replay.objects.get_or_create(room_id=room_id)
    if not created:
        # A ready replay stays watchable while its next version is built.
        Replay.objects.filter(pk=replay.pk).update(version=F("version") + 1, error="")
        Replay.objects.filter(pk=replay.pk).exclude(status=Replay.Status.READY).update(status=Replay.Status.PROCESSING)
        replay.refresh_from_db()
    version = replay.version

    def enqueue() -> None:
        from streams.tasks import replay_build_task

        replay_build_task.delay(room_id, version)

    transaction.on_commit(enqueue, robust=True)
    return replay


def replay_on_room_closed(room: Room) -> None:
    """rooms' hook (before the publisher is dropped): an ended show whose stream is already
    off air is built now; one still on air is built when its last recording is done."""
    if room.status != Room.Status.ENDED or not settings.INGEST_RECORDINGS_DIR:
        return
    on_air = StreamSession.objects.filter(room=room, ended_at__isnull=True).exists()
    if not on_air and Recording.objects.filter(room=room).exclude(path="").exists():
        replay_request(room_id=room.pk)


def featured_moment_record(item: RoomItem) -> None:
    """rooms' hook: the item became "now explaining" (a chapter of the replay)."""
    FeaturedMoment.objects.create(room_id=item.room_id, item=item, at=timezone.now())


# --- the timeline: the show's wall clock onto the video ----------------------------------


@dataclass(frozen=True)
class Piece:
    origin: datetime  # the wall time of the recording's first frame
    duration: float
    base: float  # where it starts in the video


class Timeline:
    """Recordings played back to back. A moment inside a recording maps to its place in
    it; a moment in a gap (the host off air) to the start of the next recording; before
    the first, to 0; after the last, to the end."""

    def __init__(self, pieces: list[Piece]) -> None:
        self.pieces = sorted(pieces, key=lambda piece: piece.origin)
        self.duration = sum(piece.duration for piece in self.pieces)

    @classmethod
    def load(cls, rows: list[list[Any]]) -> Timeline:
        return cls(
            [Piece(datetime.fromisoformat(origin), float(duration), float(base)) for origin, duration, base in rows]
        )

    def dump(self) -> list[list[Any]]:
        return [[piece.origin.isoformat(), piece.duration, piece.base] for piece in self.pieces]

    def offset(self, at: datetime) -> float:
        for piece in self.pieces:
            if at < piece.origin:
                return piece.base
            into = (at - piece.origin).total_seconds()
            if into <= piece.duration:
                return piece.base + into
        return self.duration

    def wall_range(self, from_s: float | None, to_s: float | None) -> tuple[datetime | None, datetime | None]:
        """The wall-clock bounds (inclusive; None: open) of the moments whose offset lies
        in [from_s, to_s]: the inverse of offset() for filtering in SQL."""
        low = high = None
        if from_s is not None and from_s > 0 and self.pieces:
            ends = [piece.base + piece.duration for piece in self.pieces]
            index = bisect.bisect_left(ends, from_s)
            if index >= len(self.pieces):
                low = self.pieces[-1].origin + timedelta(seconds=self.pieces[-1].duration, microseconds=1)
            else:
                piece = self.pieces[index]
                if from_s <= piece.base:  # the gap before it maps onto its start
                    before = self.pieces[index - 1] if index else None
                    low = before.origin + timedelta(seconds=before.duration, microseconds=1) if before else None
                else:
                    low = piece.origin + timedelta(seconds=from_s - piece.base)
        if to_s is not None and self.pieces:
            bases = [piece.base for piece in self.pieces]
            index = bisect.bisect_right(bases, to_s) - 1
            if index < 0:
                high = self.pieces[0].origin
            else:
                piece = self.pieces[index]
                if to_s < piece.base + piece.duration:
                    high = piece.origin + timedelta(seconds=to_s - piece.base)
                elif index + 1 < len(self.pieces):
                    high = self.pieces[index + 1].origin - timedelta(microseconds=1)
                else:
                    high = None  # the end: everything after maps onto it
        return low, high


def chapters_for(room_id: int, timeline: Timeline) -> list[dict[str, Any]]:
    """Each featured item at its offset; an item featured before the recording began is
    the first chapter, at 0; two at the same offset: the later one."""
    chapters: list[dict[str, Any]] = []
    for moment in FeaturedMoment.objects.filter(room_id=room_id).order_by("at", "id"):
        at_s = round(timeline.offset(moment.at), 3)
        if chapters and chapters[-1]["at_s"] >= at_s:
            chapters.pop()
        if chapters and chapters[-1]["item"] == moment.item_id:
            continue
        chapters.append({"at_s": at_s, "item": moment.item_id})
    return chapters


# --- ffmpeg ----------------------------------------------------------------------------


def _run(argv: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, timeout=FFMPEG_TIMEOUT_S, check=False)


def probe(path: Path) -> dict[str, Any] | None:
    """ffprobe's view of a media file (format and streams), or None if it cannot read it."""
    done = _run([
        "ffprobe", "-v", "error", "-show_entries",
        "format=duration:stream=codec_type,codec_name,width,height,sample_rate,channels",
        "-of", "json", str(path),
    ])  # fmt: skip
    if done.returncode != 0:
        return None
    info: dict[str, Any] = json.loads(done.stdout or "{}")
    streams = info.get("streams") or []
    if not any(stream.get("codec_type") == "video" for stream in streams):
        return None
    return info


def _duration(info: dict[str, Any]) -> float:
    return float((info.get("format") or {}).get("duration") or 0.0)


def _stream_shape(info: dict[str, Any]) -> list[tuple[Any, ...]]:
    return sorted(
        (
            s.get("codec_type"),
            s.get("codec_name"),
            s.get("width"),
            s.get("height"),
            s.get("sample_rate"),
            s.get("channels"),
        )
        for s in info.get("streams") or []
        if s.get("codec_type") in ("video", "audio")
    )


def _ffmpeg(argv: list[str], what: str) -> None:
    done = _run(["ffmpeg", "-hide_banner", "-nostats", "-loglevel", "error", "-y", *argv])
    if done.returncode != 0:
        raise ReplayBuildError(f"ffmpeg could not {what}: {done.stderr.strip()[-500:]}")


@dataclass
class Built:
    timeline: Timeline
    duration: float
    hls_dir: Path
    show: Path
    skipped: list[str]


def remux(recordings: list[Recording], work: Path) -> Built:
    """The recordings, each read and rewritten as MPEG-TS (validating it), joined into one
    show file and cut into a VOD playlist of REPLAY_SEGMENT_S segments."""
    pieces: list[tuple[Recording, Path, dict[str, Any]]] = []
    skipped: list[str] = []
    for index, recording in enumerate(recordings):
        source = recording_file(recording)
        part = work / f"part-{index:04d}.ts"
        done = _run(["ffmpeg", "-hide_banner", "-nostats", "-loglevel", "error", "-y", "-i", str(source),
                     "-map", "0:v:0", "-map", "0:a:0?", "-c", "copy", "-f", "mpegts", str(part)])  # fmt: skip
        info = probe(part) if done.returncode == 0 else None
        if info is None or _duration(info) <= 0:
            skipped.append(f"{recording.path}: {done.stderr.strip()[-200:] or 'no video in it'}")
            continue
        pieces.append((recording, part, info))
    if not pieces:
        raise RecordingUnreadable("ffmpeg could not read any recording of the show: " + "; ".join(skipped))

    timeline_pieces = []
    base = 0.0
    ordered = sorted(pieces, key=lambda p: p[0].ended_at - timedelta(seconds=_duration(p[2])))
    for recording, _part, info in ordered:
        duration = _duration(info)
        timeline_pieces.append(Piece(recording.ended_at - timedelta(seconds=duration), duration, base))
        base += duration

    show = work / "show.ts"
    listing = work / "parts.txt"
    listing.write_text("".join(f"file '{part.name}'\n" for _rec, part, _info in ordered))
    same_shape = len({tuple(_stream_shape(info)) for _rec, _part, info in ordered}) == 1
    codecs = ["-c", "copy"] if same_shape else [
        "-c:v", "libx264", "-preset", "veryfast", "-crf", "23", "-g", "48", "-c:a", "aac", "-b:a", "96k",
    ]  # fmt: skip
    _ffmpeg(
        ["-f", "concat", "-safe", "0", "-i", str(listing), *codecs, "-f", "mpegts", str(show)], "join the recordings"
    )

    hls_dir = work / "hls"
    hls_dir.mkdir()
    _ffmpeg([
        "-i", str(show), "-c", "copy", "-f", "hls", "-hls_time", str(settings.REPLAY_SEGMENT_S),
        "-hls_playlist_type", "vod", "-hls_list_size", "0",
        "-hls_segment_filename", str(hls_dir / "seg-%05d.ts"), str(hls_dir / "index.m3u8"),
    ], "write the playlist")  # fmt: skip
    show_info = probe(show)
    duration = _duration(show_info) if show_info else base
    return Built(Timeline(timeline_pieces), duration, hls_dir, show, skipped)


def cut_clips(built: Built, chapters: list[dict[str, Any]], work: Path) -> list[tuple[dict[str, Any], Path, float]]:
    """One clip per chapter, from the key frame at or before it to the next chapter (at most
    REPLAY_CLIP_MAX_S), stream copied into MP4."""
    clips = []
    for index, chapter in enumerate(chapters):
        end = chapters[index + 1]["at_s"] if index + 1 < len(chapters) else built.duration
        length = min(float(settings.REPLAY_CLIP_MAX_S), end - chapter["at_s"])
        if length < 1:
            continue
        clip = work / f"clip-{index:03d}.mp4"
        _ffmpeg([
            "-ss", f"{chapter['at_s']:.3f}", "-i", str(built.show), "-t", f"{length:.3f}",
            "-map", "0:v:0", "-map", "0:a:0?", "-c", "copy", "-movflags", "+faststart", str(clip),
        ], "cut a product clip")  # fmt: skip
        info = probe(clip)
        if info is not None:
            clips.append((chapter, clip, _duration(info)))
    return clips


# --- storage ---------------------------------------------------------------------------


def _store(local: Path, name: str) -> str:
    with local.open("rb") as handle:
        saved = default_storage.save(name, File(handle))
    if saved != name:
        raise ReplayBuildError(f"storage saved {name} as {saved}")
    return saved


def storage_delete_tree(prefix: str) -> None:
    """Delete every file under a storage "directory" (file system or bucket alike)."""
    if not prefix:
        return
    try:
        directories, files = default_storage.listdir(prefix)
    except (FileNotFoundError, NotADirectoryError):
        return
    for name in files:
        default_storage.delete(f"{prefix.rstrip('/')}/{name}")
    for directory in directories:
        storage_delete_tree(f"{prefix.rstrip('/')}/{directory}")


# --- the build ---------------------------------------------------------------------------


def replay_build(*, room_id: int, version: int) -> str:
    """Build version `version` of the room's replay (the task's body). Returns what it did:
    "ready", "stale" (a newer version is asked for, or nothing to do), or "failed"."""
    replay = Replay.objects.filter(room_id=room_id).first()
    if replay is None or replay.version != version or replay.built_version >= version or replay.status not in BUILDABLE:
        return "stale"
    recordings = list(Recording.objects.filter(room_id=room_id).exclude(path=""))
    build = uuid.uuid4().hex
    prefix = f"replays/{room_id}/{build}"
    clip_prefix = f"clips/{room_id}/{build}"
    stored: list[str] = []
    try:
        with tempfile.TemporaryDirectory(prefix="liveshop-replay-") as scratch:
            work = Path(scratch)
            try:
                built = remux(recordings, work)
            except RecordingUnreadable as exc:
                _fail(replay_id=replay.pk, version=version, reason=str(exc))
                return "failed"
            chapters = chapters_for(room_id, built.timeline)
            clips = cut_clips(built, chapters, work)
            # Segments first, the playlist last: a playlist in storage names only segments
            # already there. Nothing refers to any of it until the commit below.
            for segment in sorted(built.hls_dir.glob("seg-*.ts")):
                stored.append(_store(segment, f"{prefix}/{segment.name}"))
            playlist = _store(built.hls_dir / "index.m3u8", f"{prefix}/index.m3u8")
            stored.append(playlist)
            clip_rows = []
            for chapter, clip, duration in clips:
                name = _store(clip, f"{clip_prefix}/{chapter['item']}-{int(chapter['at_s'])}.mp4")
                stored.append(name)
                clip_rows.append((chapter, name, duration))
    except (ReplayBuildError, OSError, subprocess.TimeoutExpired):
        _delete_files(stored)
        raise

    with transaction.atomic():
        locked = Replay.objects.select_for_update().get(pk=replay.pk)
        if locked.version != version or locked.built_version >= version or locked.status not in BUILDABLE:
            transaction.on_commit(lambda: _delete_files(stored))
            return "stale"
        old_prefix = locked.prefix
        old_clips = list(ProductClip.objects.filter(replay=locked).values_list("file", flat=True))
        ProductClip.objects.filter(replay=locked).delete()
        items = RoomItem.objects.in_bulk([chapter["item"] for chapter, _name, _d in clip_rows])
        ProductClip.objects.bulk_create(
            ProductClip(
                product_id=items[chapter["item"]].sku.product_id, room_id=room_id, replay=locked, file=name,
                at_s=chapter["at_s"], duration_s=duration,
            )
            for chapter, name, duration in clip_rows
            if chapter["item"] in items
        )  # fmt: skip
        locked.status = Replay.Status.READY
        locked.attempts += 1  # builds that got this far (a killed one did not)
        locked.built_version = version
        locked.prefix = prefix
        locked.playlist = playlist
        locked.duration_s = round(built.duration, 3)
        locked.chapters = chapters
        locked.timeline = built.timeline.dump()
        locked.error = "; ".join(built.skipped)
        locked.ready_at = timezone.now()
        locked.save()
        transaction.on_commit(lambda: _delete_old(old_prefix, old_clips))
    return "ready"


def _delete_files(names: list[str]) -> None:
    for name in names:
        default_storage.delete(name)


def _delete_old(prefix: str, clips: list[str]) -> None:
    storage_delete_tree(prefix)
    _delete_files(clips)


def _fail(*, replay_id: int, version: int, reason: str) -> None:
    """The build of `version` failed: the replay says why; one already watchable (an
    earlier version) stays watchable."""
    current = Replay.objects.filter(pk=replay_id, version=version)
    current.filter(status=Replay.Status.READY).update(error=reason[:2000])
    current.exclude(status=Replay.Status.READY).update(status=Replay.Status.FAILED, error=reason[:2000])


def replay_build_failed(*, room_id: int, version: int, reason: str) -> None:
    """The task gave up (retries spent): the replay says why."""
    replay = Replay.objects.filter(room_id=room_id).first()
    if replay is not None:
        _fail(replay_id=replay.pk, version=version, reason=reason)


# --- sweeping: lost callbacks and retention ------------------------------------------------


def replays_sweep(*, now: datetime | None = None) -> tuple[int, int]:
    """Ask for replays nobody asked for (an ended show whose last recording never said it
    was done) or whose build was lost; delete replays, clips and recordings past
    REPLAY_RETENTION_DAYS (the show's stats stay). Returns (asked, expired)."""
    now = now or timezone.now()
    asked = 0
    if settings.INGEST_RECORDINGS_DIR:
        ended = Room.objects.filter(
            status=Room.Status.ENDED, ended_at__lt=now - RECORDING_GRACE,
            ended_at__gt=now - timedelta(days=settings.REPLAY_RETENTION_DAYS),
        )  # fmt: skip
        orphans = ended.filter(recordings__isnull=False, replay__isnull=True).distinct()
        stuck = ended.filter(replay__status=Replay.Status.PROCESSING, replay__updated_at__lt=now - STUCK_AFTER)
        for room_id in {*orphans.values_list("pk", flat=True), *stuck.values_list("pk", flat=True)}:
            with transaction.atomic():
                replay_request(room_id=room_id)
            asked += 1
    expired = 0
    due = Room.objects.filter(ended_at__lt=now - timedelta(days=settings.REPLAY_RETENTION_DAYS))
    with_files = {
        *due.filter(recordings__path__gt="").values_list("pk", flat=True),
        *due.filter(replay__status__in=[Replay.Status.READY, Replay.Status.FAILED]).values_list("pk", flat=True),
    }
    for room_id in sorted(with_files):
        replay_expire(room_id=room_id)
        expired += 1
    return asked, expired


def replay_expire(*, room_id: int) -> None:
    """Delete a show's replay files, clips and recordings; the rows say they are gone."""
    with transaction.atomic():
        replay = Replay.objects.select_for_update().filter(room_id=room_id).first()
        prefix = replay.prefix if replay else ""
        clips = list(ProductClip.objects.filter(room_id=room_id).values_list("file", flat=True))
        recordings = [recording_file(r) for r in Recording.objects.filter(room_id=room_id).exclude(path="")]
        ProductClip.objects.filter(room_id=room_id).delete()
        Recording.objects.filter(room_id=room_id).update(path="")
        if replay is not None:
            replay.status = Replay.Status.EXPIRED
            replay.prefix = replay.playlist = ""
            replay.save(update_fields=["status", "prefix", "playlist", "updated_at"])

        def delete() -> None:
            _delete_old(prefix, clips)
            # Builds killed before their commit left files nothing refers to: all go.
            storage_delete_tree(f"replays/{room_id}")
            storage_delete_tree(f"clips/{room_id}")
            for path in recordings:
                path.unlink(missing_ok=True)

        transaction.on_commit(delete)
