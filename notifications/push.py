"""Web Push: a notification also reaches the user's phone or desktop when no page of
liveshop is open, through the browser's push service (RFC 8030), its payload encrypted
to the subscription's keys (RFC 8291) and signed with liveshop's VAPID key (RFC 8292), by
pywebpush. Sent by a Celery task after the notification's commit; a subscription the
push service calls gone (404, 410) is deleted, one that keeps failing too."""

from __future__ import annotations

import base64
import binascii
import fnmatch
import json
import logging
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.db import IntegrityError, transaction

from liveshop.errors import Invalid
from liveshop.models import User
from liveshop.push_words import notification_text
from notifications.models import Notification, PushSubscription
from notifications.selectors import notification_payload

logger = logging.getLogger(__name__)

PUSH_TTL_S = 12 * 3600  # a "host is live" older than this is not worth waking a phone for
PUSH_TIMEOUT_S = 10
MAX_FAILURES = 5


def push_enabled() -> bool:
    return bool(settings.VAPID_PUBLIC_KEY and settings.VAPID_PRIVATE_KEY)


def _b64url_bytes(value: str) -> bytes:
    return base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))


def _endpoint_allowed(endpoint: str) -> bool:
    parts = urlsplit(endpoint)
    if parts.scheme != "https" and not (parts.scheme == "http" and settings.WEB_PUSH_ALLOW_HTTP):
        return False
    host = (parts.hostname or "").lower()
    return any(
        host == pattern or (pattern.startswith("*.") and fnmatch.fnmatch(host, pattern))
        for pattern in (p.lower() for p in settings.WEB_PUSH_ALLOWED_HOSTS)
    )


def push_subscription_save(
    *, user: User, endpoint: str, p256dh: str, auth: str, language: str = ""
) -> tuple[PushSubscription, bool]:
    """Keep a browser's subscription for the user (again: the same row, moved to this user
    if another signed in on that browser). 400 for an endpoint that is no browser's push
    service or keys that are not keys."""
    if not _endpoint_allowed(endpoint):
        raise Invalid("This endpoint is not a browser push service.", fields={"endpoint": ["Not allowed."]})
    try:
        key, secret = _b64url_bytes(p256dh), _b64url_bytes(auth)
    except (binascii.Error, ValueError) as exc:
        raise Invalid("The keys are not base64url.", fields={"keys": ["Not base64url."]}) from exc
    if len(key) != 65 or key[0] != 4 or len(secret) != 16:
        raise Invalid("p256dh must be a P-256 point, auth 16 bytes.", fields={"keys": ["Wrong length."]})
    values = {"user": user, "p256dh": p256dh, "auth": auth, "failures": 0, "language": language[:16]}
    try:
        with transaction.atomic():
            return PushSubscription.objects.update_or_create(endpoint=endpoint, defaults=values)
    except IntegrityError:  # two requests racing with one endpoint: the other one made it
        return PushSubscription.objects.update_or_create(endpoint=endpoint, defaults=values)


def push_subscription_delete(*, user: User, endpoint: str) -> None:
    PushSubscription.objects.filter(user=user, endpoint=endpoint).delete()


def push_send(*, notification_ids: Sequence[int]) -> dict[str, int]:
    """Push each notification to each of its user's subscriptions. Returns counts."""
    from pywebpush import WebPushException, webpush  # type: ignore[import-untyped]

    sent = gone = failed = 0
    notifications = list(Notification.objects.filter(pk__in=notification_ids))
    subscriptions: dict[int, list[PushSubscription]] = {}
    for sub in PushSubscription.objects.filter(user_id__in={n.user_id for n in notifications}):
        subscriptions.setdefault(sub.user_id, []).append(sub)
    for notification in notifications:
        payload = notification_payload(notification)
        for sub in subscriptions.get(notification.user_id, []):
            # The notification, and what the service worker shows of it.
            data = json.dumps({**payload, **notification_text(payload, language=sub.language)}, separators=(",", ":"))
            try:
                webpush(
                    subscription_info={"endpoint": sub.endpoint, "keys": {"p256dh": sub.p256dh, "auth": sub.auth}},
                    data=data,
                    vapid_private_key=settings.VAPID_PRIVATE_KEY,
                    vapid_claims={"sub": settings.VAPID_SUBJECT},
                    ttl=PUSH_TTL_S,
                    timeout=PUSH_TIMEOUT_S,
                )
                sent += 1
            except WebPushException as exc:
                status = exc.response.status_code if exc.response is not None else None
                if status in (404, 410) or sub.failures + 1 >= MAX_FAILURES:
                    PushSubscription.objects.filter(pk=sub.pk).delete()
                    gone += 1
                else:
                    PushSubscription.objects.filter(pk=sub.pk).update(failures=sub.failures + 1)
                    failed += 1
                logger.info("web push to subscription %s failed (%s): %s", sub.pk, status, exc)
            except Exception as exc:  # noqa: BLE001 - a push service down: the notification is stored anyway
                PushSubscription.objects.filter(pk=sub.pk).update(failures=sub.failures + 1)
                failed += 1
                logger.warning("web push to subscription %s failed: %s", sub.pk, exc)
    return {"sent": sent, "gone": gone, "failed": failed}


def push_on_commit(*, notifications: Sequence[dict[str, Any]]) -> None:
    """After the commit, a task pushes the notifications of users who subscribed."""
    if not push_enabled() or not notifications:
        return
    users = {n["user"] for n in notifications}
    if not PushSubscription.objects.filter(user_id__in=users).exists():
        return
    from notifications.tasks import push_send_task

    ids = [n["id"] for n in notifications]
    transaction.on_commit(lambda: push_send_task.delay(ids), robust=True)
