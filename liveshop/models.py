from __future__ import annotations

from django.contrib.auth.models import AbstractUser
from django.db import models


class User(AbstractUser):
    """A liveshop account: viewer, host, moderator or staff are roles of the same user."""

    display_name = models.CharField(max_length=64, blank=True)
    # A Chongqing district or county ("Wulong", "Jiangbei"); reports group by it.
    district = models.CharField(max_length=64, blank=True)

    def __str__(self) -> str:
        return self.public_name

    @property
    def public_name(self) -> str:
        return self.display_name or self.username


class IdempotencyRecord(models.Model):
    """One `Idempotency-Key` a user sent, and the first response given for it.

    It lives here, beside the user, rather than in `orders`: the plumbing in
    `liveshop.idempotency` serves `POST /orders/`, `POST /wallet/top-ups/` and
    `POST /rooms/{id}/gifts/`, and `rooms` may not import `orders`.

    A record is claimed with a lease (`locked_until`) before the request runs. It ends
    with a stored response (2xx: replayed byte for byte), or it is deleted (a refusal
    did nothing, so the key may be used again). `resource_*` names what the request
    created, set in the creating transaction, so that a retry after a crash or a
    provider outage resumes with it instead of creating it twice.
    """

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="+")
    key = models.CharField(max_length=255)
    # The method and path the key was first used with, and a hash of its JSON body.
    scope = models.CharField(max_length=200)
    request_hash = models.CharField(max_length=64)
    resource_type = models.CharField(max_length=50, blank=True)
    resource_id = models.BigIntegerField(null=True, blank=True)
    locked_until = models.DateTimeField(null=True, blank=True)
    response_status = models.PositiveSmallIntegerField(null=True, blank=True)
    response_body = models.BinaryField(null=True, blank=True)
    response_content_type = models.CharField(max_length=100, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    completed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "key"], name="idempotency_key_once_per_user")]
        indexes = [models.Index(fields=["created_at"])]

    def __str__(self) -> str:
        return f"{self.user_id}:{self.key}"
