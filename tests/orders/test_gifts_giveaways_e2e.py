"""The demo story of gifts and giveaways, with real processes over real sockets.

localstripe, uvicorn, a Celery worker and Celery beat run as in production, on the test
database and this suite's Redis index. Over HTTP and WebSockets (the `websockets`
client): a viewer tops up coins and pays at localstripe, whose signed webhook reaches
the server and the worker credits the coins; the viewer's gifts show on every socket.
The host starts a giveaway, viewers enter by typing its keyword as a comment, beat and
the worker draw it at the close, `manage.py verify_giveaway` confirms the draw from the
public API, the winner claims the prize.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import redis
from channels.db import database_sync_to_async
from django.conf import settings as django_settings
from django.db import connection
from websockets.asyncio.client import ClientConnection, connect

from orders import localstripe_server, stripe_api
from rooms.models import GiveawayWinner, Room
from tests import factories
from tests.coins import SHIPPING, gift
from tests.orders.conftest import WEBHOOK_SECRET
from tests.servers import BASE_DIR, database_url, free_port, start_uvicorn, wait_for_port

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def stack(tmp_path: Path, settings: Any, realtime_prefix: str) -> Iterator[dict[str, Any]]:
    if connection.vendor != "postgresql" or not django_settings.REDIS_URL:
        pytest.skip("the end-to-end test needs PostgreSQL and Redis (DATABASE_URL, REDIS_URL)")
    stripe_port = free_port()
    api_base = f"http://127.0.0.1:{stripe_port}"
    env = {
        **os.environ,
        "PYTHONUNBUFFERED": "1",
        "DATABASE_URL": database_url(),
        "REDIS_URL": django_settings.REDIS_URL,
        "LIVESHOP_REDIS_PREFIX": realtime_prefix,
        "STRIPE_SECRET_KEY": "sk_test_e2e",
        "STRIPE_API_BASE": api_base,
        "STRIPE_WEBHOOK_SECRET": WEBHOOK_SECRET,
        "LIVESHOP_VAR_DIR": str(tmp_path),
        "CELERY_TASK_LOG_LEVEL": "INFO",
    }
    logs = {name: (tmp_path / f"{name}.log").open("w") for name in ("stripe", "worker", "beat")}
    celery = [sys.executable, "-m", "celery", "-A", "liveshop"]
    processes = {
        "stripe": subprocess.Popen(
            [sys.executable, "-m", "orders.localstripe_server", "--port", str(stripe_port)],
            cwd=BASE_DIR, env=env, stdout=logs["stripe"], stderr=subprocess.STDOUT,
        ),
        "worker": subprocess.Popen(
            [*celery, "worker", "-P", "solo", "-l", "info", "--without-mingle", "--without-gossip",
             "--without-heartbeat"],
            cwd=BASE_DIR, env=env, stdout=logs["worker"], stderr=subprocess.STDOUT,
        ),
        "beat": subprocess.Popen(
            [*celery, "beat", "-l", "info", "--schedule", str(tmp_path / "beat-schedule")],
            cwd=BASE_DIR, env=env, stdout=logs["beat"], stderr=subprocess.STDOUT,
        ),
    }  # fmt: skip
    web = None
    try:
        wait_for_port(stripe_port, processes["stripe"])
        web = start_uvicorn(env, tmp_path, name="web")
        localstripe_server.webhook_register(
            api_base=api_base, url=f"{web.http}/api/v1/payments/stripe/webhook/", secret=WEBHOOK_SECRET
        )
        settings.STRIPE_SECRET_KEY = env["STRIPE_SECRET_KEY"]
        settings.STRIPE_API_BASE = api_base
        yield {"web": web, "env": env, "logs": tmp_path}
    finally:
        if web is not None:
            web.stop()
        for process in processes.values():
            process.terminate()
        for process in processes.values():
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        for log in logs.values():
            log.close()
        # Leave no periodic task of this beat in the broker (only this suite's index).
        broker = redis.Redis.from_url(django_settings.REDIS_URL)
        broker.delete("celery", "unacked", "unacked_index")
        broker.close()


def http(method: str, url: str, token: str | None = None, body: Any = None, **headers: str) -> tuple[int, Any]:
    request = urllib.request.Request(url, method=method, data=json.dumps(body).encode() if body is not None else None)
    request.add_header("Content-Type", "application/json")
    if token:
        request.add_header("Authorization", f"Token {token}")
    for name, value in headers.items():
        request.add_header(name.replace("_", "-"), value)
    try:
        with urllib.request.urlopen(request, timeout=15) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"null")


async def call(*args: Any, **kwargs: Any) -> tuple[int, Any]:
    return await asyncio.to_thread(http, *args, **kwargs)


async def next_of(ws: ClientConnection, event_type: str, timeout: float = 10) -> dict[str, Any]:
    async with asyncio.timeout(timeout):
        while True:
            frame = json.loads(await ws.recv())
            for event in frame.get("events", [frame]):
                if event["type"] == event_type:
                    return dict(event)


def manage(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=BASE_DIR, env=env, capture_output=True, text=True, timeout=60
    )


@database_sync_to_async
def _cast() -> dict[str, Any]:
    host = factories.HostFactory.create(user=factories.UserFactory.create(display_name="Farmer Chen"))
    shop = factories.ShopFactory.create(owner=host.user)
    sku = factories.SkuFactory.create(product=factories.ProductFactory.create(shop=shop), stock=10)
    room = factories.RoomFactory.create(host=host, status=Room.Status.LIVE)
    viewers = [factories.UserFactory.create(display_name=f"Viewer {i}") for i in range(2)]
    tokens = {user.pk: factories.api_token(user) for user in [host.user, *viewers]}
    return {"host": host.user, "sku": sku, "room": room, "viewers": viewers, "tokens": tokens, "hotpot": gift()}


async def test_top_up_gift_giveaway_verify_claim(stack: dict[str, Any]) -> None:
    web, env = stack["web"], stack["env"]
    cast = await _cast()
    room, sku, hotpot = cast["room"], cast["sku"], cast["hotpot"]
    fan, other = cast["viewers"]
    token = cast["tokens"]
    api = f"{web.http}/api/v1"
    base = f"{web.ws}/ws/rooms/{room.pk}/"

    tickets = []
    for user in (fan, other):
        status, ticket = await call("POST", f"{api}/rooms/{room.pk}/ws-ticket/", token[user.pk])
        assert status == 201
        tickets.append(ticket["ticket"])
    async with (
        connect(f"{base}?ticket={tickets[0]}") as fan_ws,
        connect(f"{base}?ticket={tickets[1]}") as other_ws,
        connect(base) as anonymous_ws,
    ):
        sockets = (fan_ws, other_ws, anonymous_ws)
        for ws in sockets:
            snapshot = json.loads(await ws.recv())
            assert (snapshot["type"], snapshot["data"]["giveaways"]) == ("room.snapshot", [])

        # 1. A top-up paid at localstripe; the coins arrive from the webhook, through the worker.
        status, top_up = await call(
            "POST", f"{api}/wallet/top-ups/", token[fan.pk], {"coins": 200}, Idempotency_Key="t1"
        )
        assert (status, top_up["status"], top_up["amount"]) == (201, "pending", 2000)
        intents = stripe_api.client().v1.payment_intents
        intent_id = top_up["payment"]["payment_intent"]
        await asyncio.to_thread(intents.update, intent_id, params={"payment_method": "pm_card_visa"})
        assert (await asyncio.to_thread(intents.confirm, intent_id))["status"] == "succeeded"
        deadline = time.monotonic() + 30
        while (await call("GET", f"{api}/wallet/", token[fan.pk]))[1]["coins"] != 200:
            assert time.monotonic() < deadline, (stack["logs"] / "worker.log").read_text()[-3000:]
            await asyncio.sleep(0.2)

        # 2. Two hotpots (99 coins each): every socket sees the gift.
        status, sent = await call(
            "POST", f"{api}/rooms/{room.pk}/gifts/", token[fan.pk], {"gift": hotpot.pk, "quantity": 2},
            Idempotency_Key="g1",
        )  # fmt: skip
        assert (status, sent["coins"], sent["balance"]) == (201, 198, 2)
        for ws in sockets:
            event = await next_of(ws, "gift.sent")
            assert event["data"]["user"] == {"id": fan.pk, "display_name": "Viewer 0"}
            assert (event["data"]["gift"]["name"], event["data"]["quantity"], event["data"]["coins"]) == (
                "Chongqing hotpot",
                2,
                198,
            )
        status, board = await call("GET", f"{api}/rooms/{room.pk}/gifts/leaderboard/")
        assert board == [{"user": {"id": fan.pk, "display_name": "Viewer 0"}, "coins": 198}]
        status, too_much = await call("POST", f"{api}/rooms/{room.pk}/gifts/", token[fan.pk], {"gift": hotpot.pk})
        assert (status, too_much["code"]) == (402, "insufficient_coins")

        # 3. The host starts a giveaway of one tin; viewers enter by typing the keyword.
        status, started = await call(
            "POST", f"{api}/rooms/{room.pk}/giveaways/", token[cast["host"].pk],
            {"title": "A tin of tea", "prize_sku": sku.pk, "winners": 1, "duration_s": 5, "keyword": "Hotpot"},
        )  # fmt: skip
        assert status == 201, started
        assert (await next_of(anonymous_ws, "giveaway.started"))["data"]["giveaway"]["id"] == started["id"]
        for ws, text in ((fan_ws, "hotpot"), (other_ws, " HOTPOT ")):
            await ws.send(json.dumps({"type": "comment.send", "text": text, "nonce": "k"}))
            await next_of(ws, "comment.ack")

        # 4. Beat and the worker draw it at the close.
        drawn = await next_of(anonymous_ws, "giveaway.drawn", timeout=15)
        status, detail = await call("GET", f"{api}/giveaways/{started['id']}/")
        assert detail["status"] == "drawn"
        assert detail["entries"] == 2
        late = datetime.fromisoformat(detail["drawn_at"]) - datetime.fromisoformat(detail["closes_at"])
        # Beat sends the sweep every second; the rest is the broker and a worker on a busy machine.
        assert late.total_seconds() < 4
        assert drawn["data"]["seed"] == detail["seed"]
        winner_id = drawn["data"]["winners"][0]["id"]
        assert winner_id in (fan.pk, other.pk)
        assert "rooms.tasks.giveaways_sweep_task" in (stack["logs"] / "worker.log").read_text()

    # 5. Anyone verifies the draw from the public API.
    url = f"{api}/giveaways/{started['id']}/"
    verified = await asyncio.to_thread(manage, env, "verify_giveaway", "--url", url)
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert "2 entrants in the draw" in verified.stdout
    assert verified.stdout.rstrip().endswith("VERIFIED")

    # 6. The winner claims the tin; the other cannot.
    loser_id = other.pk if winner_id == fan.pk else fan.pk
    status, order = await call("POST", f"{url}claim/", token[winner_id], {"shipping": SHIPPING})
    assert (status, order["status"], order["total"]) == (201, "paid", 0)
    status, refused = await call("POST", f"{url}claim/", token[loser_id], {"shipping": SHIPPING})
    assert (status, refused["code"]) == (403, "permission_denied")

    # A hand-picked winner would not pass the verifier.
    await database_sync_to_async(GiveawayWinner.objects.filter(giveaway_id=started["id"]).update)(user_id=loser_id)
    tampered = await asyncio.to_thread(manage, env, "verify_giveaway", "--url", url)
    assert tampered.returncode == 1
    assert "MISMATCH" in tampered.stdout
