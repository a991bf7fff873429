"""Buying from a show's replay: the ended room's shelf sells at its price while the replay
is watchable (CONTRACT.md, "Replay"), never at a flash price, and not without a replay."""

from __future__ import annotations

import pytest

from orders.models import Order
from rooms import services as room_services
from rooms.models import Room, RoomItem
from streams.models import Replay
from tests import factories
from tests.helpers import assert_error
from tests.orders.conftest import SHIPPING

pytestmark = pytest.mark.django_db


@pytest.fixture
def tea(live_room: Room) -> RoomItem:
    return factories.RoomItemFactory.create(room=live_room, live_price=900)


def test_buying_from_a_replay_at_the_shelf_price_and_not_without_one(client_for, live_room, tea, viewer):
    room_services.flash_sale_start(item=tea, price=500, quantity=5, duration_s=600)
    room = room_services.room_end(room=live_room)  # its flash sale ends with it
    body = {"room": room.pk, "items": [{"item": tea.pk, "quantity": 2}], "shipping": SHIPPING}
    client = client_for(viewer)
    assert_error(client.post("/api/v1/orders/", body, format="json", HTTP_IDEMPOTENCY_KEY="r-0"), 409, "room_not_live")

    replay = Replay.objects.create(room=room, status=Replay.Status.READY, playlist="replays/1/x/index.m3u8")
    answer = client.post("/api/v1/orders/", body, format="json", HTTP_IDEMPOTENCY_KEY="r-1")
    assert answer.status_code == 201, answer.content
    assert answer.json()["total"] == 2 * 900  # the shelf's live price, not the flash price
    order = Order.objects.get(pk=answer.json()["id"])
    assert (order.room_id, order.items.get().flash_sale_id) == (room.pk, None)

    for status in (Replay.Status.PROCESSING, Replay.Status.FAILED, Replay.Status.EXPIRED):
        Replay.objects.filter(pk=replay.pk).update(status=status)
        again = client.post("/api/v1/orders/", body, format="json", HTTP_IDEMPOTENCY_KEY=f"r-{status}")
        assert_error(again, 409, "room_not_live")
    Replay.objects.filter(pk=replay.pk).update(status=Replay.Status.READY)
    Room.objects.filter(pk=room.pk).update(status=Room.Status.SUSPENDED)
    suspended = client.post("/api/v1/orders/", body, format="json", HTTP_IDEMPOTENCY_KEY="r-s")
    assert suspended.status_code in (404, 409), suspended.content
