"""Reads of gifts and giveaways: the catalog, the leaderboard, giveaways as the public sees them."""

from __future__ import annotations

from typing import Any

from django.core.cache import cache
from django.db.models import Count, Max, QuerySet, Sum
from django.templatetags.static import static
from rest_framework import serializers

from liveshop.errors import NotFound
from liveshop.models import User
from rooms import selectors
from rooms.models import Gift, GiftSend, Giveaway, GiveawayEntry, GiveawayWinner, Room

LEADERBOARD_SIZE = 50
LEADERBOARD_CACHE_S = 1
# Giveaways a room's snapshot shows: the open ones and the latest results.
SNAPSHOT_GIVEAWAYS = 10

_datetime = serializers.DateTimeField()


def _iso(value: Any) -> str | None:
    return _datetime.to_representation(value) if value is not None else None


def gift_image_url(gift: Gift) -> str:
    """The gift's image as clients fetch it: a static file under STATIC_URL (relative to
    the API's origin unless STATIC_URL is absolute), or the absolute URL stored."""
    if gift.image_url.startswith(("http://", "https://", "/")):
        return gift.image_url
    return static(gift.image_url)


def gifts_catalog() -> list[Gift]:
    return list(Gift.objects.filter(is_active=True).order_by("position", "id"))


def gift_leaderboard(*, room: Room) -> list[dict[str, Any]]:
    """The room's top senders by coins, at most LEADERBOARD_CACHE_S old.

    Summing a busy show's gift records takes tens of milliseconds (200,000 gifts: ~50 ms,
    docs/PERFORMANCE.md), and every viewer may ask: one computation a second per room
    serves them all. Live changes reach clients as `gift.sent` events meanwhile.
    """
    key = f"gift-leaderboard:{room.pk}"
    board: list[dict[str, Any]] | None = cache.get(key)
    if board is None:
        board = gift_leaderboard_compute(room=room)
        cache.set(key, board, timeout=LEADERBOARD_CACHE_S)
    return board


def gift_leaderboard_compute(*, room: Room, limit: int = LEADERBOARD_SIZE) -> list[dict[str, Any]]:
    """The room's top senders by coins, from the gift records (which the ledger backs
    one for one). Ties go to whoever reached the total first (the earlier last send)."""
    rows = list(
        GiftSend.objects.filter(room=room)
        .values("sender_id")
        .annotate(coins=Sum("coins"), last=Max("id"))
        .order_by("-coins", "last")[:limit]
    )
    names = {user.pk: user.public_name for user in User.objects.filter(pk__in=[row["sender_id"] for row in rows])}
    return [
        {"user": {"id": row["sender_id"], "display_name": names.get(row["sender_id"], "")}, "coins": int(row["coins"])}
        for row in rows
    ]


def giveaways_with_details() -> QuerySet[Giveaway]:
    return (
        Giveaway.objects.select_related("room__host", "prize_sku__product")
        .annotate(entries_count=Count("entries"))
        .prefetch_related("winners__user")
    )


def giveaway_visible_get(*, user: Any, giveaway_id: int, details: bool = False) -> Giveaway:
    """The giveaway, if its room is visible to the user (404 otherwise).

    With `details`, what giveaway_public reads comes along (the entry count among it);
    an entry or a claim needs none of it, and counting the entries on every one of a
    keyword storm's entries would grow with the storm.
    """
    giveaways = giveaways_with_details() if details else Giveaway.objects.select_related("room__host")
    giveaway = giveaways.filter(pk=giveaway_id).first()
    if giveaway is None or not selectors.rooms_visible_to(user).filter(pk=giveaway.room_id).exists():
        raise NotFound("No such giveaway.")
    return giveaway


def giveaway_public(giveaway: Giveaway) -> dict[str, Any]:
    """A giveaway as the API, the events and the snapshot show it. The seed and the
    winners appear once it is drawn (null and [] before)."""
    entries = getattr(giveaway, "entries_count", None)
    if entries is None:
        entries = GiveawayEntry.objects.filter(giveaway=giveaway).count()
    sku = giveaway.prize_sku
    drawn = giveaway.is_drawn
    winners: list[GiveawayWinner] = list(giveaway.winners.all()) if drawn else []
    winners.sort(key=lambda winner: winner.rank)
    return {
        "id": giveaway.pk,
        "room": giveaway.room_id,
        "title": giveaway.title,
        "status": str(giveaway.status),
        "winners_count": giveaway.winners_count,
        "entries": entries,
        "keyword": giveaway.keyword,
        "followers_only": giveaway.followers_only,
        "min_account_age_s": giveaway.min_account_age_s,
        "prize": {"sku": sku.pk, "title": f"{sku.product.title} / {sku.name}"} if sku is not None else None,
        "created_at": _iso(giveaway.created_at),
        "closes_at": _iso(giveaway.closes_at),
        "drawn_at": _iso(giveaway.drawn_at),
        "commitment": giveaway.commitment,
        "seed": giveaway.seed if drawn else None,
        "winners": [
            {
                "user": {"id": winner.user_id, "display_name": winner.user.public_name},
                "rank": winner.rank,
                "status": str(winner.status),
                "claim_deadline": _iso(winner.claim_deadline),
            }
            for winner in winners
        ],
    }


def room_giveaways(*, room: Room) -> QuerySet[Giveaway]:
    """A room's giveaways, newest first, cancelled ones left out."""
    return giveaways_with_details().filter(room=room).exclude(status=Giveaway.Status.CANCELLED).order_by("-id")


def room_giveaways_public(*, room: Room) -> list[dict[str, Any]]:
    """The snapshot's `giveaways`: the open ones, then the latest drawn, newest first."""
    return [giveaway_public(giveaway) for giveaway in room_giveaways(room=room)[:SNAPSHOT_GIVEAWAYS]]


def giveaway_entries(*, giveaway: Giveaway) -> QuerySet[GiveawayEntry]:
    """Every entrant, in the order they entered (the public list the verifier reads)."""
    return GiveawayEntry.objects.filter(giveaway=giveaway).order_by("id")
