"""The room socket under bad input and a failing database: an `error` frame or a close
code, never a crashed consumer (tests/chaos/test_ws_fuzz.py does the same over real
sockets against uvicorn)."""

from __future__ import annotations

import uuid

import pytest
from channels.db import database_sync_to_async as sync_to_async
from django.db import InterfaceError, OperationalError

from rooms import consumers
from rooms.models import Comment
from rooms.realtime import intake
from tests.rooms.conftest import Socket
from tests.rooms.test_consumer import expect_error, open_as, snapshot_of, ticket_for

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.mark.parametrize("error", [OperationalError("server closed the connection"), InterfaceError("closed")])
async def test_a_lost_database_during_a_comment_is_an_error_frame(ws, live_room, viewer, monkeypatch, error):
    socket = await open_as(ws, viewer, live_room)
    await snapshot_of(socket)

    def fail(*args, **kwargs):
        raise error

    monkeypatch.setattr(intake, "comments_write", fail)
    data = await expect_error(socket, {"type": "comment.send", "text": "hello", "nonce": "n1"}, "unavailable")
    assert data["nonce"] == "n1"
    assert data["retry_after"] >= 1
    # The socket lives on.
    await socket.send({"type": "ping"})
    assert (await socket.receive_type("pong"))["type"] == "pong"


async def test_a_lost_database_at_connect_closes_1013(ws, live_room, viewer, monkeypatch):
    def fail(*args, **kwargs):
        raise OperationalError("terminating connection due to administrator command")

    monkeypatch.setattr(consumers, "admit", fail)
    socket = await open_as(ws, viewer, live_room)
    assert await socket.closed_with() == 1013


async def test_an_oversized_frame_closes_1009(ws, live_room, viewer, settings):
    settings.WS_MAX_FRAME_BYTES = 1000
    socket = await open_as(ws, viewer, live_room)
    await snapshot_of(socket)
    await socket.send({"type": "comment.send", "text": "x" * 990, "nonce": 1})  # over 1,000 bytes as JSON
    assert await socket.closed_with() == 1009


async def test_a_frame_at_the_limit_is_read(ws, live_room, viewer, settings):
    settings.WS_MAX_FRAME_BYTES = 1000
    socket = await open_as(ws, viewer, live_room)
    await snapshot_of(socket)
    await socket.send({"type": "ping", "pad": "p" * (1000 - len('{"type": "ping", "pad": ""}'))})
    assert (await socket.receive_type("pong"))["type"] == "pong"


async def test_a_binary_frame_is_invalid(ws, live_room, viewer):
    socket = await open_as(ws, viewer, live_room)
    await snapshot_of(socket)
    await socket.communicator.send_input({"type": "websocket.receive", "bytes": b'{"type": "ping"}'})
    reply = await socket.receive_type("error")
    assert reply["data"]["code"] == "invalid"


@pytest.mark.parametrize("text", ["tea\x00time", "\ud800 lone surrogate"])
async def test_text_that_is_not_text_is_invalid(ws, live_room, viewer, text):
    socket = await open_as(ws, viewer, live_room)
    await snapshot_of(socket)
    await expect_error(socket, {"type": "comment.send", "text": text, "nonce": "n"}, "invalid")
    assert not await sync_to_async(Comment.objects.exists)()


async def test_json_nested_too_deep_is_invalid(ws, live_room):
    socket = await ws(f"/ws/rooms/{live_room.pk}/")
    await snapshot_of(socket)
    await socket.send("[" * 2000 + "]" * 2000)  # under the frame limit, past json's recursion limit
    reply = await socket.receive_type("error")
    assert reply["data"]["code"] == "invalid"


async def test_a_flood_of_frames_closes_1008(ws, live_room, viewer):
    socket = await open_as(ws, viewer, live_room)
    await snapshot_of(socket)
    for _ in range(consumers.CLIENT_FRAME_BURST + 50):
        await socket.send({"type": "ping"})
    assert await socket.closed_with() == 1008


async def open_from(address: str, user, room) -> Socket:
    """A signed-in socket whose client is `address` (every other test socket comes from
    127.0.0.1, whose buckets this test must not empty for the rest of the session)."""
    ticket = await ticket_for(user, room)
    socket = Socket(f"/ws/rooms/{room.pk}/?ticket={ticket}")
    socket.communicator.scope["client"] = (address, 50000)  # read when the app starts
    return await socket.connect()


async def test_comments_are_limited_per_ip(hub_stopper, live_room, viewer, other_host, settings):
    """Two people behind one address."""
    settings.RATE_LIMITS = True
    settings.RATE_LIMIT_COMMENT_IP = (1, 2)
    office = f"203.0.113.{uuid.uuid4().int % 250 + 1}"
    first = await open_from(office, viewer, live_room)
    second = await open_from(office, other_host, live_room)
    elsewhere = await open_from("198.51.100.9", other_host, live_room)
    for socket in (first, second, elsewhere):
        await snapshot_of(socket)
    await first.send({"type": "comment.send", "text": "one", "nonce": 1})
    await first.receive_type("comment.ack")
    await second.send({"type": "comment.send", "text": "two", "nonce": 2})
    await second.receive_type("comment.ack")
    data = await expect_error(second, {"type": "comment.send", "text": "three", "nonce": 3}, "rate_limited")
    assert data["retry_after"] >= 1
    await elsewhere.send({"type": "comment.send", "text": "four", "nonce": 4})
    await elsewhere.receive_type("comment.ack")
    for socket in (first, second, elsewhere):
        await socket.disconnect()
