from __future__ import annotations

from django.urls import path

from orders import api, api_wallet, stats_api

urlpatterns = [
    path("orders/", api.OrderListCreateView.as_view(), name="order-list"),
    path("orders/<int:pk>/", api.OrderDetailView.as_view(), name="order-detail"),
    path("orders/<int:pk>/cancel/", api.OrderCancelView.as_view(), name="order-cancel"),
    path("orders/<int:pk>/payment/", api.OrderPaymentView.as_view(), name="order-payment"),
    path("orders/<int:pk>/ship/", api.OrderShipView.as_view(), name="order-ship"),
    path("orders/<int:pk>/deliver/", api.OrderDeliverView.as_view(), name="order-deliver"),
    path("orders/<int:pk>/refund/", api.OrderRefundView.as_view(), name="order-refund"),
    path("orders/<int:pk>/refund-claim/", api.OrderRefundClaimView.as_view(), name="order-refund-claim"),
    path("shops/<int:pk>/orders/", api.ShopOrdersView.as_view(), name="shop-orders"),
    path("payments/stripe/webhook/", api.StripeWebhookView.as_view(), name="stripe-webhook"),
    # Statistics aggregate orders, so they are served here (orders may import rooms, not the reverse).
    path("rooms/<int:pk>/stats/", stats_api.RoomStatsView.as_view(), name="room-stats"),
    path("stats/districts/", stats_api.DistrictStatsView.as_view(), name="stats-districts"),
    path("wallet/", api_wallet.WalletView.as_view(), name="wallet"),
    path("wallets/grants/", api_wallet.WalletGrantView.as_view(), name="wallet-grants"),
    path("wallet/top-ups/", api_wallet.TopUpListCreateView.as_view(), name="top-up-list"),
    path("wallet/top-ups/<int:pk>/", api_wallet.TopUpDetailView.as_view(), name="top-up-detail"),
    path("rooms/<int:pk>/gifts/", api_wallet.RoomGiftSendView.as_view(), name="room-gift-send"),
    path("giveaways/<int:pk>/claim/", api_wallet.GiveawayClaimView.as_view(), name="giveaway-claim"),
]
