from __future__ import annotations

from django.urls import path, re_path

from rooms.consumers import NoRouteConsumer, RoomConsumer

websocket_urlpatterns = [
    path("ws/rooms/<int:room_id>/", RoomConsumer.as_asgi()),
    re_path(r"^ws/", NoRouteConsumer.as_asgi()),
]
