from __future__ import annotations

from django.urls import path

from notifications import api

urlpatterns = [
    path("notifications/", api.NotificationListView.as_view(), name="notification-list"),
    path("notifications/unread/", api.NotificationUnreadView.as_view(), name="notification-unread"),
    path("notifications/read/", api.NotificationReadView.as_view(), name="notification-read"),
    path("notifications/ws-ticket/", api.UserSocketTicketView.as_view(), name="notification-ws-ticket"),
    path("notifications/push/", api.PushConfigView.as_view(), name="notification-push"),
    path(
        "notifications/push/subscriptions/", api.PushSubscriptionView.as_view(), name="notification-push-subscriptions"
    ),
]
