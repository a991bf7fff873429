"""Sending a gift: coins from the sender's wallet to the host and the platform, exactly.

One short transaction: the gift's record (rooms.GiftSend, with its `gift.sent` event on
commit) and a balanced ledger transaction under the key `gift:<send id>`: the sender's
wallet is debited by the gift's coins, the host's earnings credited with its share, the
platform's gift fees with the rest. The wallet's debit is a conditional update (its
kept balance may reach zero, never pass it), so concurrent gifts from one wallet can
never spend a coin twice; a gift it does not cover rolls back whole: 402.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from django.conf import settings
from django.db import transaction

from liveshop.errors import InsufficientCoins, Invalid
from liveshop.models import User
from orders.models import LedgerAccount, LedgerTransaction
from orders.services import ledger
from orders.services.wallet import COIN, wallet_account, wallet_coins
from rooms import services as room_services
from rooms.models import Gift, GiftSend, Room

GIFT_MAX_QUANTITY = 999


@dataclass(frozen=True)
class GiftSent:
    send: GiftSend
    balance: int  # the sender's coins after the gift


def gift_split(coins: int) -> tuple[int, int]:
    """(host's share, platform's share) of a gift's coins; the host's is rounded down."""
    host = coins * (10_000 - settings.GIFT_PLATFORM_SHARE_BPS) // 10_000
    return host, coins - host


def gift_send(
    *,
    room: Room,
    sender: User,
    gift: Gift,
    quantity: int,
    on_created: Callable[[GiftSend], None] | None = None,
) -> GiftSent:
    """Send `quantity` of a gift in a live room, paying with the sender's coins.

    Raises Invalid, RoomNotLive, PermissionDenied (the host in its own room), Banned or
    InsufficientCoins, having moved nothing. `on_created` runs inside the transaction
    (the idempotency record's link).
    """
    if not 1 <= quantity <= GIFT_MAX_QUANTITY:
        raise Invalid(f"quantity is from 1 to {GIFT_MAX_QUANTITY}.", fields={"quantity": ["Out of range."]})
    if not gift.is_active:
        raise Invalid("This gift is no longer offered.", fields={"gift": ["Not offered."]})
    room = room_services.gift_send_check(room=room, sender=sender)
    coins = gift.coins * quantity
    # A cheap refusal that writes nothing; the conditional debit below is the real check.
    if wallet_coins(user_id=sender.pk) < coins:
        raise InsufficientCoins(f"This gift costs {coins} coins.")
    host_coins, platform_coins = gift_split(coins)
    Kind = LedgerAccount.Kind
    wallet = wallet_account(user_id=sender.pk)
    earnings = ledger.ledger_account(kind=Kind.COIN_EARNINGS, currency=COIN, user_id=room.host.user_id)
    fees = ledger.ledger_account(kind=Kind.COIN_FEES, currency=COIN)
    try:
        with transaction.atomic():
            send = room_services.gift_record(
                room=room, sender=sender, gift=gift, quantity=quantity, coins=coins, host_coins=host_coins
            )
            if on_created is not None:
                on_created(send)
            ledger.ledger_post(
                key=f"gift:{send.pk}",
                kind=LedgerTransaction.Kind.GIFT,
                postings=[(wallet, coins), (earnings, -host_coins), (fees, -platform_coins)],
                memo=f"{quantity} x {gift.name} from user {sender.pk} in room {room.pk}",
            )
            # The wallet's row is locked by the debit until the commit: this is exact.
            balance = LedgerAccount.objects.filter(pk=wallet.pk).values_list("balance", flat=True).get()
    except ledger.LedgerOverdrawn:
        raise InsufficientCoins(f"This gift costs {coins} coins.") from None
    return GiftSent(send=send, balance=-balance)
