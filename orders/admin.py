"""Staff views of orders and money. Money rows are read-only here: they change only
through the services (settlement, refunds), so that the ledger stays balanced."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from liveshop.admin import ReadOnlyAdmin
from orders.models import (
    FlaggedPayment,
    LedgerAccount,
    LedgerEntry,
    LedgerTransaction,
    Order,
    OrderItem,
    Payment,
    PrizeClaim,
    Refund,
    RefundClaim,
    StripeEvent,
    TopUp,
)


class OrderItemInline(admin.TabularInline[OrderItem, Order]):
    model = OrderItem
    extra = 0
    can_delete = False
    readonly_fields = ("sku", "title", "quantity", "unit_price", "line_total", "flash_sale", "room_item")

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Order)
class OrderAdmin(ReadOnlyAdmin):
    list_display = ("number", "status", "buyer", "shop", "room", "total", "refunded_amount", "created_at", "paid_at")
    list_filter = ("status", "shop__district", "currency")
    search_fields = ("number", "buyer__username", "shop__name", "tracking")
    list_select_related = ("buyer", "shop", "room")
    date_hierarchy = "created_at"
    inlines = [OrderItemInline]

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return bool(request.user.is_staff)


@admin.register(OrderItem)
class OrderItemAdmin(ReadOnlyAdmin):
    list_display = ("id", "order", "title", "quantity", "unit_price", "line_total", "flash_sale")
    search_fields = ("order__number", "title")
    list_select_related = ("order",)


@admin.register(Payment)
class PaymentAdmin(ReadOnlyAdmin):
    list_display = ("payment_intent_id", "order", "status", "amount", "amount_received", "created_at")
    list_filter = ("status", "provider")
    search_fields = ("payment_intent_id", "order__number")


@admin.register(Refund)
class RefundAdmin(ReadOnlyAdmin):
    list_display = ("id", "order", "amount", "kind", "status", "stripe_refund_id", "created_at")
    list_filter = ("status", "kind")
    search_fields = ("order__number", "stripe_refund_id", "reason")


@admin.register(RefundClaim)
class RefundClaimAdmin(ReadOnlyAdmin):
    """Buyers asking for their money back: answered by a refund (the API's or staff's)."""

    list_display = ("order", "status", "created_at", "resolved_at")
    list_filter = ("status",)
    search_fields = ("order__number", "reason")


@admin.register(StripeEvent)
class StripeEventAdmin(ReadOnlyAdmin):
    list_display = ("event_id", "type", "received_at", "processed_at", "attempts", "outcome")
    list_filter = ("type",)
    search_fields = ("event_id", "outcome")


@admin.register(FlaggedPayment)
class FlaggedPaymentAdmin(ReadOnlyAdmin):
    """Payments whose amount or currency was not what was asked: refunded, never settled."""

    list_display = (
        "payment_intent_id",
        "order",
        "top_up",
        "expected_amount",
        "expected_currency",
        "received_amount",
        "received_currency",
        "refund_status",
        "created_at",
    )
    list_filter = ("refund_status", "received_currency")
    search_fields = ("payment_intent_id", "reason", "order__number")


@admin.register(LedgerAccount)
class LedgerAccountAdmin(ReadOnlyAdmin):
    list_display = ("code", "kind", "currency", "user", "shop", "balance")
    list_filter = ("kind", "currency")
    search_fields = ("code",)


class LedgerEntryInline(admin.TabularInline[LedgerEntry, LedgerTransaction]):
    model = LedgerEntry
    extra = 0
    can_delete = False
    readonly_fields = ("account", "amount", "currency")

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(LedgerTransaction)
class LedgerTransactionAdmin(ReadOnlyAdmin):
    list_display = ("key", "kind", "order", "refund", "created_at")
    list_filter = ("kind",)
    search_fields = ("key", "memo")
    inlines = [LedgerEntryInline]


@admin.register(LedgerEntry)
class LedgerEntryAdmin(ReadOnlyAdmin):
    list_display = ("id", "transaction", "account", "amount", "currency")
    list_filter = ("currency",)
    search_fields = ("transaction__key", "account__code")


@admin.register(TopUp)
class TopUpAdmin(ReadOnlyAdmin):
    list_display = ("id", "user", "coins", "amount", "currency", "status", "payment_intent_id", "created_at", "paid_at")
    list_filter = ("status",)
    search_fields = ("user__username", "payment_intent_id")
    list_select_related = ("user",)
    exclude = ("client_secret",)


@admin.register(PrizeClaim)
class PrizeClaimAdmin(ReadOnlyAdmin):
    list_display = ("id", "winner", "order", "created_at")
    list_select_related = ("winner", "order")
