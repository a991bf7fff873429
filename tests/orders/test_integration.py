"""The whole payment path with real processes over real sockets.

A buyer orders over HTTP from uvicorn, pays with a test card through the real `stripe`
SDK against a running localstripe, localstripe sends its signed webhook to the live
server, and a real Celery worker on the Redis broker settles the order.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings as django_settings
from django.db import connection

from orders import localstripe_server, stripe_api
from orders.models import Order, StripeEvent
from orders.services.ledger import ledger_check
from rooms.models import Room
from tests import factories
from tests.orders.conftest import SHIPPING, WEBHOOK_SECRET
from tests.servers import database_url, free_port, wait_for_port

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def stack(tmp_path: Path, settings: Any) -> Iterator[dict[str, str]]:
    if connection.vendor != "postgresql" or not django_settings.REDIS_URL:
        pytest.skip("the integration test needs PostgreSQL and Redis (DATABASE_URL, REDIS_URL)")
    stripe_port, web_port = free_port(), free_port()
    api_base = f"http://127.0.0.1:{stripe_port}"
    env = {
        **os.environ,
        "PYTHONUNBUFFERED": "1",
        "DATABASE_URL": database_url(),
        "REDIS_URL": django_settings.REDIS_URL,
        "STRIPE_SECRET_KEY": "sk_test_integration",
        "STRIPE_API_BASE": api_base,
        "STRIPE_WEBHOOK_SECRET": WEBHOOK_SECRET,
        "LIVESHOP_VAR_DIR": str(tmp_path),
        "CELERY_TASK_LOG_LEVEL": "INFO",
    }
    logs = {name: (tmp_path / f"{name}.log").open("w") for name in ("stripe", "web", "worker")}
    processes = {
        "stripe": subprocess.Popen(
            [sys.executable, "-m", "orders.localstripe_server", "--port", str(stripe_port), "--verbose"],
            cwd=ROOT, env=env, stdout=logs["stripe"], stderr=subprocess.STDOUT,
        ),
        "web": subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "liveshop.asgi:application", "--host", "127.0.0.1",
             "--port", str(web_port), "--ws", "websockets-sansio"],
            cwd=ROOT, env=env, stdout=logs["web"], stderr=subprocess.STDOUT,
        ),
        "worker": subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "liveshop", "worker", "-P", "solo", "-l", "info",
             "--without-mingle", "--without-gossip", "--without-heartbeat"],
            cwd=ROOT, env=env, stdout=logs["worker"], stderr=subprocess.STDOUT,
        ),
    }  # fmt: skip
    try:
        wait_for_port(stripe_port, processes["stripe"])
        wait_for_port(web_port, processes["web"])
        web = f"http://127.0.0.1:{web_port}"
        localstripe_server.webhook_register(
            api_base=api_base, url=f"{web}/api/v1/payments/stripe/webhook/", secret=WEBHOOK_SECRET
        )
        settings.STRIPE_SECRET_KEY = env["STRIPE_SECRET_KEY"]
        settings.STRIPE_API_BASE = api_base
        yield {"web": web, "logs": str(tmp_path)}
    finally:
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


def _http(method: str, url: str, token: str, body: dict[str, Any] | None = None) -> tuple[int, dict[str, Any]]:
    request = urllib.request.Request(
        url,
        method=method,
        data=json.dumps(body).encode() if body is not None else None,
        headers={"Authorization": f"Token {token}", "Content-Type": "application/json", "Idempotency-Key": "it-1"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return response.status, json.loads(response.read())


def test_order_pay_webhook_worker_settles(stack: dict[str, str]) -> None:
    buyer = factories.UserFactory.create(username="integration-buyer")
    room = factories.RoomFactory.create(status=Room.Status.LIVE)
    item = factories.RoomItemFactory.create(room=room, sku__price=2500, sku__stock=10)
    token = factories.api_token(buyer)

    status, order = _http(
        "POST",
        f"{stack['web']}/api/v1/orders/",
        token,
        {"room": room.pk, "items": [{"item": item.pk, "quantity": 2}], "shipping": SHIPPING},
    )
    assert status == 201
    assert order["status"] == "pending_payment"
    intent_id = order["payment"]["payment_intent"]

    # The buyer's app pays with a test card (localstripe: attach the card, then confirm).
    intents = stripe_api.client().v1.payment_intents
    intents.update(intent_id, params={"payment_method": "pm_card_visa"})
    assert intents.confirm(intent_id)["status"] == "succeeded"

    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        _, current = _http("GET", f"{stack['web']}/api/v1/orders/{order['id']}/", token)
        if current["status"] == "paid":
            break
        time.sleep(0.2)
    else:
        logs = {name: Path(stack["logs"], f"{name}.log").read_text()[-2000:] for name in ("stripe", "web", "worker")}
        pytest.fail(f"the order never turned paid: {json.dumps(logs, indent=1)}")

    assert current["paid_at"] is not None
    assert current["payment"]["status"] == "succeeded"
    event = StripeEvent.objects.get()
    assert (event.type, event.outcome) == ("payment_intent.succeeded", "settled")
    assert Order.objects.get(pk=order["id"]).platform_fee == 250
    assert ledger_check() == {"unbalanced_transactions": [], "drifted_balances": []}
    worker_log = Path(stack["logs"], "worker.log").read_text()
    assert "stripe_events_drain_task" in worker_log  # a drainer, woken by the webhook
