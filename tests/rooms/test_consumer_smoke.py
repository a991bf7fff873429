from __future__ import annotations

import pytest

pytestmark = pytest.mark.django_db(transaction=True)


async def test_anonymous_gets_snapshot(ws, live_room, item):
    socket = await ws(f"/ws/rooms/{live_room.pk}/")
    frame = await socket.receive()
    print(frame)
    assert frame["type"] == "room.snapshot"
