"""RabbitMQ as the Celery broker: a worker killed mid-settlement gives its task back at once.

With Redis as the broker, a task a dead worker had taken comes back only after the
visibility timeout (300 s in production). RabbitMQ gives it back the moment the worker's
connection drops. The machine's RabbitMQ (127.0.0.1:5672, guest/guest) serves a quorum
queue of this test's own; a real prefork worker settles 400 orders' webhooks and is
SIGKILLed inside a settlement transaction; a fresh worker, started at once, must finish
every event within seconds, each applied exactly once, the ledger balanced.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings as django_settings
from django.db import connection
from django.db.models import Count

from liveshop.celery import app as celery_app
from orders.models import LedgerTransaction, Order, StripeEvent
from orders.services.ledger import ledger_forget
from orders.services.payments import BATCH_SIZE, stripe_event_record
from tests.chaos.test_worker_kill import DUPLICATE_EVERY, SETTLE_ORDERS, _assert_ledger_balanced, settlement_work
from tests.chaos.worker_support import (
    Worker,
    _channel,
    broker_backlog,
    broker_clear,
    kill_mid_transaction,
    wait_for_dead_backends,
    wait_until,
    worker_start,
)

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

AMQP_URL = "amqp://guest:guest@127.0.0.1:5672//"


def _rabbitmq_up() -> bool:
    try:
        socket.create_connection(("127.0.0.1", 5672), timeout=1).close()
    except OSError:
        return False
    return True


@pytest.fixture(autouse=True)
def _no_unpaid_caps(settings: Any) -> None:
    # A few buyers place the hundreds of unpaid orders the kill is measured on.
    settings.UNPAID_UNITS_PER_SKU = settings.UNPAID_UNITS_PER_BUYER = 1_000_000


@pytest.fixture
def amqp(settings: Any) -> Iterator[dict[str, str]]:
    """This test's quorum queue on the machine's RabbitMQ, for the test process and its workers."""
    if connection.vendor != "postgresql" or not django_settings.REDIS_URL:
        pytest.skip("needs PostgreSQL and Redis (DATABASE_URL, REDIS_URL)")
    if not _rabbitmq_up():
        pytest.skip("RabbitMQ is not running at 127.0.0.1:5672")
    from kombu import Queue

    queue = f"liveshop-test-{uuid.uuid4().hex[:8]}"
    saved = {
        key: celery_app.conf[key]
        for key in ("broker_url", "task_default_queue", "task_queues", "broker_transport_options")
    }
    celery_app.conf.update(
        broker_url=AMQP_URL,
        task_default_queue=queue,
        task_queues=[Queue(queue, routing_key=queue, queue_arguments={"x-queue-type": "quorum"})],
        broker_transport_options={"confirm_publish": True},
    )
    _reset_celery_connections()
    with celery_app.connection_for_write() as conn:  # declared here, as the first publish would
        celery_app.conf.task_queues[0].bind(conn.default_channel).declare()
    try:
        yield {"CELERY_BROKER_URL": AMQP_URL, "CELERY_TASK_DEFAULT_QUEUE": queue}
    finally:
        with celery_app.connection_for_write() as conn:
            _channel(conn).queue_delete(queue)
        celery_app.conf.update(saved)
        _reset_celery_connections()


def _reset_celery_connections() -> None:
    """The app's connection pools, queues and producers belong to the broker they were made
    for: kombu's registries of pools are emptied (their connections closed), and the app
    makes new ones for the broker it has now on its next publish."""
    import kombu.pools

    kombu.pools.reset()
    celery_app._pool = None  # type: ignore[attr-defined]  # Celery's own cache of `pool`
    # The app's AMQP half caches the queues (their declared arguments), the router and
    # the producer pool from the broker it first saw: made again from the conf as it is.
    celery_app.__dict__.pop("amqp", None)


@pytest.fixture
def workers(amqp: dict[str, str]) -> Iterator[list[Worker]]:
    started: list[Worker] = []
    yield started
    for worker in started:
        worker.stop()
    ledger_forget()


def test_a_worker_killed_mid_settlement_gives_its_task_back_at_once(
    amqp: dict[str, str], workers: list[Worker], tmp_path: Path
) -> None:
    orders, events = settlement_work()
    broker_clear()
    assert all(stripe_event_record(event=event) for event in events)
    total = len(events)
    # The drainers' tasks are on RabbitMQ, confirmed by it.
    assert broker_backlog() == (django_settings.SETTLEMENT_DRAINERS, 0)

    def processed() -> int:
        return StripeEvent.objects.filter(processed_at__isnull=False).count()

    first = worker_start(tmp_path, name="amqp-1", env=amqp)
    workers.append(first)
    kill = kill_mid_transaction(
        first, done=processed, total=total, at_least=3 * BATCH_SIZE, timeout=60, holding=Order._meta.db_table
    )
    killed_at = time.monotonic()
    print(f"\nsettlement over RabbitMQ: {kill}")
    wait_for_dead_backends(kill)
    assert 0 < processed() < total
    _assert_ledger_balanced()

    # The killed worker's tasks are back in the queue already: no visibility timeout.
    wait_until(lambda: broker_backlog()[0] >= 1, timeout=10, interval=0.05, what="the dead worker's tasks requeued")
    requeued_in = time.monotonic() - killed_at
    second = worker_start(tmp_path, name="amqp-2", env=amqp)
    workers.append(second)
    wait_until(lambda: processed() == total, timeout=60, interval=0.1, what="every event processed")
    settled_in = time.monotonic() - killed_at
    print(f"settlement over RabbitMQ: requeued {requeued_in:.2f} s, all processed {settled_in:.1f} s after the kill")
    # Within seconds, where the Redis broker's production visibility timeout is 300 s.
    assert requeued_in < 10
    assert settled_in < 60

    outcomes = dict(StripeEvent.objects.values_list("outcome").annotate(n=Count("id")))
    assert outcomes == {"settled": SETTLE_ORDERS, "duplicate: already settled": len(orders[::DUPLICATE_EVERY])}
    assert set(StripeEvent.objects.values_list("attempts", flat=True)) == {1}
    assert Order.objects.filter(status=Order.Status.PAID).count() == SETTLE_ORDERS
    assert LedgerTransaction.objects.filter(kind="order_payment").count() == SETTLE_ORDERS
    _assert_ledger_balanced()
    wait_until(lambda: broker_backlog() == (0, 0), timeout=30, interval=0.2, what="the queue drained")


def _rabbitmqctl(*args: str) -> None:
    subprocess.run(["rabbitmqctl", *args], check=True, capture_output=True, timeout=120)


def test_rabbitmq_restarted_mid_flood_loses_nothing(
    amqp: dict[str, str], workers: list[Worker], tmp_path: Path
) -> None:
    if shutil.which("rabbitmqctl") is None:
        pytest.skip("rabbitmqctl is not installed")
    orders, events = settlement_work()
    broker_clear()
    worker = worker_start(tmp_path, name="amqp-flood", env=amqp)
    workers.append(worker)
    worker.wait_ready()

    def processed() -> int:
        return StripeEvent.objects.filter(processed_at__isnull=False).count()

    # The webhooks' path, event after event; a third of the way in RabbitMQ stops (its
    # node's app: connections cut, the quorum queue kept on disk) and starts again 3 s
    # later. Stripe's deliveries are stored all along (a wake-up that cannot be published
    # is logged, not raised); the worker reconnects by itself.
    def restart() -> None:
        try:
            _rabbitmqctl("stop_app")
            time.sleep(3)
        finally:
            _rabbitmqctl("start_app")  # whatever happened: the machine's RabbitMQ runs again

    outage = threading.Thread(target=restart)
    started = time.monotonic()
    for n, event in enumerate(events):
        if n == len(events) // 3:
            outage.start()
            wait_until(lambda: not _rabbitmq_accepts(), timeout=60, interval=0.1, what="RabbitMQ stopped")
        assert stripe_event_record(event=event)
    outage.join(timeout=120)
    assert not outage.is_alive()
    assert _rabbitmq_accepts()
    wait_until(lambda: processed() == len(events), timeout=120, interval=0.2, what="every event processed")
    print(f"\nflood over a RabbitMQ restart: all {len(events)} events processed {time.monotonic() - started:.1f} s in")

    outcomes = dict(StripeEvent.objects.values_list("outcome").annotate(n=Count("id")))
    assert outcomes == {"settled": SETTLE_ORDERS, "duplicate: already settled": len(orders[::DUPLICATE_EVERY])}
    assert set(StripeEvent.objects.values_list("attempts", flat=True)) == {1}
    assert Order.objects.filter(status=Order.Status.PAID).count() == SETTLE_ORDERS
    _assert_ledger_balanced()


def _rabbitmq_accepts() -> bool:
    """Whether RabbitMQ takes an AMQP connection now (the port stays open while its app is stopped)."""
    from kombu import Connection

    try:
        with Connection(AMQP_URL, connect_timeout=1) as conn:
            conn.ensure_connection(max_retries=1, timeout=1)
    except Exception:  # noqa: BLE001 - any refusal means "not now"
        return False
    return True
