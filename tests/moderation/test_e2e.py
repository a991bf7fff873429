"""Moderation across two real uvicorn processes sharing Redis, over real sockets: the acts
go to one process over HTTP, the sockets they touch are on the other."""

from __future__ import annotations

import asyncio
import json
import urllib.error

import pytest
from channels.db import database_sync_to_async
from django.conf import settings
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from tests.rooms.test_realtime_e2e import recv_event, redis_env, token_of
from tests.servers import http_json, start_uvicorn

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


@pytest.fixture(scope="module")
def two_servers(realtime_prefix, tmp_path_factory):
    if not settings.REDIS_URL:
        pytest.skip("needs REDIS_URL")
    logs = tmp_path_factory.mktemp("uvicorn-moderation")
    servers = [start_uvicorn(redis_env(realtime_prefix), logs, name=f"mod{i}") for i in range(2)]
    yield servers
    for server in servers:
        server.stop()


async def closed_code(ws, timeout: float = 5) -> int:
    async def read_until_closed() -> None:
        while True:
            await ws.recv()

    with pytest.raises(ConnectionClosed) as closed:
        await asyncio.wait_for(read_until_closed(), timeout)
    assert closed.value.rcvd is not None
    return closed.value.rcvd.code


async def test_moderation_reaches_sockets_on_the_other_process(two_servers, live_room, host, staff, viewer, troll):
    a, b = two_servers
    people = {"host": host, "staff": staff, "viewer": viewer, "troll": troll}
    tokens = {role: await database_sync_to_async(token_of)(user) for role, user in people.items()}

    def call(method: str, path: str, who: str, body: dict | None = None):
        return asyncio.to_thread(http_json, method, f"{a.http}/api/v1/{path}", token=tokens[who], body=body)

    ticket_path = f"rooms/{live_room.pk}/ws-ticket/"
    troll_tickets = [(await call("POST", ticket_path, "troll"))["ticket"] for _ in range(2)]
    viewer_ticket = (await call("POST", ticket_path, "viewer"))["ticket"]
    base = f"/ws/rooms/{live_room.pk}/"

    async with (
        connect(f"{b.ws}{base}?ticket={troll_tickets[0]}") as troll_ws,
        connect(f"{b.ws}{base}?ticket={viewer_ticket}") as viewer_ws,
    ):
        for ws in (troll_ws, viewer_ws):
            assert json.loads(await ws.recv())["type"] == "room.snapshot"

        # A banned word added on A blocks the next comment on B, which was never restarted.
        await call("POST", "moderation/banned-words/", "staff", {"word": "counterfeit"})
        await viewer_ws.send(json.dumps({"type": "comment.send", "text": "Counterfeit?", "nonce": "w"}))
        assert (await recv_event(viewer_ws, "error"))["data"]["code"] == "comment_blocked"

        # A mute on A: the muted user's socket on B hears it.
        await call("POST", f"rooms/{live_room.pk}/mutes/", "host", {"user": viewer.pk, "duration_s": 120})
        assert (await recv_event(viewer_ws, "moderation.muted"))["data"]["room"] == live_room.pk

        # A comment removed on A leaves the screens on B.
        await troll_ws.send(json.dumps({"type": "comment.send", "text": "spam spam", "nonce": "s"}))
        comment_id = (await recv_event(troll_ws, "comment.ack"))["data"]["id"]
        await call("DELETE", f"comments/{comment_id}/", "host")
        assert (await recv_event(viewer_ws, "comment.deleted"))["data"] == {"id": comment_id}

        # A ban on A closes the banned user's socket on B at once...
        await call("POST", f"rooms/{live_room.pk}/bans/", "host", {"user": troll.pk, "reason": "spam"})
        assert await closed_code(troll_ws) == 4403
        # ...and it cannot reopen: not with a ticket issued before, not with a new one.
        async with connect(f"{a.ws}{base}?ticket={troll_tickets[1]}") as again:
            assert await closed_code(again) == 4403
        with pytest.raises(urllib.error.HTTPError) as refused:
            await call("POST", ticket_path, "troll")
        assert refused.value.code == 403

        # Everyone else stays.
        await viewer_ws.send(json.dumps({"type": "ping"}))
        assert await recv_event(viewer_ws, "pong") == {"type": "pong"}


async def test_a_role_change_reaches_the_users_open_socket_on_the_other_process(two_servers, live_room, host, viewer):
    """Audit item 14: a socket used to keep the role it had at connect. Appointing a
    moderator on A gives the open socket on B the moderator's exemptions (slow mode) and
    full feed at once; removing them takes both back."""
    a, b = two_servers
    await database_sync_to_async(type(live_room).objects.filter(pk=live_room.pk).update)(slow_mode_s=600)
    tokens = {who: await database_sync_to_async(token_of)(user) for who, user in (("host", host), ("viewer", viewer))}

    def call(method: str, path: str, who: str, body: dict | None = None):
        return asyncio.to_thread(http_json, method, f"{a.http}/api/v1/{path}", token=tokens[who], body=body)

    ticket = (await call("POST", f"rooms/{live_room.pk}/ws-ticket/", "viewer"))["ticket"]
    async with connect(f"{b.ws}/ws/rooms/{live_room.pk}/?ticket={ticket}") as viewer_ws:
        snapshot = json.loads(await viewer_ws.recv())
        assert snapshot["data"]["you"]["role"] == "viewer"

        async def comment(nonce: str) -> dict:
            """The answer to a comment: its `comment.ack` or its `error`."""
            await viewer_ws.send(json.dumps({"type": "comment.send", "text": f"is it fresh? {nonce}", "nonce": nonce}))
            async with asyncio.timeout(10):
                while True:
                    frame = json.loads(await viewer_ws.recv())
                    for event in frame.get("events", [frame]):
                        if event["type"] in ("comment.ack", "error") and event["data"].get("nonce") == nonce:
                            return event

        assert (await comment("v1"))["type"] == "comment.ack"
        assert (await comment("v2"))["data"]["code"] == "rate_limited"  # slow mode, as a viewer

        await call("POST", f"rooms/{live_room.pk}/moderators/", "host", {"user": viewer.pk})
        assert (await recv_event(viewer_ws, "you.updated"))["data"] == {"room": live_room.pk, "role": "moderator"}
        assert (await comment("m1"))["type"] == "comment.ack"  # moderators are exempt
        assert (await comment("m2"))["type"] == "comment.ack"

        await call("DELETE", f"rooms/{live_room.pk}/moderators/{viewer.pk}/", "host")
        assert (await recv_event(viewer_ws, "you.updated"))["data"] == {"room": live_room.pk, "role": "viewer"}
        assert (await comment("v3"))["data"]["code"] == "rate_limited"
