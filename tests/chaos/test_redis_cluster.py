"""Shows on a Redis Cluster (REDIS_CLUSTER_URL): three masters with a replica each,
started by the test with `redis-server --cluster-enabled yes` and `redis-cli --cluster
create`, behind two web nodes.

- The multi-node show of docs/RELIABILITY.md: rooms on different masters, sockets on both
  nodes; each socket gets exactly its room's events, in seq order.
- A room's slot moved mid-show with `redis-cli --cluster reshard`: nothing lost or
  doubled; the nodes' subscriptions follow the slot.
- The room's master killed mid-show: its replica takes over and the show goes on.
- A comment's rate limits, whose buckets lie in different slots, stay all or nothing.

Timings (the reshard, the failover, the subscriptions catching up) are printed with -s.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from functools import partial
from typing import Any

import pytest
from channels.db import database_sync_to_async
from redis.crc import key_slot

from liveshop.ratelimit import Bucket
from liveshop.redis_client import REDIS_UNAVAILABLE
from rooms.broadcast import CLOSE_FORBIDDEN, room_publish, room_user_close
from rooms.models import Room
from rooms.realtime.backend import Hold, get_backend, reset_backend
from rooms.realtime.redis_backend import SEQ_BLOCK
from rooms.realtime.redis_cluster import RedisClusterBackend
from tests import factories
from tests.chaos.cluster_support import PrivateCluster, private_cluster
from tests.chaos.nodes_support import (
    RoomClient,
    check_client,
    http_call,
    node_env,
    room_history,
    start_nodes,
    wait_until,
)
from tests.factories import api_token
from tests.servers import Server

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

FILLER_KEYS = 30_000


@pytest.fixture
def cluster(realtime_prefix: str, tmp_path, settings) -> Any:
    if not settings.REDIS_URL:
        pytest.skip("needs REDIS_URL (tickets and the cache stay there)")
    with private_cluster(tmp_path / "cluster") as redis_cluster:
        settings.REDIS_CLUSTER_URL = redis_cluster.url
        reset_backend()
        try:
            yield redis_cluster
        finally:
            reset_backend()


@pytest.fixture
def web_nodes(cluster: PrivateCluster, realtime_prefix: str, tmp_path, settings) -> Any:
    env = node_env(redis_url=settings.REDIS_URL, prefix=realtime_prefix, REDIS_CLUSTER_URL=cluster.url)
    nodes = start_nodes(2, env, tmp_path)
    try:
        yield nodes
    finally:
        for node in nodes:
            node.stop()


def backend() -> RedisClusterBackend:
    current = get_backend()
    assert isinstance(current, RedisClusterBackend)
    return current


def room_with_slot_below(limit: int, host_profile: Any) -> int:
    """A live room whose hash slot is among the first `limit`: `redis-cli --cluster
    reshard` moves a master's lowest slots first, so moving `limit` slots off the first
    master moves this room."""
    pk = 10_000_000
    while key_slot(backend().room_key(pk, "seq").encode()) >= limit:
        pk += 1
    return int(factories.RoomFactory.create(pk=pk, host=host_profile, status=Room.Status.LIVE).pk)


def live_rooms_on_two_masters(host_profile: Any, cluster: PrivateCluster) -> list[int]:
    by_master: dict[int, int] = {}
    while len(by_master) < 2:
        room = factories.RoomFactory.create(host=host_profile, status=Room.Status.LIVE)
        by_master.setdefault(cluster.master_of(backend().room_key(room.pk, "seq")).port, room.pk)
    return list(by_master.values())


def live_room(host_profile: Any) -> int:
    return int(factories.RoomFactory.create(host=host_profile, status=Room.Status.LIVE).pk)


def fan_users(count: int) -> list[tuple[int, str]]:
    """(user id, API token) of `count` viewers."""
    fans = [factories.UserFactory.create(username=f"fan{i}") for i in range(count)]
    return [(fan.pk, api_token(fan)) for fan in fans]


def fan_tokens(count: int) -> list[str]:
    return [token for _fan_id, token in fan_users(count)]


async def viewers_of(room_id: int, nodes: list[Server], fan_token: str) -> list[RoomClient]:
    clients = [
        RoomClient(f"room{room_id}-fan", room_id, nodes, home=0, token=fan_token),
        RoomClient(f"room{room_id}-anon0", room_id, nodes, home=0),
        RoomClient(f"room{room_id}-anon1", room_id, nodes, home=1),
    ]
    for client in clients:
        client.start()
    for client in clients:
        await client.connected()
    return clients


class Show:
    """Orders announced from this process (as the order service does) and comments over a
    socket, every 20 ms, until stopped; publishes that fail while the cluster changes are
    retried, as the web client retries a comment."""

    def __init__(self, room_id: int, commenter: RoomClient) -> None:
        self.room_id = room_id
        self.commenter = commenter
        self.placed = 0
        self.failures = 0
        self.running = True
        self.task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        while self.running:
            try:
                await database_sync_to_async(room_publish)(
                    self.room_id, "order.placed", {"room": self.room_id, "n": self.placed}
                )
                self.placed += 1
            except REDIS_UNAVAILABLE:
                self.failures += 1
            await self.commenter.send({"type": "comment.send", "text": f"#{self.placed}", "nonce": str(self.placed)})
            await asyncio.sleep(0.02)

    async def until(self, placed: int) -> None:
        await wait_until(self._placed_at_least(placed), timeout=60, what=f"{placed} orders announced")

    def _placed_at_least(self, placed: int) -> Callable[[], bool]:
        def check() -> bool:
            if self.task.done():
                self.task.result()  # the show stopped: say why
            return self.placed >= placed

        return check

    async def stop(self) -> None:
        self.running = False
        await self.task


async def settle_and_check(room_id: int, clients: list[RoomClient], placed: int) -> dict[int, str]:
    """Every client caught up with the room's history and consistent with it: no event
    twice, none out of order, none missing (but what a resync's snapshot stands for)."""
    last = max(await room_history(room_id))
    await caught_up(clients, last)
    truth = await room_history(room_id)
    assert sum(1 for kind in truth.values() if kind == "order.placed") == placed
    check_clients(clients, truth, last)
    return truth


async def caught_up(clients: list[RoomClient], seq: int) -> None:
    await wait_until(
        lambda: all((client.last_seq or 0) >= seq for client in clients), timeout=30, what="clients caught up"
    )
    for client in clients:
        await client.stop()


def check_clients(clients: list[RoomClient], truth: dict[int, str], last: int) -> None:
    for client in clients:
        check_client(client, truth, every_counter=False, upto=last)
        numbers = [e["data"]["n"] for e in client.events if e["type"] == "order.placed"]
        assert numbers == sorted(set(numbers)), f"{client.name}: {numbers}"


def whole_history(room_id: int) -> dict[int, str]:
    """seq -> type of every event in the room's history, gaps (a seq jump) and all."""
    cluster_backend = backend()
    entries: Any = cluster_backend._sync.xrange(cluster_backend.room_key(room_id, "history"))
    return {int(entry_id.split(b"-")[0]): fields[b"h"].decode().split(" ")[0] for entry_id, fields in entries}


async def subscribed_on(cluster: PrivateCluster, room_id: int, count: int) -> bool:
    channel = backend().room_channel(room_id)
    master = cluster.master_of(channel)
    answer = await asyncio.to_thread(master.client().execute_command, "PUBSUB", "SHARDNUMSUB", channel)
    return int(answer[1]) == count


# --- The multi-node show on the cluster ------------------------------------------------------------


async def test_rooms_on_two_masters_reach_their_sockets(
    cluster: PrivateCluster, web_nodes: list[Server], host_profile: Any
) -> None:
    room_ids = await database_sync_to_async(live_rooms_on_two_masters)(host_profile, cluster)
    fans = await database_sync_to_async(fan_users)(2)
    fan_ids, tokens = [fan_id for fan_id, _token in fans], [token for _fan_id, token in fans]
    clients = {room_id: await viewers_of(room_id, web_nodes, tokens[i]) for i, room_id in enumerate(room_ids)}

    for i in range(10):
        for room_id in room_ids:
            await database_sync_to_async(room_publish)(room_id, "order.placed", {"room": room_id, "n": i})
            await clients[room_id][0].send({"type": "comment.send", "text": f"in {room_id} #{i}", "nonce": str(i)})
        await asyncio.sleep(0.05)

    for room_id in room_ids:
        # Presence counts each room's three sockets over both nodes; both nodes subscribe
        # to the room's sharded channel on its own master.
        await wait_until(partial(_viewers_are, web_nodes[1], room_id, 3), timeout=15, what=f"room {room_id} counted")
        assert await subscribed_on(cluster, room_id, 2)
    for room_id, group in clients.items():
        truth = await settle_and_check(room_id, group, placed=10)
        assert sum(1 for kind in truth.values() if kind == "comment.new") == 10
        for client in group:
            assert all(e["data"]["room"] == room_id for e in client.events if e["type"] == "order.placed")

    # Each room's keys on its own master (and that master's replica) only.
    masters = cluster.masters()
    for room_id in room_ids:
        home = cluster.master_of(backend().room_key(room_id, "seq"))
        for master in masters:
            keys = master.client().keys(f"*r{{{room_id}}}:*")
            assert bool(keys) == (master is home), (room_id, master.port, keys)

    # A control message (a ban closes the user's sockets) rides the room's sharded channel
    # to the node holding the socket.
    banned = RoomClient("banned", room_ids[0], web_nodes, home=1, token=tokens[0])
    banned.start()
    await banned.connected()
    await database_sync_to_async(room_user_close)(room_ids[0], fan_ids[0], CLOSE_FORBIDDEN)
    await wait_until(lambda: banned.connects[-1].close_code == CLOSE_FORBIDDEN, timeout=15, what="the ban's close")
    await banned.stop()

    ready = await asyncio.to_thread(http_call, "GET", f"{web_nodes[0].http}/readyz")
    assert ready.status == 200
    assert ready.body["checks"]["redis_cluster"] == "ok"


async def _viewers_are(node: Server, room_id: int, count: int) -> bool:
    answer = await asyncio.to_thread(http_call, "GET", f"{node.http}/api/v1/rooms/{room_id}/")
    return answer.status == 200 and answer.body["viewers_now"] == count


# --- A slot moved mid-show -----------------------------------------------------------------------------


async def test_a_rooms_slot_moved_mid_show_loses_and_doubles_nothing(
    cluster: PrivateCluster, web_nodes: list[Server], host_profile: Any
) -> None:
    room_id = await database_sync_to_async(room_with_slot_below)(10, host_profile)
    [token] = await database_sync_to_async(fan_tokens)(1)
    source = cluster.master_of(backend().room_key(room_id, "seq"))
    target = next(master for master in cluster.masters() if master is not source)
    clients = await viewers_of(room_id, web_nodes, token)
    await wait_until(partial(subscribed_on, cluster, room_id, 2), timeout=15, what="both nodes subscribed")

    # Keys of the other moved slots, so that the move takes a while (MIGRATE goes ten
    # keys at a time) and the show goes on during it. (Within the room's own slot, a
    # script whose keys are split between the two nodes waits: TRYAGAIN.)
    room_slot = key_slot(backend().room_key(room_id, "seq").encode())
    tags = {key_slot(f"f{n}".encode()): f"f{n}" for n in range(200_000)}
    filler = source.client().pipeline(transaction=False)
    for n in range(FILLER_KEYS):
        slot = n % 10
        if slot != room_slot and slot in tags:
            filler.set(f"{{{tags[slot]}}}:{n}", n)
    await asyncio.to_thread(filler.execute)

    show = Show(room_id, clients[0])
    await show.until(40)
    placed_at_start = show.placed
    started = time.monotonic()
    output = await asyncio.to_thread(
        cluster.cli,
        "--cluster", "reshard", source.address,
        "--cluster-from", source.node_id(), "--cluster-to", target.node_id(),
        "--cluster-slots", "10", "--cluster-yes",
    )  # fmt: skip
    moved_in = time.monotonic() - started
    placed_during = show.placed - placed_at_start
    assert "Moving slot" in output
    assert placed_during >= 5, "the show went on during the move"
    assert cluster.master_of(backend().room_key(room_id, "seq")) is target
    follow = await wait_until(partial(subscribed_on, cluster, room_id, 2), timeout=30, what="subscriptions moved")
    placed_at_move = show.placed
    await show.until(placed_at_move + 40)
    await show.stop()

    truth = await settle_and_check(room_id, clients, placed=show.placed)
    assert max(truth) > 80
    # The history moved with the slot: nothing is left on the old master.
    assert source.client().keys(f"*r{{{room_id}}}:*") == []
    print(
        f"\nreshard of 10 slots ({FILLER_KEYS} keys): {moved_in:.2f} s, {placed_during} orders announced "
        f"meanwhile; both nodes subscribed on the new master {follow:.2f} s after it; "
        f"{show.placed} orders, {show.failures} publishes retried"
    )


# --- A master killed mid-show ------------------------------------------------------------------------


async def test_the_rooms_master_killed_mid_show_fails_over_and_the_show_goes_on(
    cluster: PrivateCluster, web_nodes: list[Server], host_profile: Any
) -> None:
    room_id = await database_sync_to_async(live_room)(host_profile)
    [token] = await database_sync_to_async(fan_tokens)(1)
    master = cluster.master_of(backend().room_key(room_id, "seq"))
    clients = await viewers_of(room_id, web_nodes, token)
    await wait_until(partial(subscribed_on, cluster, room_id, 2), timeout=15, what="both nodes subscribed")

    show = Show(room_id, clients[0])
    await show.until(40)
    seq_at_kill = await backend().acurrent_seq(room_id)
    killed_at = time.monotonic()
    placed_at_kill = show.placed
    master.kill()
    failover = await wait_until(
        show._placed_at_least(placed_at_kill + 1), timeout=60, what="a publish after the failover"
    )
    await asyncio.to_thread(cluster.wait_ok, 30)
    promoted = cluster.master_of(backend().room_key(room_id, "seq"))
    assert promoted is not master
    await wait_until(partial(subscribed_on, cluster, room_id, 2), timeout=30, what="subscriptions moved")
    follow = time.monotonic() - killed_at
    await show.until(show.placed + 40)
    await show.stop()

    # The promoted replica gave no seq the dead master may have given: the room's seq
    # jumped to a new block, above all of them, and every socket resynced.
    truth = await asyncio.to_thread(whole_history, room_id)
    before = [seq for seq in truth if seq <= seq_at_kill]
    after = sorted(seq for seq in truth if seq > seq_at_kill)
    assert after, "the show went on"
    assert after[0] > seq_at_kill + 1, after[:3]
    assert after[0] % SEQ_BLOCK == 1, after[:3]
    last = max(truth)
    await caught_up(clients, last)
    # What the dead master gave but had not yet passed on to its replica is gone from the
    # history (asynchronous replication): the clients may have had it, no one got its seq
    # again. Those seqs lie between the replica's last and the jump.
    gap = range(max(before) + 1, after[0])
    lost = {event["seq"]: event["type"] for client in clients for event in client.events if event["seq"] in gap}
    truth.update(lost)
    check_clients(clients, truth, last)
    for client in clients:
        assert any(snapshot["seq"] >= after[0] - 1 for snapshot in client.snapshots[1:]), f"{client.name} resynced"
    in_history = sum(1 for kind in truth.values() if kind == "order.placed")
    assert placed_at_kill - 5 <= in_history - (show.placed - placed_at_kill) <= placed_at_kill
    print(
        f"\nfailover: first publish {failover:.2f} s after the kill, both nodes subscribed on the promoted "
        f"replica {follow:.2f} s after it; the seq jumped from {seq_at_kill} to {after[0]}; "
        f"{len(lost)} events delivered but lost with the master; "
        f"{show.failures} publishes retried"
    )


# --- Rate limits across slots ----------------------------------------------------------------------


def test_a_comments_limits_over_several_slots_are_all_or_nothing(cluster: PrivateCluster) -> None:
    cluster_backend = backend()
    user = Bucket("comment:user:7", per_minute=1, burst=2)
    address = Bucket("comment:ip:10.0.0.1", per_minute=1, burst=1)
    slots = {key_slot(f"{cluster_backend.prefix}:rl:{b.key}".encode()) for b in (user, address)}
    assert len(slots) == 2, "the two buckets must lie in different slots"

    assert cluster_backend.limits_take(5, [user, address]) is None
    refusal = cluster_backend.limits_take(5, [user, address])
    assert refusal is not None
    assert refusal.index == 1
    assert refusal.wait > 0
    # The user's bucket gave back what the refused take had taken from it: one left.
    assert cluster_backend.limits_take(5, [user]) is None
    refused = cluster_backend.limits_take(5, [user])
    assert refused is not None
    assert refused.index == 0

    # Slow mode's hold (in the room's slot) refusing gives the buckets back too.
    other = Bucket("comment:user:8", per_minute=1, burst=1)
    hold = Hold("slow:8", 30)
    assert cluster_backend.limits_take(5, [other], hold) is None
    held = asyncio.run(cluster_backend.alimits_take(5, [Bucket("comment:user:9", 1, 1)], hold))
    assert held is not None
    assert held.index == 1
    assert 25 < held.wait <= 30
    assert cluster_backend.limits_take(6, [Bucket("comment:user:9", 1, 1)]) is None


def test_single_key_limits_and_viewer_reads_work_on_the_cluster(cluster: PrivateCluster) -> None:
    cluster_backend = backend()
    assert cluster_backend.rate_limit("login:ip:10.0.0.2", per_minute=1, burst=1) == 0
    assert cluster_backend.rate_limit("login:ip:10.0.0.2", per_minute=1, burst=1) > 0

    async def report() -> Any:
        result = await cluster_backend.apresence("p1", {1: 3, 2: 4, 3: 5}, 10)
        await cluster_backend.aclose()
        return result

    presence = asyncio.run(report())
    assert {room_id: result.now for room_id, result in presence.items()} == {1: 3, 2: 4, 3: 5}
    assert cluster_backend.viewers_now([1, 2, 3, 4]) == {1: 3, 2: 4, 3: 5, 4: 0}
    assert cluster_backend.counters(2).now == 4
    # The beat's checkpoint of live rooms' counters, over the rooms' slots (rooms with no
    # seq yet are left out: nothing to lose).
    cluster_backend.seq_reserve(2)
    saved = cluster_backend.counters_checkpoint([1, 2, 3])
    assert list(saved) == [2]
