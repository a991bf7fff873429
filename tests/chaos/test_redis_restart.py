"""Redis restarted in the middle of a show.

A private redis-server (never the shared one) carries everything Redis carries here:
the room fanout, seqs, history, presence and counters, tickets, the cache and the Celery
broker. Two uvicorn nodes, a real Celery worker and localstripe run the show; clients
with sockets on both nodes comment and watch; orders are placed and paid. Then Redis
dies (SIGKILL) and comes back empty on the same port.

What must hold:
- while it is down, API calls that need it answer 503 with Retry-After in the contract's
  error shape, quickly (no 500, no hang); a comment over an open socket is answered
  `error` `unavailable` (not acked); a socket that tries to join is closed with 1013;
  whatever was acknowledged (2xx order, 200 webhook, comment.ack) is kept;
- after it is back, the sockets reconnect by themselves and resync with a fresh snapshot
  (their `since` points into a history Redis lost); seqs never go backwards or repeat;
  the hub resubscribes by itself and new events reach every socket; the payment
  webhook accepted during the outage still settles (the outbox sweeper re-enqueues the
  message the broker lost); presence recovers.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from datetime import timedelta
from typing import Any

import pytest
from channels.db import database_sync_to_async
from django.utils import timezone
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from liveshop.redis_client import redis_sync
from orders.models import Order, StripeEvent
from orders.services.ledger import ledger_check
from rooms.broadcast import room_counters, room_publish
from rooms.models import Comment, Room, RoomItem
from rooms.realtime.backend import reset_backend
from rooms.services import stats
from tests import factories
from tests.chaos.nodes_support import (
    PrivateRedis,
    RoomClient,
    celery_worker,
    check_client,
    http_call,
    node_env,
    private_redis,
    room_history,
    start_nodes,
    wait_until,
)
from tests.factories import api_token
from tests.orders.conftest import SHIPPING, WEBHOOK_SECRET, signed, succeeded_event
from tests.servers import BASE_DIR, Server, localstripe

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def stack(realtime_prefix: str, tmp_path, settings) -> Any:
    """Private Redis, localstripe, two nodes and a worker; the test process uses that Redis too."""
    with private_redis(tmp_path) as redis_server, localstripe() as stripe_url:
        env = node_env(
            redis_url=redis_server.url,
            prefix=realtime_prefix,
            STRIPE_SECRET_KEY="sk_test_chaos",
            STRIPE_API_BASE=stripe_url,
            STRIPE_WEBHOOK_SECRET=WEBHOOK_SECRET,
            LIVESHOP_VAR_DIR=str(tmp_path),
            CELERY_TASK_LOG_LEVEL="INFO",
        )
        settings.REDIS_URL = redis_server.url
        settings.STRIPE_SECRET_KEY = env["STRIPE_SECRET_KEY"]
        settings.STRIPE_API_BASE = stripe_url
        settings.STRIPE_WEBHOOK_SECRET = WEBHOOK_SECRET
        reset_backend()
        redis_sync.cache_clear()
        nodes = start_nodes(2, env, tmp_path)
        try:
            with celery_worker(env, tmp_path / "worker.log"):
                yield redis_server, nodes, env, tmp_path
        finally:
            for node in nodes:
                node.stop()
            reset_backend()
            redis_sync.cache_clear()


def cast(room: Room) -> dict[str, Any]:
    product = factories.ProductFactory.create(shop__owner=room.host.user, title="Fuling pickled mustard")
    item = RoomItem.objects.create(
        room=room, sku=factories.SkuFactory.create(product=product, price=1200, stock=50), position=1
    )
    fans = [factories.UserFactory.create(username=f"fan{i}", display_name=f"Fan {i}") for i in range(2)]
    buyer = factories.UserFactory.create(username="buyer", display_name="Zhang Wei")
    return {
        "item": item.pk,
        "host": api_token(room.host.user),
        "fans": [api_token(fan) for fan in fans],
        "buyer": api_token(buyer),
    }


def place_order(node: Server, room_id: int, item_id: int, token: str, key: str) -> Any:
    body = {"room": room_id, "items": [{"item": item_id, "quantity": 1}], "shipping": SHIPPING}
    return http_call("POST", f"{node.http}/api/v1/orders/", token=token, body=body, headers={"Idempotency-Key": key})


def pay(node: Server, order_id: int) -> Any:
    """The buyer pays at localstripe; the signed webhook goes to the node as Stripe sends it."""
    event = succeeded_event(Order.objects.get(pk=order_id))
    payload = json.dumps(event).encode()
    return http_call(
        "POST",
        f"{node.http}/api/v1/payments/stripe/webhook/",
        body=payload,
        headers={"Stripe-Signature": signed(payload)},
    )


def order_status(order_id: int) -> str:
    return Order.objects.get(pk=order_id).status


async def comment_round(clients: list[RoomClient], tag: str) -> None:
    for client in clients:
        await client.send({"type": "comment.send", "text": f"{client.name} {tag}", "nonce": f"{client.name}-{tag}"})


async def test_redis_restarted_mid_show(stack: Any, live_room: Room) -> None:
    redis_server: PrivateRedis = stack[0]
    nodes: list[Server] = stack[1]
    env: dict[str, str] = stack[2]
    room_id = live_room.pk
    ids = await database_sync_to_async(cast)(live_room)

    host = RoomClient("host", room_id, nodes, home=0, token=ids["host"])
    fans = [RoomClient(f"fan{i}", room_id, nodes, home=i % 2, token=t) for i, t in enumerate(ids["fans"])]
    watchers = [RoomClient(f"anon{i}", room_id, nodes, home=i % 2) for i in range(2)]
    clients = [host, *fans, *watchers]
    for client in clients:
        client.start()
    for client in clients:
        await client.connected()

    # --- Before: a show as usual, an order paid end to end ------------------------------------
    for i in range(5):
        await database_sync_to_async(room_publish)(room_id, "order.placed", {"n": f"before-{i}"})
        await comment_round(fans, f"before-{i}")
        await asyncio.sleep(0.05)
    paid_before = await asyncio.to_thread(place_order, nodes[0], room_id, ids["item"], ids["buyer"], "before")
    assert paid_before.status == 201
    assert (await database_sync_to_async(pay)(nodes[1], paid_before.body["id"])).status == 200
    await wait_until(lambda: _is_paid(paid_before.body["id"]), timeout=30, what="the first order paid")
    before = await room_history(room_id)
    last_before = max(before)
    await wait_until(lambda: all((c.last_seq or 0) >= last_before for c in clients), timeout=10, what="caught up")
    pending = await asyncio.to_thread(place_order, nodes[1], room_id, ids["item"], ids["buyer"], "pending")
    assert pending.status == 201
    # Likes, then the counters' copy into PostgreSQL that beat makes every few seconds.
    for fan in fans:
        assert await fan.send({"type": "like.send", "count": 10})
    await wait_until(lambda: _likes_are(room_id, 10 * len(fans)), timeout=10, what="the likes counted")
    counted = await database_sync_to_async(room_counters)(room_id)
    assert await database_sync_to_async(stats.room_counters_checkpoint)() == 1

    # --- Redis dies ----------------------------------------------------------------------------
    run_id = redis_server.client().info("server")["run_id"]
    redis_server.stop()
    down_at = time.monotonic()
    # Reads and writes that need Redis: a clean 503 with Retry-After, fast.
    refused = [
        await asyncio.to_thread(http_call, "GET", f"{nodes[0].http}/api/v1/rooms/{room_id}/"),
        await asyncio.to_thread(
            http_call, "POST", f"{nodes[1].http}/api/v1/rooms/{room_id}/ws-ticket/", token=ids["fans"][0]
        ),
    ]
    for answer in refused:
        assert answer.status == 503, answer
        assert answer.body["code"] == "unavailable"
        assert set(answer.body) == {"code", "detail", "retry_after"}
        assert int(answer.headers["retry-after"]) == answer.body["retry_after"] >= 1
        assert answer.seconds < 5
    ready = await asyncio.to_thread(http_call, "GET", f"{nodes[0].http}/readyz")
    assert ready.status == 503
    # A new socket cannot join now: closed with 1013 (try again later), not 1011.
    async with connect(f"{nodes[1].ws}/ws/rooms/{room_id}/") as newcomer:
        with pytest.raises(ConnectionClosed) as closed:
            await newcomer.recv()
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == 1013
    # A comment sent over an open socket meanwhile: refused as `unavailable`, not acked.
    assert await fans[0].send({"type": "comment.send", "text": "still there?", "nonce": "outage"})
    await wait_until(lambda: _reply_to(fans[0], "outage") is not None, timeout=10, what="the comment answered")
    assert _reply_to(fans[0], "outage") == {"type": "error", "code": "unavailable"}
    # The buyer pays the pending order now: Stripe's webhook reaches a node while Redis
    # (the broker too) is down. Accepted (200) means stored: it must settle later.
    webhook = await database_sync_to_async(pay)(nodes[0], pending.body["id"])
    assert webhook.status == 200, webhook
    # An order placed during the outage: refused cleanly, or accepted and then kept.
    during = await asyncio.to_thread(place_order, nodes[0], room_id, ids["item"], ids["buyer"], "during")
    assert during.status in (201, 503), during
    await asyncio.sleep(1)

    # --- Redis comes back, empty ---------------------------------------------------------------
    redis_server.start()
    back_at = time.monotonic()
    assert redis_server.client().info("server")["run_id"] != run_id  # a new, empty Redis (it saves nothing)
    assert (await asyncio.to_thread(http_call, "GET", f"{nodes[0].http}/readyz")).status == 200

    # Every socket resyncs by itself: a new connection that starts with a fresh snapshot
    # numbered at or above everything it had (the history it could resume from is gone).
    def resynced(client: RoomClient) -> bool:
        return len(client.snapshots) >= 2 and client.snapshots[-1]["seq"] >= last_before and client.ws is not None

    resync_s = await wait_until(lambda: all(resynced(c) for c in clients), timeout=20, what="every socket resynced")
    for client in clients:
        reconnects = [c for c in client.connects if c.opened_at > down_at]
        assert reconnects, client.name
        assert reconnects[-1].since is not None  # it asked to resume: the history was gone, so a snapshot
        assert reconnects[-1].since >= last_before
        assert client.snapshots[-1]["seq"] > last_before  # a seq above the old ones, not 0 or 1

    # The payment accepted during the outage: its broker message was lost with Redis. A
    # minute later the outbox sweeper (beat, every 30 s) enqueues it again; here the
    # minute passes at once and the sweeper runs as beat would send it, on the worker.
    # (Any later settlement would take it along in its batch: check before there is one.)
    assert not await _is_paid(pending.body["id"])
    await database_sync_to_async(_a_minute_passes)()
    celery_call = [sys.executable, "-m", "celery", "-A", "liveshop", "call", "orders.tasks.stripe_events_requeue_task"]
    await asyncio.to_thread(
        subprocess.run, celery_call, cwd=BASE_DIR, env=_with(env), check=True, capture_output=True, timeout=60
    )
    await wait_until(lambda: _is_paid(pending.body["id"]), timeout=30, what="the payment made during the outage")

    # New events flow: from another process, comments over the sockets, a new paid order.
    for i in range(5):
        await database_sync_to_async(room_publish)(room_id, "order.placed", {"n": f"after-{i}"})
        await comment_round(fans, f"after-{i}")
        await asyncio.sleep(0.05)
    paid_after = await asyncio.to_thread(place_order, nodes[1], room_id, ids["item"], ids["buyer"], "after")
    assert paid_after.status == 201
    assert (await database_sync_to_async(pay)(nodes[0], paid_after.body["id"])).status == 200
    await wait_until(lambda: _is_paid(paid_after.body["id"]), timeout=30, what="the order placed after, paid")
    accepted = [paid_before, pending, paid_after]
    if during.status == 201:  # the order accepted during the outage is kept, and can be paid
        assert (await database_sync_to_async(pay)(nodes[1], during.body["id"])).status == 200
        await wait_until(lambda: _is_paid(during.body["id"]), timeout=30, what="the order placed during, paid")
        accepted.append(during)

    # Each node's hub kept its one pub/sub connection and subscribed again by itself (the
    # rooms were never subscribed anew: the events above reached the sockets through it).
    for node in nodes:
        assert "room subscriber: Redis back after" in node.log()
    # Presence came back: the sockets are counted again (each node reports every second).
    await wait_until(lambda: _viewers_are(nodes[0], room_id, len(clients)), timeout=10, what="presence back")
    # The show's counters came back from PostgreSQL, the reconnects counted on top.
    recovered = await database_sync_to_async(room_counters)(room_id)
    assert recovered.likes == counted.likes == 10 * len(fans)
    assert recovered.views >= counted.views + len(clients)
    assert recovered.unique >= counted.unique
    assert recovered.peak >= counted.peak

    after = await room_history(room_id)
    last = max(after)
    await wait_until(lambda: all((c.last_seq or 0) >= last for c in clients), timeout=15, what="all caught up")
    for client in clients:
        await client.stop()

    # Seqs: the new ones all above the old ones; each client's stream strictly rising.
    assert min(after) > last_before
    kinds_after = {kind for seq, kind in after.items() if seq <= last}
    assert {"order.placed", "comment.new", "viewers"} <= kinds_after
    for client in clients:
        seqs = [e["seq"] for e in client.events]
        assert seqs == sorted(set(seqs)), client.name
        # After the resync, nothing non-comment is missing.
        check_client(_since_last_snapshot(client), after, every_counter=True, upto=last)
    host_comments = [e for e in host.events if e["type"] == "comment.new" and e["seq"] > last_before]
    assert [e["seq"] for e in host_comments] == sorted(s for s, k in after.items() if k == "comment.new" and s <= last)

    # Acknowledged means kept: every acked comment is in PostgreSQL; every accepted order too.
    acked = {r["data"]["id"] for c in fans for r in c.replies if r["type"] == "comment.ack"}
    assert len(acked) >= 18
    stored = set(await database_sync_to_async(lambda: list(Comment.objects.values_list("pk", flat=True)))())
    assert acked <= stored
    for order in accepted:
        assert await _is_paid(order.body["id"])
    events = await database_sync_to_async(lambda: list(StripeEvent.objects.values_list("outcome", flat=True)))()
    assert events == ["settled"] * len(accepted)
    assert await database_sync_to_async(ledger_check)() == {"unbalanced_transactions": [], "drifted_balances": []}

    print(
        f"\nredis down {back_at - down_at:.1f} s; every socket resynced {resync_s:.2f} s after it came back; "
        f"seq {last_before} -> {min(after)}; events after: {len(after)}; acked comments {len(acked)}, lost 0; "
        f"503 answered in {max(a.seconds for a in refused):.3f} s; order during the outage: {during.status}"
    )


def _reply_to(client: RoomClient, nonce: str) -> dict[str, str] | None:
    for reply in client.replies:
        if reply.get("data", {}).get("nonce") == nonce:
            return {"type": reply["type"], "code": reply["data"].get("code", "")}
    return None


async def _is_paid(order_id: int) -> bool:
    return await database_sync_to_async(order_status)(order_id) == "paid"


def _a_minute_passes() -> None:
    StripeEvent.objects.filter(processed_at__isnull=True).update(enqueued_at=timezone.now() - timedelta(minutes=2))


def _with(env: dict[str, str]) -> dict[str, str]:
    return os.environ | env


async def _likes_are(room_id: int, likes: int) -> bool:
    return (await database_sync_to_async(room_counters)(room_id)).likes == likes


async def _viewers_are(node: Server, room_id: int, count: int) -> bool:
    answer = await asyncio.to_thread(http_call, "GET", f"{node.http}/api/v1/rooms/{room_id}/")
    return answer.status == 200 and answer.body["viewers_now"] == count


def _since_last_snapshot(client: RoomClient) -> RoomClient:
    """The client as if it had joined at its last snapshot."""
    start = client.snapshots[-1]["seq"]
    return RoomClient(
        client.name,
        client.room_id,
        client.nodes,
        client.home,
        events=[e for e in client.events if e["seq"] > start],
        snapshots=[client.snapshots[-1]],
    )
