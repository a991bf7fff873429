"""What each payee is owed, from the ledger: pending, available (payable), in a payout,
paid out; the release of delivered orders from pending to available; statements.

An order's seller share (and its host's commission) is credited to the payee's pending
account (SELLER / HOST_COMMISSION) when the payment settles, and refunds before release
come out of it. PAYOUT_HOLD_DAYS after the order is delivered, the sweeper moves what is
left to the payee's PAYABLE account: one ledger transaction per order, under the order's
row lock, so a refund either came before (and is not released) or comes after (out of
PAYABLE, see orders/services/refunds.py).
"""

from __future__ import annotations

import datetime as dt
import time
import zoneinfo
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Q, Sum
from django.utils import timezone

from orders.models import LedgerAccount, LedgerEntry, LedgerTransaction, Order, Refund
from orders.services import ledger
from payouts.models import Payout
from payouts.services.payees import Payee

Kind = LedgerAccount.Kind
TxKind = LedgerTransaction.Kind

# --- Release -------------------------------------------------------------------------------------


def _release_due() -> Q:
    cutoff = timezone.now() - timedelta(days=settings.PAYOUT_HOLD_DAYS)
    return Q(released_at=None, delivered_at__isnull=False, delivered_at__lte=cutoff)


def order_release(*, order_id: int) -> bool:
    """Release one order (see `orders_release`); False if it was not released."""
    return orders_release(order_ids=[order_id]) == 1


@transaction.atomic
def orders_release(*, order_ids: list[int]) -> int:
    """Move delivered orders' shares, net of their refunds, from their payees' pending
    accounts to their payable ones, once their hold has passed: one ledger transaction
    per order, all written together. Skips (for the next sweep) an order not due, already
    released, with a refund pending, or locked by a refund being applied. Returns how
    many were released."""
    pending_refunds = Refund.objects.filter(status=Refund.Status.PENDING).values("order_id")
    orders = list(
        Order.objects.select_for_update(of=("self",), skip_locked=True)
        .filter(_release_due(), pk__in=order_ids)
        .exclude(pk__in=pending_refunds)
        .order_by("pk")
        .only("pk", "number")
    )
    if not orders:
        return 0
    owed = (
        LedgerEntry.objects.filter(
            transaction__order_id__in=[order.pk for order in orders],
            account__kind__in=(Kind.SELLER, Kind.HOST_COMMISSION),
        )
        .values("transaction__order_id", "account_id")
        .annotate(total=Sum("amount"))
        .filter(~Q(total=0))
    )
    per_order: dict[int, list[tuple[int, int]]] = defaultdict(list)
    for row in owed:
        per_order[row["transaction__order_id"]].append((row["account_id"], row["total"]))
    accounts = LedgerAccount.objects.in_bulk({account_id for rows in per_order.values() for account_id, _ in rows})
    facts = []
    for order in orders:
        postings: list[ledger.Posting] = []
        for account_id, total in per_order.get(order.pk, []):
            pending = accounts[account_id]
            postings += [(pending, -total), (Payee.of(pending).payable(pending.currency), total)]
        if postings:  # a fully refunded order has nothing left to release
            facts.append(
                ledger.Fact(
                    key=f"order:{order.pk}:release",
                    kind=TxKind.ORDER_RELEASE,
                    postings=postings,
                    order=order,
                    memo=f"order {order.number} payable",
                )
            )
    ledger.ledger_post_many(facts)
    Order.objects.filter(pk__in=[order.pk for order in orders]).update(released_at=timezone.now())
    return len(orders)


def orders_release_due(*, batch: int = 500, budget_s: float = 240.0) -> int:
    """The sweeper: release the orders whose hold after delivery has passed, a batch a
    transaction, for up to `budget_s` (the next run goes on where this one stopped)."""
    deadline = time.monotonic() + budget_s
    released, after = 0, 0
    while time.monotonic() < deadline:
        due = list(
            Order.objects.filter(_release_due(), pk__gt=after).order_by("pk").values_list("pk", flat=True)[:batch]
        )
        if not due:
            break
        released += orders_release(order_ids=due)
        after = due[-1]
    return released


# --- Balances ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Balance:
    pending: int  # earned, not payable yet (not delivered, or within the hold)
    available: int  # payable; negative when refunds after a payout are owed back
    in_payout: int  # in payouts built and not sent yet
    paid_out: int  # sent (and not come back)
    currency: str


def _owed(account_code: str) -> int:
    total = LedgerEntry.objects.filter(account__code=account_code).aggregate(total=Sum("amount"))["total"]
    return -int(total or 0)


def payee_balance(*, payee: Payee, currency: str | None = None) -> Balance:
    currency = currency or settings.CURRENCY
    codes = {
        kind: ledger.ledger_account_code(kind=kind, currency=currency, shop_id=payee.shop_id, user_id=payee.user_id)
        for kind in (payee.pending_kind, Kind.PAYABLE)
    }
    payable = LedgerAccount.objects.filter(code=codes[Kind.PAYABLE]).values_list("balance", flat=True).first()
    payouts = Payout.objects.filter(currency=currency, **payee.fields)
    sums = payouts.aggregate(
        in_payout=Sum("amount", filter=Q(status__in=(Payout.Status.PENDING, Payout.Status.APPROVED))),
        paid_out=Sum("amount", filter=Q(status__in=(Payout.Status.SENT, Payout.Status.PAID))),
    )
    return Balance(
        pending=_owed(codes[payee.pending_kind]),
        available=-int(payable or 0),
        in_payout=int(sums["in_payout"] or 0),
        paid_out=int(sums["paid_out"] or 0),
        currency=currency,
    )


# --- Statements ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Line:
    at: dt.datetime
    kind: str
    amount: int  # what it adds to what the payee is owed
    order: str | None = None  # the order's number
    payout: int | None = None
    memo: str = ""


@dataclass
class Statement:
    start: dt.date
    end: dt.date
    currency: str
    opening: int
    closing: int
    lines: list[Line] = field(default_factory=list)


# Lines that explain a transaction beyond its net: for an order's payment or refund, the
# gross amount, the platform's fee and the host's commission (a shop's), or the
# commission alone (a host's).
_PAYOUT_LINES = {
    TxKind.PAYOUT: "payout",
    TxKind.PAYOUT_NETTED: "payout_netted",
    TxKind.PAYOUT_FAILED: "payout_returned",
    TxKind.COIN_CASHOUT: "gift_earnings",
}


def _day_start(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time.min, tzinfo=zoneinfo.ZoneInfo(settings.STATS_TIME_ZONE))


def statement(*, payee: Payee, start: dt.date, end: dt.date, currency: str | None = None) -> Statement:
    """Every line that changed what the payee is owed from `start` to `end` (days in
    STATS_TIME_ZONE, both included), with `closing = opening + Σ amount`. The moves
    between the payee's own pending and payable accounts (releases) add nothing and are
    not lines."""
    currency = currency or settings.CURRENCY
    own = Q(account__shop_id=payee.shop_id) if payee.shop_id is not None else Q(account__user_id=payee.user_id)
    own &= Q(account__currency=currency, account__kind__in=(payee.pending_kind, Kind.PAYABLE))
    since, until = _day_start(start), _day_start(end + timedelta(days=1))
    entries = LedgerEntry.objects.filter(own)
    opening = -int(entries.filter(transaction__created_at__lt=since).aggregate(t=Sum("amount"))["t"] or 0)
    period = entries.filter(transaction__created_at__gte=since, transaction__created_at__lt=until).exclude(
        transaction__kind=TxKind.ORDER_RELEASE
    )
    in_period = list(
        period.values("transaction_id", "transaction__kind", "transaction__created_at", "transaction__order__number")
        .annotate(net=Sum("amount"))
        .order_by("transaction__created_at", "transaction_id")
    )
    # A shop's order lines are explained (gross, fee, commission): read with a subquery,
    # not a list of ids, as a big show's month has tens of thousands.
    parts = {}
    if payee.shop_id is not None:
        parts = _order_parts(period.filter(transaction__kind__in=_ORDER_KINDS).values("transaction_id"))
    payouts = _payout_ids([row["transaction_id"] for row in in_period if row["transaction__kind"] in _PAYOUT_LINES])
    lines: list[Line] = []
    for row in in_period:
        txn_id, kind, net = row["transaction_id"], row["transaction__kind"], -int(row["net"])
        at, number = row["transaction__created_at"], row["transaction__order__number"]
        if kind in _ORDER_KINDS:
            lines += _order_lines(payee, kind, at, number, net, parts.get(txn_id, {}))
        else:
            label = _PAYOUT_LINES.get(kind, "adjustment")
            lines.append(Line(at=at, kind=label, amount=net, order=number, payout=payouts.get(txn_id)))
    closing = opening + sum(line.amount for line in lines)
    return Statement(start=start, end=end, currency=currency, opening=opening, closing=closing, lines=lines)


_ORDER_KINDS = (TxKind.ORDER_PAYMENT, TxKind.ORDER_REFUND)


def _order_parts(transaction_ids: Any) -> dict[int, dict[str, int]]:
    """Per order transaction: its gross (the processor's entry), the platform's fee and
    the host's commission, signed as they change what the seller is owed."""
    parts: dict[int, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    names = {Kind.PROCESSOR: "gross", Kind.PLATFORM_FEES: "fee", Kind.HOST_COMMISSION: "commission", Kind.PAYABLE: ""}
    rows = (
        LedgerEntry.objects.filter(transaction_id__in=transaction_ids, account__kind__in=list(names))
        .values("transaction_id", "account__kind", "account__user_id")
        .annotate(total=Sum("amount"))
    )
    for row in rows:
        name = names[row["account__kind"]]
        if row["account__kind"] == Kind.PAYABLE and row["account__user_id"] is not None:
            name = "commission"  # a refund after release takes the commission from the host's payable
        if name:
            # The processor's entry is a debit (+) when money came in; fees and
            # commissions are credits (-) taken from the seller's share.
            parts[row["transaction_id"]][name] += int(row["total"])
    return parts


def _order_lines(
    payee: Payee, kind: str, at: dt.datetime, number: str | None, net: int, parts: dict[str, int]
) -> list[Line]:
    sale = "sale" if kind == TxKind.ORDER_PAYMENT else "refund"
    if payee.user_id is not None:  # a host: its commission on the order
        return [Line(at=at, kind="commission", amount=net, order=number)]
    lines = [
        Line(at=at, kind=sale, amount=parts.get("gross", 0), order=number),
        Line(at=at, kind="fee", amount=parts.get("fee", 0), order=number),
        Line(at=at, kind="commission", amount=parts.get("commission", 0), order=number),
    ]
    lines = [line for line in lines if line.amount]
    if sum(line.amount for line in lines) != net:  # never expected; the net is the truth
        return [Line(at=at, kind=sale, amount=net, order=number)]
    return lines


def _payout_ids(transaction_ids: list[int]) -> dict[int, int]:
    """Payout transactions' keys are "payout:<id>[:...]": the payout each line is about."""
    keys = LedgerTransaction.objects.filter(pk__in=transaction_ids).values_list("pk", "key")
    found: dict[int, int] = {}
    for pk, key in keys:
        head, _, rest = key.partition(":")
        if head == "payout" and rest.split(":")[0].isdigit():
            found[pk] = int(rest.split(":")[0])
    return found
