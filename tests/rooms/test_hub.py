"""The room hub's delivery rules, with recording sockets and the real Redis backend:
coalescing, thinning, slow sockets, gaps, who joined (`viewers.joined`)."""

from __future__ import annotations

import asyncio
import itertools
import json
import time
import types
from collections.abc import Callable
from typing import Any

import pytest

from rooms.broadcast import room_publish, room_user_role
from rooms.realtime import db_backend
from rooms.realtime import events as ev
from rooms.realtime.backend import Joiner, RecentJoiners, get_backend
from rooms.realtime.db_backend import DatabaseBackend
from rooms.realtime.hub import Connection, fair_sample, get_hub
from rooms.realtime.redis_backend import RedisBackend

# Publishing reserves seqs in the database (rooms/realtime/redis_backend.py, SEQ_BLOCK).
pytestmark = pytest.mark.django_db

_room_ids = itertools.count(10_000_000 + int(time.time()) % 1_000_000 * 10)


class RecordingSocket:
    """An ASGI send that records what it is given; `pause()` makes it block like a socket
    whose client stopped reading.

    Like uvicorn's protocols it keeps its flow control in `writable`; `generic()` gives a
    send without that attribute, as another ASGI server's would be.
    """

    def __init__(self) -> None:
        self.messages: list[tuple[float, dict[str, Any]]] = []
        self.writable = asyncio.Event()
        self.writable.set()

    async def send(self, message: dict[str, Any]) -> None:
        await self.writable.wait()
        self.messages.append((time.monotonic(), message))

    def generic(self) -> Any:
        async def send(message: dict[str, Any]) -> None:
            await self.send(message)

        return send

    def pause(self) -> None:
        self.writable.clear()

    def resume(self) -> None:
        self.writable.set()

    @property
    def frames(self) -> list[dict[str, Any]]:
        return [json.loads(m["text"]) for _, m in self.messages if m["type"] == "websocket.send"]

    @property
    def events(self) -> list[dict[str, Any]]:
        """The events received, but the `viewers` counts the hub itself publishes."""
        return [e for f in self.frames for e in f.get("events", [f]) if e["type"] != "viewers"]

    @property
    def closed_with(self) -> int | None:
        return next((m.get("code") for _, m in self.messages if m["type"] == "websocket.close"), None)


async def joined(
    room_id: int,
    *,
    user_id: int | None = None,
    full: bool = False,
    generic: bool = False,
    role: str | None = None,
    name: str = "",
) -> tuple[RecordingSocket, Connection]:
    hub = await get_hub()
    room = await hub.room(room_id)
    socket = RecordingSocket()
    role = role or ("moderator" if full else "viewer")
    conn = Connection(socket.generic() if generic else socket.send, user_id=user_id, role=role, name=name)
    assert (conn.ready is None) is generic
    assert await room.join(conn, after=await get_backend().acurrent_seq(room_id))
    return socket, conn


def comment(room_id: int, author: int, text: str, role: str = "viewer") -> int:
    return room_publish(room_id, "comment.new", {"id": 0, "user": {"id": author, "role": role}, "text": text})


async def settle(seconds: float = 0.4) -> None:
    await asyncio.sleep(seconds)


@pytest.fixture(autouse=True)
def fast_tick(settings):
    settings.ROOM_TICK_MS = 100
    settings.ROOM_VIEWER_COMMENTS_PER_S = 10


async def test_quiet_room_event_goes_out_at_once_as_a_plain_frame(hub_stopper):
    room_id = next(_room_ids)
    socket, _ = await joined(room_id)
    started = time.monotonic()
    seq = room_publish(room_id, "order.placed", {"n": 1})
    while not socket.messages and time.monotonic() - started < 2:
        await asyncio.sleep(0.005)
    assert socket.frames[0] == socket.events[0]  # not wrapped in a batch
    assert socket.events[0]["seq"] == seq
    assert socket.messages[0][0] - started < 0.08  # no tick wait


async def test_burst_is_coalesced_into_few_frames_in_seq_order(hub_stopper):
    room_id = next(_room_ids)
    socket, _ = await joined(room_id)
    seqs = [room_publish(room_id, "order.placed", {"n": i}) for i in range(30)]
    await settle()
    assert [e["seq"] for e in socket.events] == seqs
    assert len(socket.frames) <= 3
    assert socket.frames[-1]["type"] == "batch"


async def test_comment_flood_is_thinned_for_viewers_only(hub_stopper):
    room_id = next(_room_ids)
    viewer, _ = await joined(room_id, user_id=1)
    author, _ = await joined(room_id, user_id=7, generic=True)
    host, _ = await joined(room_id, user_id=2, full=True)

    published: dict[int, str] = {}
    started = time.monotonic()
    for i in range(300):  # 300 comments from 30 authors in about a second, other events among them
        published[comment(room_id, 100 + i % 30 if i % 10 else 7, f"c{i}")] = "comment.new"
        if i % 15 == 0:
            published[room_publish(room_id, "order.placed", {"n": i})] = "order.placed"
        if i % 100 == 0:
            published[comment(room_id, 2, f"host says {i}", role="host")] = "host"
        await asyncio.sleep(0.003)
    await settle(0.5)
    duration = time.monotonic() - started

    # The host sees everything, in order.
    assert [e["seq"] for e in host.events] == sorted(published)
    # Viewers: every non-comment event and every host comment; comments at the readable rate.
    viewer_seqs = {e["seq"] for e in viewer.events}
    must_have = {seq for seq, kind in published.items() if kind != "comment.new"}
    assert must_have <= viewer_seqs
    viewer_comments = [e for e in viewer.events if e["type"] == "comment.new" and e["data"]["user"]["id"] != 2]
    assert len(viewer_comments) <= 10 * duration + 10
    assert len(viewer_comments) >= 5
    assert [e["seq"] for e in viewer.events] == sorted(viewer_seqs)
    # Frames a second stay bounded by the tick, whatever the rate.
    assert len(viewer.frames) <= duration / 0.1 + 3
    # An author sees all of its own comments even when the others did not.
    own = {seq for seq, kind in published.items() if kind == "comment.new"} & {
        e["seq"] for e in host.events if e["type"] == "comment.new" and e["data"]["user"]["id"] == 7
    }
    assert len(own) == 30
    assert own <= {e["seq"] for e in author.events}


@pytest.mark.parametrize("generic", [False, True], ids=["uvicorn-send", "other-send"])
async def test_paused_socket_does_not_stall_the_room_and_catches_up(hub_stopper, generic):
    room_id = next(_room_ids)
    slow, _ = await joined(room_id, generic=generic)
    fast, _ = await joined(room_id, generic=generic)
    slow.pause()
    first = room_publish(room_id, "order.placed", {"n": 0})
    await settle(0.2)
    rest = []
    for i in range(1, 6):
        rest.append(room_publish(room_id, "order.placed", {"n": i}))
        await settle(0.15)  # separate frames
    assert [e["seq"] for e in fast.events] == [first, *rest]
    assert slow.events == []
    slow.resume()
    await settle(0.2)
    assert [e["seq"] for e in slow.events] == [first, *rest]


@pytest.mark.parametrize("generic", [False, True], ids=["uvicorn-send", "other-send"])
async def test_socket_that_never_reads_is_dropped_past_its_backlog(hub_stopper, settings, generic):
    settings.ROOM_SOCKET_BACKLOG = 3
    room_id = next(_room_ids)
    slow, slow_conn = await joined(room_id, generic=generic)
    fast, _ = await joined(room_id, generic=generic)
    hub = await get_hub()
    slow.pause()
    for i in range(6):
        room_publish(room_id, "order.placed", {"n": i})
        await settle(0.15)
    assert len(fast.events) == 6
    assert slow_conn.closing
    assert hub.count_sockets(room_id) == 1  # no longer counted, no longer sent to
    slow.resume()
    await settle(0.1)
    assert slow.closed_with == 1013  # the close goes out if it ever reads again


async def missed_while_unsubscribed(room_id: int, count: int) -> list[int]:
    """Publish events this process does not hear, as during a pub/sub reconnect."""
    hub = await get_hub()
    await hub.subscriber.unsubscribe(room_id)
    missed = [room_publish(room_id, "order.placed", {"missed": i}) for i in range(count)]
    await hub.subscriber.subscribe(room_id)
    return missed


async def test_gap_in_seq_is_filled_from_history(hub_stopper):
    room_id = next(_room_ids)
    socket, _ = await joined(room_id)
    missed = await missed_while_unsubscribed(room_id, 2)
    seq = room_publish(room_id, "order.placed", {"n": "live"})
    await settle(0.3)
    assert [e["seq"] for e in socket.events] == [*missed, seq]


async def test_quiet_room_notices_missed_events_within_seconds(hub_stopper):
    room_id = next(_room_ids)
    socket, _ = await joined(room_id)
    missed = await missed_while_unsubscribed(room_id, 2)
    deadline = time.monotonic() + 4
    while len(socket.events) < 2 and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
    assert [e["seq"] for e in socket.events] == missed


@pytest.mark.parametrize("restart", ["empty", "older-snapshot"])
async def test_a_room_redis_lost_resyncs_its_sockets(hub_stopper, restart):
    room_id = next(_room_ids)
    socket, _ = await joined(room_id)
    before = [room_publish(room_id, "order.placed", {"n": i}) for i in range(3)]
    await settle()
    assert [e["seq"] for e in socket.events] == before
    backend = get_backend()
    assert isinstance(backend, RedisBackend)
    if restart == "empty":  # the room's counter and history are gone
        backend._sync.delete(*(backend.room_key(room_id, name) for name in ("seq", "seq-ceiling", "history", "marks")))
    else:  # restored from a snapshot taken after the first event: the counter went back
        history = backend.room_key(room_id, "history")
        first: Any = backend._sync.xrange(history, count=1)
        backend._sync.delete(history)
        backend._sync.xadd(history, first[0][1], id=first[0][0])
        backend._sync.set(backend.room_key(room_id, "seq"), before[0])

    # Within seconds the hub notices (the seq went back, or the next event, its own viewers
    # count, leaves a gap the history cannot fill): the counter is set up again above the
    # old seqs and the room's sockets are closed with 1013 (their clients come for a snapshot).
    deadline = time.monotonic() + 5
    while socket.closed_with is None and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
    assert socket.closed_with == 1013
    current = await backend.acurrent_seq(room_id)
    assert current > before[-1]

    # A socket that joins now, at that seq, gets what follows.
    fresh, _ = await joined(room_id)
    seq = await asyncio.to_thread(room_publish, room_id, "order.placed", {"n": "after"})
    await settle()
    assert seq == current + 1
    assert [e["seq"] for e in fresh.events] == [seq]
    assert fresh.closed_with is None


def test_fair_sample_spreads_over_authors():
    flood = [ev.Event(seq=i, type="comment.new", author=1, flags="-", frame="{}") for i in range(100)]
    others = [ev.Event(seq=100 + i, type="comment.new", author=2 + i, flags="-", frame="{}") for i in range(4)]
    chosen = fair_sample(flood + others, 5)
    assert len(chosen) == 5
    assert {e.author for e in chosen} == {1, 2, 3, 4, 5}  # the flooder gets one, like everyone
    assert [e.seq for e in chosen] == sorted(e.seq for e in chosen)
    assert fair_sample(others, 0) == []
    assert len(fair_sample(others, 10)) == 4


async def test_a_role_change_moves_an_open_socket_between_the_feeds(hub_stopper):
    """`room_user_role` (a moderator appointed, then removed): the socket's role and feed
    change in place, and it hears `you.updated` each time."""
    room_id = next(_room_ids)
    socket, conn = await joined(room_id, user_id=7)
    room = conn.room
    assert room is not None
    await settle(0.2)
    assert (conn.role, conn in room.viewers, conn in room.full) == ("viewer", True, False)

    room_user_role(room_id, 7, "moderator")
    await wait_for(lambda: conn.role == "moderator")
    assert (conn.full, conn in room.full, conn in room.viewers) == (True, True, False)
    room_user_role(room_id, 7, "viewer")
    await wait_for(lambda: conn.role == "viewer")
    assert (conn.full, conn in room.viewers, conn in room.full) == (False, True, False)
    await wait_for(lambda: len([e for e in socket.events if e["type"] == "you.updated"]) == 2)
    assert [e["data"]["role"] for e in socket.events if e["type"] == "you.updated"] == ["moderator", "viewer"]


async def wait_for(condition, timeout: float = 5) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.01)


# --- Who joined: `viewers.joined` ---------------------------------------------------------------


def viewers_of(socket: RecordingSocket) -> list[dict[str, Any]]:
    """The data of the `viewers` events the socket got, in order."""
    return [e["data"] for f in socket.frames for e in f.get("events", [f]) if e["type"] == "viewers"]


def hold_viewers_slot(room_id: int) -> Callable[[], None]:
    """Take the room's `viewers` slot for this second, as a process that has just published
    the room's `viewers` would, but until released: the reports meanwhile leave their
    joiners in Redis for the next publish. Returns the release."""
    backend = get_backend()
    assert isinstance(backend, RedisBackend)
    key = backend.room_key(room_id, "viewers-pub")
    backend._sync.set(key, 1, px=60_000)

    def release() -> None:
        backend._sync.delete(key)

    return release


def joiners_kept_names(room_id: int) -> list[str]:
    """The joiners Redis keeps for the room's next `viewers`, "<id>:<name>", oldest first."""
    backend = get_backend()
    assert isinstance(backend, RedisBackend)
    entries: Any = backend._sync.lrange(backend.room_key(room_id, "joined"), 0, -1)
    return [entry.decode() for entry in entries]


def joiners_kept(room_id: int) -> int:
    return len(joiners_kept_names(room_id))


async def test_five_joiners_three_named_newest_last_the_others_counted_and_never_again(hub_stopper):
    room_id = next(_room_ids)
    watcher, _ = await joined(room_id)  # anonymous: never named
    release = hold_viewers_slot(room_id)
    for user_id in range(1, 6):
        await joined(room_id, user_id=user_id, name=f"Fan {user_id}")
    await wait_for(lambda: joiners_kept(room_id) == 5, timeout=15)  # reported, waiting for the slot
    release()
    await wait_for(lambda: any("joined" in v for v in viewers_of(watcher)), timeout=15)

    named = [v for v in viewers_of(watcher) if "joined" in v]
    assert len(named) == 1
    assert named[0]["joined"] == [{"id": i, "display_name": f"Fan {i}"} for i in (3, 4, 5)]
    assert named[0]["joined_more"] == 2
    assert named[0]["now"] == 6
    assert joiners_kept(room_id) == 0  # taken by that publish

    # The next `viewers` (one more socket, anonymous) names nobody: each joiner once.
    await joined(room_id)
    await wait_for(lambda: any(v["now"] == 7 for v in viewers_of(watcher)), timeout=15)
    after = viewers_of(watcher)[viewers_of(watcher).index(named[0]) + 1 :]
    assert after
    assert all("joined" not in v and "joined_more" not in v for v in after)


async def test_the_host_is_never_named_and_a_reconnect_counts_once(hub_stopper):
    room_id = next(_room_ids)
    watcher, _ = await joined(room_id)
    release = hold_viewers_slot(room_id)
    await joined(room_id, user_id=1, role="host", name="The Host")
    _, first = await joined(room_id, user_id=2, name="Ana")
    first.close()  # Ana's page reloads within the second
    await joined(room_id, user_id=3, name="Bo")
    await joined(room_id, user_id=2, name="Ana")
    # Every join reported (in one report or two): Ana's second is the last name kept.
    await wait_for(lambda: (kept := joiners_kept_names(room_id))[-1:] == ["2:Ana"] and len(kept) >= 2, timeout=15)
    release()
    await wait_for(lambda: any("joined" in v for v in viewers_of(watcher)), timeout=15)
    named = [v for v in viewers_of(watcher) if "joined" in v]
    assert [v["joined"] for v in named] == [[{"id": 3, "display_name": "Bo"}, {"id": 2, "display_name": "Ana"}]]
    assert "joined_more" not in named[0]


async def test_redis_keeps_a_few_names_of_every_process_and_counts_the_rest():
    """Two processes report 8 joiners each while another holds the slot: Redis keeps the
    newest 8 names, counts the 8 before, and the next publish takes them all at once."""
    backend = get_backend()
    room_id = next(_room_ids)
    release = hold_viewers_slot(room_id)
    for process, first in (("web-a", 100), ("web-b", 200)):
        joiners = RecentJoiners()
        for user_id in range(first, first + 8):
            joiners.add(user_id, f"u{user_id}")
        held = await backend.apresence(process, {room_id: 8}, 5, {room_id: joiners})
        assert not held[room_id].publish
    assert joiners_kept(room_id) == 8
    release()
    result = (await backend.apresence("web-a", {room_id: 8}, 5))[room_id]
    assert result.publish
    assert result.joined == tuple(Joiner(id=i, display_name=f"u{i}") for i in (205, 206, 207))
    assert result.joined_more == 13
    assert result.viewers_event()["joined_more"] == 13
    release()
    again = (await backend.apresence("web-b", {room_id: 8}, 5))[room_id]
    assert (again.publish, again.joined, again.joined_more) == (False, (), 0)  # nothing new


def test_embedded_presence_keeps_joiners_until_a_viewers_takes_them(monkeypatch):
    """The embedded default keeps the joiners in the web process's memory, by the same rules."""
    clock = [1000.0]
    monkeypatch.setattr(db_backend, "time", types.SimpleNamespace(monotonic=lambda: clock[0]))
    backend = DatabaseBackend()
    room_id = next(_room_ids)

    def report(count: int, *joins: tuple[int, str]) -> Any:
        joiners = RecentJoiners()
        for user_id, name in joins:
            joiners.add(user_id, name)
        return asyncio.run(backend.apresence("web", {room_id: count}, 5, {room_id: joiners}))[room_id]

    first = report(1, (1, "Ana"))
    assert first.publish
    assert first.viewers_event() == {"now": 1, "peak": 1, "views": 0, "joined": [{"id": 1, "display_name": "Ana"}]}
    clock[0] += 0.5
    assert not report(3, (2, "Bo"), (3, "Cy")).publish  # within the second: kept
    assert not report(3, (1, "Ana"), (2, "Bo")).publish  # Ana again, Bo reconnecting
    clock[0] += 0.6
    taken = report(3)
    assert taken.publish
    assert [j.display_name for j in taken.joined] == ["Cy", "Ana", "Bo"]  # each once, newest last
    assert taken.joined_more == 0
    clock[0] += 1.1
    assert not report(3).publish  # nothing changed, nobody joined
    clock[0] += 1.1
    crowd = report(25, *((i, f"u{i}") for i in range(100, 120)))
    assert crowd.publish
    assert [j.id for j in crowd.joined] == [117, 118, 119]
    assert crowd.joined_more == 17
    clock[0] += 1.1
    assert set(report(26).viewers_event()) == {"now", "peak", "views"}
