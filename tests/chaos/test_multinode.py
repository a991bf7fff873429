"""Several nodes: three uvicorn processes sharing PostgreSQL and Redis serve one room.

Clients (the host, signed-in viewers who comment and like, anonymous viewers) are spread
over the three nodes while a show runs: REST calls through every node (featured items,
shelf changes, flash sales, giveaways), comments and likes over the sockets, and events
published by another process (as the Celery worker publishes paid orders and ended
flash sales). Midway one node is killed with SIGKILL; its clients come back to the
others with `?since=<last seq>`, except two who leave.

The same show runs on one Redis and with the rooms on a Redis Cluster.

Then, against the room's history in Redis: every client saw every non-comment event
exactly once and in seq order over all its sockets (comments may be thinned for viewers,
never doubled; the host sees every one); the reconnected clients resumed by replay,
without a fresh snapshot; the dead node's viewers left the presence count in seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from typing import Any

import pytest
from channels.db import database_sync_to_async

from rooms.broadcast import room_publish
from rooms.models import FlashSale, Room
from rooms.realtime.backend import reset_backend
from rooms.services.flash_sales import flash_sale_end
from tests import factories
from tests.chaos.cluster_support import private_cluster
from tests.chaos.nodes_support import RoomClient, check_client, node_env, room_history, start_nodes, wait_until
from tests.factories import api_token
from tests.servers import Server, http_json

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

NODES = 3
SIGNED_IN = 4
ANONYMOUS_PER_NODE = 3


@pytest.fixture(params=["redis", "cluster"])
def nodes(request: pytest.FixtureRequest, realtime_prefix: str, tmp_path, settings) -> Any:
    """Three nodes on one Redis, or with the rooms on a Redis Cluster (three masters, three
    replicas; tickets, the cache and the flash-sale gates stay on REDIS_URL)."""
    if not settings.REDIS_URL:
        pytest.skip("needs REDIS_URL")
    with contextlib.ExitStack() as stack:
        extra = {}
        if request.param == "cluster":
            cluster = stack.enter_context(private_cluster(tmp_path / "cluster"))
            settings.REDIS_CLUSTER_URL = extra["REDIS_CLUSTER_URL"] = cluster.url
            reset_backend()
            stack.callback(reset_backend)
        env = node_env(
            redis_url=settings.REDIS_URL,
            prefix=realtime_prefix,
            ROOM_VIEWER_COMMENTS_PER_S="3",  # viewers get comments thinned
            **extra,
        )
        servers = start_nodes(NODES, env, tmp_path)
        for server in servers:
            stack.callback(server.stop)
        yield servers


def token_of(user: Any) -> str:
    return api_token(user)


class Show:
    """Drives the show: every call goes to the next node in turn, as a load balancer would."""

    def __init__(self, room: Room, host_token: str, nodes: list[Server], skus: list[int]) -> None:
        self.room = room
        self.host_token = host_token
        self.nodes = nodes
        self.skus = skus
        self.turn = itertools.count()
        self.items: list[int] = []

    def node(self) -> Server:
        live = [n for n in self.nodes if n.process.poll() is None]
        return live[next(self.turn) % len(live)]

    async def call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        node = self.node()
        return await asyncio.to_thread(http_json, method, f"{node.http}/api/v1{path}", token=self.host_token, body=body)

    async def step(self, i: int, commenters: list[RoomClient]) -> None:
        room = self.room.pk
        # Another process publishes (the Celery worker's order.placed).
        await database_sync_to_async(room_publish)(room, "order.placed", {"buyer": "L**", "quantity": 1, "n": i})
        for n, client in enumerate(commenters):
            await client.send({"type": "comment.send", "text": f"{client.name} #{i}", "nonce": f"{client.name}-{i}"})
            if (i + n) % 2 == 0:
                await client.send({"type": "like.send", "count": 1 + n})
        kind = i % 6
        if kind == 0:
            self.items.append((await self.call("POST", f"/rooms/{room}/items/", {"sku": self.skus[i // 6]}))["id"])
        elif kind == 1:
            await self.call("POST", f"/rooms/{room}/items/{self.items[-1]}/feature/")
        elif kind == 2:
            await self.call(
                "POST",
                f"/rooms/{room}/items/{self.items[-1]}/flash-sale/",
                {"price": 100, "quantity": 1, "duration_s": 60},
            )
        elif kind == 3:
            active = FlashSale.objects.filter(item_id=self.items[-1], status=FlashSale.Status.ACTIVE)
            sale = await database_sync_to_async(lambda: active.values_list("pk", flat=True)[0])()
            await database_sync_to_async(flash_sale_end)(flash_sale_id=sale)  # as the sweeper on a worker
        elif kind == 4:
            giveaway = await self.call(
                "POST", f"/rooms/{room}/giveaways/", {"title": f"Tea #{i}", "winners": 1, "duration_s": 60}
            )
            await self.call("POST", f"/giveaways/{giveaway['id']}/cancel/")
        else:
            await self.call("DELETE", f"/rooms/{room}/items/{self.items.pop(0)}/")


async def test_three_nodes_one_room_a_node_killed(nodes: list[Server], live_room, host, shop) -> None:
    room_id = live_room.pk
    skus, host_token, tokens = await database_sync_to_async(cast)(shop, host)

    # Clients spread over the nodes: the host on node 0, commenters and anonymous viewers on each.
    host_client = RoomClient("host", room_id, nodes, home=0, token=host_token)
    commenters = [RoomClient(f"fan{i}", room_id, nodes, home=i % NODES, token=t) for i, t in enumerate(tokens)]
    watchers = [
        RoomClient(f"anon{node}-{i}", room_id, nodes, home=node)
        for node in range(NODES)
        for i in range(ANONYMOUS_PER_NODE)
    ]
    clients = [host_client, *commenters, *watchers]
    for client in clients:
        client.start()
    for client in clients:
        await client.connected()
    await wait_until(lambda: viewers_are(nodes[0], room_id, len(clients)), timeout=10, what="every socket counted")

    show = Show(live_room, host_token, nodes, skus)
    victim = nodes[2]
    on_victim = [c for c in clients if c.connects[-1].port == victim.port]
    leaving = [c for c in on_victim if c.token is None][:2]
    assert len(on_victim) >= 4
    assert len(leaving) == 2

    staying = [c for c in clients if c not in leaving]
    steps = 60
    killed_at = 0.0
    count_settled: asyncio.Task[float] | None = None
    for i in range(steps):
        if i == steps // 2:
            for client in leaving:
                client.reconnect = False
            victim.kill()  # mid-show, without a word to anyone
            killed_at = time.monotonic()
            # The dead node's viewers leave the count; the ones who came back count once.
            count_settled = asyncio.get_running_loop().create_task(
                wait_until(
                    lambda: viewers_are(nodes[0], room_id, len(staying)),
                    timeout=15,
                    what="the dead node's viewers leave",
                )
            )
        await show.step(i, commenters)
        await asyncio.sleep(0.05)
    assert count_settled is not None
    left_in = await count_settled
    # Every comment sent on a live socket is answered (and so published) before the show's
    # last seq is taken.
    await wait_until(lambda: not any(c.unanswered() for c in commenters), timeout=15, what="comments answered")
    last = max(await room_history(room_id))
    await wait_until(lambda: all((c.last_seq or 0) >= last for c in staying), timeout=15, what="every client caught up")
    for client in staying:
        await client.stop()
    # The show up to `last` (later `viewers` counts are not part of it).
    truth = {seq: kind for seq, kind in (await room_history(room_id)).items() if seq <= last}

    kinds = set(truth.values())
    assert {
        "order.placed",
        "items.updated",
        "item.featured",
        "flash.started",
        "flash.ended",
        "giveaway.started",
        "giveaway.cancelled",
        "comment.new",
        "like.total",
        "viewers",
    } <= kinds
    moved = [c for c in on_victim if c not in leaving]
    for client in staying:
        check_client(client, truth, every_counter=client not in moved, upto=last)
        assert len(client.snapshots) == 1, f"{client.name} needed a fresh snapshot"
        if client not in moved:
            assert len(client.connects) == 1, f"{client.name} was disconnected"
    for client in moved:
        assert len(client.connects) == 2
        assert client.connects[1].port != victim.port
        assert client.connects[1].since is not None
        assert client.connects[1].first != "room.snapshot"  # resumed by replay

    # The host sees every comment exactly once, every acknowledged one among them.
    comment_seqs = [seq for seq, kind in sorted(truth.items()) if kind == "comment.new"]
    host_comments = [e for e in host_client.events if e["type"] == "comment.new" and e["seq"] <= last]
    assert [e["seq"] for e in host_comments] == comment_seqs
    acked = {r["data"]["id"] for c in commenters for r in c.replies if r["type"] == "comment.ack"}
    assert len(acked) > 100
    assert acked <= {e["data"]["id"] for e in host_comments}
    # Viewers had them thinned (ROOM_VIEWER_COMMENTS_PER_S=3), in order and never twice.
    assert len([e for e in watchers[0].events if e["type"] == "comment.new"]) < len(comment_seqs)

    # Figures for docs/reliability/nodes.md.
    resumed = [c.connects[1].first_at - killed_at for c in moved if c.connects[1].first_at]
    print(
        f"\nnodes={NODES} clients={len(clients)} events={len(truth)} moved={len(moved)} "
        f"reconnect_s(max)={max(resumed):.2f} viewers_left_s={left_in:.2f} lost=0 duplicated=0"
    )


async def viewers_are(node: Server, room_id: int, count: int) -> bool:
    room = await asyncio.to_thread(http_json, "GET", f"{node.http}/api/v1/rooms/{room_id}/")
    return int(room["viewers_now"]) == count


def cast(shop: Any, host: Any) -> tuple[list[int], str, list[str]]:
    """The skus the host puts on the shelf during the show, and the API tokens."""
    product = factories.ProductFactory.create(shop=shop, title="Wulong dried tofu")
    skus = [factories.SkuFactory.create(product=product, name=f"pack {i}", stock=100).pk for i in range(12)]
    users = [factories.UserFactory.create(username=f"fan{i}", display_name=f"Fan {i}") for i in range(SIGNED_IN)]
    return skus, token_of(host), [token_of(user) for user in users]
