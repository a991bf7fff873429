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
