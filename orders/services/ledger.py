"""The double-entry ledger: balanced transactions, each recorded exactly once."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F, Sum

from orders.models import LedgerAccount, LedgerEntry, LedgerTransaction, Order, Refund

Posting = tuple[LedgerAccount, int]

# Accounts never change once created (their balance is only ever updated in SQL) and are
# never deleted, so each process remembers them by code once committed: settlement
# skips a look-up per posting.
_accounts: dict[str, LedgerAccount] = {}


def ledger_forget() -> None:
    """Forget the remembered accounts (for tests that empty the database)."""
    _accounts.clear()


class LedgerUnbalanced(Exception):
    """A bug: a transaction's entries do not sum to zero in some currency."""


class LedgerOverdrawn(Exception):
    """A posting would take a kept balance past zero (a wallet without the coins).

    Raised inside the caller's transaction, after the entries were written: the caller
    lets its transaction roll back (and answers, say, 402 insufficient_coins).
    """

    def __init__(self, account_id: int) -> None:
        super().__init__(f"account {account_id} does not cover the posting")
        self.account_id = account_id


def ledger_account_code(
    *, kind: LedgerAccount.Kind, currency: str, shop_id: int | None = None, user_id: int | None = None
) -> str:
    if shop_id is not None:
        return f"{kind}:shop:{shop_id}:{currency}"
    if user_id is not None:
        return f"{kind}:user:{user_id}:{currency}"
    return f"{kind}:{currency}"


def ledger_account(
    *, kind: LedgerAccount.Kind, currency: str, shop_id: int | None = None, user_id: int | None = None
) -> LedgerAccount:
    """The account of this kind (for this shop or user) in this currency, created on first use."""
    code = ledger_account_code(kind=kind, currency=currency, shop_id=shop_id, user_id=user_id)
    cached = _accounts.get(code)
    if cached is not None:
        return cached
    account = LedgerAccount.objects.filter(code=code).first()
    if account is None:
        try:
            with transaction.atomic():
                account = LedgerAccount.objects.create(
                    code=code, kind=kind, currency=currency, shop_id=shop_id, user_id=user_id
                )
        except IntegrityError:  # created by a concurrent first use
            account = LedgerAccount.objects.get(code=code)
    if settings.LEDGER_ACCOUNT_CACHE and len(_accounts) < 10_000:
        # Remembered only once its creation (ours or another's) is surely committed.
        transaction.on_commit(lambda: _accounts.setdefault(code, account))
    return account


@dataclass(frozen=True)
class Fact:
    """One balanced ledger transaction to record (see `ledger_post`)."""

    key: str
    kind: LedgerTransaction.Kind
    postings: Sequence[Posting]
    order: Order | None = None
    refund: Refund | None = None
    memo: str = ""


def ledger_post(
    *,
    key: str,
    kind: LedgerTransaction.Kind,
    postings: Sequence[Posting],
    order: Order | None = None,
    refund: Refund | None = None,
    memo: str = "",
) -> LedgerTransaction:
    """Record a balanced transaction, once per `key`.

    Call inside the transaction that makes the business change, so the two commit or
    roll back together. Zero postings are dropped. The callers' compare-and-set makes
    each fact happen once; should two ever race past it, the second hits the unique key
    (IntegrityError) and its whole transaction rolls back, to be retried and find the
    fact recorded.

    A kept balance (LedgerAccount.BALANCE_KINDS) is updated in the same transaction. One
    that may not turn positive (NO_OVERDRAFT_KINDS: a wallet, coins the platform owes a
    user) never does: a debit it does not cover raises LedgerOverdrawn, and the
    caller's transaction must roll back. The conditional update is the check, so two
    debits racing on one wallet cannot both pass.
    """
    fact = Fact(key=key, kind=kind, postings=postings, order=order, refund=refund, memo=memo)
    return ledger_post_many([fact])[0]


def ledger_post_many(facts: Sequence[Fact]) -> list[LedgerTransaction]:
    """Record several balanced transactions as `ledger_post` records one, in one insert
    per table and one update per kept balance (a sweep that releases a thousand orders
    writes them at the cost of a few statements)."""
    cleaned = []
    for fact in facts:
        postings = [(account, amount) for account, amount in fact.postings if amount != 0]
        totals: dict[str, int] = defaultdict(int)
        for account, amount in postings:
            totals[account.currency] += amount
        if any(totals.values()):
            raise LedgerUnbalanced(f"{fact.key}: entries sum to {dict(totals)}")
        cleaned.append(postings)
    txns = LedgerTransaction.objects.bulk_create(
        [
            LedgerTransaction(key=fact.key, kind=fact.kind, order=fact.order, refund=fact.refund, memo=fact.memo)
            for fact in facts
        ]
    )
    LedgerEntry.objects.bulk_create(
        [
            LedgerEntry(transaction=txn, account=account, amount=amount, currency=account.currency)
            for txn, postings in zip(txns, cleaned, strict=True)
            for account, amount in postings
        ]
    )
    # Balances last and in primary-key order: the rows stay locked only until the
    # commit, and two transactions never wait for each other's rows in a cycle.
    per_account: dict[int, int] = defaultdict(int)
    accounts: dict[int, LedgerAccount] = {}
    for postings in cleaned:
        for account, amount in postings:
            if account.keeps_balance:
                per_account[account.pk] += amount
                accounts[account.pk] = account
    for account_id in sorted(per_account):
        delta = per_account[account_id]
        rows = LedgerAccount.objects.filter(pk=account_id)
        if delta > 0 and accounts[account_id].kind in LedgerAccount.NO_OVERDRAFT_KINDS:
            rows = rows.filter(balance__lte=-delta)
        if rows.update(balance=F("balance") + delta) != 1:
            raise LedgerOverdrawn(account_id)
    return txns


def ledger_balance(*, account: LedgerAccount) -> int:
    total = LedgerEntry.objects.filter(account=account).aggregate(total=Sum("amount"))["total"]
    return int(total or 0)


def ledger_check() -> dict[str, Any]:
    """The ledger's invariants: every transaction and currency sums to zero, and every
    kept balance equals the sum of its account's entries. Returns what is wrong."""
    unbalanced = list(
        LedgerEntry.objects.values("transaction_id", "currency")
        .annotate(total=Sum("amount"))
        .exclude(total=0)
        .values_list("transaction_id", flat=True)
    )
    drifted = []
    sums = dict(
        LedgerEntry.objects.values("account_id").annotate(total=Sum("amount")).values_list("account_id", "total")
    )
    for account in LedgerAccount.objects.all().iterator():
        if account.keeps_balance and account.balance != int(sums.get(account.pk) or 0):
            drifted.append(account.code)
    return {"unbalanced_transactions": unbalanced, "drifted_balances": drifted}
