"""A scripted show gives exact statistics, and the same figures once it ended and Redis lost
its counters.

Everything real: sockets through the ASGI app (the consumer, the hub, the Redis counters),
orders over the API, paid with the `stripe` SDK at localstripe and settled from signed
webhooks, refunds through the API, the room ended over the API (the stats task runs eagerly
at the commit), then this run's Redis keys deleted (its own prefix only).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest
import redis
from channels.db import database_sync_to_async as sync_to_async
from django.conf import settings

from orders.models import Order
from rooms import services
from rooms.broadcast import room_counters
from rooms.models import Room, RoomStatsReport
from rooms.services import giveaway_draw
from tests import coins
from tests.orders.conftest import deliver, order_body, place, succeeded_event
from tests.rooms.conftest import _fresh_backend, hub_stopper, ws  # noqa: F401 - the WebSocket fixtures

pytestmark = pytest.mark.django_db(transaction=True)


async def open_as(open_socket: Any, user: Any, room: Room) -> Any:
    ticket = (await sync_to_async(services.ws_ticket_issue)(user=user, room=room))[0]
    socket = await open_socket(f"/ws/rooms/{room.pk}/?ticket={ticket}")
    assert (await socket.next_event())["type"] == "room.snapshot"
    return socket


async def counters_reach(room: Room, ready: Callable[[Any], bool], timeout: float = 8) -> None:
    """Wait for the hub's heartbeat (presence is reported once a second)."""
    async with asyncio.timeout(timeout):
        while not ready(await sync_to_async(room_counters)(room.pk)):
            await asyncio.sleep(0.1)


async def comment(socket: Any, text: str) -> int:
    await socket.send({"type": "comment.send", "text": text, "nonce": text})
    return int((await socket.receive_type("comment.ack"))["data"]["id"])


async def test_scripted_show(
    ws,  # noqa: F811 - the fixture imported above
    client_for,
    live_room,
    shelf_item,
    host,
    viewer,
    buyer,
    other_buyer,
    realtime_prefix,
):
    # The audience: three sockets, then one leaves and its user comes back (a reload).
    first = await open_as(ws, viewer, live_room)
    second = await open_as(ws, buyer, live_room)
    anonymous = await ws(f"/ws/rooms/{live_room.pk}/?device=phone-1")
    assert (await anonymous.next_event())["type"] == "room.snapshot"
    await counters_reach(live_room, lambda c: c.now == 3)
    await first.disconnect()
    again = await open_as(ws, viewer, live_room)

    await comment(again, "hello from Yuzhong")
    await comment(second, "how much for 5 kg?")
    spam = await comment(again, "cheap followers here")
    await second.send({"type": "like.send", "count": 7})
    await again.send({"type": "like.send", "count": 5})
    await counters_reach(live_room, lambda c: c.likes == 12 and c.now == 3)

    def sell() -> None:
        # A moderator removes the spam: it no longer counts.
        assert client_for(host).delete(f"/api/v1/comments/{spam}/").status_code == 204

        def paid(buyer_user: Any, quantity: int) -> Order:
            response = place(client_for(buyer_user), order_body({"item": shelf_item.pk, "quantity": quantity}))
            assert response.status_code == 201, response.content
            order = Order.objects.get(pk=response.json()["id"])
            assert deliver(client_for(None), succeeded_event(order)).status_code == 200
            return order

        paid(viewer, 2)  # 2 x 5800 = 11,600
        partly = paid(buyer, 1)  # 5,800, 2,000 of it refunded
        refunded = paid(other_buyer, 1)  # 5,800, all refunded: not a sale
        seller = client_for(host)
        for order, body in ((partly, {"amount": 2000, "reason": "bruised"}), (refunded, {"reason": "lost"})):
            assert seller.post(f"/api/v1/orders/{order.pk}/refund/", body, format="json").status_code == 200
        unpaid = place(client_for(buyer), order_body({"item": shelf_item.pk, "quantity": 3}))  # 17,400 pending
        assert unpaid.status_code == 201
        assert set(Order.objects.values_list("status", flat=True)) == {"paid", "refunded", "pending_payment"}

        # Gifts: 2 hotpots (99 coins each) from the viewer, 1 from the buyer: 297 coins.
        hotpot = coins.gift("Chongqing hotpot")
        for sender, quantity in ((viewer, 2), (buyer, 1)):
            coins.grant(sender, 500)
            response = client_for(sender).post(
                f"/api/v1/rooms/{live_room.pk}/gifts/",
                {"gift": hotpot.pk, "quantity": quantity},
                format="json",
                HTTP_IDEMPOTENCY_KEY=f"gift-{sender.pk}",
            )
            assert response.status_code == 201, response.content
        # A giveaway's prize ships as a zero-total paid order: it is not a sale.
        prize = coins.giveaway(live_room, winners=1, prize_sku=shelf_item.sku)
        assert client_for(other_buyer).post(f"/api/v1/giveaways/{prize.pk}/entries/").status_code == 201
        coins.close(prize)
        giveaway_draw(giveaway_id=prize.pk)
        claim = client_for(other_buyer).post(
            f"/api/v1/giveaways/{prize.pk}/claim/", {"shipping": coins.SHIPPING}, format="json"
        )
        assert claim.status_code == 201, claim.content
        assert claim.json()["total"] == 0

    await sync_to_async(sell)()

    def stats() -> dict[str, Any]:
        response = client_for(host).get(f"/api/v1/rooms/{live_room.pk}/stats/")
        assert response.status_code == 200
        return response.json()

    live = await sync_to_async(stats)()
    assert live == {
        "viewers_now": 3,
        "peak_viewers": 3,
        "views": 4,
        "unique_viewers": 3,  # the viewer twice, the buyer, one anonymous device
        "likes": 12,
        "comments": 2,
        "orders": 2,
        "items_sold": 3,
        "gmv": 11600 + 5800 - 2000,
        "gmv_pending": 17400,
        "refunds": 2000 + 5800,
        "gift_coins": 3 * 99,
        "currency": "cny",
        "final": False,
    }

    # The show ends: the task writes the durable report from the figures at the end.
    ended = await sync_to_async(lambda: client_for(host).post(f"/api/v1/rooms/{live_room.pk}/end/"))()
    assert ended.status_code == 200
    assert await second.closed_with() == 1000
    report = await sync_to_async(RoomStatsReport.objects.get)(room=live_room)
    assert (report.views, report.unique_viewers, report.peak_viewers, report.likes) == (4, 3, 3, 12)

    # Redis loses everything of this run (its own prefix only), as after a flush.
    client = redis.Redis.from_url(settings.REDIS_URL)
    deleted = sum(client.unlink(key) for key in client.scan_iter(match=f"{realtime_prefix}:*", count=1000))
    client.close()
    assert deleted > 0
    assert (await sync_to_async(room_counters)(live_room.pk)).views == 0

    after = await sync_to_async(stats)()
    assert after == {**live, "viewers_now": 0, "final": True}
