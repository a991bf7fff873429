from __future__ import annotations

from typing import Any

import pytest

from liveshop.models import User
from rooms.models import Room, RoomModerator
from tests import factories

SECRET = "ingest-secret-for-tests"


@pytest.fixture(autouse=True)
def _ingest_settings(settings: Any) -> None:
    settings.INGEST_CALLBACK_SECRET = SECRET
    settings.RTMP_INGEST_URL = "rtmp://127.0.0.1:1935/live"
    settings.HLS_PUBLIC_URL = "http://127.0.0.1:8080/hls/"
    settings.RTMP_CONTROL_URL = ""


@pytest.fixture
def events(monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, str, dict[str, Any]]]:
    sent: list[tuple[int, str, dict[str, Any]]] = []
    monkeypatch.setattr("rooms.broadcast.room_publish", lambda room_id, kind, data: sent.append((room_id, kind, data)))
    return sent


@pytest.fixture
def moderator(room: Room) -> User:
    user = factories.UserFactory.create(username="mod")
    RoomModerator.objects.create(room=room, user=user)
    return user
