from __future__ import annotations

from django.urls import path

from streams import api, api_replay

urlpatterns = [
    path("streams/on-publish/", api.OnPublishView.as_view(), name="stream-on-publish"),
    path("streams/on-publish-done/", api.OnPublishDoneView.as_view(), name="stream-on-publish-done"),
    path("streams/on-record-done/", api.OnRecordDoneView.as_view(), name="stream-on-record-done"),
    path("rooms/<int:pk>/stream-key/", api.RoomStreamKeyView.as_view(), name="room-stream-key"),
    path("replays/", api_replay.ReplayListView.as_view(), name="replays"),
    path("rooms/<int:pk>/replay/", api_replay.RoomReplayView.as_view(), name="room-replay"),
    path("rooms/<int:pk>/replay/comments/", api_replay.RoomReplayCommentsView.as_view(), name="room-replay-comments"),
]
