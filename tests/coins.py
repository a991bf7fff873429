"""Helpers for the wallet, gift and giveaway tests."""

from __future__ import annotations

import importlib
from datetime import timedelta
from typing import Any

from django.db.models import Sum
from django.utils import timezone

from liveshop.models import User
from orders.models import LedgerEntry
from orders.services.ledger import ledger_check
from orders.services.wallet import wallet_grant
from rooms.models import Gift, Giveaway, Room
from rooms.services import giveaway_create

SHIPPING = {"name": "Li Ming", "phone": "+86 138 0000 0000", "address": "8 Jiefangbei Rd", "district": "Yuzhong"}


def grant(user: User, coins: int, key: str | None = None) -> None:
    """Coins for a test wallet, through the real ledger (a staff grant)."""
    assert wallet_grant(user=user, coins=coins, key=key or f"test:{user.pk}:{coins}:{timezone.now()}", reason="test")


def gift(name: str = "Chongqing hotpot") -> Gift:
    """A gift of the catalog the data migration seeded (the hotpot costs 99 coins).

    Transactional tests empty every table after them, the migration's rows included:
    the catalog is then put back as the migration wrote it.
    """
    found = Gift.objects.filter(name=name).first()
    if found is not None:
        return found
    catalog = importlib.import_module("rooms.migrations.0005_gift_catalog")
    for position, (gift_name, coins, image) in enumerate(catalog.GIFTS, start=1):
        Gift.objects.get_or_create(
            name=gift_name, defaults={"coins": coins, "image_url": f"gifts/{image}", "position": position}
        )
    return Gift.objects.get(name=name)


def assert_ledger_balanced() -> None:
    assert ledger_check() == {"unbalanced_transactions": [], "drifted_balances": []}
    for row in LedgerEntry.objects.values("currency").annotate(total=Sum("amount")):
        assert row["total"] == 0, row


def giveaway(room: Room, **kwargs: Any) -> Giveaway:
    values: dict[str, Any] = {"title": "A bag of Wulong tea", "winners": 2, "duration_s": 60} | kwargs
    return giveaway_create(room=room, **values)


def close(giveaway: Giveaway) -> None:
    """Bring the giveaway's close into the past (as time passing would)."""
    Giveaway.objects.filter(pk=giveaway.pk).update(closes_at=timezone.now() - timedelta(milliseconds=1))
