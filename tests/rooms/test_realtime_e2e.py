"""End to end over real sockets: uvicorn processes, Redis, the `websockets` client.

- one process: ticket, snapshot, comment, ack, close codes as a real client sees them;
- two processes sharing Redis: the same events in the same seq order on both, and a
  killed process's viewers leave `viewers.now` within seconds; users who joined on
  either process are named in the one `viewers` that follows;
- the embedded default (no Redis, SQLite): an event published by another process (as the
  Celery worker does) reaches the web process's sockets.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from typing import Any

import pytest
from channels.db import database_sync_to_async
from django.conf import settings
from django.db import connection
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from rooms.broadcast import room_publish
from rooms.realtime.backend import get_backend
from rooms.realtime.redis_backend import RedisBackend
from tests.factories import api_token
from tests.servers import BASE_DIR, Server, http_json, start_uvicorn

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def redis_env(prefix: str) -> dict[str, str]:
    db = connection.settings_dict
    return {
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}",
        "REDIS_URL": settings.REDIS_URL,
        "LIVESHOP_REDIS_PREFIX": prefix,
        "PRESENCE_TTL_S": "2",
        "CONN_MAX_AGE": "0",
    }


@pytest.fixture(scope="module")
def two_servers(realtime_prefix, tmp_path_factory):
    if not settings.REDIS_URL:
        pytest.skip("needs REDIS_URL")
    logs = tmp_path_factory.mktemp("uvicorn")
    servers = [start_uvicorn(redis_env(realtime_prefix), logs, name=f"web{i}") for i in range(2)]
    yield servers
    for server in servers:
        server.stop()


async def recv_event(ws: ClientConnection, event_type: str, timeout: float = 5) -> dict[str, Any]:
    async with asyncio.timeout(timeout):
        while True:
            frame = json.loads(await ws.recv())
            for event in frame.get("events", [frame]):
                if event["type"] == event_type:
                    return event


async def drain(ws: ClientConnection, quiet: float = 0.6) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    while True:
        try:
            frame = json.loads(await asyncio.wait_for(ws.recv(), quiet))
        except TimeoutError:
            return events
        events.extend(frame.get("events", [frame]))


def token_of(user) -> str:
    return api_token(user)


async def test_one_process_end_to_end(two_servers: list[Server], live_room, viewer, host):
    server = two_servers[0]
    base = f"{server.ws}/ws/rooms/{live_room.pk}/"
    viewer_token = await database_sync_to_async(token_of)(viewer)
    host_token = await database_sync_to_async(token_of)(host)
    ticket = await asyncio.to_thread(
        http_json, "POST", f"{server.http}/api/v1/rooms/{live_room.pk}/ws-ticket/", token=viewer_token
    )

    async with connect(base) as anonymous, connect(f"{base}?ticket={ticket['ticket']}") as commenter:
        snapshot = json.loads(await commenter.recv())
        assert snapshot["type"] == "room.snapshot"
        assert snapshot["data"]["you"]["user_id"] == viewer.pk
        assert json.loads(await anonymous.recv())["data"]["you"]["role"] == "anonymous"

        await commenter.send(json.dumps({"type": "ping"}))
        assert (await recv_event(commenter, "pong")) == {"type": "pong"}
        await commenter.send(json.dumps({"type": "comment.send", "text": "多少钱一斤?", "nonce": "q1"}))
        ack = await recv_event(commenter, "comment.ack")
        new = await recv_event(anonymous, "comment.new")
        assert new["data"]["id"] == ack["data"]["id"]
        assert new["data"]["text"] == "多少钱一斤?"

        # The ticket was used: a second socket with it is refused, with the code visible.
        async with connect(f"{base}?ticket={ticket['ticket']}") as reused:
            with pytest.raises(ConnectionClosed) as closed:
                await reused.recv()
            assert closed.value.rcvd is not None
            assert closed.value.rcvd.code == 4401
        async with connect(base, origin="https://evil.example") as foreign:  # type: ignore[arg-type]
            with pytest.raises(ConnectionClosed) as closed:
                await foreign.recv()
            assert closed.value.rcvd is not None
            assert closed.value.rcvd.code == 4403

        await asyncio.to_thread(http_json, "POST", f"{server.http}/api/v1/rooms/{live_room.pk}/end/", token=host_token)
        assert (await recv_event(anonymous, "room.status"))["data"] == {"status": "ended"}
        with pytest.raises(ConnectionClosed) as closed:
            await drain(anonymous, quiet=5)
        assert closed.value.rcvd is not None
        assert closed.value.rcvd.code == 1000


async def test_joiners_on_two_processes_are_named_in_one_viewers(two_servers, live_room, viewer, other_host):
    a, b = two_servers
    base = f"/ws/rooms/{live_room.pk}/"
    tickets = {}
    for user, server in ((viewer, a), (other_host, b)):
        token = await database_sync_to_async(token_of)(user)
        url = f"{server.http}/api/v1/rooms/{live_room.pk}/ws-ticket/"
        tickets[user.pk] = (await asyncio.to_thread(http_json, "POST", url, token=token))["ticket"]
    backend = get_backend()
    assert isinstance(backend, RedisBackend)
    slot = backend.room_key(live_room.pk, "viewers-pub")
    kept = backend.room_key(live_room.pk, "joined")

    async with connect(a.ws + base) as watcher:
        assert json.loads(await watcher.recv())["type"] == "room.snapshot"
        # Hold the room's `viewers` slot, as a process that has just published would: the
        # reports of both processes leave their joiners in Redis meanwhile.
        backend._sync.set(slot, 1, px=60_000)
        try:
            async with (
                connect(f"{a.ws}{base}?ticket={tickets[viewer.pk]}") as on_a,
                connect(f"{b.ws}{base}?ticket={tickets[other_host.pk]}") as on_b,
            ):
                for ws in (on_a, on_b):
                    assert json.loads(await ws.recv())["type"] == "room.snapshot"
                async with asyncio.timeout(15):
                    while await asyncio.to_thread(backend._sync.llen, kept) < 2:
                        await asyncio.sleep(0.05)
                backend._sync.delete(slot)
                async with asyncio.timeout(15):
                    while "joined" not in (data := (await recv_event(watcher, "viewers", timeout=15))["data"]):
                        pass
        finally:
            backend._sync.delete(slot)
    assert sorted(data["joined"], key=lambda j: j["id"]) == sorted(
        [{"id": viewer.pk, "display_name": "Viewer Li"}, {"id": other_host.pk, "display_name": "Cadre Zhou"}],
        key=lambda j: j["id"],
    )
    assert "joined_more" not in data
    assert data["now"] == 3


async def test_two_processes_same_events_same_order_and_dead_viewers_leave(two_servers, live_room, viewer):
    a, b = two_servers
    base = f"/ws/rooms/{live_room.pk}/"
    on_a = [await connect(a.ws + base) for _ in range(3)]
    on_b = [await connect(b.ws + base) for _ in range(2)]
    try:
        for ws in [*on_a, *on_b]:
            assert json.loads(await ws.recv())["type"] == "room.snapshot"
        # Both processes report their sockets: 5 in all.
        async with asyncio.timeout(6):
            while (await recv_event(on_a[0], "viewers"))["data"]["now"] != 5:
                pass

        published = []
        for i in range(40):
            published.append(await asyncio.to_thread(room_publish, live_room.pk, "order.placed", {"n": i}))
        seen = [[e for e in await drain(ws) if e["type"] == "order.placed"] for ws in [*on_a, *on_b]]
        for events in seen:
            assert [e["seq"] for e in events] == published
            assert [e["data"]["n"] for e in events] == list(range(40))

        # Process B dies without a word: its 2 viewers leave viewers.now within seconds.
        b.kill()
        async with asyncio.timeout(8):
            while (await recv_event(on_a[0], "viewers"))["data"]["now"] != 3:
                pass
        counts = await asyncio.to_thread(http_json, "GET", f"{a.http}/api/v1/rooms/{live_room.pk}/")
        assert counts["viewers_now"] == 3
    finally:
        for ws in on_a:
            await ws.close()


# --- The embedded default ---------------------------------------------------------------------


def manage(env: dict[str, str], *args: str) -> str:
    result = subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


@pytest.fixture
def embedded(tmp_path):
    """A `make run`-like node without Redis: SQLite under a fresh var/, the demo seeded."""
    unset = frozenset({"DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL", "REALTIME_BACKEND"})
    env = {k: v for k, v in os.environ.items() if k not in unset} | {
        "LIVESHOP_VAR_DIR": str(tmp_path / "var"),
        "PYTHONUNBUFFERED": "1",
        "DEBUG": "1",  # as `make run` sets it
    }
    manage(env, "migrate", "--noinput", "-v0")
    manage(env, "seed_demo")
    ids = json.loads(
        manage(
            env,
            "shell",
            "-c",
            "import json; from rooms.models import Room; from liveshop.models import User; "
            "from liveshop.services import user_token_create; "
            "room = Room.objects.get(status='live'); viewer = User.objects.get(username='viewer'); "
            "print(json.dumps({'room': room.pk, 'token': user_token_create(user=viewer)}))",
        )
        .strip()
        .splitlines()[-1]
    )
    server = start_uvicorn(env, tmp_path, drop=unset)
    yield env, server, ids
    server.stop()


async def test_embedded_default_events_cross_processes(embedded):
    env, server, ids = embedded
    room_id = ids["room"]
    base = f"{server.ws}/ws/rooms/{room_id}/"
    ticket = await asyncio.to_thread(
        http_json, "POST", f"{server.http}/api/v1/rooms/{room_id}/ws-ticket/", token=ids["token"]
    )
    async with connect(base) as watcher, connect(f"{base}?ticket={ticket['ticket']}") as commenter:
        first = json.loads(await watcher.recv())
        assert first["type"] == "room.snapshot"
        json.loads(await commenter.recv())

        # A comment: web process -> event log -> the same process's sockets.
        await commenter.send(json.dumps({"type": "comment.send", "text": "hello", "nonce": 1}))
        assert (await recv_event(watcher, "comment.new"))["data"]["text"] == "hello"

        # Another process publishes, as the Celery worker does for a paid order.
        script = (
            "from rooms.broadcast import room_publish; "
            f"print(room_publish({room_id}, 'order.placed', {{'buyer': 'L**', 'quantity': 2}}))"
        )
        seq = int(await asyncio.to_thread(lambda: manage(env, "shell", "-c", script).strip().splitlines()[-1]))
        placed = await recv_event(watcher, "order.placed")
        assert placed["seq"] == seq
        assert placed["data"] == {"buyer": "L**", "quantity": 2}

    # Replay from the event log.
    async with connect(f"{base}?since={first['seq']}") as again:
        replayed = await drain(again)
        assert [e["type"] for e in replayed if e["type"] in ("comment.new", "order.placed")] == [
            "comment.new",
            "order.placed",
        ]
        assert replayed[-1]["seq"] >= seq
