from __future__ import annotations

from django.urls import path

from envelopes import api

urlpatterns = [
    path("rooms/<int:pk>/red-envelopes/", api.RoomRedEnvelopesView.as_view(), name="room-red-envelopes"),
    path("red-envelopes/<int:pk>/", api.RedEnvelopeDetailView.as_view(), name="red-envelope-detail"),
    path("red-envelopes/<int:pk>/grab/", api.RedEnvelopeGrabView.as_view(), name="red-envelope-grab"),
]
