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
from datetime import timedelta
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


def _wait_for(stack: dict[str, str], what: str, ready: Any, timeout: float = 30) -> Any:
    """Poll `ready()` until it answers something true; fail with the processes' logs."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = ready()
        if found:
            return found
        time.sleep(0.2)
    logs = {name: Path(stack["logs"], f"{name}.log").read_text()[-2000:] for name in ("stripe", "web", "worker")}
    pytest.fail(f"{what} never happened: {json.dumps(logs, indent=1)}")


def _paid_order(stack: dict[str, str], item: Any, token: str) -> dict[str, Any]:
    """Ordered over HTTP, paid at localstripe with a test card, settled by the worker."""
    status, order = _http(
        "POST",
        f"{stack['web']}/api/v1/orders/",
        token,
        {"room": item.room_id, "items": [{"item": item.pk, "quantity": 2}], "shipping": SHIPPING},
    )
    assert status == 201
    intents = stripe_api.client().v1.payment_intents
    intents.update(order["payment"]["payment_intent"], params={"payment_method": "pm_card_visa"})
    assert intents.confirm(order["payment"]["payment_intent"])["status"] == "succeeded"
    url = f"{stack['web']}/api/v1/orders/{order['id']}/"
    return dict(_wait_for(stack, "the order's settlement", lambda: (o := _http("GET", url, token)[1])["paid_at"] and o))


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

    url = f"{stack['web']}/api/v1/orders/{order['id']}/"
    current = _wait_for(stack, "the order's settlement", lambda: (o := _http("GET", url, token)[1])["paid_at"] and o)

    assert current["status"] == "paid"
    assert current["payment"]["status"] == "succeeded"
    event = StripeEvent.objects.get()
    assert (event.type, event.outcome) == ("payment_intent.succeeded", "settled")
    assert Order.objects.get(pk=order["id"]).platform_fee == 250
    assert ledger_check() == {"unbalanced_transactions": [], "drifted_balances": []}
    worker_log = Path(stack["logs"], "worker.log").read_text()
    assert "stripe_events_drain_task" in worker_log  # a drainer, woken by the webhook


def test_payout_transfer_webhook_worker_pays(stack: dict[str, str]) -> None:
    """Money out with the same real processes: the farmer connects its Stripe account at
    the stand-in, staff approve the payout over HTTP, the worker makes the transfer,
    localstripe sends `transfer.created` to the live server and the worker marks the
    payout paid; then the reconciliation finds Stripe's balance history in agreement."""
    from django.core.management import call_command
    from django.utils import timezone

    from payouts.models import Payout, Reconciliation
    from payouts.services.balances import orders_release_due
    from payouts.services.payouts import payouts_build

    buyer = factories.UserFactory.create(username="integration-buyer")
    staff = factories.UserFactory.create(username="integration-staff", is_staff=True)
    room = factories.RoomFactory.create(status=Room.Status.LIVE)
    item = factories.RoomItemFactory.create(room=room, sku__price=2500, sku__stock=10)
    farmer = item.sku.product.shop.owner
    order = _paid_order(stack, item, factories.api_token(buyer))
    farmer_token, web = factories.api_token(farmer), stack["web"]
    assert _http("POST", f"{web}/api/v1/orders/{order['id']}/ship/", farmer_token, {"tracking": "SF1"})[0] == 200
    assert _http("POST", f"{web}/api/v1/orders/{order['id']}/deliver/", factories.api_token(staff))[0] == 200
    Order.objects.filter(pk=order["id"]).update(delivered_at=timezone.now() - timedelta(days=8))
    assert orders_release_due() == 1  # the beat's sweep
    (payout,) = payouts_build()
    shop = item.sku.product.shop_id

    _, account = _http("POST", f"{web}/api/v1/shops/{shop}/payout-account/", farmer_token, {"stripe": True})
    with urllib.request.urlopen(account["onboarding_url"], timeout=10) as page:  # the payee fills Stripe's forms
        page.read()
    _, account = _http("GET", f"{web}/api/v1/shops/{shop}/payout-account/", farmer_token)
    assert account["transfers_enabled"] is True
    status, approved = _http("POST", f"{web}/api/v1/payouts/{payout.pk}/approve/", factories.api_token(staff))
    assert (status, approved["status"]) == (200, "approved")

    def paid() -> bool:
        rows = _http("GET", f"{web}/api/v1/payouts/", farmer_token)[1]["results"]
        return rows[0]["status"] == "paid"

    _wait_for(stack, "the payout's transfer.created", paid)
    payout.refresh_from_db()
    assert payout.amount == 5000 - 250  # two at 2,500, less the 5 % fee
    event = StripeEvent.objects.get(type="transfer.created")
    assert event.outcome == f"payout {payout.pk} paid"
    call_command("reconcile")
    assert Reconciliation.objects.get().is_clean
    assert Payout.objects.get().stripe_transfer_id
