"""Money out in the admin: staff approve payouts, export the bank transfers' CSV and
record what the bank did, and read the reconciliations. Amounts change only through
the services (payouts/services/payouts.py), never by editing a row."""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse

from liveshop.admin import ReadOnlyAdmin
from payouts.models import CoinCashOut, Payout, PayoutAccount, Reconciliation
from payouts.services import payouts


@admin.register(Payout)
class PayoutAdmin(ReadOnlyAdmin):
    list_display = (
        "id",
        "shop",
        "user",
        "amount",
        "built_amount",
        "currency",
        "status",
        "method",
        "period_start",
        "period_end",
        "approved_by",
        "exported_at",
        "sent_at",
        "paid_at",
    )
    list_filter = ("status", "method", "period_end")
    search_fields = ("shop__name", "user__username", "stripe_transfer_id")
    actions = ("approve", "export_for_bank", "mark_bank_sent", "mark_bank_paid", "mark_failed")

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # The actions need it; the form itself has every field read-only.
        return bool(request.user.is_staff)

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        return [field.name for field in Payout._meta.fields]

    def _each(self, request: HttpRequest, queryset: QuerySet[Payout], done: str, act: Any) -> None:
        count = sum(bool(act(payout)) for payout in queryset)
        skipped = queryset.count() - count
        self.message_user(request, f"{count} payouts {done}; {skipped} not in a state for it.", messages.INFO)

    @admin.action(description="Approve the selected pending payouts")
    def approve(self, request: HttpRequest, queryset: QuerySet[Payout]) -> None:
        def act(payout: Payout) -> bool:
            try:
                payouts.payout_approve(payout_id=payout.pk, by=request.user)  # type: ignore[arg-type]
            except payouts.Conflict:
                return False
            return True

        self._each(request, queryset, "approved", act)

    @admin.action(description="Export the selected bank payouts as CSV for the bank")
    def export_for_bank(self, request: HttpRequest, queryset: QuerySet[Payout]) -> HttpResponse:
        body = payouts.bank_export(payout_ids=list(queryset.values_list("pk", flat=True)))
        response = HttpResponse(body, content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = 'attachment; filename="liveshop-bank-payouts.csv"'
        return response

    @admin.action(description="Mark the selected bank payouts sent (the bank made the transfers)")
    def mark_bank_sent(self, request: HttpRequest, queryset: QuerySet[Payout]) -> None:
        self._each(request, queryset, "sent", lambda payout: payouts.bank_mark_sent(payout_id=payout.pk))

    @admin.action(description="Mark the selected bank payouts paid (the payee received them)")
    def mark_bank_paid(self, request: HttpRequest, queryset: QuerySet[Payout]) -> None:
        bank = queryset.filter(method=Payout.Method.BANK)
        self._each(request, bank, "paid", lambda payout: payouts.payout_paid(payout_id=payout.pk))

    @admin.action(description="Mark the selected payouts failed (the money came back)")
    def mark_failed(self, request: HttpRequest, queryset: QuerySet[Payout]) -> None:
        self._each(
            request,
            queryset,
            "failed",
            lambda payout: payouts.payout_fail(payout_id=payout.pk, reason="marked by staff"),
        )


@admin.register(PayoutAccount)
class PayoutAccountAdmin(admin.ModelAdmin[PayoutAccount]):
    list_display = ("id", "shop", "user", "stripe_account_id", "transfers_enabled", "bank_name", "attention")
    search_fields = ("shop__name", "user__username", "stripe_account_id")
    readonly_fields = ("shop", "user", "stripe_account_id", "transfers_enabled", "updated_at")


@admin.register(CoinCashOut)
class CoinCashOutAdmin(ReadOnlyAdmin):
    list_display = ("id", "user", "coins", "amount", "currency", "created_at")
    search_fields = ("user__username",)


@admin.register(Reconciliation)
class ReconciliationAdmin(ReadOnlyAdmin):
    list_display = ("id", "started_at", "finished_at", "is_clean", "difference_count")
    list_filter = ("is_clean",)
    readonly_fields = ("started_at", "finished_at", "is_clean", "checked", "differences")

    @admin.display(description="differences")
    def difference_count(self, obj: Reconciliation) -> int:
        return len(obj.differences)
