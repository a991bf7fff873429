"""Making notifications: stored once per user and event, pushed at commit."""

from __future__ import annotations

import json
import secrets
from collections.abc import Sequence
from datetime import timedelta
from functools import partial
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.db import connection, transaction
from django.utils import timezone

from notifications import live
from notifications.models import Notification
from notifications.push import push_on_commit

# Rows per INSERT: a go-live to many followers is written in statements of this size.
INSERT_BATCH = 1000


def notify(*, user_ids: Sequence[int], kind: str, data: dict[str, Any], key: str) -> int:
    """Tell each user once per `key` (a second call with the same key adds nothing, so
    a redelivered task or webhook is harmless). The rows are written in the caller's
    transaction; their push to open sockets waits for its commit. Returns how many new."""
    if kind not in Notification.Kind.values:
        raise ValueError(f"unknown notification kind {kind!r}")
    created: list[dict[str, Any]] = []
    text = json.dumps(data, separators=(",", ":"))
    now = timezone.now()
    unique = list(dict.fromkeys(user_ids))
    for start in range(0, len(unique), INSERT_BATCH):
        created.extend(_insert(unique[start : start + INSERT_BATCH], kind=kind, data_text=text, key=key, now=now))
    if created:
        payloads = [
            {"id": row_id, "user": user_id, "kind": kind, "data": data, "created_at": _iso(created_at), "read": False}
            for row_id, user_id, created_at in ((r["id"], r["user_id"], r["created_at"]) for r in created)
        ]
        transaction.on_commit(partial(live.publish, payloads), robust=True)
        push_on_commit(notifications=payloads)
    return len(created)


def _insert(user_ids: list[int], *, kind: str, data_text: str, key: str, now: Any) -> list[dict[str, Any]]:
    """INSERT … ON CONFLICT DO NOTHING RETURNING: the ids of the rows that are new
    (Django's bulk_create returns no ids when it ignores conflicts)."""
    table = Notification._meta.db_table
    cast = "::jsonb" if connection.vendor == "postgresql" else ""
    values = ", ".join([f"(%s, %s, %s{cast}, %s, %s)"] * len(user_ids))
    params: list[Any] = []
    created_at = connection.ops.adapt_datetimefield_value(now)
    for user_id in user_ids:
        params += [user_id, kind, data_text, key, created_at]
    sql = (
        f'INSERT INTO "{table}" ("user_id", "kind", "data", "key", "created_at") VALUES {values} '
        f'ON CONFLICT ("user_id", "key") DO NOTHING RETURNING "id", "user_id"'
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    return [{"id": r[0], "user_id": r[1], "created_at": now} for r in rows]


def _iso(moment: Any) -> str:
    return str(moment.isoformat().replace("+00:00", "Z"))


def notifications_mark_read(*, user_id: int, upto: int | None = None) -> int:
    """Mark the user's notifications read (all, or those up to id `upto`); returns how
    many stay unread."""
    unread = Notification.objects.filter(user_id=user_id, read_at__isnull=True)
    (unread if upto is None else unread.filter(pk__lte=upto)).update(read_at=timezone.now())
    return unread.count()


SOCKET_TICKET_PREFIX = "ws-ticket-me:"


def socket_ticket_issue(*, user_id: int) -> tuple[str, Any]:
    """A single-use ticket that opens /ws/me/ as the user within WS_TICKET_TTL_S, for
    clients that cannot send the session cookie with the upgrade (apps)."""
    ticket = secrets.token_urlsafe(24)
    expires_at = timezone.now() + timedelta(seconds=settings.WS_TICKET_TTL_S)
    cache.set(SOCKET_TICKET_PREFIX + ticket, user_id, timeout=settings.WS_TICKET_TTL_S)
    return ticket, expires_at


def socket_ticket_redeem(ticket: str) -> int | None:
    """The ticket's user id, once: None if unknown, used or expired."""
    if not ticket or len(ticket) > 100:
        return None
    key = SOCKET_TICKET_PREFIX + ticket
    user_id = cache.get(key)
    # The delete is the claim: of two sockets racing with one ticket, one deletes the key.
    if user_id is None or not cache.delete(key):
        return None
    return int(user_id)
