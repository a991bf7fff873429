"""Writes of the live show: WebSocket tickets and comments."""

from __future__ import annotations

import logging
import math
import secrets
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.core.cache import cache
from django.db import IntegrityError, transaction
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
from liveshop.ratelimit import COMMENT, Bucket, action_buckets, rate_limited
from rooms import banned_words, payloads, selectors
from rooms.banned_words import BannedWordMatcher
from rooms.broadcast import PRIVILEGED_ROLES, room_event_on_commit
from rooms.models import Comment, Giveaway, Room
from rooms.realtime.backend import Hold, Refusal, get_backend
from rooms.services.giveaways import giveaways_enter_by_comment, keyword_key

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


# --- Comments -------------------------------------------------------------------------------------
#
# One judgement for every comment, in pieces the room sockets' intake
# (rooms/realtime/intake.py) runs on the event loop from state it keeps in memory, and
# `comment_create` runs on any thread from the database.


@dataclass(frozen=True, slots=True)
class CommentRules:
    """What a room's comments are judged by, besides who writes them."""

    status: str
    slow_mode_s: int
    min_account_age_s: int
    # The open giveaways' keywords (`keyword_key`) and when each closes.
    keywords: Mapping[str, datetime]
    loaded_at: float  # time.monotonic()


@dataclass(frozen=True, slots=True)
class NewComment:
    """A judged comment, waiting for its row."""

    room_id: int
    user_id: int
    name: str  # the author's public name
    role: str
    text: str
    enters_giveaway: bool


def comment_rules_load(room_id: int) -> CommentRules:
    room = Room.objects.only("status", "slow_mode_s", "comment_min_account_age_s").get(pk=room_id)
    keywords: dict[str, datetime] = {}
    open_giveaways = Giveaway.objects.filter(room_id=room_id, status=Giveaway.Status.OPEN, closes_at__gt=timezone.now())
    for key, closes_at in open_giveaways.exclude(keyword_key="").values_list("keyword_key", "closes_at"):
        keywords[key] = max(closes_at, keywords.get(key, closes_at))
    return CommentRules(
        status=room.status,
        slow_mode_s=room.slow_mode_s,
        min_account_age_s=room.comment_min_account_age_s,
        keywords=keywords,
        loaded_at=time.monotonic(),
    )


def comment_clean(text: str) -> str:
    """The comment's text, trimmed; Invalid if empty, too long, or not text."""
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
    return text


def comment_judge(
    rules: CommentRules,
    *,
    text: str,
    role: str,
    account_since: datetime | None,
    muted_until: datetime | None,
    words: BannedWordMatcher,
    banned: bool = False,
) -> None:
    """Raise RoomNotLive, Banned, Muted, AccountTooNew or CommentBlocked, or pass.

    The host and moderators are exempt from new-account protection (and from the limits).
    """
    if rules.status != Room.Status.LIVE:
        raise RoomNotLive("Comments are open while the room is live.")
    if banned:
        raise Banned()
    now = timezone.now()
    if muted_until is not None and muted_until > now:
        raise Muted(f"You are muted in this room until {muted_until.isoformat()}.")
    if rules.min_account_age_s and role not in PRIVILEGED_ROLES and account_since is not None:
        allowed_at = account_since + timedelta(seconds=rules.min_account_age_s)
        if allowed_at > now:
            minutes = math.ceil(rules.min_account_age_s / 60)
            raise AccountTooNew(
                f"New accounts may comment in this room {minutes} minute{'s' if minutes != 1 else ''} after "
                f"signing up; yours may from {allowed_at.isoformat(timespec='seconds')}.",
                allowed_at=allowed_at,
            )
    if words.find(text) is not None:
        raise CommentBlocked()


def comment_limits(
    rules: CommentRules, *, role: str, user_id: int, client_ip: str | None
) -> tuple[list[Bucket], Hold | None]:
    """The limits a comment takes, all or nothing in one step (`Backend.limits_take`): the
    user's pace (COMMENT_BURST, then COMMENT_RATE_PER_MIN), the address's
    (RATE_LIMIT_COMMENT_IP) and the room's slow mode. None for the host and moderators."""
    if role in PRIVILEGED_ROLES:
        return [], None
    buckets = [
        Bucket(f"comment:{user_id}", settings.COMMENT_RATE_PER_MIN, settings.COMMENT_BURST, COMMENT),
        *action_buckets(action=COMMENT, ip=client_ip),
    ]
    return buckets, Hold(f"slow:{user_id}", rules.slow_mode_s) if rules.slow_mode_s else None


def comment_refused(refusal: Refusal | None, buckets: list[Bucket], rules: CommentRules) -> None:
    """Raise RateLimited for the limit that refused, if one did."""
    if refusal is None:
        return
    if refusal.index >= len(buckets):
        raise RateLimited(
            f"Slow mode: one comment every {rules.slow_mode_s} seconds.", retry_after=math.ceil(refusal.wait)
        )
    if refusal.index == 0:
        raise RateLimited("You are commenting too fast.", retry_after=math.ceil(refusal.wait))
    raise rate_limited(buckets[refusal.index], refusal.wait)


def comment_enters_giveaway(rules: CommentRules, text: str) -> bool:
    """Whether the comment is the keyword of an open giveaway of the room (CONTRACT.md)."""
    if not rules.keywords or len(text) > 2 * Giveaway.KEYWORD_MAX_LENGTH:
        return False
    closes_at = rules.keywords.get(keyword_key(text))
    return closes_at is not None and closes_at > timezone.now()


def comments_write(batch: Sequence[NewComment]) -> list[Comment | None]:
    """Insert judged comments in one statement, and enter the keyword comments in their
    giveaways, in one transaction. None for a comment whose room or author is gone (the
    rest are written)."""
    rows = [Comment(room_id=c.room_id, user_id=c.user_id, text=c.text) for c in batch]
    written: list[Comment | None]
    with transaction.atomic():
        try:
            with transaction.atomic():
                Comment.objects.bulk_create(rows)
            written = list(rows)
        except IntegrityError:
            written = [_comment_insert(row) for row in rows]
        entering = [c for c, row in zip(batch, written, strict=True) if row is not None and c.enters_giveaway]
        if entering:
            users = User.objects.in_bulk({c.user_id for c in entering})
            rooms = Room.objects.in_bulk({c.room_id for c in entering})
            for c in entering:
                giveaways_enter_by_comment(room=rooms[c.room_id], user=users[c.user_id], text=c.text)
    return written


def _comment_insert(row: Comment) -> Comment | None:
    try:
        with transaction.atomic():
            row.save(force_insert=True)
    except IntegrityError:
        return None
    return row


def comment_create(*, room: Room, user: User, text: str, role: str, client_ip: str | None = None) -> Comment:
    """Save a comment and announce it (`comment.new`) on commit: the room sockets'
    judgement (see above) for one comment, from the database, on any thread.

    `role` is the author's role in the room (selectors.room_role). Raises Invalid (empty,
    too long, or not text), RoomNotLive, Banned, Muted, AccountTooNew, RateLimited or
    CommentBlocked, having saved nothing. A comment equal to the keyword of an open
    giveaway of the room also enters its author.
    """
    text = comment_clean(text)
    rules = comment_rules_load(room.pk)
    comment_judge(
        rules,
        text=text,
        role=role,
        account_since=user.date_joined,
        muted_until=selectors.room_mute_until(room_id=room.pk, user_id=user.pk),
        words=banned_words.matcher(),
        banned=rules.status == Room.Status.LIVE and selectors.is_banned(room_id=room.pk, user_id=user.pk),
    )
    buckets, hold = comment_limits(rules, role=role, user_id=user.pk, client_ip=client_ip)
    if buckets or hold:
        comment_refused(get_backend().limits_take(room.pk, buckets, hold), buckets, rules)
    comment = Comment.objects.create(room_id=room.pk, user=user, text=text)
    room_event_on_commit(room.pk, "comment.new", payloads.comment_payload(comment, role=role))
    if comment_enters_giveaway(rules, text):
        giveaways_enter_by_comment(room=room, user=user, text=text)
    return comment


def _has_lone_surrogate(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False
