from __future__ import annotations

from typing import Any

from django.db.models import QuerySet

from notifications.models import Notification


def notification_payload(notification: Notification) -> dict[str, Any]:
    """A notification as the API and the socket show it."""
    return {
        "id": notification.pk,
        "user": notification.user_id,
        "kind": notification.kind,
        "data": notification.data,
        "created_at": notification.created_at.isoformat().replace("+00:00", "Z"),
        "read": notification.read_at is not None,
    }


def notifications_of(*, user_id: int) -> QuerySet[Notification]:
    return Notification.objects.filter(user_id=user_id).order_by("-id")


def notifications_unread(*, user_id: int) -> tuple[int, int]:
    """How many are unread, and the newest id (the socket's starting point)."""
    unread = Notification.objects.filter(user_id=user_id, read_at__isnull=True).count()
    latest = notifications_of(user_id=user_id).values_list("id", flat=True).first() or 0
    return unread, latest
