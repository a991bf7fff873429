from __future__ import annotations

from django.db import models
from django.db.models import Q


class StreamSession(models.Model):
    """One accepted RTMP publish of a room, from on_publish to on_publish_done (or a drop)."""

    class EndReason(models.TextChoices):
        PUBLISH_DONE = "publish_done"
        DROPPED_SUSPENDED = "dropped_suspended"
        DROPPED_ENDED = "dropped_ended"
        KEY_ROTATED = "key_rotated"

    room = models.ForeignKey("rooms.Room", on_delete=models.CASCADE, related_name="stream_sessions")
    stream_name = models.CharField(max_length=64)
    # Which ingest server holds the stream (its `node` query arg, else the callback's address).
    ingest_node = models.CharField(max_length=255, blank=True)
    client_addr = models.CharField(max_length=64, blank=True)
    client_id = models.CharField(max_length=32, blank=True)
    started_at = models.DateTimeField()
    ended_at = models.DateTimeField(null=True, blank=True)
    end_reason = models.CharField(max_length=32, choices=EndReason.choices, blank=True)

    class Meta:
        ordering = ["-id"]
        constraints = [
            # At most one live publisher per room: a second publish, or two racing publishes
            # with one key, lose on this index whatever the interleaving.
            models.UniqueConstraint(
                fields=["room"], condition=Q(ended_at__isnull=True), name="stream_one_open_per_room"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.room_id}:{self.stream_name}"


class Recording(models.Model):
    """One file the ingest server recorded of a room's stream (nginx-rtmp `record`), as its
    on_record_done callback names it: one per publish, so a show whose host reconnected
    has several. `ended_at` is when the recording closed (the callback's time)."""

    room = models.ForeignKey("rooms.Room", on_delete=models.CASCADE, related_name="recordings")
    # The file, relative to INGEST_RECORDINGS_DIR; forgotten (blank) once retention deleted it.
    path = models.CharField(max_length=255)
    ingest_node = models.CharField(max_length=255, blank=True)
    ended_at = models.DateTimeField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["ended_at", "id"]
        constraints = [
            models.UniqueConstraint(fields=["ingest_node", "path"], name="recording_once", condition=~Q(path=""))
        ]

    def __str__(self) -> str:
        return f"{self.room_id}:{self.path}"


class Replay(models.Model):
    """A show's recordings as one HLS VOD in storage, with its chapters and the map from
    the show's wall clock to the video's offsets (`timeline`).

    Built by streams.replays.replay_build (a Celery task); `version` rises with every
    request to build (a new recording), and only the build of the latest version may
    mark the replay ready, so a late build never overwrites a newer one.
    """

    class Status(models.TextChoices):
        PROCESSING = "processing"
        READY = "ready"
        FAILED = "failed"
        EXPIRED = "expired"

    room = models.OneToOneField("rooms.Room", on_delete=models.CASCADE, related_name="replay")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PROCESSING)
    version = models.PositiveIntegerField(default=1)
    # The version whose build is the one playing (0: none yet); a build redelivered after
    # it finished finds its version built and does nothing.
    built_version = models.PositiveIntegerField(default=0)
    # Storage names: the playlist (its segments beside it, under `prefix`).
    prefix = models.CharField(max_length=255, blank=True)
    playlist = models.CharField(max_length=255, blank=True)
    duration_s = models.FloatField(null=True, blank=True)
    # [{"at_s", "item"}]: the items featured during the show, at their offsets.
    chapters = models.JSONField(default=list, blank=True)
    # [[origin (ISO wall time), duration_s, base_s]]: each recording's place in the video.
    timeline = models.JSONField(default=list, blank=True)
    error = models.TextField(blank=True)
    # Builds that reached the end (a build killed before marking the replay ready did not).
    attempts = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    ready_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"replay of {self.room_id}: {self.status}"


class FeaturedMoment(models.Model):
    """An item becoming the room's "now explaining" item, when it did: a replay's chapter."""

    room = models.ForeignKey("rooms.Room", on_delete=models.CASCADE, related_name="featured_moments")
    item = models.ForeignKey("rooms.RoomItem", on_delete=models.CASCADE, related_name="+")
    at = models.DateTimeField()

    class Meta:
        ordering = ["at", "id"]
        indexes = [models.Index(fields=["room", "at"], name="featured_moment_room")]

    def __str__(self) -> str:
        return f"{self.room_id}: item {self.item_id} at {self.at:%H:%M:%S}"


class ProductClip(models.Model):
    """A short clip cut from a replay where a product was explained (one per chapter)."""

    product = models.ForeignKey("catalog.Product", on_delete=models.CASCADE, related_name="clips")
    room = models.ForeignKey("rooms.Room", on_delete=models.CASCADE, related_name="product_clips")
    replay = models.ForeignKey(Replay, on_delete=models.CASCADE, related_name="clips")
    file = models.CharField(max_length=255)  # a storage name
    at_s = models.FloatField()
    duration_s = models.FloatField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "id"]
        indexes = [models.Index(fields=["product", "-created_at"], name="product_clip_recent")]

    def __str__(self) -> str:
        return f"{self.product_id} in {self.room_id} at {self.at_s:.0f} s"
