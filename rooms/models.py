from __future__ import annotations

import secrets

from django.conf import settings
from django.db import models
from django.db.models import Q

from catalog.models import Sku


class Host(models.Model):
    """A user who broadcasts: a farmer, a cadre (local official) or a merchant."""

    class Kind(models.TextChoices):
        FARMER = "farmer"
        CADRE = "cadre"
        MERCHANT = "merchant"

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="host")
    kind = models.CharField(max_length=16, choices=Kind.choices)
    district = models.CharField(max_length=64)
    bio = models.TextField(blank=True, max_length=2000)
    verified = models.BooleanField(default=False)
    verified_at = models.DateTimeField(null=True, blank=True)
    # Kept equal to the Follow rows by the follow services (conditional F() updates).
    followers_count = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]
        indexes = [models.Index(fields=["district"])]

    def __str__(self) -> str:
        return f"{self.user} ({self.kind}, {self.district})"


class Follow(models.Model):
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="follows")
    host = models.ForeignKey(Host, on_delete=models.CASCADE, related_name="follows")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "host"], name="follow_once")]

    def __str__(self) -> str:
        return f"{self.user_id} follows {self.host_id}"


def new_stream_key() -> str:
    return secrets.token_urlsafe(24)


class Room(models.Model):
    """One broadcast show: scheduled -> live -> ended, or suspended by staff at any time."""

    class Status(models.TextChoices):
        SCHEDULED = "scheduled"
        LIVE = "live"
        ENDED = "ended"
        SUSPENDED = "suspended"

    host = models.ForeignKey(Host, on_delete=models.PROTECT, related_name="rooms")
    title = models.CharField(max_length=120)
    description = models.TextField(blank=True, max_length=5000)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.SCHEDULED)
    scheduled_start = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    ended_at = models.DateTimeField(null=True, blank=True)
    suspended_at = models.DateTimeField(null=True, blank=True)
    suspend_reason = models.CharField(max_length=500, blank=True)
    slow_mode_s = models.PositiveIntegerField(default=0)
    # The RTMP/SRT ingest key: shown to the host only.
    stream_key = models.CharField(max_length=64, default=new_stream_key, unique=True)
    # Where viewers watch (HLS/FLV from the streaming server); set by the host.
    playback_url = models.URLField(max_length=500, blank=True)
    featured_item = models.ForeignKey("RoomItem", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-id"]
        indexes = [models.Index(fields=["status", "-id"])]

    def __str__(self) -> str:
        return self.title

    @property
    def is_open(self) -> bool:
        """Scheduled or live: the host may still change the show."""
        return self.status in (self.Status.SCHEDULED, self.Status.LIVE)


class RoomItem(models.Model):
    """A sku on a room's shelf, with an optional live-only price."""

    room = models.ForeignKey(Room, on_delete=models.CASCADE, related_name="items")
    sku = models.ForeignKey(Sku, on_delete=models.PROTECT, related_name="room_items")
    live_price = models.PositiveIntegerField(null=True, blank=True)
    position = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["position", "id"]
        constraints = [models.UniqueConstraint(fields=["room", "sku"], name="room_item_sku_once")]

    def __str__(self) -> str:
        return f"{self.room_id}: {self.sku}"


class FlashSale(models.Model):
    """A time-boxed sale of `quantity` units of a shelf item at `price`.

    The units leave the sku's free stock when the sale starts; the ones not sold go back
    when it ends. `remaining` is the truth in PostgreSQL; a Redis gate mirrors it.
    """

    class Status(models.TextChoices):
        ACTIVE = "active"
        ENDED = "ended"

    item = models.ForeignKey(RoomItem, on_delete=models.CASCADE, related_name="flash_sales")
    price = models.PositiveIntegerField()
    quantity = models.PositiveIntegerField()
    remaining = models.PositiveIntegerField()
    per_buyer_limit = models.PositiveIntegerField(null=True, blank=True)
    starts_at = models.DateTimeField()
    ends_at = models.DateTimeField()
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.ACTIVE)
    ended_at = models.DateTimeField(null=True, blank=True)
    # Units that went back to the sku's stock when the sale ended.
    returned = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["item"], condition=Q(status="active"), name="one_active_flash_sale_per_item"
            ),
            models.CheckConstraint(condition=Q(remaining__lte=models.F("quantity")), name="flash_remaining_le_qty"),
        ]
        indexes = [models.Index(fields=["status", "ends_at"])]

    def __str__(self) -> str:
        return f"flash sale {self.pk} of item {self.item_id}"

    @property
    def sold(self) -> int:
        return self.quantity - self.remaining
