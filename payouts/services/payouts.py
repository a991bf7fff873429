"""Payouts: built per payee and period by the beat, approved, then sent.

The money moves in the ledger at each step, each step a compare-and-set on the payout's
status in the transaction that posts it:

- **built** (`pending`): what the payee may be paid (PAYABLE) moves to PAYOUTS, under the
  PAYABLE row's lock, so a refund racing the build is either in it or after it.
- **sent**: first, refunds that came after the build and left PAYABLE owing are netted
  from the payout (PAYOUTS -> PAYABLE, `payout_netted`): a refunded fen is never sent.
  Then PAYOUTS -> PROCESSOR (a Stripe transfer, made after the commit with the payout's
  id as idempotency key) or -> BANK (staff made the bank transfer from the CSV).
- **failed**: the money came back (a transfer reversed, a bank transfer returned):
  PROCESSOR or BANK -> PAYABLE, owed to the payee again.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import logging
import zoneinfo
from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from liveshop.errors import Conflict
from liveshop.models import User
from orders import stripe_api
from orders.models import LedgerAccount, LedgerTransaction
from orders.services import ledger
from payouts.models import Payout, PayoutAccount
from payouts.services.payees import Payee

logger = logging.getLogger(__name__)

Kind = LedgerAccount.Kind
TxKind = LedgerTransaction.Kind
# A transfer not confirmed by its webhook this long after sending is created again (the
# same idempotency key: Stripe answers the first transfer).
RETRY_AFTER_S = 120

# --- Periods and building ------------------------------------------------------------------------


def period_last_ended(*, today: dt.date | None = None) -> tuple[dt.date, dt.date]:
    """The last whole period of PAYOUT_SCHEDULE before `today` (days in STATS_TIME_ZONE)."""
    if today is None:
        today = timezone.now().astimezone(zoneinfo.ZoneInfo(settings.STATS_TIME_ZONE)).date()
    end = today - timedelta(days=1)
    if settings.PAYOUT_SCHEDULE == "daily":
        return end, end
    if settings.PAYOUT_SCHEDULE == "weekly":
        end = today - timedelta(days=today.weekday() + 1)  # last Sunday
        return end - timedelta(days=6), end
    first_of_month = today.replace(day=1)
    end = first_of_month - timedelta(days=1)
    return end.replace(day=1), end


def payouts_build(*, today: dt.date | None = None) -> list[Payout]:
    """Build the last ended period's payout of every payee owed at least PAYOUT_MINIMUM_FEN.
    Run by the beat as often as it likes: each payee's payout is built once a period."""
    start, end = period_last_ended(today=today)
    owed = LedgerAccount.objects.filter(kind=Kind.PAYABLE, balance__lte=-settings.PAYOUT_MINIMUM_FEN)
    built = []
    for account_id in owed.order_by("pk").values_list("pk", flat=True):
        payout = payout_build(account_id=account_id, start=start, end=end)
        if payout is not None:
            built.append(payout)
    return built


def payout_build(*, account_id: int, start: dt.date, end: dt.date) -> Payout | None:
    """One payee's payout for the period: all its PAYABLE balance, taken under the row's
    lock. None if already built for the period or owed too little now."""
    try:
        with transaction.atomic():
            account = LedgerAccount.objects.select_for_update().get(pk=account_id)
            amount = -account.balance
            payee = Payee.of(account)
            if amount < settings.PAYOUT_MINIMUM_FEN:
                return None
            if Payout.objects.filter(currency=account.currency, period_end=end, **payee.fields).exists():
                return None
            auto = amount <= settings.PAYOUT_AUTO_APPROVE_FEN
            payout = Payout.objects.create(
                **payee.fields,
                amount=amount,
                built_amount=amount,
                currency=account.currency,
                period_start=start,
                period_end=end,
                status=Payout.Status.APPROVED if auto else Payout.Status.PENDING,
                approved_at=timezone.now() if auto else None,
            )
            ledger.ledger_post(
                key=f"payout:{payout.pk}",
                kind=TxKind.PAYOUT,
                postings=[
                    (account, amount),
                    (ledger.ledger_account(kind=Kind.PAYOUTS, currency=account.currency), -amount),
                ],
                memo=f"payout {payout.pk} for {start}..{end}",
            )
            if auto:
                _send_on_commit(payout.pk)
            return payout
    except IntegrityError:  # another build of the same period won the unique constraint
        return None


# --- Approval and sending ------------------------------------------------------------------------


def payout_approve(*, payout_id: int, by: User) -> Payout:
    with transaction.atomic():
        if (
            Payout.objects.filter(pk=payout_id, status=Payout.Status.PENDING).update(
                status=Payout.Status.APPROVED, approved_by=by, approved_at=timezone.now()
            )
            != 1
        ):
            raise Conflict("Only a pending payout can be approved.")
        _send_on_commit(payout_id)
    return Payout.objects.get(pk=payout_id)


def _send_on_commit(payout_id: int) -> None:
    from payouts.tasks import payout_send_task

    transaction.on_commit(lambda: payout_send_task.delay(payout_id), robust=True)


def _payee_account(payee: Payee) -> PayoutAccount | None:
    return PayoutAccount.objects.filter(**payee.fields).first()


def payout_send(*, payout_id: int) -> str:
    """Send an approved payout: by Stripe transfer to the payee's connected account if it
    can receive them, else it waits, approved, for staff's bank transfer (`method: bank`).
    Returns what happened."""
    with transaction.atomic():
        payout = Payout.objects.select_for_update().filter(pk=payout_id, status=Payout.Status.APPROVED).first()
        if payout is None or payout.method == Payout.Method.BANK:
            return "nothing to send"
        payee = Payee.of(payout)
        if _net_refunds(payout, payee) == 0:
            return "netted in full"
        account = _payee_account(payee)
        if account is None or not (account.stripe_account_id and account.transfers_enabled):
            Payout.objects.filter(pk=payout.pk).update(method=Payout.Method.BANK)
            return "waits for a bank transfer"
        _post_sent(payout, Kind.PROCESSOR, method=Payout.Method.STRIPE)
    return payout_transfer(payout_id=payout_id)


def _net_refunds(payout: Payout, payee: Payee) -> int:
    """Take back from the payout what the payee came to owe since it was built (refunds
    after release), under the PAYABLE row's lock; returns what is left to send. A payout
    netted in full is `paid` with amount 0: nothing leaves."""
    payable = LedgerAccount.objects.select_for_update().get(pk=payee.payable(payout.currency).pk)
    owes = max(0, min(payable.balance, payout.amount))
    if owes:
        ledger.ledger_post(
            key=f"payout:{payout.pk}:netted",
            kind=TxKind.PAYOUT_NETTED,
            postings=[(ledger.ledger_account(kind=Kind.PAYOUTS, currency=payout.currency), owes), (payable, -owes)],
            memo=f"refunds netted from payout {payout.pk}",
        )
        payout.amount -= owes
        Payout.objects.filter(pk=payout.pk).update(amount=payout.amount)
    if payout.amount == 0:
        Payout.objects.filter(pk=payout.pk).update(status=Payout.Status.PAID, paid_at=timezone.now())
    return payout.amount


def _post_sent(payout: Payout, out: LedgerAccount.Kind, *, method: Payout.Method) -> None:
    ledger.ledger_post(
        key=f"payout:{payout.pk}:sent",
        kind=TxKind.PAYOUT_SENT,
        postings=[
            (ledger.ledger_account(kind=Kind.PAYOUTS, currency=payout.currency), payout.amount),
            (ledger.ledger_account(kind=out, currency=payout.currency), -payout.amount),
        ],
        memo=f"payout {payout.pk} sent ({method})",
    )
    Payout.objects.filter(pk=payout.pk).update(status=Payout.Status.SENT, method=method, sent_at=timezone.now())


def payout_transfer(*, payout_id: int) -> str:
    """Create the Stripe transfer of a sent payout (no row lock across the call; the
    payout's id is the idempotency key, so a retry never sends twice)."""
    payout = Payout.objects.filter(pk=payout_id, status=Payout.Status.SENT, method=Payout.Method.STRIPE).first()
    if payout is None or payout.stripe_transfer_id:
        return "sent"
    account = _payee_account(Payee.of(payout))
    destination = account.stripe_account_id if account else None
    if not destination:  # the account was removed since the payout was sent
        payout_fail(payout_id=payout.pk, reason="the payee has no connected account any more")
        return "failed"
    try:
        transfer_id = stripe_api.transfer_create(
            payout_id=payout.pk, amount=payout.amount, currency=payout.currency, destination=destination
        )
    except stripe_api.StripeRequestRefused as exc:
        payout_fail(payout_id=payout.pk, reason=f"Stripe refused the transfer: {exc}")
        return "failed"
    except stripe_api.StripeError:
        logger.warning("Transfer of payout %s failed; the sweeper retries it", payout.pk, exc_info=True)
        return "to retry"
    Payout.objects.filter(pk=payout.pk, stripe_transfer_id=None).update(stripe_transfer_id=transfer_id)
    return "sent"


def payouts_send_lost(*, older_than_s: int = RETRY_AFTER_S) -> int:
    """The sweeper: approved payouts never sent (a lost task), transfers never created
    (Stripe was down)."""
    from payouts.tasks import payout_send_task

    cutoff = timezone.now() - timedelta(seconds=older_than_s)
    unsent = Payout.objects.filter(status=Payout.Status.APPROVED, approved_at__lt=cutoff).exclude(
        method=Payout.Method.BANK
    )
    untransferred = Payout.objects.filter(
        status=Payout.Status.SENT, method=Payout.Method.STRIPE, stripe_transfer_id=None, sent_at__lt=cutoff
    )
    ids = list(unsent.values_list("pk", flat=True)) + list(untransferred.values_list("pk", flat=True))
    for payout_id in ids:
        payout_send_task.delay(payout_id)
    return len(ids)


# --- Outcomes ------------------------------------------------------------------------------------


def payout_paid(*, payout_id: int) -> bool:
    """Stripe confirmed the transfer (or staff the bank's): sent -> paid, once."""
    return (
        Payout.objects.filter(pk=payout_id, status=Payout.Status.SENT).update(
            status=Payout.Status.PAID, paid_at=timezone.now()
        )
        == 1
    )


@transaction.atomic
def payout_fail(*, payout_id: int, reason: str) -> bool:
    """The money came back (or never left): owed to the payee again, once. A payout not
    sent yet fails with its reservation returned; a sent or paid one with the money."""
    payout = Payout.objects.select_for_update().filter(pk=payout_id).first()
    if payout is None or payout.status == Payout.Status.FAILED:
        return False
    payee = Payee.of(payout)
    currency = payout.currency
    source = Kind.PAYOUTS
    if payout.status in (Payout.Status.SENT, Payout.Status.PAID):
        source = Kind.PROCESSOR if payout.method == Payout.Method.STRIPE else Kind.BANK
    if payout.amount:
        ledger.ledger_post(
            key=f"payout:{payout.pk}:failed",
            kind=TxKind.PAYOUT_FAILED,
            postings=[
                (ledger.ledger_account(kind=source, currency=currency), payout.amount),
                (payee.payable(currency), -payout.amount),
            ],
            memo=f"payout {payout.pk} came back: {reason}"[:200],
        )
    Payout.objects.filter(pk=payout.pk).update(
        status=Payout.Status.FAILED, failed_at=timezone.now(), failure_reason=reason[:500]
    )
    return True


# --- Bank transfers (payees without a connected account) -----------------------------------------

BANK_CSV_COLUMNS = ("payout", "payee", "bank_name", "account_name", "account_number", "amount", "currency", "period")


def bank_export(*, payout_ids: list[int]) -> str:
    """The CSV staff give the bank: one line per approved bank payout (amounts in yuan
    with two decimals, as banks take them). Marks them exported; sending them is a
    separate step once the bank confirms (`bank_mark_sent`)."""
    from liveshop.csv_export import csv_cell

    payouts = list(
        Payout.objects.filter(pk__in=payout_ids, status=Payout.Status.APPROVED, method=Payout.Method.BANK)
        .select_related("shop", "user")
        .order_by("pk")
    )
    shops = [p.shop_id for p in payouts if p.shop_id is not None]
    users = [p.user_id for p in payouts if p.user_id is not None]
    accounts = {
        Payee.of(account): account
        for account in PayoutAccount.objects.filter(Q(shop_id__in=shops) | Q(user_id__in=users))
    }
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(BANK_CSV_COLUMNS)
    for payout in payouts:
        payee = Payee.of(payout)
        account = accounts.get(payee)
        name = payout.shop.name if payout.shop else payout.user.display_name if payout.user else ""
        writer.writerow(
            [
                payout.pk,
                csv_cell(name),
                csv_cell(account.bank_name if account else ""),
                csv_cell(account.bank_account_name if account else ""),
                csv_cell(account.bank_account_number if account else ""),
                f"{payout.amount // 100}.{payout.amount % 100:02d}",
                payout.currency.upper(),
                f"{payout.period_start}..{payout.period_end}",
            ]
        )
    Payout.objects.filter(pk__in=[p.pk for p in payouts]).update(exported_at=timezone.now())
    return "\ufeff" + out.getvalue()


def bank_mark_sent(*, payout_id: int) -> bool:
    """Staff made the bank transfer of an approved bank payout: the money left the bank."""
    with transaction.atomic():
        payout = (
            Payout.objects.select_for_update()
            .filter(pk=payout_id, status=Payout.Status.APPROVED, method=Payout.Method.BANK)
            .first()
        )
        if payout is None:
            return False
        if _net_refunds(payout, Payee.of(payout)) == 0:
            return True
        _post_sent(payout, Kind.BANK, method=Payout.Method.BANK)
        return True
