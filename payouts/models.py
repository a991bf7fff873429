"""Money out: where each payee is paid, the payouts, hosts' coin cash-outs, and the
reconciliations (CONTRACT.md, "Money out"; payouts/services/).

A payee is a shop (its seller's share of every sale) or a host's user (commissions on
others' goods sold in its rooms, and its gift coins cashed out). What each is owed lives
in the ledger (orders.models.LedgerAccount): SELLER or HOST_COMMISSION while pending,
PAYABLE once it may be paid out. These tables only say what was done with it.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q

from catalog.models import Shop

# Exactly one of `shop` and `user` names the payee.
_ONE_PAYEE = (Q(shop__isnull=False) & Q(user__isnull=True)) | (Q(shop__isnull=True) & Q(user__isnull=False))


class PayoutAccount(models.Model):
    """Where a payee's money goes: its Stripe connected account once onboarded, or
    otherwise the bank account staff pay by transfer."""

    shop = models.OneToOneField(Shop, null=True, blank=True, on_delete=models.CASCADE, related_name="payout_account")
    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.CASCADE, related_name="payout_account"
    )
    stripe_account_id = models.CharField(max_length=255, unique=True, null=True, blank=True)
    # Stripe's word that transfers may go to the account (refreshed when onboarding returns).
    transfers_enabled = models.BooleanField(default=False)
    # The connected account's own payout to its bank failed (payout.failed): staff look.
    attention = models.CharField(max_length=300, blank=True)
    bank_name = models.CharField(max_length=100, blank=True)
    bank_account_name = models.CharField(max_length=100, blank=True)
    bank_account_number = models.CharField(max_length=64, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.CheckConstraint(condition=_ONE_PAYEE, name="payout_account_one_payee")]

    def __str__(self) -> str:
        return f"payout account of {'shop ' + str(self.shop_id) if self.shop_id else 'user ' + str(self.user_id)}"


class Payout(models.Model):
    """One payment to one payee for one period: built by the beat, approved (by staff, or
    automatically up to PAYOUT_AUTO_APPROVE_FEN), then sent by a Stripe transfer or, for a
    payee without a connected account, by a bank transfer staff make from a CSV."""

    class Status(models.TextChoices):
        PENDING = "pending"  # built; waits for approval
        APPROVED = "approved"  # to be sent (a bank payout waits for staff's transfer)
        SENT = "sent"  # the money left: a transfer created, or the bank transfer made
        PAID = "paid"  # Stripe confirmed the transfer (or staff the bank's)
        FAILED = "failed"  # it came back: owed to the payee again

    class Method(models.TextChoices):
        STRIPE = "stripe"
        BANK = "bank"

    shop = models.ForeignKey(Shop, null=True, blank=True, on_delete=models.PROTECT, related_name="payouts")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="payouts"
    )
    amount = models.BigIntegerField(help_text="Minor units; less than built if refunds were netted before sending.")
    built_amount = models.BigIntegerField()
    currency = models.CharField(max_length=3)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    method = models.CharField(max_length=10, choices=Method.choices, blank=True)
    period_start = models.DateField()
    period_end = models.DateField(help_text="Inclusive.")
    stripe_transfer_id = models.CharField(max_length=255, unique=True, null=True, blank=True)
    failure_reason = models.CharField(max_length=500, blank=True)
    approved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    approved_at = models.DateTimeField(null=True, blank=True)
    exported_at = models.DateTimeField(null=True, blank=True, help_text="Put in a CSV for the bank.")
    sent_at = models.DateTimeField(null=True, blank=True)
    paid_at = models.DateTimeField(null=True, blank=True)
    failed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]
        constraints = [
            models.CheckConstraint(condition=_ONE_PAYEE, name="payout_one_payee"),
            models.CheckConstraint(
                condition=Q(amount__gte=0) & Q(amount__lte=models.F("built_amount")), name="payout_amount_in_range"
            ),
            # Two beat runs (or two beat processes) build each payout once.
            models.UniqueConstraint(
                fields=["shop", "currency", "period_end"], condition=Q(shop__isnull=False), name="payout_shop_period"
            ),
            models.UniqueConstraint(
                fields=["user", "currency", "period_end"], condition=Q(user__isnull=False), name="payout_user_period"
            ),
        ]
        indexes = [models.Index(fields=["status", "id"])]

    def __str__(self) -> str:
        return f"payout {self.pk}: {self.amount} {self.currency} ({self.status})"


class CoinCashOut(models.Model):
    """A host's earned gift coins bought back at COIN_CASHOUT_FEN each, into its payable balance."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="coin_cash_outs")
    coins = models.PositiveIntegerField()
    amount = models.BigIntegerField()
    currency = models.CharField(max_length=3)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-id"]

    def __str__(self) -> str:
        return f"cash-out {self.pk}: {self.coins} coins for {self.amount} {self.currency}"


class Reconciliation(models.Model):
    """One run of the reconciliation (payouts/reconcile.py): what was checked and every
    difference found. Differences are reported, never corrected here."""

    started_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    is_clean = models.BooleanField(default=False)
    checked = models.JSONField(default=dict, help_text="How many of each thing were checked.")
    differences = models.JSONField(default=list, help_text="[{check, subject, detail}]")

    class Meta:
        ordering = ["-id"]

    def __str__(self) -> str:
        return f"reconciliation {self.pk}: {'clean' if self.is_clean else f'{len(self.differences)} differences'}"
