"""Moderation: room moderators, mutes, bans, comment deletion, reports, banned words.

Every act writes its `ModerationAction` (the audit log) in its own transaction, and tells
the sockets only once that transaction commits: a mute sends `moderation.muted` to the
user's sockets, a ban closes them (4403) on every web process, a deletion sends
`comment.deleted` to the room. Callers check who may act (`selectors.can_moderate`,
`selectors.is_room_host`); these functions check what the act may touch (the host and
staff cannot be muted or banned; a moderator does not act on another moderator).
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from liveshop.errors import Conflict, Invalid, NotFound, PermissionDenied
from liveshop.models import User
from liveshop.permissions import is_staff
from rooms import broadcast
from rooms.banned_words import normalize
from rooms.models import Ban, BannedWord, Comment, ModerationAction, Mute, Report, Room, RoomModerator
from rooms.realtime.events import iso
from rooms.selectors import room_role

logger = logging.getLogger(__name__)

Action = ModerationAction.Action

MUTE_MAX_S = 365 * 24 * 3600
# A mute given when resolving a report without a duration.
REPORT_MUTE_DEFAULT_S = 24 * 3600

MUTED_FRAME = "moderation.muted"
UNMUTED_FRAME = "moderation.unmuted"


# --- The audit log ------------------------------------------------------------------------------


def audit_record(
    *,
    actor: User | None,
    action: str,
    target_user: User | None = None,
    room: Room | None = None,
    comment: Comment | None = None,
    reason: str = "",
    details: dict[str, Any] | None = None,
) -> ModerationAction:
    """Write one audit entry. Call inside the act's transaction."""
    return ModerationAction.objects.create(
        actor=actor,
        action=action,
        target_user=target_user,
        room=room,
        comment=comment,
        reason=reason[:500],
        details=details or {},
    )


# --- Who may be acted upon ----------------------------------------------------------------------


def _is_room_moderator(room: Room, user: User) -> bool:
    return RoomModerator.objects.filter(room=room, user=user).exists()


_PAST = {"mute": "muted", "ban": "banned"}


def moderation_target_check(*, actor: User, room: Room, user: User, verb: str) -> None:
    """Refuse a mute or ban (`verb`) that would silence the wrong person."""
    done = _PAST.get(verb, verb + "ed")
    if user.pk == actor.pk:
        raise Invalid(f"You cannot {verb} yourself.", fields={"user": [f"You cannot {verb} yourself."]})
    if user.pk == room.host.user_id:
        raise Invalid(f"The room's host cannot be {done}.", fields={"user": [f"The host cannot be {done}."]})
    if is_staff(user):
        raise Invalid(f"Staff cannot be {done}.", fields={"user": [f"Staff cannot be {done}."]})
    # Moderators answer to the host: another moderator may not silence one of them.
    actor_outranks = actor.pk == room.host.user_id or is_staff(actor)
    if not actor_outranks and _is_room_moderator(room, user):
        raise PermissionDenied(f"Only the host or staff may {verb} a moderator of the room.")


def staff_act_check(*, actor: User, created_by: User | None, what: str) -> None:
    """Staff's moderation is staff's to undo: a host or room moderator may not lift, shorten
    or remove what staff imposed or wrote (PermissionDenied)."""
    if created_by is not None and created_by.is_staff and not is_staff(actor):
        raise PermissionDenied(f"Staff {what}; only staff may undo it.")


# --- Room moderators -------------------------------------------------------------------------------


def room_moderator_check(*, room: Room, user: User) -> None:
    """Refuse to appoint the host, a deactivated account or a banned user."""
    if user.pk == room.host.user_id:
        raise Invalid("The host moderates the room already.", fields={"user": ["This is the room's host."]})
    if not user.is_active:
        raise Invalid("This account is deactivated.", fields={"user": ["This account is deactivated."]})
    if Ban.objects.filter(room=room, user=user).exists():
        raise Conflict("This user is banned from the room; lift the ban first.")


def room_moderator_add(*, actor: User, room: Room, user: User) -> tuple[RoomModerator, bool]:
    """Appoint a room moderator; appointing one again changes nothing. Returns (row, created)."""
    try:
        with transaction.atomic():
            room_moderator_check(room=room, user=user)
            moderator, created = RoomModerator.objects.get_or_create(room=room, user=user)
            if created:
                audit_record(actor=actor, action=Action.MODERATOR_ADD, target_user=user, room=room)
                _role_on_commit(room, user)
    except IntegrityError:  # a concurrent appointment of the same user won
        return RoomModerator.objects.get(room=room, user=user), False
    return moderator, created


@transaction.atomic
def room_moderator_remove(*, actor: User, room: Room, user: User) -> None:
    deleted, _ = RoomModerator.objects.filter(room=room, user=user).delete()
    if not deleted:
        raise NotFound("This user is not a moderator of the room.")
    audit_record(actor=actor, action=Action.MODERATOR_REMOVE, target_user=user, room=room)
    _role_on_commit(room, user)


def _role_on_commit(room: Room, user: User) -> None:
    """The user's sockets to the room take the role it has now (staff stay moderators)."""
    room_id, user_id, role = room.pk, user.pk, room_role(user, room)
    transaction.on_commit(lambda: broadcast.room_user_role(room_id, user_id, role), robust=True)


# --- Mutes ---------------------------------------------------------------------------------------


def _muted_frame(room: Room, until: datetime | None, reason: str) -> dict[str, Any]:
    if until is None:
        return {"type": UNMUTED_FRAME, "data": {"room": room.pk}}
    return {"type": MUTED_FRAME, "data": {"room": room.pk, "until": iso(until), "reason": reason}}


def _mute_on_commit(room: Room, user: User, until: datetime | None, frame: dict[str, Any]) -> None:
    room_id, user_id = room.pk, user.pk
    transaction.on_commit(lambda: broadcast.room_user_mute(room_id, user_id, until, frame), robust=True)


@transaction.atomic
def room_mute(*, actor: User, room: Room, user: User, duration_s: int, reason: str = "") -> Mute:
    """Mute `user` in the room for `duration_s` from now (replacing an earlier mute).

    Comments from the user are refused with `muted` until then; the user's sockets hear
    `moderation.muted` at commit.
    """
    if not 1 <= duration_s <= MUTE_MAX_S:
        raise Invalid(
            f"A mute lasts from 1 second to {MUTE_MAX_S} seconds.",
            fields={"duration_s": [f"Ensure this value is between 1 and {MUTE_MAX_S}."]},
        )
    moderation_target_check(actor=actor, room=room, user=user, verb="mute")
    # Locked: a staff mute must not be replaced (shortened) by a moderator racing staff.
    existing = (
        Mute.objects.select_for_update(of=("self",)).select_related("created_by").filter(room=room, user=user).first()
    )
    if existing is not None:
        staff_act_check(actor=actor, created_by=existing.created_by, what="muted this user")
    until = timezone.now() + timedelta(seconds=duration_s)
    mute, _ = Mute.objects.update_or_create(
        room=room, user=user, defaults={"until": until, "reason": reason, "created_by": actor}
    )
    audit_record(
        actor=actor,
        action=Action.MUTE,
        target_user=user,
        room=room,
        reason=reason,
        details={"duration_s": duration_s, "until": iso(until)},
    )
    _mute_on_commit(room, user, until, _muted_frame(room, until, reason))
    return mute


@transaction.atomic
def room_unmute(*, actor: User, room: Room, user: User) -> None:
    """Lift a mute now (an expired one is simply removed)."""
    mute = (
        Mute.objects.select_for_update(of=("self",)).select_related("created_by").filter(room=room, user=user).first()
    )
    if mute is None:
        raise NotFound("This user is not muted in the room.")
    staff_act_check(actor=actor, created_by=mute.created_by, what="muted this user")
    mute.delete()
    audit_record(actor=actor, action=Action.UNMUTE, target_user=user, room=room)
    _mute_on_commit(room, user, None, _muted_frame(room, None, ""))


# --- Bans ----------------------------------------------------------------------------------------


def room_ban(*, actor: User, room: Room, user: User, reason: str = "") -> tuple[Ban, bool]:
    """Ban `user` from the room; banning again changes nothing. Returns (ban, created).

    At commit the user's sockets to the room close with 4403 on every web process; the
    ticket endpoint and the socket's admission refuse them from then on (and each web
    process refuses a join of the user that was already on its way, see the hub).
    A banned moderator stops being one.
    """
    moderation_target_check(actor=actor, room=room, user=user, verb="ban")
    try:
        with transaction.atomic():
            ban, created = Ban.objects.get_or_create(
                room=room, user=user, defaults={"reason": reason, "created_by": actor}
            )
            if not created:
                return ban, False
            RoomModerator.objects.filter(room=room, user=user).delete()
            audit_record(actor=actor, action=Action.BAN, target_user=user, room=room, reason=reason)
            room_id, user_id = room.pk, user.pk
            transaction.on_commit(
                lambda: broadcast.room_user_close(room_id, user_id, broadcast.CLOSE_FORBIDDEN), robust=True
            )
    except IntegrityError:  # a concurrent ban of the same user won
        return Ban.objects.get(room=room, user=user), False
    return ban, True


@transaction.atomic
def room_unban(*, actor: User, room: Room, user: User) -> None:
    ban = Ban.objects.select_for_update(of=("self",)).select_related("created_by").filter(room=room, user=user).first()
    if ban is None:
        raise NotFound("This user is not banned from the room.")
    staff_act_check(actor=actor, created_by=ban.created_by, what="banned this user")
    ban.delete()
    audit_record(actor=actor, action=Action.UNBAN, target_user=user, room=room)


# --- Comments and reports --------------------------------------------------------------------------


def _reports_close(*, comment_id: int, actor: User, resolution: str) -> list[int]:
    """Resolve the comment's open reports (compare-and-set on their status)."""
    open_reports = Report.objects.filter(comment_id=comment_id, status=Report.Status.OPEN)
    report_ids = list(open_reports.order_by("id").values_list("pk", flat=True))
    open_reports.filter(pk__in=report_ids).update(
        status=Report.Status.RESOLVED, resolution=resolution, resolved_by=actor, resolved_at=timezone.now()
    )
    return report_ids


@transaction.atomic
def comment_delete(*, actor: User, comment: Comment, reason: str = "") -> None:
    """Remove a comment from the room (its author, or a moderator: the caller checks which).

    `comment.deleted` goes to the room at commit; history and snapshots skip the comment.
    A removal by someone other than the author is a moderation act: audited, and it
    settles the comment's open reports. NotFound if it was removed already.
    """
    if actor.pk != comment.user_id:
        staff_act_check(actor=actor, created_by=comment.user, what="wrote this comment")
    removed = Comment.objects.filter(pk=comment.pk, deleted_at__isnull=True).update(deleted_at=timezone.now())
    if removed != 1:
        raise NotFound("No such comment.")
    if actor.pk != comment.user_id:
        audit_record(
            actor=actor,
            action=Action.COMMENT_DELETE,
            target_user=comment.user,
            room=comment.room,
            comment=comment,
            reason=reason,
            details={"text": comment.text},
        )
        _reports_close(comment_id=comment.pk, actor=actor, resolution=Report.Resolution.DELETE_COMMENT)
    broadcast.room_event_on_commit(comment.room_id, "comment.deleted", {"id": comment.pk})


def comment_report(*, reporter: User, comment: Comment, reason: str) -> tuple[Report, bool]:
    """Report a comment to staff; a second report of the same comment by the same user
    returns the first. Returns (report, created)."""
    reason = reason.strip()
    if not reason:
        raise Invalid("Say why you report this comment.", fields={"reason": ["This field may not be blank."]})
    if comment.user_id == reporter.pk:
        raise Invalid("You cannot report your own comment; delete it instead.")
    try:
        with transaction.atomic():
            return Report.objects.get_or_create(
                comment=comment, reporter=reporter, defaults={"room_id": comment.room_id, "reason": reason}
            )
    except IntegrityError:  # the same user reporting twice at once
        return Report.objects.get(comment=comment, reporter=reporter), False


@transaction.atomic
def report_resolve(
    *,
    actor: User,
    report: Report,
    resolution: str,
    reason: str = "",
    duration_s: int = REPORT_MUTE_DEFAULT_S,
) -> Report:
    """Resolve a report, and with it every open report of the same comment.

    `resolution`: dismiss; delete_comment; mute (the author in the comment's room, for
    `duration_s`); ban (the author from the room). Conflict if it was resolved already;
    the act's own refusals (the author is the host, say) leave every report open.
    """
    locked = Report.objects.select_for_update().select_related("comment__user", "comment__room__host").get(pk=report.pk)
    if locked.status != Report.Status.OPEN:
        raise Conflict("This report was resolved already.")
    comment = locked.comment
    author, room = comment.user, comment.room
    why = reason or f"Report {locked.pk}: {locked.reason}"
    # Listed before the act: removing the comment settles its reports by itself.
    report_ids = list(
        Report.objects.filter(comment=comment, status=Report.Status.OPEN).order_by("id").values_list("pk", flat=True)
    )
    if resolution == Report.Resolution.DELETE_COMMENT:
        if comment.deleted_at is None:
            comment_delete(actor=actor, comment=comment, reason=why)
    elif resolution == Report.Resolution.MUTE:
        room_mute(actor=actor, room=room, user=author, duration_s=duration_s, reason=why)
    elif resolution == Report.Resolution.BAN:
        room_ban(actor=actor, room=room, user=author, reason=why)
    elif resolution != Report.Resolution.DISMISS:
        raise Invalid(f"Unknown action {resolution!r}.", fields={"action": [f'"{resolution}" is not a valid choice.']})
    _reports_close(comment_id=comment.pk, actor=actor, resolution=resolution)
    audit_record(
        actor=actor,
        action=Action.REPORT_RESOLVE,
        target_user=author,
        room=room,
        comment=comment,
        reason=reason,
        details={"resolution": resolution, "reports": report_ids},
    )
    locked.refresh_from_db()
    return locked


# --- Banned words ----------------------------------------------------------------------------------


def banned_word_clean(*, word: str) -> str:
    """The word as it will be stored (white space collapsed). Invalid if empty; Conflict
    if it is listed already, in any spelling the check treats as the same."""
    word = " ".join(word.split())
    folded = normalize(word)
    if not folded:
        raise Invalid("A banned word cannot be empty.", fields={"word": ["This field may not be blank."]})
    # The list is short (hundreds): compare in the form the check matches.
    for existing in BannedWord.objects.values_list("word", flat=True):
        if normalize(existing) == folded:
            raise Conflict(f"{existing!r} is banned already.")
    return word


def banned_word_add(*, actor: User, word: str) -> BannedWord:
    """Block comments containing `word` from the next comment on, on every process
    (rooms.banned_words notices the table changed). Conflict if it is listed already,
    in any spelling the check treats as the same."""
    word = banned_word_clean(word=word)
    try:
        with transaction.atomic():
            banned = BannedWord.objects.create(word=word)
            audit_record(actor=actor, action=Action.BANNED_WORD_ADD, details={"word": word})
    except IntegrityError:  # the same word added at the same moment
        raise Conflict(f"{word!r} is banned already.") from None
    return banned


@transaction.atomic
def banned_word_remove(*, actor: User, banned_word: BannedWord) -> None:
    deleted, _ = BannedWord.objects.filter(pk=banned_word.pk).delete()
    if not deleted:
        raise NotFound("No such banned word.")
    audit_record(actor=actor, action=Action.BANNED_WORD_REMOVE, details={"word": banned_word.word})
