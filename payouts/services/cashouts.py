"""A host's gift coins cashed out: bought back at COIN_CASHOUT_FEN a coin into the
host's payable balance, paid with its next payout."""

from __future__ import annotations

from collections.abc import Callable

from django.conf import settings
from django.db import transaction
from django.db.models import Sum

from liveshop.errors import InsufficientCoins, Invalid, PermissionDenied
from liveshop.models import User
from liveshop.permissions import host_of
from orders.models import LedgerAccount, LedgerEntry, LedgerTransaction
from orders.services import ledger
from orders.services.wallet import COIN
from payouts.models import CoinCashOut
from payouts.services.payees import Payee

Kind = LedgerAccount.Kind
MAX_COINS = 100_000_000


def coin_cash_out(*, user: User, coins: int, on_created: Callable[[CoinCashOut], None] | None = None) -> CoinCashOut:
    """Cash out `coins` of the host's earned coins (at least COIN_CASHOUT_MINIMUM_COINS).

    The earnings account is not a kept balance (every gift in a room credits it), so
    cash-outs take its row lock and sum its entries: two cash-outs wait for each other,
    while gifts arriving meanwhile only add to what the sum will find.
    """
    if host_of(user) is None:
        raise PermissionDenied("Only hosts cash out gift coins.")
    if coins < settings.COIN_CASHOUT_MINIMUM_COINS:
        raise Invalid(
            f"A cash-out takes at least {settings.COIN_CASHOUT_MINIMUM_COINS} coins.",
            fields={"coins": [f"At least {settings.COIN_CASHOUT_MINIMUM_COINS}."]},
        )
    amount = coins * settings.COIN_CASHOUT_FEN
    with transaction.atomic():
        earnings = ledger.ledger_account(kind=Kind.COIN_EARNINGS, currency=COIN, user_id=user.pk)
        LedgerAccount.objects.select_for_update().filter(pk=earnings.pk).values_list("pk", flat=True).get()
        earned = -int(LedgerEntry.objects.filter(account=earnings).aggregate(total=Sum("amount"))["total"] or 0)
        if coins > earned:
            raise InsufficientCoins(f"You have earned {earned} coins to cash out.")
        cash_out = CoinCashOut.objects.create(user=user, coins=coins, amount=amount, currency=settings.CURRENCY)
        if on_created is not None:
            on_created(cash_out)
        ledger.ledger_post(
            key=f"cashout:{cash_out.pk}",
            kind=LedgerTransaction.Kind.COIN_CASHOUT,
            postings=[
                (earnings, coins),
                (ledger.ledger_account(kind=Kind.COIN_CASHOUTS, currency=COIN), -coins),
                (ledger.ledger_account(kind=Kind.COIN_CASHOUT_COST, currency=settings.CURRENCY), amount),
                (Payee(user_id=user.pk).payable(), -amount),
            ],
            memo=f"{coins} gift coins cashed out",
        )
    return cash_out
