from __future__ import annotations

from django.urls import path

from rooms import api, api_gifts, api_moderation

urlpatterns = [
    path("hosts/", api.HostCreateView.as_view(), name="host-create"),
    path("hosts/<int:pk>/", api.HostDetailView.as_view(), name="host-detail"),
    path("hosts/<int:pk>/verify/", api.HostVerifyView.as_view(), name="host-verify"),
    path("hosts/<int:pk>/follow/", api.HostFollowView.as_view(), name="host-follow"),
    path("rooms/", api.RoomListCreateView.as_view(), name="room-list"),
    path("rooms/<int:pk>/", api.RoomDetailView.as_view(), name="room-detail"),
    path("rooms/<int:pk>/cover/", api.RoomCoverView.as_view(), name="room-cover"),
    path("rooms/<int:pk>/start/", api.RoomStartView.as_view(), name="room-start"),
    path("rooms/<int:pk>/end/", api.RoomEndView.as_view(), name="room-end"),
    path("rooms/<int:pk>/suspend/", api.RoomSuspendView.as_view(), name="room-suspend"),
    path("rooms/<int:pk>/ws-ticket/", api.RoomWsTicketView.as_view(), name="room-ws-ticket"),
    path("rooms/<int:pk>/comments/", api.RoomCommentsView.as_view(), name="room-comments"),
    path("rooms/<int:pk>/items/", api.RoomItemsView.as_view(), name="room-items"),
    path("rooms/<int:pk>/items/<int:item_id>/", api.RoomItemDetailView.as_view(), name="room-item-detail"),
    path("rooms/<int:pk>/items/<int:item_id>/feature/", api.RoomItemFeatureView.as_view(), name="room-item-feature"),
    path(
        "rooms/<int:pk>/items/<int:item_id>/flash-sale/",
        api.RoomItemFlashSaleView.as_view(),
        name="room-item-flash-sale",
    ),
    # Moderation
    path("rooms/<int:pk>/moderators/", api_moderation.RoomModeratorsView.as_view(), name="room-moderators"),
    path(
        "rooms/<int:pk>/moderators/<int:user_id>/",
        api_moderation.RoomModeratorDetailView.as_view(),
        name="room-moderator-detail",
    ),
    path("rooms/<int:pk>/mutes/", api_moderation.RoomMutesView.as_view(), name="room-mutes"),
    path("rooms/<int:pk>/mutes/<int:user_id>/", api_moderation.RoomMuteDetailView.as_view(), name="room-mute-detail"),
    path("rooms/<int:pk>/bans/", api_moderation.RoomBansView.as_view(), name="room-bans"),
    path("rooms/<int:pk>/bans/<int:user_id>/", api_moderation.RoomBanDetailView.as_view(), name="room-ban-detail"),
    path("comments/<int:pk>/", api_moderation.CommentDetailView.as_view(), name="comment-detail"),
    path("comments/<int:pk>/reports/", api_moderation.CommentReportsView.as_view(), name="comment-reports"),
    path("moderation/reports/", api_moderation.ReportQueueView.as_view(), name="moderation-reports"),
    path(
        "moderation/reports/<int:pk>/resolve/",
        api_moderation.ReportResolveView.as_view(),
        name="moderation-report-resolve",
    ),
    path("moderation/banned-words/", api_moderation.BannedWordsView.as_view(), name="moderation-banned-words"),
    path(
        "moderation/banned-words/<int:pk>/",
        api_moderation.BannedWordDetailView.as_view(),
        name="moderation-banned-word-detail",
    ),
    path("moderation/audit/", api_moderation.AuditLogView.as_view(), name="moderation-audit"),
    path("gifts/", api_gifts.GiftCatalogView.as_view(), name="gift-catalog"),
    path(
        "rooms/<int:pk>/gifts/leaderboard/",
        api_gifts.RoomGiftLeaderboardView.as_view(),
        name="room-gift-leaderboard",
    ),
    path("rooms/<int:pk>/giveaways/", api_gifts.RoomGiveawaysView.as_view(), name="room-giveaways"),
    path("giveaways/<int:pk>/", api_gifts.GiveawayDetailView.as_view(), name="giveaway-detail"),
    path("giveaways/<int:pk>/entries/", api_gifts.GiveawayEntriesView.as_view(), name="giveaway-entries"),
    path("giveaways/<int:pk>/cancel/", api_gifts.GiveawayCancelView.as_view(), name="giveaway-cancel"),
]
