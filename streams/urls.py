from __future__ import annotations

from django.urls import path

from streams import api

urlpatterns = [
    path("streams/on-publish/", api.OnPublishView.as_view(), name="stream-on-publish"),
    path("streams/on-publish-done/", api.OnPublishDoneView.as_view(), name="stream-on-publish-done"),
    path("rooms/<int:pk>/stream-key/", api.RoomStreamKeyView.as_view(), name="room-stream-key"),
]
