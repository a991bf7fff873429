from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db import models
from django.db.models import QuerySet
from django.http import HttpRequest

from liveshop.admin import ReadOnlyAdmin
from liveshop.errors import Conflict, ServiceError
from liveshop.models import User
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
    ModerationAction,
    Mute,
    Report,
    Room,
    RoomEvent,
    RoomItem,
    RoomModerator,
    RoomSequence,
    RoomStatsReport,
)
from rooms.services import moderation


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
            services.host_verify(host=host, actor=_staff(request))
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
            services.room_suspend(
                room=room, reason=f"Suspended by {request.user.get_username()} from the admin.", actor=_staff(request)
            )
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


# --- Moderation: every write goes through the moderation services --------------------------------
#
# So that an act in the admin is the same act as through the API: audited, and heard by
# the sockets (a ban closes them, a mute tells them). The forms run the services' checks in
# clean(), so a refusal (muting the host, a word listed already) shows on the form.


def _staff(request: HttpRequest) -> User:
    assert isinstance(request.user, User)
    return request.user


class ServiceCheckedForm(forms.ModelForm[Any]):
    """A form that asks the service's checks before the admin saves."""

    request: HttpRequest  # set per request by ServiceBackedAdmin.get_form

    def service_check(self, cleaned: dict[str, Any]) -> None:
        """Raise the service's ServiceError if the act would be refused."""

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        if not self.errors:
            try:
                self.service_check(cleaned)
            except ServiceError as exc:
                raise forms.ValidationError(exc.detail) from None
        return cleaned


class ServiceBackedAdmin(admin.ModelAdmin[Any]):
    """Rows are added and removed through services; never edited in place."""

    form = ServiceCheckedForm

    def get_form(self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any) -> Any:
        form = super().get_form(request, obj, change=change, **kwargs)
        # A new class per call (modelform_factory): the attribute belongs to this request.
        form.request = request  # type: ignore[attr-defined]
        return form

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> None:
        for obj in queryset:
            self.delete_model(request, obj)


@admin.register(Comment)
class CommentAdmin(admin.ModelAdmin[Comment]):
    list_display = ("id", "room", "user", "text", "created_at", "deleted_at")
    list_filter = ("deleted_at",)
    search_fields = ("text", "user__username", "user__display_name")
    list_select_related = ("room", "user")
    raw_id_fields = ("room", "user")
    readonly_fields = ("room", "user", "text", "created_at", "deleted_at")
    actions = ["remove_comments"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # Comments are removed (hidden, audited, `comment.deleted` sent), never erased.
        return False

    @admin.action(description="Remove the selected comments from their rooms")
    def remove_comments(self, request: HttpRequest, queryset: QuerySet[Comment]) -> None:
        removed = 0
        for comment in queryset.filter(deleted_at__isnull=True).select_related("user", "room"):
            services.comment_delete(actor=_staff(request), comment=comment, reason="Removed from the admin.")
            removed += 1
        self.message_user(request, f"Removed {removed} comment(s).", messages.SUCCESS)


class BannedWordForm(ServiceCheckedForm):
    class Meta:
        model = BannedWord
        fields = ["word"]

    def service_check(self, cleaned: dict[str, Any]) -> None:
        cleaned["word"] = moderation.banned_word_clean(word=cleaned["word"])


@admin.register(BannedWord)
class BannedWordAdmin(ServiceBackedAdmin):
    """Every web process applies a change to the next comment (rooms/banned_words.py)."""

    form = BannedWordForm
    list_display = ("word", "created_at", "updated_at")
    search_fields = ("word",)

    def save_model(self, request: HttpRequest, obj: BannedWord, form: Any, change: bool) -> None:
        created = services.banned_word_add(actor=_staff(request), word=form.cleaned_data["word"])
        obj.pk, obj.word = created.pk, created.word

    def delete_model(self, request: HttpRequest, obj: BannedWord) -> None:
        services.banned_word_remove(actor=_staff(request), banned_word=obj)


class RoomModeratorForm(ServiceCheckedForm):
    class Meta:
        model = RoomModerator
        fields = ["room", "user"]

    def service_check(self, cleaned: dict[str, Any]) -> None:
        moderation.room_moderator_check(room=cleaned["room"], user=cleaned["user"])


@admin.register(RoomModerator)
class RoomModeratorAdmin(ServiceBackedAdmin):
    form = RoomModeratorForm
    list_display = ("id", "room", "user", "created_at")
    search_fields = ("user__username", "room__title")
    raw_id_fields = ("room", "user")

    def save_model(self, request: HttpRequest, obj: RoomModerator, form: Any, change: bool) -> None:
        moderator, _ = services.room_moderator_add(actor=_staff(request), room=obj.room, user=obj.user)
        obj.pk = moderator.pk

    def delete_model(self, request: HttpRequest, obj: RoomModerator) -> None:
        services.room_moderator_remove(actor=_staff(request), room=obj.room, user=obj.user)


class MuteForm(ServiceCheckedForm):
    duration_s = forms.IntegerField(
        min_value=1, max_value=moderation.MUTE_MAX_S, initial=3600, help_text="Seconds from now."
    )

    class Meta:
        model = Mute
        fields = ["room", "user", "duration_s", "reason"]

    def service_check(self, cleaned: dict[str, Any]) -> None:
        moderation.moderation_target_check(
            actor=_staff(self.request), room=cleaned["room"], user=cleaned["user"], verb="mute"
        )


@admin.register(Mute)
class MuteAdmin(ServiceBackedAdmin):
    form = MuteForm
    list_display = ("id", "room", "user", "until", "reason", "created_by", "created_at")
    search_fields = ("user__username", "reason")
    raw_id_fields = ("room", "user", "created_by")

    def save_model(self, request: HttpRequest, obj: Mute, form: Any, change: bool) -> None:
        mute = services.room_mute(
            actor=_staff(request),
            room=obj.room,
            user=obj.user,
            duration_s=form.cleaned_data["duration_s"],
            reason=obj.reason,
        )
        obj.pk, obj.until = mute.pk, mute.until

    def delete_model(self, request: HttpRequest, obj: Mute) -> None:
        services.room_unmute(actor=_staff(request), room=obj.room, user=obj.user)


class BanForm(ServiceCheckedForm):
    class Meta:
        model = Ban
        fields = ["room", "user", "reason"]

    def service_check(self, cleaned: dict[str, Any]) -> None:
        moderation.moderation_target_check(
            actor=_staff(self.request), room=cleaned["room"], user=cleaned["user"], verb="ban"
        )


@admin.register(Ban)
class BanAdmin(ServiceBackedAdmin):
    """A ban added here closes the user's sockets to the room at once, as through the API."""

    form = BanForm
    list_display = ("id", "room", "user", "reason", "created_by", "created_at")
    search_fields = ("user__username", "reason")
    raw_id_fields = ("room", "user", "created_by")

    def save_model(self, request: HttpRequest, obj: Ban, form: Any, change: bool) -> None:
        ban, _ = services.room_ban(actor=_staff(request), room=obj.room, user=obj.user, reason=obj.reason)
        obj.pk = ban.pk

    def delete_model(self, request: HttpRequest, obj: Ban) -> None:
        services.room_unban(actor=_staff(request), room=obj.room, user=obj.user)


@admin.register(Report)
class ReportAdmin(admin.ModelAdmin[Report]):
    """The staff queue: open reports first; resolve them with the actions."""

    list_display = ("id", "status", "resolution", "room", "comment_text", "comment_author", "reporter", "reason")
    list_filter = ("status", "resolution")
    search_fields = ("reason", "comment__text", "comment__user__username", "reporter__username")
    list_select_related = ("room", "comment__user", "reporter")
    ordering = ("-status", "id")  # "open" sorts after "resolved": open first
    readonly_fields = (
        "comment",
        "room",
        "reporter",
        "reason",
        "status",
        "resolution",
        "resolved_by",
        "resolved_at",
        "created_at",
    )
    actions = ["dismiss", "delete_comment", "mute_author", "ban_author"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    @admin.display(description="comment")
    def comment_text(self, report: Report) -> str:
        return report.comment.text

    @admin.display(description="author")
    def comment_author(self, report: Report) -> str:
        return str(report.comment.user)

    def _resolve(self, request: HttpRequest, queryset: QuerySet[Report], resolution: str) -> None:
        done, refused = 0, []
        for report in queryset.filter(status=Report.Status.OPEN).order_by("id"):
            try:
                services.report_resolve(actor=_staff(request), report=report, resolution=resolution)
            except ServiceError as exc:
                # Resolved with an earlier report of the same comment, or refused (the author
                # is the host, say): the others go on.
                if not isinstance(exc, Conflict):
                    refused.append(f"report {report.pk}: {exc.detail}")
                continue
            done += 1
        self.message_user(request, f"Resolved {done} report(s) ({resolution}).", messages.SUCCESS)
        if refused:
            self.message_user(request, "Not resolved: " + "; ".join(refused), messages.WARNING)

    @admin.action(description="Dismiss the selected reports")
    def dismiss(self, request: HttpRequest, queryset: QuerySet[Report]) -> None:
        self._resolve(request, queryset, Report.Resolution.DISMISS)

    @admin.action(description="Remove the reported comments")
    def delete_comment(self, request: HttpRequest, queryset: QuerySet[Report]) -> None:
        self._resolve(request, queryset, Report.Resolution.DELETE_COMMENT)

    @admin.action(description="Mute the authors in the rooms for 24 hours")
    def mute_author(self, request: HttpRequest, queryset: QuerySet[Report]) -> None:
        self._resolve(request, queryset, Report.Resolution.MUTE)

    @admin.action(description="Ban the authors from the rooms")
    def ban_author(self, request: HttpRequest, queryset: QuerySet[Report]) -> None:
        self._resolve(request, queryset, Report.Resolution.BAN)


@admin.register(ModerationAction)
class ModerationActionAdmin(ReadOnlyAdmin):
    """The audit log: written by the moderation services only, never changed."""

    list_display = ("id", "created_at", "actor", "action", "target_user", "room", "comment_id", "reason")
    list_filter = ("action",)
    search_fields = ("reason", "actor__username", "target_user__username", "room__title")
    list_select_related = ("actor", "target_user", "room")
    date_hierarchy = "created_at"


@admin.register(RoomStatsReport)
class RoomStatsReportAdmin(ReadOnlyAdmin):
    """Audience figures of ended shows, written once by the stats task."""

    list_display = ("room", "views", "unique_viewers", "peak_viewers", "likes", "written_at")
    search_fields = ("room__title",)
    list_select_related = ("room",)


@admin.register(RoomSequence)
class RoomSequenceAdmin(ReadOnlyAdmin):
    """The embedded default's event log: written by the broadcast path only."""

    list_display = ("room_id", "last_seq")


@admin.register(RoomEvent)
class RoomEventAdmin(ReadOnlyAdmin):
    list_display = ("id", "room_id", "seq", "header", "created_at")
    list_filter = ("room_id",)


# --- Gifts and giveaways ---------------------------------------------------------------------


@admin.register(Gift)
class GiftAdmin(admin.ModelAdmin[Gift]):
    """The catalog: staff change prices and images, or retire a gift (inactive) once sent."""

    list_display = ("id", "name", "coins", "image_url", "position", "is_active")
    list_editable = ("coins", "position", "is_active")
    search_fields = ("name",)


@admin.register(GiftSend)
class GiftSendAdmin(ReadOnlyAdmin):
    """Gifts, giveaways, entries and winners move with coins, stock or a fair draw: the
    services change them, the admin only shows them."""

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
class GiveawayAdmin(ReadOnlyAdmin):
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
class GiveawayWinnerAdmin(ReadOnlyAdmin):
    list_display = ("id", "giveaway", "user", "rank", "status", "claim_deadline", "claimed_at", "forfeited_at")
    list_filter = ("status",)
    search_fields = ("user__username", "giveaway__title")
    list_select_related = ("giveaway", "user")


@admin.register(GiveawayEntry)
class GiveawayEntryAdmin(ReadOnlyAdmin):
    list_display = ("id", "giveaway", "user", "via", "entered_at", "eligible", "excluded_reason")
    list_filter = ("via", "eligible")
    search_fields = ("user__username",)
    list_select_related = ("giveaway", "user")
