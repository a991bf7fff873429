"""Red envelopes: a host drops coins split into random shares; viewers grab them, first
come, first served; what is left goes back at expiry (CONTRACT.md, "Red envelopes").

Every coin moves in the ledger, once, in the transaction that makes the change:

    drop    host's wallet -> red-envelope escrow     key red_envelope:<id>:drop
    grab    escrow -> the winner's wallet            key red_envelope:<id>:share:<index>
    expiry  escrow -> host's wallet (what is left)    key red_envelope:<id>:return

So the escrow's balance is, at every commit, the sum of the unclaimed shares of the open
envelopes, and the ledger sums to zero.

Grabs meet the Redis gate first (envelopes/gate.py), which hands each user one share
index and turns everyone away after the last: only the winners reach PostgreSQL. There
the share is claimed with a conditional update (it must still be unclaimed) and the
envelope's `remaining_shares` taken down with another (it must still be open), so a
share is never given twice, never given after the envelope expired, and the expiry
sweeper, which closes the envelope row first, returns exactly the unclaimed shares. When
the gate cannot be trusted (Redis restarted and lost it, or is down) PostgreSQL hands out
the next free share itself (SKIP LOCKED), slower and just as exact.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import Q, Sum
from django.utils import timezone

from envelopes import gate
from envelopes.models import RedEnvelope, RedEnvelopeShare
from liveshop.errors import (
    Banned,
    Conflict,
    InsufficientCoins,
    Invalid,
    PermissionDenied,
    RedEnvelopeEmpty,
    RoomNotLive,
)
from liveshop.models import User
from orders.models import LedgerAccount, LedgerTransaction
from orders.services import ledger
from orders.services.wallet import COIN, wallet_account, wallet_coins
from rooms import selectors as room_selectors
from rooms.broadcast import room_event_on_commit
from rooms.models import Follow, Room
from rooms.realtime.events import iso

logger = logging.getLogger(__name__)

Status = RedEnvelope.Status
_random = secrets.SystemRandom()


def shares_split(coins: int, shares: int) -> list[int]:
    """`shares` random shares of `coins`, each at least 1, adding up to `coins` exactly.

    The line of `coins` coins is cut at `shares - 1` distinct points drawn uniformly: every
    way of writing `coins` as `shares` positive parts is equally likely, and every share
    has the same distribution whatever its place. So the order of the grabs decides who
    gets a share, not how big it is on average: the fastest tap is not worth more. (The
    "twice the mean left" draw some apps use is quick to explain but gives the early
    shares a narrower spread than the last ones.)
    """
    cuts = sorted(_random.sample(range(1, coins), shares - 1))
    return [end - start for start, end in zip([0, *cuts], [*cuts, coins], strict=True)]


def _escrow() -> LedgerAccount:
    return ledger.ledger_account(kind=LedgerAccount.Kind.RED_ENVELOPES, currency=COIN)


def status_now(envelope: RedEnvelope, now: datetime | None = None) -> str:
    if envelope.status == Status.OPEN and (now or timezone.now()) < envelope.opens_at:
        return Status.SCHEDULED
    return envelope.status


def red_envelope_public(envelope: RedEnvelope) -> dict[str, Any]:
    """The envelope as the API and the room's events show it."""
    return {
        "id": envelope.pk,
        "room": envelope.room_id,
        "coins": envelope.coins,
        "shares": envelope.shares,
        "remaining_shares": envelope.remaining_shares,
        "opens_at": iso(envelope.opens_at),
        "expires_at": iso(envelope.expires_at),
        "status": status_now(envelope),
        "followers_only": envelope.followers_only,
    }


# --- Drop -----------------------------------------------------------------------------------------


def red_envelope_drop(
    *,
    room: Room,
    sender: User,
    coins: int,
    shares: int,
    opens_in_s: int = 0,
    followers_only: bool = False,
    on_created: Callable[[RedEnvelope], None] | None = None,
) -> RedEnvelope:
    """Drop an envelope of `coins` in `shares` into the host's live room, paid from the
    host's wallet at once. Raises Invalid, PermissionDenied (not the room's host),
    RoomNotLive or InsufficientCoins, having moved nothing. `on_created` runs inside the
    transaction (the idempotency record's link)."""
    fields: dict[str, list[str]] = {}
    if not 1 <= shares <= RedEnvelope.MAX_SHARES:
        fields["shares"] = [f"From 1 to {RedEnvelope.MAX_SHARES}."]
    if not 1 <= coins <= RedEnvelope.MAX_COINS:
        fields["coins"] = [f"From 1 to {RedEnvelope.MAX_COINS}."]
    elif shares > coins:
        fields["shares"] = ["At most `coins`: every share is at least one coin."]
    if not 0 <= opens_in_s <= RedEnvelope.MAX_OPENS_IN_S:
        fields["opens_in_s"] = [f"From 0 to {RedEnvelope.MAX_OPENS_IN_S} seconds."]
    if fields:
        raise Invalid("This red envelope cannot be made.", fields=fields)
    room = Room.objects.select_related("host").get(pk=room.pk)
    if room.host.user_id != sender.pk:
        raise PermissionDenied("Only the room's host drops red envelopes in it.")
    if room.status != Room.Status.LIVE:
        raise RoomNotLive("Red envelopes are dropped while the room is live.")
    if wallet_coins(user_id=sender.pk) < coins:  # a cheap refusal; the ledger's debit is the check
        raise InsufficientCoins(f"This red envelope takes {coins} coins from your wallet.")
    now = timezone.now()
    opens_at = now + timedelta(seconds=opens_in_s)
    try:
        with transaction.atomic():
            envelope = RedEnvelope.objects.create(
                room=room,
                sender=sender,
                coins=coins,
                shares=shares,
                remaining_shares=shares,
                followers_only=followers_only,
                opens_at=opens_at,
                expires_at=opens_at + timedelta(seconds=settings.RED_ENVELOPE_TTL_S),
            )
            if on_created is not None:
                on_created(envelope)
            RedEnvelopeShare.objects.bulk_create(
                RedEnvelopeShare(envelope=envelope, index=index, coins=share)
                for index, share in enumerate(shares_split(coins, shares))
            )
            ledger.ledger_post(
                key=f"red_envelope:{envelope.pk}:drop",
                kind=LedgerTransaction.Kind.RED_ENVELOPE_DROP,
                postings=[(wallet_account(user_id=sender.pk), coins), (_escrow(), -coins)],
                memo=f"red envelope {envelope.pk} in room {room.pk}",
            )
            facts = _gate_facts(shares, sender.pk, envelope.opens_at, envelope.expires_at, followers_only)
            transaction.on_commit(
                lambda: gate.gate_seed(envelope_id=envelope.pk, facts=facts, handed_out=0, claimed=())
            )
            room_event_on_commit(room.pk, "red_envelope.dropped", {"red_envelope": red_envelope_public(envelope)})
    except ledger.LedgerOverdrawn:
        raise InsufficientCoins(f"This red envelope takes {coins} coins from your wallet.") from None
    return envelope


# --- Grab -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Facts:
    """What never changes about an envelope: what a grab checks before the gate."""

    id: int
    room_id: int
    host_id: int
    sender_id: int
    shares: int
    followers_only: bool
    opens_at: datetime
    expires_at: datetime


_facts: dict[int, Facts] = {}


def envelope_facts(envelope_id: int) -> Facts | None:
    """The envelope's facts, remembered by the process (the losers of a grab then cost
    no database read); None if there is no such envelope."""
    facts = _facts.get(envelope_id)
    if facts is None:
        row = (
            RedEnvelope.objects.filter(pk=envelope_id)
            .values_list("room_id", "room__host_id", "sender_id", "shares", "followers_only", "opens_at", "expires_at")
            .first()
        )
        if row is None:
            return None
        facts = Facts(envelope_id, *row)
        if len(_facts) > 10_000:
            _facts.clear()
        _facts[envelope_id] = facts
    return facts


@dataclass(frozen=True)
class Grabbed:
    coins: int
    created: bool  # False: the user had it already


def red_envelope_grab(*, facts: Facts, user: User) -> Grabbed:
    """Grab a share of the envelope for `user`: the same share on every ask. Raises
    PermissionDenied (the sender, or not a follower of a followers-only envelope's host),
    Banned (from the room), Conflict (not open yet, or expired) or RedEnvelopeEmpty."""
    now = timezone.now()
    if user.pk == facts.sender_id:
        raise PermissionDenied("You cannot grab your own red envelope.")
    if now < facts.opens_at:
        raise Conflict(f"This red envelope opens at {iso(facts.opens_at)}.")
    if now >= facts.expires_at:
        raise Conflict("This red envelope has expired.")
    if facts.followers_only and not Follow.objects.filter(user_id=user.pk, host_id=facts.host_id).exists():
        raise PermissionDenied("This red envelope is for the host's followers: follow to grab one.")
    if room_selectors.is_banned(room_id=facts.room_id, user_id=user.pk):
        # (The grab intake does not know bans: a banned user's tap it let through holds a
        # share index that nobody claims, and the share goes back to the host at expiry.)
        raise Banned()
    index = gate.gate_grab(envelope_id=facts.id, user_id=user.pk, shares=facts.shares)
    if index == gate.EMPTY:
        raise RedEnvelopeEmpty()
    if index >= 0:
        grabbed = _claim(facts, user, index)
        if grabbed is not None:
            return grabbed
    # No gate, or the gate gave a share PostgreSQL knows is taken (it lost its state):
    # PostgreSQL hands out the next free share, and the gate is set up again from it.
    grabbed = _claim_any(facts, user)
    if index == gate.UNKNOWN:
        _gate_reseed(facts)
    return grabbed


def _claim(facts: Facts, user: User, index: int) -> Grabbed | None:
    """Claim share `index` for the user; None if someone else has it."""
    shares = RedEnvelopeShare.objects.filter(envelope_id=facts.id, index=index)
    try:
        with transaction.atomic():
            if shares.filter(user__isnull=True).update(user=user, grabbed_at=timezone.now()) == 1:
                coins = shares.values_list("coins", flat=True).get()
                _record_grab(facts, user, index, coins)
                return Grabbed(coins, True)
    except IntegrityError:  # the user already holds another share (the gate lost its state)
        pass
    mine = RedEnvelopeShare.objects.filter(envelope_id=facts.id, user=user).values_list("coins", flat=True).first()
    return Grabbed(mine, False) if mine is not None else None


def _claim_any(facts: Facts, user: User) -> Grabbed:
    for _attempt in range(3):
        mine = RedEnvelopeShare.objects.filter(envelope_id=facts.id, user=user).values_list("coins", flat=True).first()
        if mine is not None:
            return Grabbed(mine, False)
        try:
            with transaction.atomic():
                share = (
                    RedEnvelopeShare.objects.filter(envelope_id=facts.id, user__isnull=True)
                    .select_for_update(skip_locked=True)
                    .order_by("index")
                    .first()
                )
                if share is None:
                    raise RedEnvelopeEmpty()
                RedEnvelopeShare.objects.filter(pk=share.pk).update(user=user, grabbed_at=timezone.now())
                _record_grab(facts, user, share.index, share.coins)
                return Grabbed(share.coins, True)
        except IntegrityError:  # the same user's other request won: answer with its share
            continue
    raise Conflict("Try again.")


def _record_grab(facts: Facts, user: User, index: int, coins: int) -> None:
    """In the claim's transaction: move the share's coins to the winner, then take one
    share off the envelope, which must still be open.

    The envelope's row is every winner's and the sweeper's: it is updated last, so that
    each winner holds its lock only for that statement and the commit."""
    ledger.ledger_post(
        key=f"red_envelope:{facts.id}:share:{index}",
        kind=LedgerTransaction.Kind.RED_ENVELOPE_GRAB,
        postings=[(_escrow(), coins), (wallet_account(user_id=user.pk), -coins)],
        memo=f"red envelope {facts.id}, share {index}, to user {user.pk}",
    )
    now = timezone.now()
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {RedEnvelope._meta.db_table} SET remaining_shares = remaining_shares - 1, "
            "status = CASE WHEN remaining_shares = 1 THEN %s ELSE status END, "
            "closed_at = CASE WHEN remaining_shares = 1 THEN %s ELSE closed_at END "
            "WHERE id = %s AND status = %s AND remaining_shares > 0 AND expires_at > %s RETURNING remaining_shares",
            [Status.EMPTY, now, facts.id, Status.OPEN, now],
        )
        row = cursor.fetchone()
    if row is None:
        # Expired meanwhile (the sweeper closed it first): roll the claim back.
        raise Conflict("This red envelope has expired.")
    if row[0] == 0:
        room_event_on_commit(facts.room_id, "red_envelope.empty", {"red_envelope": facts.id})


def _gate_facts(
    shares: int, sender_id: int, opens_at: datetime, expires_at: datetime, followers_only: bool
) -> dict[str, int]:
    """What the grab intake needs to know (envelopes/gate.py)."""
    return {
        "shares": shares,
        "sender": sender_id,
        "opens": int(opens_at.timestamp() * 1000),
        "expires": int(expires_at.timestamp() * 1000),
        "followers": int(followers_only),
    }


def _gate_reseed(facts: Facts) -> None:
    claimed = list(
        RedEnvelopeShare.objects.filter(envelope_id=facts.id, user__isnull=False).values_list("user_id", "index")
    )
    handed_out = max((index for _, index in claimed), default=-1) + 1
    gate.gate_seed(
        envelope_id=facts.id,
        facts=_gate_facts(facts.shares, facts.sender_id, facts.opens_at, facts.expires_at, facts.followers_only),
        handed_out=handed_out,
        claimed=[(u, i) for u, i in claimed if u],
    )


# --- Expiry ---------------------------------------------------------------------------------------


def _due(now: datetime) -> Q:
    """Open envelopes to close now: past `expires_at`, or in a room staff suspended (its
    host keeps what was not grabbed yet)."""
    return Q(status=Status.OPEN) & (Q(expires_at__lte=now) | Q(room__status=Room.Status.SUSPENDED))


def red_envelope_expire(*, envelope_id: int) -> int | None:
    """Close an open envelope that is due (`_due`) and give what is left back to its
    sender, once. Returns the coins returned, or None if it was not due (or done)."""
    now = timezone.now()
    with transaction.atomic():
        # The envelope row first: a grab still in flight either committed before this
        # (its share is claimed below) or finds the envelope closed and rolls back.
        closed = RedEnvelope.objects.filter(_due(now), pk=envelope_id).update(status=Status.EXPIRED, closed_at=now)
        if closed != 1:
            return None
        envelope = RedEnvelope.objects.get(pk=envelope_id)
        left = int(
            RedEnvelopeShare.objects.filter(envelope_id=envelope_id, user__isnull=True).aggregate(total=Sum("coins"))[
                "total"
            ]
            or 0
        )
        if left:
            ledger.ledger_post(
                key=f"red_envelope:{envelope_id}:return",
                kind=LedgerTransaction.Kind.RED_ENVELOPE_RETURN,
                postings=[(_escrow(), left), (wallet_account(user_id=envelope.sender_id), -left)],
                memo=f"red envelope {envelope_id}: {left} coins not grabbed",
            )
        RedEnvelope.objects.filter(pk=envelope_id).update(returned_coins=left)
    return left


def red_envelopes_expire_due(*, limit: int = 200) -> int:
    """The beat sweeper: close every open envelope that is due (`_due`)."""
    due = list(
        RedEnvelope.objects.filter(_due(timezone.now())).order_by("expires_at").values_list("pk", flat=True)[:limit]
    )
    return sum(1 for envelope_id in due if red_envelope_expire(envelope_id=envelope_id) is not None)
