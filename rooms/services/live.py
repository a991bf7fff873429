"""Writes of the live show: WebSocket tickets and comments."""

from __future__ import annotations

import logging
import math
import secrets
from datetime import datetime, timedelta

from django.conf import settings
from django.core.cache import cache
from django.utils import timezone

from liveshop.errors import (
    AccountTooNew,
    Banned,
    CommentBlocked,
    Invalid,
    Muted,
    RateLimited,
    RoomNotLive,
)
from liveshop.models import User
from liveshop.ratelimit import COMMENT, rate_limit_take
from rooms import payloads, selectors
from rooms.banned_words import banned_word_in
from rooms.broadcast import room_event_on_commit
from rooms.models import Comment, Room
from rooms.realtime.backend import get_backend
from rooms.services.giveaways import giveaways_enter_by_comment

logger = logging.getLogger(__name__)


# --- Live: WebSocket tickets and comments ------------------------------------------------------

WS_TICKET_PREFIX = "ws-ticket:"


def ws_ticket_issue(*, user: User, room: Room) -> tuple[str, datetime]:
    """A single-use ticket that opens the room's WebSocket as `user` within WS_TICKET_TTL_S.

    Clients that cannot send a cookie or header with the upgrade (browsers, apps) get one
    over the authenticated API and pass it as `?ticket=`.
    """
    if selectors.is_banned(room_id=room.pk, user_id=user.pk):
        raise Banned()
    ticket = secrets.token_urlsafe(24)
    expires_at = timezone.now() + timedelta(seconds=settings.WS_TICKET_TTL_S)
    cache.set(
        WS_TICKET_PREFIX + ticket,
        f"{user.pk}:{room.pk}:{expires_at.timestamp()}",
        timeout=settings.WS_TICKET_TTL_S,
    )
    return ticket, expires_at


def ws_ticket_redeem(*, ticket: str, room_id: int) -> int | None:
    """The user id the ticket was issued to, once: None if unknown, used, expired or for
    another room."""
    if not ticket or len(ticket) > 100:
        return None
    key = WS_TICKET_PREFIX + ticket
    value = cache.get(key)
    # The delete is the claim: of two sockets racing with one ticket, one deletes the key.
    if value is None or not cache.delete(key):
        return None
    user_id, ticket_room_id, expires = value.split(":")
    if int(ticket_room_id) != room_id or float(expires) < timezone.now().timestamp():
        return None
    return int(user_id)


def _check_account_age(*, room: Room, user: User) -> None:
    """The room's new-account protection: accounts younger than the host's minimum watch
    but do not comment yet."""
    min_age_s = room.comment_min_account_age_s
    if not min_age_s:
        return
    allowed_at = user.date_joined + timedelta(seconds=min_age_s)
    if allowed_at > timezone.now():
        minutes = math.ceil(min_age_s / 60)
        raise AccountTooNew(
            f"New accounts may comment in this room {minutes} minute{'s' if minutes != 1 else ''} after "
            f"signing up; yours may from {allowed_at.isoformat(timespec='seconds')}.",
            allowed_at=allowed_at,
        )


def _has_lone_surrogate(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def comment_create(*, room: Room, user: User, text: str, role: str, client_ip: str | None = None) -> Comment:
    """Save a comment and announce it (`comment.new`) on commit.

    `role` is the author's role in the room (selectors.room_role): the host and moderators
    are exempt from new-account protection, rate limits (the user's, and `client_ip`'s
    when given) and slow mode. Raises Invalid (empty, too long, or not text), RoomNotLive,
    Banned, Muted, AccountTooNew, RateLimited or CommentBlocked, having saved nothing. A
    comment equal to the keyword of an open giveaway of the room also enters its author.
    """
    text = text.strip()
    if not text:
        raise Invalid("A comment cannot be empty.", fields={"text": ["This field may not be blank."]})
    if len(text) > Comment.MAX_LENGTH:
        raise Invalid(
            f"A comment has at most {Comment.MAX_LENGTH} characters.",
            fields={"text": [f"Ensure this field has no more than {Comment.MAX_LENGTH} characters."]},
        )
    # PostgreSQL's text cannot hold NUL, and a lone surrogate (JSON can spell one, \ud800)
    # is not UTF-8: either would fail at the insert instead of being refused here.
    if "\x00" in text or _has_lone_surrogate(text):
        raise Invalid("A comment must be valid text.", fields={"text": ["Not valid text."]})
    room = Room.objects.select_related("host").get(pk=room.pk)
    if room.status != Room.Status.LIVE:
        raise RoomNotLive("Comments are open while the room is live.")
    if selectors.is_banned(room_id=room.pk, user_id=user.pk):
        raise Banned()
    muted_until = selectors.room_mute_until(room_id=room.pk, user_id=user.pk)
    if muted_until is not None:
        raise Muted(f"You are muted in this room until {muted_until.isoformat()}.")
    if role not in (selectors.ROLE_HOST, selectors.ROLE_MODERATOR):
        _check_account_age(room=room, user=user)
        backend = get_backend()
        wait = backend.rate_limit(
            f"comment:{user.pk}", per_minute=settings.COMMENT_RATE_PER_MIN, burst=settings.COMMENT_BURST
        )
        if wait > 0:
            raise RateLimited("You are commenting too fast.", retry_after=math.ceil(wait))
        rate_limit_take(action=COMMENT, ip=client_ip)
        if room.slow_mode_s:
            wait = backend.slow_mode(room.pk, user.pk, room.slow_mode_s)
            if wait > 0:
                raise RateLimited(
                    f"Slow mode: one comment every {room.slow_mode_s} seconds.", retry_after=math.ceil(wait)
                )
    if banned_word_in(text) is not None:
        raise CommentBlocked()
    comment = Comment.objects.create(room=room, user=user, text=text)
    comment.user = user
    room_event_on_commit(room.pk, "comment.new", payloads.comment_payload(comment, role=role))
    # A comment that is an open giveaway's keyword enters the commenter (CONTRACT.md).
    giveaways_enter_by_comment(room=room, user=user, text=text)
    return comment
