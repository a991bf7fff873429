"""Rooms sharded over two Redis instances (REALTIME_REDIS_URLS).

Two private redis-servers carry the real-time path of two nodes; two live rooms hash to
different shards. Sockets of both rooms on both nodes, events from another process and
comments over the sockets: each socket gets exactly its room's events in seq order, each
room's state lives on its own shard only, presence counts both nodes per room, and
/readyz checks every shard.
"""

from __future__ import annotations

import asyncio
from functools import partial
from typing import Any

import pytest
from channels.db import database_sync_to_async

from rooms.broadcast import room_publish
from rooms.models import Room
from rooms.realtime.backend import get_backend, reset_backend
from rooms.realtime.sharded import ShardedBackend, shard_index
from tests import factories
from tests.chaos.nodes_support import (
    PrivateRedis,
    RoomClient,
    check_client,
    http_call,
    node_env,
    private_redis,
    room_history,
    start_nodes,
    wait_until,
)
from tests.factories import api_token
from tests.servers import Server

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

PINNED = [1, 1, 1, 0, 0, 0, 0, 1]  # the shard of rooms 1..8 over two shards


@pytest.fixture
def sharded(realtime_prefix: str, tmp_path, settings) -> Any:
    if not settings.REDIS_URL:
        pytest.skip("needs REDIS_URL (tickets and the cache stay there)")
    with private_redis(tmp_path, "shard0") as first, private_redis(tmp_path, "shard1") as second:
        urls = [first.url, second.url]
        settings.REALTIME_REDIS_URLS = urls
        reset_backend()
        nodes = start_nodes(
            2,
            node_env(redis_url=settings.REDIS_URL, prefix=realtime_prefix, REALTIME_REDIS_URLS=",".join(urls)),
            tmp_path,
        )
        try:
            yield [first, second], nodes
        finally:
            for node in nodes:
                node.stop()
            reset_backend()


def rooms_on_each_shard(host_profile: Any) -> tuple[list[int], list[str]]:
    """Live rooms until one hashes to each of the two shards; a commenter's token each."""
    by_shard: dict[int, int] = {}
    while len(by_shard) < 2:
        room = factories.RoomFactory.create(host=host_profile, status=Room.Status.LIVE)
        by_shard.setdefault(shard_index(room.pk, 2), room.pk)
    fans = [factories.UserFactory.create(username=f"fan{i}") for i in range(2)]
    return [by_shard[0], by_shard[1]], [api_token(fan) for fan in fans]


async def test_rooms_on_two_shards_reach_their_sockets(sharded: Any, host_profile: Any) -> None:
    shards: list[PrivateRedis] = sharded[0]
    nodes: list[Server] = sharded[1]
    assert isinstance(get_backend(), ShardedBackend)
    room_ids, tokens = await database_sync_to_async(rooms_on_each_shard)(host_profile)

    clients: dict[int, list[RoomClient]] = {
        room_id: [
            RoomClient(f"room{room_id}-fan", room_id, nodes, home=0, token=tokens[index]),
            RoomClient(f"room{room_id}-anon0", room_id, nodes, home=0),
            RoomClient(f"room{room_id}-anon1", room_id, nodes, home=1),
        ]
        for index, room_id in enumerate(room_ids)
    }
    everyone = [client for group in clients.values() for client in group]
    for client in everyone:
        client.start()
    for client in everyone:
        await client.connected()

    for i in range(10):
        for room_id in room_ids:
            await database_sync_to_async(room_publish)(room_id, "order.placed", {"room": room_id, "n": i})
            await clients[room_id][0].send({"type": "comment.send", "text": f"in {room_id} #{i}", "nonce": str(i)})
        await asyncio.sleep(0.05)

    # Presence: each room counts its three sockets over both nodes.
    for room_id in room_ids:
        await wait_until(partial(_viewers_are, nodes[1], room_id, 3), timeout=10, what=f"room {room_id} counted")

    for room_id, group in clients.items():
        last = max(await room_history(room_id))
        await wait_until(partial(_caught_up, group, last), timeout=10, what=f"room {room_id} caught up")
    for client in everyone:
        await client.stop()

    for room_id, group in clients.items():
        truth = await room_history(room_id)
        assert sum(1 for kind in truth.values() if kind == "order.placed") == 10
        assert sum(1 for kind in truth.values() if kind == "comment.new") == 10
        for client in group:
            check_client(client, truth, every_counter=True, upto=max(truth))
            placed = [e for e in client.events if e["type"] == "order.placed"]
            assert [e["data"] for e in placed] == [{"room": room_id, "n": i} for i in range(10)]
            comments = [e["data"]["text"] for e in client.events if e["type"] == "comment.new"]
            assert all(text.startswith(f"in {room_id} ") for text in comments)

    # Each room's keys on its own shard only.
    for index, room_id in enumerate(room_ids):
        mine: list[bytes] = shards[index].client().keys(f"*r{{{room_id}}}:*")  # type: ignore[assignment]
        theirs = shards[1 - index].client().keys(f"*r{{{room_id}}}:*")
        assert any(key.endswith(b":history") for key in mine)
        assert theirs == []

    ready = await asyncio.to_thread(http_call, "GET", f"{nodes[0].http}/readyz")
    assert ready.status == 200
    assert {"realtime_shard_0", "realtime_shard_1"} <= set(ready.body["checks"])


def _caught_up(clients: list[RoomClient], seq: int) -> bool:
    return all((client.last_seq or 0) >= seq for client in clients)


async def _viewers_are(node: Server, room_id: int, count: int) -> bool:
    answer = await asyncio.to_thread(http_call, "GET", f"{node.http}/api/v1/rooms/{room_id}/")
    return answer.status == 200 and answer.body["viewers_now"] == count


def test_shard_index_is_stable_and_spreads() -> None:
    # CRC32 of the decimal id: the same in every process and release (unlike hash() of a
    # str). Pinned: a change would move rooms between shards and resync every socket.
    assert [shard_index(room_id, 2) for room_id in range(1, 9)] == PINNED
    spread = [shard_index(room_id, 4) for room_id in range(1, 4001)]
    assert all(900 < spread.count(shard) < 1100 for shard in range(4))
