from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.http import HttpRequest

from liveshop.models import IdempotencyRecord, User


class ReadOnlyAdmin(admin.ModelAdmin[Any]):
    """For rows only services write (money, the audit log, draws, the event log): staff see
    them; a change by hand would break what the services keep true (a balanced ledger)."""

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(User)
class UserAdmin(DjangoUserAdmin):
    list_display = ("username", "display_name", "district", "is_staff", "is_active", "date_joined")
    list_filter = ("is_staff", "is_superuser", "is_active", "district")
    search_fields = ("username", "display_name", "email", "district")
    fieldsets = (
        *(DjangoUserAdmin.fieldsets or ()),
        ("liveshop", {"fields": ("display_name", "district")}),
    )


@admin.register(IdempotencyRecord)
class IdempotencyRecordAdmin(admin.ModelAdmin[IdempotencyRecord]):
    list_display = ("user", "key", "scope", "response_status", "created_at", "completed_at")
    search_fields = ("key", "user__username")
    readonly_fields = [f.name for f in IdempotencyRecord._meta.fields]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: IdempotencyRecord | None = None) -> bool:
        return False
