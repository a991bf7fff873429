from __future__ import annotations

from django.contrib import admin

from liveshop.admin import ReadOnlyAdmin
from notifications.models import Notification, PushSubscription


@admin.register(Notification)
class NotificationAdmin(ReadOnlyAdmin):
    list_display = ("id", "user", "kind", "created_at", "read_at")
    list_filter = ("kind",)
    search_fields = ("user__username", "key")
    raw_id_fields = ("user",)


@admin.register(PushSubscription)
class PushSubscriptionAdmin(ReadOnlyAdmin):
    list_display = ("id", "user", "language", "failures", "created_at")
    search_fields = ("user__username",)
    raw_id_fields = ("user",)
