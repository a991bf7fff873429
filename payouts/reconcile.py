"""The reconciliation: proof that every fen adds up, or a list of where it does not.

Run nightly by the beat and by `manage.py reconcile` (exit status 1 on a difference).
It checks, and never corrects:

1. the ledger: every transaction sums to zero in each currency, and so does each
   currency over all; every kept balance equals the sum of its account's entries;
2. every paid order has exactly one payment in the ledger, of its total, and no unpaid
   order has one;
3. every succeeded refund has its ledger transaction, of its amount, and Stripe's
   balance history has the refund, of the same amount;
4. every sent payout has left the ledger once, of its amount; a Stripe one matches a
   transfer in Stripe's balance history, and every transfer there is a payout's;
5. the money set aside for payouts (PAYOUTS) is exactly the payouts built and not sent.

Each run is stored (payouts.models.Reconciliation, in the admin) with what it counted.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections import defaultdict
from datetime import timedelta
from typing import Any

from django.db.models import Count, Q, Sum
from django.utils import timezone

from orders import stripe_api
from orders.models import LedgerAccount, LedgerEntry, LedgerTransaction, Order, Refund
from orders.services import ledger
from payouts.models import Payout, Reconciliation

logger = logging.getLogger(__name__)

Kind = LedgerAccount.Kind
TxKind = LedgerTransaction.Kind
PAID_STATUSES = (Order.Status.PAID, Order.Status.SHIPPED, Order.Status.DELIVERED, Order.Status.REFUNDED)


class _Report:
    def __init__(self) -> None:
        self.differences: list[dict[str, Any]] = []
        self.checked: dict[str, int] = defaultdict(int)

    def differ(self, check: str, subject: str, detail: str) -> None:
        self.differences.append({"check": check, "subject": subject, "detail": detail})


def reconcile(*, stripe_days: int = 35, now: dt.datetime | None = None) -> Reconciliation:
    """Run every check; Stripe's balance history is read for the last `stripe_days`
    (refunds and payouts older than that are taken as checked by earlier runs)."""
    now = now or timezone.now()
    run = Reconciliation.objects.create()
    report = _Report()
    _check_ledger(report)
    _check_orders(report)
    since = now - timedelta(days=stripe_days)
    history = _stripe_history(report, since=since, until=now)
    _check_refunds(report, history, since=since)
    _check_payouts(report, history, since=since)
    run.finished_at = timezone.now()
    run.is_clean = not report.differences
    run.checked = dict(report.checked)
    run.differences = report.differences
    run.save()
    if report.differences:
        logger.error("Reconciliation %s found %d differences", run.pk, len(report.differences))
    return run


def _check_ledger(report: _Report) -> None:
    found = ledger.ledger_check()
    for txn_id in found["unbalanced_transactions"]:
        report.differ("ledger", f"transaction {txn_id}", "its entries do not sum to zero")
    for code in found["drifted_balances"]:
        report.differ("ledger", f"account {code}", "its kept balance is not the sum of its entries")
    for row in LedgerEntry.objects.values("currency").annotate(total=Sum("amount")):
        report.checked["currencies"] += 1
        if row["total"]:
            report.differ("ledger", f"currency {row['currency']}", f"the ledger sums to {row['total']}, not 0")
    report.checked["ledger_transactions"] = LedgerTransaction.objects.count()


def _check_orders(report: _Report) -> None:
    payments = (
        LedgerEntry.objects.filter(transaction__kind=TxKind.ORDER_PAYMENT, account__kind=Kind.PROCESSOR)
        .values("transaction__order_id")
        .annotate(count=Count("transaction_id", distinct=True), total=Sum("amount"))
    )
    by_order = {row["transaction__order_id"]: row for row in payments}
    # A prize order (total 0) moves no money.
    paid = Order.objects.filter(paid_at__isnull=False, status__in=PAID_STATUSES, total__gt=0).values_list(
        "pk", "number", "total"
    )
    for order_id, number, total in paid.iterator():
        report.checked["paid_orders"] += 1
        row = by_order.pop(order_id, None)
        if row is None:
            report.differ("orders", f"order {number}", "paid, but no payment in the ledger")
        elif row["count"] != 1 or row["total"] != total:
            report.differ(
                "orders", f"order {number}", f"{row['count']} payments of {row['total']} in the ledger for {total}"
            )
    for order_id in by_order:
        report.differ("orders", f"order id {order_id}", "a payment in the ledger, but the order is not paid")


def _stripe_history(report: _Report, *, since: dt.datetime, until: dt.datetime) -> dict[str, dict[str, Any]] | None:
    """Stripe's balance transactions by source id (re_..., tr_...), or None if Stripe
    could not be read (reported: the Stripe checks did not run)."""
    if not stripe_api.is_configured():
        report.differ("stripe", "balance history", "STRIPE_SECRET_KEY is not set: Stripe was not compared")
        return None
    try:
        rows = stripe_api.balance_transactions(since=int(since.timestamp()), until=int(until.timestamp()) + 1)
    except stripe_api.StripeError as exc:
        report.differ("stripe", "balance history", f"could not be read: {exc}")
        return None
    report.checked["stripe_balance_transactions"] = len(rows)
    history: dict[str, dict[str, Any]] = {}
    for row in rows:
        source = row.get("source")
        if isinstance(source, dict):
            source = source.get("id")
        if isinstance(source, str):
            history[source] = row
    return history


def _check_refunds(report: _Report, history: dict[str, dict[str, Any]] | None, *, since: dt.datetime) -> None:
    ledgered = dict(
        LedgerEntry.objects.filter(
            transaction__kind__in=(TxKind.ORDER_REFUND, TxKind.UNALLOCATED_REFUND), account__kind=Kind.PROCESSOR
        )
        .values("transaction__refund_id")
        .annotate(total=Sum("amount"))
        .values_list("transaction__refund_id", "total")
    )
    for refund in Refund.objects.filter(status=Refund.Status.SUCCEEDED).iterator():
        report.checked["refunds"] += 1
        subject = f"refund {refund.pk}"
        if ledgered.get(refund.pk) != -refund.amount:
            report.differ("refunds", subject, f"{refund.amount} refunded, {ledgered.get(refund.pk)} in the ledger")
        if history is None or refund.completed_at is None or refund.completed_at < since:
            continue
        at_stripe = history.get(refund.stripe_refund_id or "")
        if at_stripe is None:
            report.differ("refunds", subject, f"Stripe's balance history has no refund {refund.stripe_refund_id}")
        elif at_stripe.get("amount") != -refund.amount:
            report.differ("refunds", subject, f"{refund.amount} here, {-at_stripe['amount']} at Stripe")


def _check_payouts(report: _Report, history: dict[str, dict[str, Any]] | None, *, since: dt.datetime) -> None:
    sent = dict(
        LedgerEntry.objects.filter(transaction__kind=TxKind.PAYOUT_SENT, account__kind=Kind.PAYOUTS)
        .values_list("transaction__key")
        .annotate(total=Sum("amount"))
        .values_list("transaction__key", "total")
    )
    left = Q(status__in=(Payout.Status.SENT, Payout.Status.PAID)) | Q(
        status=Payout.Status.FAILED, sent_at__isnull=False
    )
    for payout in Payout.objects.filter(left).iterator():
        report.checked["payouts_sent"] += 1
        subject = f"payout {payout.pk}"
        if sent.get(f"payout:{payout.pk}:sent") != payout.amount:
            report.differ(
                "payouts", subject, f"{payout.amount} sent, {sent.get(f'payout:{payout.pk}:sent')} in the ledger"
            )
        if payout.method != Payout.Method.STRIPE or history is None or (payout.sent_at and payout.sent_at < since):
            continue
        at_stripe = history.get(payout.stripe_transfer_id or "")
        if at_stripe is None:
            report.differ("payouts", subject, f"Stripe's balance history has no transfer {payout.stripe_transfer_id}")
        elif at_stripe.get("amount") != -payout.amount:
            report.differ("payouts", subject, f"{payout.amount} here, {-at_stripe['amount']} at Stripe")
    # Every payout's transfer, read once (not a query per transfer in Stripe's history).
    transfers = set(Payout.objects.exclude(stripe_transfer_id=None).values_list("stripe_transfer_id", flat=True))
    for source, row in (history or {}).items():
        known = source in transfers
        if row.get("type") == "transfer" and not known:
            report.differ("payouts", f"transfer {source}", "at Stripe, but no payout here sent it")
    for account in LedgerAccount.objects.filter(kind=Kind.PAYOUTS):
        reserved = -ledger.ledger_balance(account=account)
        waiting = Payout.objects.filter(
            status__in=(Payout.Status.PENDING, Payout.Status.APPROVED), currency=account.currency
        ).aggregate(total=Sum("amount"))["total"]
        if reserved != int(waiting or 0):
            report.differ("payouts", account.code, f"holds {reserved}; the payouts not sent add up to {waiting or 0}")
