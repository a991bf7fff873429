"""Writes for host profiles and follows."""

from __future__ import annotations

import logging

from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from liveshop.errors import (
    Conflict,
    Invalid,
)
from liveshop.models import User
from rooms.models import Follow, Host, ModerationAction
from rooms.services.moderation import audit_record

logger = logging.getLogger(__name__)


# --- Hosts ------------------------------------------------------------------------------


def host_create(*, user: User, kind: str, district: str, bio: str = "") -> Host:
    try:
        with transaction.atomic():
            return Host.objects.create(user=user, kind=kind, district=district, bio=bio)
    except IntegrityError:
        raise Conflict("You already have a host profile.") from None


@transaction.atomic
def host_verify(*, host: Host, actor: User | None = None) -> Host:
    """Mark a host verified (audited as `actor`'s act). Verifying twice keeps the first
    verification time and is not audited again."""
    if Host.objects.filter(pk=host.pk, verified=False).update(verified=True, verified_at=timezone.now()):
        audit_record(actor=actor, action=ModerationAction.Action.HOST_VERIFY, target_user=host.user)
    host.refresh_from_db()
    return host


def host_follow(*, user: User, host: Host) -> None:
    """Follow a host; following again changes nothing."""
    if host.user_id == user.pk:
        raise Invalid("You cannot follow yourself.")
    with transaction.atomic():
        _, created = Follow.objects.get_or_create(user=user, host=host)
        if created:
            Host.objects.filter(pk=host.pk).update(followers_count=F("followers_count") + 1)


def host_unfollow(*, user: User, host: Host) -> None:
    with transaction.atomic():
        deleted, _ = Follow.objects.filter(user=user, host=host).delete()
        if deleted:
            Host.objects.filter(pk=host.pk, followers_count__gt=0).update(followers_count=F("followers_count") - 1)
