"""The coin wallet: balances, top-ups paid through Stripe, and staff grants.

A wallet is not a table of its own: it is the user's `wallet` account in the ledger, in
the currency "coin", whose kept balance is what the platform owes the user (a credit:
coins = -balance). Every coin that enters or leaves a wallet is a balanced ledger
transaction, so the ledger's sums say where every coin came from and went.

- A top-up is a Stripe payment: the TopUp row is created first, its PaymentIntent after
  the commit (no row lock across a network call), and the coins are credited once,
  by the settlement of its `payment_intent.succeeded` event, through the webhook outbox
  that settles orders (orders/services/payments.py calls in here).
- A staff grant issues coins from the platform's promotions account (the demo's
  viewer wallet, goodwill): clearly apart from bought coins in the ledger.
- A gift spends coins: orders/services/gifts.py.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Sum
from django.utils import timezone

from liveshop.errors import Invalid, ServiceUnavailable
from liveshop.models import User
from orders import stripe_api
from orders.models import LedgerAccount, LedgerEntry, LedgerTransaction, TopUp
from orders.services import flagged, ledger

logger = logging.getLogger(__name__)

COIN = "coin"
TOP_UP_MAX_COINS = 100_000
GRANT_MAX_COINS = 1_000_000

Kind = LedgerAccount.Kind


# --- Reading a wallet ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Wallet:
    coins: int  # to spend on gifts
    earned_coins: int  # a host's share of the gifts received


def wallet_coins(*, user_id: int) -> int:
    """Coins the user may spend (0 without a wallet yet). Reads the kept balance."""
    code = ledger.ledger_account_code(kind=Kind.WALLET, currency=COIN, user_id=user_id)
    balance = LedgerAccount.objects.filter(code=code).values_list("balance", flat=True).first()
    return -int(balance or 0)


def earned_coins(*, user_id: int) -> int:
    """A host's earned coins: the sum of its earnings account's entries (not a kept
    balance: see LedgerAccount.BALANCE_KINDS)."""
    code = ledger.ledger_account_code(kind=Kind.COIN_EARNINGS, currency=COIN, user_id=user_id)
    total = LedgerEntry.objects.filter(account__code=code).aggregate(total=Sum("amount"))["total"]
    return -int(total or 0)


def wallet_get(*, user: User) -> Wallet:
    return Wallet(coins=wallet_coins(user_id=user.pk), earned_coins=earned_coins(user_id=user.pk))


def wallet_account(*, user_id: int) -> LedgerAccount:
    return ledger.ledger_account(kind=Kind.WALLET, currency=COIN, user_id=user_id)


# --- Top-ups --------------------------------------------------------------------------------------


def top_up_create(*, user: User, coins: int, on_created: Callable[[TopUp], None] | None = None) -> TopUp:
    """A pending top-up of `coins`, priced at COIN_PRICE_FEN each. Its PaymentIntent is
    created by `top_up_payment_start` once this commits. `on_created` runs inside the
    creating transaction (the idempotency record's link)."""
    if not 1 <= coins <= TOP_UP_MAX_COINS:
        raise Invalid(f"A top-up is from 1 to {TOP_UP_MAX_COINS} coins.", fields={"coins": ["Out of range."]})
    with transaction.atomic():
        top_up = TopUp.objects.create(
            user=user, coins=coins, amount=coins * settings.COIN_PRICE_FEN, currency=settings.CURRENCY
        )
        if on_created is not None:
            on_created(top_up)
    return top_up


def top_up_payment_start(*, top_up: TopUp) -> TopUp:
    """Create the top-up's PaymentIntent once (a network call: call outside transactions).

    Idempotent: a top-up that has one is returned as it is, and Stripe dedupes the
    creation by the top-up's id. Raises ServiceUnavailable when Stripe cannot be reached
    (a retry with the same Idempotency-Key resumes here), Invalid when Stripe refuses
    (the top-up is then canceled).
    """
    if top_up.payment_intent_id or top_up.status != TopUp.Status.PENDING:
        return top_up
    try:
        intent = stripe_api.top_up_payment_intent_create(
            top_up_id=top_up.pk,
            amount=top_up.amount,
            currency=top_up.currency,
            metadata={"liveshop_top_up": str(top_up.pk), "coins": str(top_up.coins)},
        )
    except stripe_api.StripeRequestRefused as exc:
        logger.warning("Stripe refused the PaymentIntent of top-up %s: %s", top_up.pk, exc)
        TopUp.objects.filter(pk=top_up.pk, status=TopUp.Status.PENDING).update(
            status=TopUp.Status.CANCELED, last_error=str(exc)[:500]
        )
        raise Invalid(f"The payment provider refused this top-up: {exc.user_message or exc}") from None
    except stripe_api.StripeError as exc:
        logger.warning("Stripe unreachable creating the PaymentIntent of top-up %s: %s", top_up.pk, exc)
        raise ServiceUnavailable("The payment provider is unreachable; retry with the same Idempotency-Key.") from None
    # Only if still unset: a concurrent retry got the same intent from Stripe.
    TopUp.objects.filter(pk=top_up.pk, payment_intent_id__isnull=True).update(
        payment_intent_id=intent.id, client_secret=intent.client_secret
    )
    top_up.refresh_from_db()
    return top_up


def _top_up_for_intent(intent: dict[str, Any]) -> TopUp | None:
    top_up = TopUp.objects.filter(payment_intent_id=intent["id"]).first()
    if top_up is not None:
        return top_up
    # Ours, but the answer of the creation call was lost before its id was stored.
    metadata = intent.get("metadata") or {}
    reference = str(metadata.get("liveshop_top_up") or "")
    if not reference.isdigit():
        return None
    top_up = TopUp.objects.filter(pk=int(reference), payment_intent_id__isnull=True).first()
    if top_up is not None:
        TopUp.objects.filter(pk=top_up.pk, payment_intent_id__isnull=True).update(payment_intent_id=intent["id"])
        top_up.payment_intent_id = intent["id"]
    return top_up


def top_up_on_intent_succeeded(intent: dict[str, Any]) -> str | None:
    """Credit a top-up's coins, once, from its verified `payment_intent.succeeded`.

    Runs in the event's transaction (settlement). A compare-and-set on the status makes
    a second delivery, or a second event, change nothing; the ledger's unique key
    backs it. A top-up canceled meanwhile is credited all the same: the money came in,
    and coins are never out of stock. None if the intent is not a top-up's.
    """
    top_up = _top_up_for_intent(intent)
    if top_up is None:
        return None
    mismatch = flagged.payment_mismatch(intent, amount=top_up.amount, currency=top_up.currency)
    if mismatch is not None:
        TopUp.objects.filter(pk=top_up.pk, status=TopUp.Status.PENDING).update(last_error=f"flagged: {mismatch}")
        return flagged.payment_flag(
            intent=intent, reason=mismatch, amount=top_up.amount, currency=top_up.currency, top_up=top_up
        )
    amount, _ = flagged.intent_received(intent)
    credited = TopUp.objects.filter(pk=top_up.pk, status__in=[TopUp.Status.PENDING, TopUp.Status.CANCELED]).update(
        status=TopUp.Status.PAID, paid_at=timezone.now(), amount_received=amount, last_error=""
    )
    if credited != 1:
        return "duplicate: top-up already credited"
    currency = str(intent.get("currency") or top_up.currency)
    ledger.ledger_post(
        key=f"top_up:{top_up.pk}",
        kind=LedgerTransaction.Kind.TOP_UP,
        postings=[
            (ledger.ledger_account(kind=Kind.PROCESSOR, currency=currency), amount),
            (ledger.ledger_account(kind=Kind.COIN_SALES, currency=currency), -amount),
            (ledger.ledger_account(kind=Kind.COIN_ISSUE, currency=COIN), top_up.coins),
            (wallet_account(user_id=top_up.user_id), -top_up.coins),
        ],
        memo=f"top-up {top_up.pk}: {top_up.coins} coins for user {top_up.user_id}",
    )
    return "top-up credited"


def top_up_on_intent_failed(intent: dict[str, Any], message: str) -> str | None:
    """The last attempt to pay failed; the buyer may try again. None if not a top-up's."""
    top_up = _top_up_for_intent(intent)
    if top_up is None:
        return None
    updated = TopUp.objects.filter(pk=top_up.pk, status=TopUp.Status.PENDING).update(last_error=message)
    return "top-up payment failed" if updated else "ignored: top-up already final"


def top_up_on_intent_canceled(intent: dict[str, Any]) -> str | None:
    top_up = _top_up_for_intent(intent)
    if top_up is None:
        return None
    updated = TopUp.objects.filter(pk=top_up.pk, status=TopUp.Status.PENDING).update(status=TopUp.Status.CANCELED)
    return "top-up canceled" if updated else "ignored: top-up already final"


# --- Staff grants ---------------------------------------------------------------------------------


def wallet_grant(*, user: User, coins: int, key: str, reason: str, actor: User | None = None) -> bool:
    """Give a user coins from the platform's promotions account, once per `key`.

    For staff (goodwill, contest prizes, a county's campaign paying for its cadre host's
    red envelopes) and the demo data: the coins come from `coin_promotions`, not from a
    sale, so the ledger keeps granted coins apart from bought ones. A grant by `actor`
    (staff) is also written to the audit log, in the same transaction. Returns False if
    this grant was made already.
    """
    if not 1 <= coins <= GRANT_MAX_COINS:
        raise Invalid(f"A grant is from 1 to {GRANT_MAX_COINS} coins.", fields={"coins": ["Out of range."]})
    ledger_key = f"coin_grant:{key}"[:100]
    if LedgerTransaction.objects.filter(key=ledger_key).exists():
        return False
    try:
        with transaction.atomic():
            ledger.ledger_post(
                key=ledger_key,
                kind=LedgerTransaction.Kind.COIN_GRANT,
                postings=[
                    (ledger.ledger_account(kind=Kind.COIN_PROMOTIONS, currency=COIN), coins),
                    (wallet_account(user_id=user.pk), -coins),
                ],
                memo=f"grant to user {user.pk}: {reason}"[:200],
            )
            if actor is not None:
                from rooms.services.moderation import audit_record

                audit_record(
                    actor=actor,
                    action="coin_grant",
                    target_user=user,
                    reason=reason,
                    details={"coins": coins, "key": key},
                )
    except IntegrityError:  # the same grant, made at the same moment
        return False
    return True
