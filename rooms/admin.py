from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.db import models
from django.db.models import QuerySet
from django.http import HttpRequest

from rooms import services
from rooms.models import (
    Ban,
    BannedWord,
    Comment,
    FlashSale,
    Follow,
    Gift,
    GiftSend,
    Giveaway,
    GiveawayEntry,
    GiveawayWinner,
    Host,
    Mute,
    Room,
    RoomEvent,
    RoomItem,
    RoomModerator,
    RoomSequence,
)


@admin.register(Host)
class HostAdmin(admin.ModelAdmin[Host]):
    list_display = ("id", "user", "kind", "district", "verified", "followers_count", "created_at")
    list_filter = ("verified", "kind", "district")
    search_fields = ("user__username", "user__display_name", "district", "bio")
    list_select_related = ("user",)
    raw_id_fields = ("user",)
    readonly_fields = ("verified_at", "followers_count", "created_at")
    actions = ["verify"]

    @admin.action(description="Verify the selected hosts")
    def verify(self, request: HttpRequest, queryset: QuerySet[Host]) -> None:
        for host in queryset:
            services.host_verify(host=host)
        self.message_user(request, f"Verified {queryset.count()} host(s).", messages.SUCCESS)


@admin.register(Follow)
class FollowAdmin(admin.ModelAdmin[Follow]):
    list_display = ("id", "user", "host", "created_at")
    raw_id_fields = ("user", "host")


class RoomItemInline(admin.TabularInline[RoomItem, Room]):
    model = RoomItem
    extra = 0
    raw_id_fields = ("sku",)


@admin.register(Room)
class RoomAdmin(admin.ModelAdmin[Room]):
    list_display = ("id", "title", "host", "status", "scheduled_start", "started_at", "ended_at")
    list_filter = ("status", "host__district", "host__kind")
    search_fields = ("title", "description", "host__user__username", "host__user__display_name")
    list_select_related = ("host__user",)
    raw_id_fields = ("host", "featured_item")
    readonly_fields = ("stream_key", "started_at", "ended_at", "suspended_at", "created_at")
    inlines = [RoomItemInline]
    formfield_overrides = {models.URLField: {"assume_scheme": "https"}}
    actions = ["suspend"]

    @admin.action(description="Suspend the selected rooms")
    def suspend(self, request: HttpRequest, queryset: QuerySet[Room]) -> None:
        suspended = 0
        for room in queryset.exclude(status=Room.Status.SUSPENDED):
            services.room_suspend(room=room, reason=f"Suspended by {request.user.get_username()} from the admin.")
            suspended += 1
        self.message_user(request, f"Suspended {suspended} room(s).", messages.SUCCESS)


@admin.register(FlashSale)
class FlashSaleAdmin(admin.ModelAdmin[FlashSale]):
    list_display = ("id", "item", "price", "quantity", "remaining", "status", "starts_at", "ends_at")
    list_filter = ("status",)
    raw_id_fields = ("item",)


@admin.register(RoomItem)
class RoomItemAdmin(admin.ModelAdmin[RoomItem]):
    list_display = ("id", "room", "sku", "live_price", "position")
    list_select_related = ("room", "sku__product")
    raw_id_fields = ("room", "sku")


@admin.register(Comment)
class CommentAdmin(admin.ModelAdmin[Comment]):
    list_display = ("id", "room", "user", "text", "created_at", "deleted_at")
    list_filter = ("deleted_at",)
    search_fields = ("text", "user__username", "user__display_name")
    list_select_related = ("room", "user")
    raw_id_fields = ("room", "user")
    readonly_fields = ("room", "user", "text", "created_at")


@admin.register(BannedWord)
class BannedWordAdmin(admin.ModelAdmin[BannedWord]):
    """Every web process applies a change to the next comment (rooms/banned_words.py)."""

    list_display = ("word", "created_at", "updated_at")
    search_fields = ("word",)


@admin.register(RoomModerator)
class RoomModeratorAdmin(admin.ModelAdmin[RoomModerator]):
    list_display = ("id", "room", "user", "created_at")
    search_fields = ("user__username", "room__title")
    raw_id_fields = ("room", "user")


@admin.register(Mute)
class MuteAdmin(admin.ModelAdmin[Mute]):
    list_display = ("id", "room", "user", "until", "reason", "created_by", "created_at")
    search_fields = ("user__username", "reason")
    raw_id_fields = ("room", "user", "created_by")


@admin.register(Ban)
class BanAdmin(admin.ModelAdmin[Ban]):
    list_display = ("id", "room", "user", "reason", "created_by", "created_at")
    search_fields = ("user__username", "reason")
    raw_id_fields = ("room", "user", "created_by")


class EventLogAdmin(admin.ModelAdmin[Any]):
    """The embedded default's event log: written by the broadcast path only."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(RoomSequence)
class RoomSequenceAdmin(EventLogAdmin):
    list_display = ("room_id", "last_seq")


@admin.register(RoomEvent)
class RoomEventAdmin(EventLogAdmin):
    list_display = ("id", "room_id", "seq", "header", "created_at")
    list_filter = ("room_id",)


# --- Gifts and giveaways ---------------------------------------------------------------------


@admin.register(Gift)
class GiftAdmin(admin.ModelAdmin[Gift]):
    """The catalog: staff change prices and images, or retire a gift (inactive) once sent."""

    list_display = ("id", "name", "coins", "image_url", "position", "is_active")
    list_editable = ("coins", "position", "is_active")
    search_fields = ("name",)


class WrittenByServicesAdmin(admin.ModelAdmin[Any]):
    """Rows that move with coins, stock or a fair draw: read-only here, changed by the services."""

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(GiftSend)
class GiftSendAdmin(WrittenByServicesAdmin):
    list_display = ("id", "room", "sender", "recipient", "gift", "quantity", "coins", "host_coins", "created_at")
    list_select_related = ("room", "sender", "recipient", "gift")
    search_fields = ("sender__username", "recipient__username")


class GiveawayWinnerInline(admin.TabularInline[GiveawayWinner, Giveaway]):
    model = GiveawayWinner
    extra = 0
    can_delete = False
    readonly_fields = ("user", "rank", "status", "claim_deadline", "claimed_at", "forfeited_at")

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Giveaway)
class GiveawayAdmin(WrittenByServicesAdmin):
    list_display = ("id", "room", "title", "status", "winners_count", "prize_sku", "closes_at", "drawn_at")
    list_filter = ("status",)
    search_fields = ("title", "room__title")
    list_select_related = ("room", "prize_sku")
    # Not the seed: staff must not see it before the draw either (revealed_seed shows it after).
    fields = (
        "room",
        "title",
        "prize_sku",
        "winners_count",
        "keyword",
        "followers_only",
        "min_account_age_s",
        "commitment",
        "revealed_seed",
        "status",
        "created_at",
        "closes_at",
        "drawn_at",
        "cancelled_at",
        "fulfilled_at",
    )
    readonly_fields = fields
    inlines = [GiveawayWinnerInline]

    @admin.display(description="seed")
    def revealed_seed(self, giveaway: Giveaway) -> str:
        return giveaway.seed if giveaway.is_drawn else "(secret until the draw)"


@admin.register(GiveawayWinner)
class GiveawayWinnerAdmin(WrittenByServicesAdmin):
    list_display = ("id", "giveaway", "user", "rank", "status", "claim_deadline", "claimed_at", "forfeited_at")
    list_filter = ("status",)
    search_fields = ("user__username", "giveaway__title")
    list_select_related = ("giveaway", "user")


@admin.register(GiveawayEntry)
class GiveawayEntryAdmin(WrittenByServicesAdmin):
    list_display = ("id", "giveaway", "user", "via", "entered_at", "eligible", "excluded_reason")
    list_filter = ("via", "eligible")
    search_fields = ("user__username",)
    list_select_related = ("giveaway", "user")
