"""Red envelopes in the admin: shown, never edited (coins move only through the services)."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from envelopes.models import RedEnvelope, RedEnvelopeShare
from liveshop.admin import ReadOnlyAdmin


class RedEnvelopeShareInline(admin.TabularInline[RedEnvelopeShare, RedEnvelope]):
    model = RedEnvelopeShare
    extra = 0
    can_delete = False
    readonly_fields = ("index", "coins", "user", "grabbed_at")
    ordering = ("index",)

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(RedEnvelope)
class RedEnvelopeAdmin(ReadOnlyAdmin):
    list_display = (
        "id",
        "room",
        "sender",
        "coins",
        "shares",
        "remaining_shares",
        "status",
        "followers_only",
        "opens_at",
        "expires_at",
        "returned_coins",
    )
    list_filter = ("status", "followers_only")
    search_fields = ("room__title", "sender__username")
    list_select_related = ("room", "sender")
    inlines = (RedEnvelopeShareInline,)
