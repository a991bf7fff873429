"""Red envelopes: a host's surprise gift of coins, split into shares grabbed first come,
first served (CONTRACT.md, "Red envelopes"; envelopes/services.py)."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q


class RedEnvelope(models.Model):
    class Status(models.TextChoices):
        # `scheduled` is not stored: an open envelope before its `opens_at` (see `status_now`).
        SCHEDULED = "scheduled"
        OPEN = "open"
        EMPTY = "empty"
        EXPIRED = "expired"

    MAX_SHARES = 1000
    MAX_COINS = 1_000_000
    MAX_OPENS_IN_S = 600

    room = models.ForeignKey("rooms.Room", on_delete=models.PROTECT, related_name="red_envelopes")
    sender = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="red_envelopes")
    coins = models.PositiveIntegerField()
    shares = models.PositiveIntegerField()
    remaining_shares = models.PositiveIntegerField()
    followers_only = models.BooleanField(default=False)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.OPEN)
    opens_at = models.DateTimeField()
    expires_at = models.DateTimeField()
    returned_coins = models.PositiveIntegerField(default=0)  # went back to the sender at expiry
    created_at = models.DateTimeField(auto_now_add=True)
    closed_at = models.DateTimeField(null=True, blank=True)  # emptied or expired

    class Meta:
        indexes = [
            models.Index(fields=["room", "status"], name="red_envelope_room_status"),
            models.Index(fields=["expires_at"], condition=Q(status="open"), name="red_envelope_open_expiry"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(shares__gte=1) & Q(coins__gte=models.F("shares")), name="red_envelope_shares_fit"
            ),
            models.CheckConstraint(
                condition=Q(remaining_shares__lte=models.F("shares")), name="red_envelope_remaining"
            ),
        ]

    def __str__(self) -> str:
        return f"red envelope {self.pk}: {self.coins} coins in {self.shares} shares, room {self.room_id}"


class RedEnvelopeShare(models.Model):
    """One share, drawn when the envelope is made; `user` is who grabbed it."""

    envelope = models.ForeignKey(RedEnvelope, on_delete=models.CASCADE, related_name="share_rows")
    index = models.PositiveIntegerField()  # the order it is handed out in
    coins = models.PositiveIntegerField()
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="red_envelope_shares"
    )
    grabbed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["envelope", "index"], name="red_envelope_share_index"),
            models.UniqueConstraint(
                fields=["envelope", "user"], condition=Q(user__isnull=False), name="red_envelope_share_once_per_user"
            ),
            models.CheckConstraint(condition=Q(coins__gte=1), name="red_envelope_share_positive"),
        ]

    def __str__(self) -> str:
        return f"share {self.index} of envelope {self.envelope_id}: {self.coins} coins"
