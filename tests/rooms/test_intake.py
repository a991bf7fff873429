"""The room sockets' comment intake (rooms/realtime/intake.py): judged from what the
process keeps in memory, written in batches, acknowledged only after the commit, then
announced in order. Real Redis and PostgreSQL, the ASGI app in-process."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from typing import Any

import pytest
from channels.db import database_sync_to_async as sync_to_async

from rooms import services
from rooms.broadcast import room_user_close
from rooms.models import Comment
from rooms.realtime import intake
from rooms.realtime.hub import get_hub
from tests import factories
from tests.rooms.test_consumer import events_until, open_as, snapshot_of

pytestmark = pytest.mark.django_db(transaction=True)


async def until(condition: Callable[[], bool], timeout: float = 10) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "condition not met in time"
        await asyncio.sleep(0.01)


class HeldWrites:
    """`comments_write` that holds the first batch until released: what arrives meanwhile
    queues up for the next one."""

    def __init__(self) -> None:
        self.batches: list[list[str]] = []
        self.release = threading.Event()
        self._write = intake.comments_write

    def __call__(self, batch: Any) -> Any:
        self.batches.append([c.text for c in batch])
        if len(self.batches) == 1:
            assert self.release.wait(30)
        return self._write(batch)


def queued() -> int:
    return len(intake.get_intake().queue)


async def test_comments_that_arrive_during_a_write_share_the_next_batch_each_acked_before_announced(
    ws, live_room, host, settings, monkeypatch
):
    settings.COMMENT_BATCH_MS = 0
    held = HeldWrites()
    monkeypatch.setattr(intake, "comments_write", held)
    authors = await sync_to_async(lambda: [factories.UserFactory.create() for _ in range(5)])()
    host_socket = await open_as(ws, host, live_room)  # the host gets every comment
    await snapshot_of(host_socket)
    sockets = [await open_as(ws, user, live_room) for user in authors]
    for socket in sockets:
        await snapshot_of(socket)

    await sockets[0].send({"type": "comment.send", "text": "first", "nonce": "0-0"})
    await until(lambda: len(held.batches) == 1)  # written on a worker thread, held there
    for i, socket in enumerate(sockets):
        for n in range(1, 4):
            await socket.send({"type": "comment.send", "text": f"c{i}-{n}", "nonce": f"{i}-{n}"})
    await until(lambda: queued() == 15)
    held.release.set()

    # Every author: each of its acks before the comment.new of the same comment.
    for i, socket in enumerate(sockets):
        mine = 4 if i == 0 else 3

        def done(got: list[dict[str, Any]], mine: int = mine) -> bool:
            return sum(e["type"] == "comment.ack" for e in got) == mine

        events = await events_until(socket, done, timeout=15)
        acks = [e for e in events if e["type"] == "comment.ack"]
        assert len(acks) == mine
        for ack in acks:
            later = events[events.index(ack) :]
            news = [e for e in events if e["type"] == "comment.new" and e["data"]["id"] == ack["data"]["id"]]
            assert all(n in later for n in news), "a comment.new before its author's ack"
    assert held.batches[0] == ["first"]
    assert len(held.batches) == 2, held.batches  # the 15 that came during the first write
    assert sorted(held.batches[1]) == sorted(f"c{i}-{n}" for i in range(5) for n in range(1, 4))

    # The host got all 16, in seq order, and seq order is the order of the rows.
    events = await events_until(host_socket, lambda got: sum(e["type"] == "comment.new" for e in got) == 16)
    comments = [e for e in events if e["type"] == "comment.new"]
    assert [c["seq"] for c in comments] == sorted(c["seq"] for c in comments)
    assert [c["data"]["id"] for c in comments] == sorted(c["data"]["id"] for c in comments)
    assert comments[0]["data"]["text"] == "first"
    assert await sync_to_async(Comment.objects.filter(room=live_room).count)() == 16


async def test_a_comment_whose_socket_closes_before_its_batch_is_not_written(
    ws, live_room, viewer, settings, monkeypatch
):
    settings.COMMENT_BATCH_MS = 0
    held = HeldWrites()
    monkeypatch.setattr(intake, "comments_write", held)
    other = await sync_to_async(factories.UserFactory.create)()
    first = await open_as(ws, other, live_room)
    await snapshot_of(first)
    leaving = await open_as(ws, viewer, live_room)
    await snapshot_of(leaving)
    await first.send({"type": "comment.send", "text": "written", "nonce": "a"})
    await until(lambda: len(held.batches) == 1)
    await leaving.send({"type": "comment.send", "text": "never written", "nonce": "b"})
    await until(lambda: queued() == 1)
    # A ban closes the user's sockets: what they sent and was not yet written is dropped.
    await sync_to_async(room_user_close)(live_room.pk, viewer.pk, 4403)
    assert await leaving.closed_with(5) == 4403
    held.release.set()
    assert (await first.receive_type("comment.ack", timeout=10))["data"]["nonce"] == "a"
    await until(lambda: queued() == 0 and not intake.get_intake().writing)
    texts = await sync_to_async(lambda: list(Comment.objects.values_list("text", flat=True)))()
    assert texts == ["written"]
    assert held.batches == [["written"]]


async def test_the_rooms_comment_settings_apply_to_the_next_comment(ws, live_room, viewer):
    socket = await open_as(ws, viewer, live_room)
    await snapshot_of(socket)
    await socket.send({"type": "comment.send", "text": "before slow mode", "nonce": "a"})
    await socket.receive_type("comment.ack")
    hub_room = (await get_hub()).rooms[live_room.pk]
    assert hub_room.comment_rules is not None  # kept in memory from the first comment
    await sync_to_async(services.room_update)(room=live_room, slow_mode_s=30)
    await until(lambda: hub_room.comment_rules is None)  # the control message went by
    await socket.send({"type": "comment.send", "text": "one", "nonce": "b"})
    await socket.receive_type("comment.ack")
    await socket.send({"type": "comment.send", "text": "two", "nonce": "c"})
    error = await socket.receive_type("error")
    assert error["data"]["code"] == "rate_limited"
    assert "Slow mode" in error["data"]["detail"]
    assert error["data"]["nonce"] == "c"


async def test_new_account_protection_set_during_the_show_applies(ws, live_room, settings):
    newcomer = await sync_to_async(factories.UserFactory.create)()
    socket = await open_as(ws, newcomer, live_room)
    await snapshot_of(socket)
    await socket.send({"type": "comment.send", "text": "hello", "nonce": "a"})
    await socket.receive_type("comment.ack")
    hub_room = (await get_hub()).rooms[live_room.pk]
    await sync_to_async(services.room_update)(room=live_room, comment_min_account_age_s=3600)
    await until(lambda: hub_room.comment_rules is None)
    await socket.send({"type": "comment.send", "text": "again", "nonce": "b"})
    error = await socket.receive_type("error")
    assert error["data"]["code"] == "account_too_new"
