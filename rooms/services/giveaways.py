"""Giveaways: start, enter (by REST or by the keyword in a comment), draw, cancel, forfeit.

The draw is provably fair (rooms/fairness.py): the seed is committed at the start and
revealed at the draw; the winners follow from it and the public entrant list.

That list must be exactly the set drawn from, or the public recomputation would fail.
So an entry holds the giveaway's row in share mode (FOR KEY SHARE) from its check that
the giveaway is open to its commit, and the draw locks the row (FOR UPDATE): the draw
waits for entries in flight, and an entry that comes after the draw finds it drawn.

The prize (a sku of the host's own shop) is held at the start, one unit per winner;
units no winner takes go back to stock at the draw, on cancel and on forfeit. Claims,
which create orders, live in orders (orders/services/prizes.py).
"""

from __future__ import annotations

import logging
import unicodedata
from datetime import datetime, timedelta
from functools import partial

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from catalog.models import Sku
from catalog.services import sku_hold, sku_release
from liveshop.errors import Banned, Conflict, Invalid, PermissionDenied, RoomNotLive, ServiceError
from liveshop.models import User
from rooms import broadcast, fairness, hooks, selectors, selectors_gifts
from rooms.broadcast import room_event_on_commit
from rooms.models import Ban, Follow, Giveaway, GiveawayEntry, GiveawayWinner, Room

logger = logging.getLogger(__name__)

GIVEAWAY_MAX_WINNERS = 100
GIVEAWAY_MIN_DURATION_S = 5
GIVEAWAY_MAX_DURATION_S = 24 * 3600
GIVEAWAY_MAX_ACCOUNT_AGE_S = 10 * 365 * 24 * 3600

# Why an entrant is left out of the draw (GiveawayEntry.excluded_reason).
NOT_FOLLOWING = "not_following"
BANNED = "banned"
ACCOUNT_TOO_NEW = "account_too_new"
ACCOUNT_INACTIVE = "account_inactive"


def keyword_key(text: str) -> str:
    """How a keyword and a comment are compared: trimmed and case-insensitive, after
    NFKC, so that the full-width letters of a Chinese keyboard match their ASCII twins."""
    return unicodedata.normalize("NFKC", text).strip().casefold()


# --- Start ------------------------------------------------------------------------------------


def giveaway_create(
    *,
    room: Room,
    title: str,
    winners: int,
    duration_s: int,
    prize_sku: Sku | None = None,
    keyword: str = "",
    followers_only: bool = False,
    min_account_age_s: int = 0,
) -> Giveaway:
    """Start a giveaway in a live room: commit to a fresh secret seed, hold the prize.

    The caller checked that the requester is the room's host. Raises Invalid,
    RoomNotLive, or OutOfStock (fewer free units of the prize than winners).
    """
    title = title.strip()
    keyword = keyword.strip()
    if not title:
        raise Invalid("A giveaway needs a title.", fields={"title": ["This field may not be blank."]})
    if not 1 <= winners <= GIVEAWAY_MAX_WINNERS:
        raise Invalid(f"From 1 to {GIVEAWAY_MAX_WINNERS} winners.", fields={"winners": ["Out of range."]})
    if not GIVEAWAY_MIN_DURATION_S <= duration_s <= GIVEAWAY_MAX_DURATION_S:
        raise Invalid(
            f"duration_s is from {GIVEAWAY_MIN_DURATION_S} to {GIVEAWAY_MAX_DURATION_S}.",
            fields={"duration_s": ["Out of range."]},
        )
    if not 0 <= min_account_age_s <= GIVEAWAY_MAX_ACCOUNT_AGE_S:
        raise Invalid("min_account_age_s is out of range.", fields={"min_account_age_s": ["Out of range."]})
    if len(keyword) > Giveaway.KEYWORD_MAX_LENGTH:
        raise Invalid(
            f"A keyword has at most {Giveaway.KEYWORD_MAX_LENGTH} characters.", fields={"keyword": ["Too long."]}
        )
    room = Room.objects.select_related("host").get(pk=room.pk)
    if prize_sku is not None:
        prize_sku = Sku.objects.select_related("product__shop").get(pk=prize_sku.pk)
        # The host gives away its own goods: a prize order ships for free, and another
        # seller's units must not leave for nothing.
        if prize_sku.product.shop.owner_id != room.host.user_id:
            raise Invalid(
                "The prize must be a sku of the host's own shop.",
                fields={"prize_sku": ["Not a sku of the host's shop."]},
            )
        if not prize_sku.product.is_active:
            raise Invalid("This product is not on sale.", fields={"prize_sku": ["The product is not on sale."]})
    if room.status != Room.Status.LIVE:
        raise RoomNotLive("Giveaways run while the room is live.")

    seed = fairness.new_seed()
    with transaction.atomic():
        if prize_sku is not None:
            sku_hold(sku_id=prize_sku.pk, quantity=winners)
        giveaway = Giveaway.objects.create(
            room=room,
            title=title,
            prize_sku=prize_sku,
            winners_count=winners,
            keyword=keyword,
            keyword_key=keyword_key(keyword),
            followers_only=followers_only,
            min_account_age_s=min_account_age_s,
            seed=seed,
            commitment=fairness.commitment_of(seed),
            closes_at=timezone.now() + timedelta(seconds=duration_s),
        )
        giveaway = selectors_gifts.giveaways_with_details().get(pk=giveaway.pk)
        room_event_on_commit(room.pk, "giveaway.started", {"giveaway": selectors_gifts.giveaway_public(giveaway)})
    return giveaway


# --- Entry ------------------------------------------------------------------------------------


def _exclusion(giveaway: Giveaway, user: User, *, host_user_id: int, now: datetime) -> str | None:
    """Why the rules keep `user` out of the giveaway now, or None."""
    if not user.is_active:
        return ACCOUNT_INACTIVE
    if selectors.is_banned(room_id=giveaway.room_id, user_id=user.pk):
        return BANNED
    if giveaway.min_account_age_s and user.date_joined > now - timedelta(seconds=giveaway.min_account_age_s):
        return ACCOUNT_TOO_NEW
    if giveaway.followers_only and not Follow.objects.filter(user=user, host__user_id=host_user_id).exists():
        return NOT_FOLLOWING
    return None


_REFUSALS = {
    BANNED: "You are banned from this room.",
    ACCOUNT_TOO_NEW: "Your account is too new for this giveaway.",
    NOT_FOLLOWING: "This giveaway is for the host's followers.",
    ACCOUNT_INACTIVE: "This account is inactive.",
}


def _hold_open_for_entry(*, giveaway_id: int, now: datetime) -> bool:
    """Whether the giveaway takes entries, holding its row in share mode to the commit.

    FOR KEY SHARE: entries do not wait for each other, but the draw's FOR UPDATE waits
    for them (and they for it). SQLite runs one writer at a time, which orders them too.
    Raw SQL because the ORM has no share lock.
    """
    lock = " FOR KEY SHARE" if connection.vendor == "postgresql" else ""
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT 1 FROM {Giveaway._meta.db_table} WHERE id = %s AND status = %s AND closes_at > %s{lock}",
            [giveaway_id, Giveaway.Status.OPEN, connection.ops.adapt_datetimefield_value(now)],
        )
        return cursor.fetchone() is not None


def _entry_insert(*, giveaway_id: int, user_id: int, via: str, now: datetime) -> int | None:
    """Insert the entry unless the user is in already: its id, or None.

    One statement (INSERT ... ON CONFLICT DO NOTHING RETURNING, PostgreSQL and SQLite
    alike) instead of an insert in a savepoint that a unique violation rolls back: a
    giveaway's keyword can bring thousands of these within seconds.
    """
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {GiveawayEntry._meta.db_table} "
            "(giveaway_id, user_id, via, entered_at, eligible, excluded_reason) VALUES (%s, %s, %s, %s, %s, %s) "
            "ON CONFLICT (giveaway_id, user_id) DO NOTHING RETURNING id",
            [giveaway_id, user_id, via, connection.ops.adapt_datetimefield_value(now), True, ""],
        )
        row = cursor.fetchone()
    return int(row[0]) if row is not None else None


def giveaway_enter(
    *, giveaway: Giveaway, user: User, via: GiveawayEntry.Via = GiveawayEntry.Via.API
) -> tuple[GiveawayEntry, bool]:
    """Enter `user` once. Returns (entry, created): a second entry returns the first.

    Raises Conflict once the giveaway is closed, RoomNotLive when its room is no longer
    live, Banned, or PermissionDenied when the rules exclude the user (the host, a
    follower-only giveaway, an account too new).
    """
    giveaway = Giveaway.objects.select_related("room__host").get(pk=giveaway.pk)
    return _enter(giveaway, user, via=via)


def _enter(giveaway: Giveaway, user: User, *, via: GiveawayEntry.Via) -> tuple[GiveawayEntry, bool]:
    """giveaway_enter with the giveaway, its room and host already loaded."""
    now = timezone.now()
    if giveaway.status != Giveaway.Status.OPEN or giveaway.closes_at <= now:
        raise Conflict("This giveaway is closed.")
    if giveaway.room.status != Room.Status.LIVE:
        raise RoomNotLive("Giveaways take entries while the room is live.")
    host_user_id = giveaway.room.host.user_id
    if user.pk == host_user_id:
        raise PermissionDenied("The host does not enter its own giveaway.")
    existing = GiveawayEntry.objects.filter(giveaway=giveaway, user=user).first()
    if existing is not None:
        return existing, False
    reason = _exclusion(giveaway, user, host_user_id=host_user_id, now=now)
    if reason == BANNED:
        raise Banned()
    if reason is not None:
        raise PermissionDenied(_REFUSALS[reason])
    # No savepoint (a comment's entry joins the comment's transaction): nothing in the
    # block raises on a business rule, and a database error aborts the transaction anyway.
    with transaction.atomic(savepoint=False):
        now = timezone.now()
        if _hold_open_for_entry(giveaway_id=giveaway.pk, now=now):
            entry_id = _entry_insert(giveaway_id=giveaway.pk, user_id=user.pk, via=via, now=now)
            if entry_id is None:  # the same user, entering at the same moment
                return GiveawayEntry.objects.get(giveaway=giveaway, user=user), False
            entry = GiveawayEntry(id=entry_id, giveaway=giveaway, user=user, via=via, entered_at=now)
            return entry, True
    raise Conflict("This giveaway is closed.")


def giveaways_enter_by_comment(*, room: Room, user: User, text: str) -> list[int]:
    """Enter the commenter in the room's open giveaways whose keyword the comment is.

    Called for every comment, so the common case is one indexed query (or none, for a
    comment longer than any keyword). A commenter the rules exclude is simply not
    entered: the comment itself stands. Returns the giveaways entered.
    """
    if len(text) > 2 * Giveaway.KEYWORD_MAX_LENGTH:
        return []
    key = keyword_key(text)
    if not key:
        return []
    # The common case, a comment that is no keyword, costs this one light query.
    matching = list(
        Giveaway.objects.filter(room=room, status=Giveaway.Status.OPEN, keyword_key=key, closes_at__gt=timezone.now())
        .order_by()
        .values_list("pk", flat=True)
    )
    if not matching:
        return []
    entered = []
    for giveaway in Giveaway.objects.filter(pk__in=matching).select_related("room__host").order_by("pk"):
        try:
            _, created = _enter(giveaway, user, via=GiveawayEntry.Via.COMMENT)
        except ServiceError as exc:
            logger.debug("comment by %s does not enter giveaway %s: %s", user.pk, giveaway.pk, exc.code)
            continue
        if created:
            entered.append(giveaway.pk)
    for giveaway_id in entered:
        # The commenter's page shows it (the comment alone says nothing of the entry).
        frame = {"type": "giveaway.entered", "data": {"giveaway": giveaway_id}}
        transaction.on_commit(partial(broadcast.room_user_send, room.pk, user.pk, frame), robust=True)
    return entered


# --- Draw -------------------------------------------------------------------------------------


def giveaway_draw(*, giveaway_id: int) -> bool:
    """Draw a giveaway whose close has come, once: a second call changes nothing.

    The rules are checked again for every entrant (an entrant since banned, or no longer
    following, is marked ineligible and left out); the winners are the eligible
    entrants with the smallest keys; prize units no winner takes go back to stock; the
    seed is revealed. Returns whether this call drew it.
    """
    now = timezone.now()
    with transaction.atomic():
        giveaway = (
            Giveaway.objects.select_for_update(of=("self",))
            .select_related("room__host")
            .filter(pk=giveaway_id, status=Giveaway.Status.OPEN, closes_at__lte=now)
            .first()
        )
        if giveaway is None:
            return False
        # Only what the rules read, as tuples: a draw of 50,000 entrants stays a few queries.
        entrants = list(
            GiveawayEntry.objects.filter(giveaway=giveaway)
            .order_by("id")
            .values_list("user_id", "user__is_active", "user__date_joined")
        )
        excluded = _draw_exclusions(giveaway, entrants, host_user_id=giveaway.room.host.user_id, now=now)
        for reason in set(excluded.values()):
            GiveawayEntry.objects.filter(
                giveaway=giveaway, user_id__in=[uid for uid, why in excluded.items() if why == reason]
            ).update(eligible=False, excluded_reason=reason)
        eligible = [user_id for user_id, _, _ in entrants if user_id not in excluded]
        winner_ids = fairness.draw_winners(giveaway.seed, eligible, giveaway.winners_count)
        has_prize = giveaway.prize_sku_id is not None
        deadline = now + timedelta(seconds=settings.GIVEAWAY_CLAIM_WINDOW_S)
        GiveawayWinner.objects.bulk_create(
            [
                GiveawayWinner(
                    giveaway=giveaway,
                    user_id=user_id,
                    rank=rank,
                    status=GiveawayWinner.Status.PENDING if has_prize else GiveawayWinner.Status.NO_PRIZE,
                    claim_deadline=deadline if has_prize else None,
                )
                for rank, user_id in enumerate(winner_ids, start=1)
            ]
        )
        unused = giveaway.winners_count - len(winner_ids)
        if has_prize and unused:
            assert giveaway.prize_sku_id is not None
            sku_release(sku_id=giveaway.prize_sku_id, quantity=unused)
        Giveaway.objects.filter(pk=giveaway.pk).update(status=Giveaway.Status.DRAWN, drawn_at=now)
        names = {user.pk: user.public_name for user in User.objects.filter(pk__in=winner_ids)}
        room_event_on_commit(
            giveaway.room_id,
            "giveaway.drawn",
            {
                "giveaway": giveaway.pk,
                "winners": [{"id": user_id, "display_name": names[user_id]} for user_id in winner_ids],
                "seed": giveaway.seed,
            },
        )
        if winner_ids:
            hooks.giveaway_drawn(giveaway, list(winner_ids))  # the winners are told (notifications)
    return True


def _draw_exclusions(
    giveaway: Giveaway, entrants: list[tuple[int, bool, datetime]], *, host_user_id: int, now: datetime
) -> dict[int, str]:
    """{user id: reason} for the entrants the rules exclude at the draw, from
    (user id, is active, joined) tuples: two queries at most, whatever the entrants."""
    # A room has few bans; a host may have many followers, so those are joined to the entries.
    banned = set(Ban.objects.filter(room_id=giveaway.room_id).values_list("user_id", flat=True))
    followers: set[int] = set()
    if giveaway.followers_only:
        followers = set(
            Follow.objects.filter(host__user_id=host_user_id, user__giveaway_entries__giveaway=giveaway).values_list(
                "user_id", flat=True
            )
        )
    joined_by = now - timedelta(seconds=giveaway.min_account_age_s)
    excluded: dict[int, str] = {}
    for user_id, is_active, date_joined in entrants:
        if not is_active:
            excluded[user_id] = ACCOUNT_INACTIVE
        elif user_id in banned:
            excluded[user_id] = BANNED
        elif giveaway.min_account_age_s and date_joined > joined_by:
            excluded[user_id] = ACCOUNT_TOO_NEW
        elif giveaway.followers_only and user_id not in followers:
            excluded[user_id] = NOT_FOLLOWING
    return excluded


# --- Cancel, claim, forfeit ---------------------------------------------------------------------


def giveaway_cancel(*, giveaway: Giveaway) -> Giveaway:
    """Cancel an open giveaway before its close and give its prize units back.

    Past the close the draw is due (its outcome is already fixed by the seed and the
    entrants), so a cancel then is refused: 409 conflict, as for any giveaway not open.
    """
    now = timezone.now()
    with transaction.atomic():
        cancelled = Giveaway.objects.filter(pk=giveaway.pk, status=Giveaway.Status.OPEN, closes_at__gt=now).update(
            status=Giveaway.Status.CANCELLED, cancelled_at=now
        )
        if cancelled != 1:
            raise Conflict("Only an open giveaway can be cancelled, before it closes.")
        giveaway.refresh_from_db()
        if giveaway.prize_sku_id is not None:
            sku_release(sku_id=giveaway.prize_sku_id, quantity=giveaway.winners_count)
        room_event_on_commit(giveaway.room_id, "giveaway.cancelled", {"giveaway": giveaway.pk})
    return giveaway


def giveaway_winner_claim(*, winner: GiveawayWinner) -> bool:
    """pending -> claimed within the claim window (compare-and-set: a forfeit racing it
    updates the same row, and exactly one of them wins). Call inside the transaction
    that creates the prize order, then `giveaway_fulfil_if_done`."""
    return (
        GiveawayWinner.objects.filter(
            pk=winner.pk, status=GiveawayWinner.Status.PENDING, claim_deadline__gt=timezone.now()
        ).update(status=GiveawayWinner.Status.CLAIMED, claimed_at=timezone.now())
        == 1
    )


def giveaway_winner_forfeit(*, winner_id: int) -> bool:
    """Forfeit a prize not claimed in time: its unit goes back to stock. Returns whether this call did it."""
    now = timezone.now()
    with transaction.atomic():
        forfeited = GiveawayWinner.objects.filter(
            pk=winner_id, status=GiveawayWinner.Status.PENDING, claim_deadline__lte=now
        ).update(status=GiveawayWinner.Status.FORFEITED, forfeited_at=now)
        if forfeited != 1:
            return False
        winner = GiveawayWinner.objects.select_related("giveaway").get(pk=winner_id)
        if winner.giveaway.prize_sku_id is not None:
            sku_release(sku_id=winner.giveaway.prize_sku_id, quantity=1)
        giveaway_fulfil_if_done(giveaway_id=winner.giveaway_id)
    return True


def giveaway_fulfil_if_done(*, giveaway_id: int) -> bool:
    """drawn -> fulfilled once no winner's prize is pending. Call in the transaction of a
    claim or a forfeit: the giveaway's row lock makes the last of two racing see the other."""
    giveaway = Giveaway.objects.select_for_update().filter(pk=giveaway_id, status=Giveaway.Status.DRAWN).first()
    if giveaway is None or giveaway.prize_sku_id is None:
        return False
    winners = GiveawayWinner.objects.filter(giveaway=giveaway)
    if not winners.exists() or winners.filter(status=GiveawayWinner.Status.PENDING).exists():
        return False
    Giveaway.objects.filter(pk=giveaway_id).update(status=Giveaway.Status.FULFILLED, fulfilled_at=timezone.now())
    return True


# --- The sweeper ----------------------------------------------------------------------------------


def giveaways_sweep(*, batch: int = 500) -> tuple[int, int]:
    """The beat sweeper: draw giveaways whose close has come, forfeit prizes not claimed
    in time. Idempotent. Returns (drawn, forfeited)."""
    now = timezone.now()
    due = (
        Giveaway.objects.filter(status=Giveaway.Status.OPEN, closes_at__lte=now)
        .order_by("closes_at")
        .values_list("pk", flat=True)[:batch]
    )
    drawn = 0
    for giveaway_id in list(due):
        try:
            drawn += giveaway_draw(giveaway_id=giveaway_id)
        except Exception:
            # One broken giveaway must not hold up the others; the next sweep retries it.
            logger.exception("drawing giveaway %s failed", giveaway_id)
    lapsed = (
        GiveawayWinner.objects.filter(status=GiveawayWinner.Status.PENDING, claim_deadline__lte=now)
        .order_by("claim_deadline")
        .values_list("pk", flat=True)[:batch]
    )
    forfeited = sum(giveaway_winner_forfeit(winner_id=winner_id) for winner_id in list(lapsed))
    return drawn, forfeited
