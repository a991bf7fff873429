"""What a user is told: a followed host went live, their order was paid, shipped or
refunded, they won a giveaway. Stored (the bell shows them after a reload) and pushed to
the user's open pages as they are made."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q


class Notification(models.Model):
    class Kind(models.TextChoices):
        HOST_LIVE = "host.live"
        ORDER_PAID = "order.paid"
        ORDER_SHIPPED = "order.shipped"
        ORDER_REFUNDED = "order.refunded"
        GIVEAWAY_WON = "giveaway.won"

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="notifications")
    kind = models.CharField(max_length=32, choices=Kind.choices)
    # What the notification is about, as the API shows it ({"room": {...}}, {"order": {...}}).
    data = models.JSONField(default=dict)
    # One notification per user and event: a redelivered task or a retried webhook makes
    # the same key, and the second insert is ignored.
    key = models.CharField(max_length=100)
    created_at = models.DateTimeField(auto_now_add=True)
    read_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]
        constraints = [models.UniqueConstraint(fields=["user", "key"], name="notification_once")]
        indexes = [
            models.Index(fields=["user", "-id"], name="notification_user_newest"),
            models.Index(fields=["user"], condition=Q(read_at__isnull=True), name="notification_unread"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} for user {self.user_id}"


class PushSubscription(models.Model):
    """A browser's Web Push subscription (PushManager.subscribe()): where to POST, and the
    keys the payload is encrypted to. Dropped when the push service says it is gone."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="push_subscriptions")
    endpoint = models.URLField(max_length=1000, unique=True)
    p256dh = models.CharField(max_length=128)  # the browser's public key, base64url
    auth = models.CharField(max_length=64)  # the shared auth secret, base64url
    language = models.CharField(max_length=16, blank=True)  # the subscribing page's: the push's words
    created_at = models.DateTimeField(auto_now_add=True)
    failures = models.PositiveIntegerField(default=0)

    def __str__(self) -> str:
        return f"push subscription {self.pk} of user {self.user_id}"
