"""A Celery worker killed with SIGKILL in the middle of its work, then a fresh one started.

Each test queues hundreds of units of real work (webhook outbox rows to settle, giveaways
to draw, orders to expire) on the Redis broker, starts a real `celery -A liveshop worker`
on the test's PostgreSQL database, waits until the database shows part of the work done,
and kills the worker's whole process group. It checks that what committed before the
kill is consistent, starts a fresh worker (with beat, where the product's sweepers are
what recovers), and asserts the exact-once outcome: every order settled once, every
giveaway drawn once, every order expired once, the ledger balanced, stock exact.

The figures of a run are printed (`pytest -s`) and recorded in docs/reliability/worker-kill.md.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings as django_settings
from django.db import connection
from django.db.models import Count, Sum
from django.utils import timezone

from catalog.models import Sku
from liveshop.models import User
from orders.models import LedgerAccount, LedgerTransaction, Order, OrderItem, Payment, PrizeClaim, StripeEvent
from orders.services.ledger import ledger_balance, ledger_check, ledger_forget
from orders.services.orders import LineRequest, order_create
from orders.services.payments import BATCH_SIZE, stripe_event_record
from orders.services.prizes import giveaway_prize_claim
from orders.tasks import orders_expire_due_task
from rooms import fairness
from rooms.models import Ban, Giveaway, GiveawayEntry, GiveawayWinner, Room
from rooms.services import giveaway_create
from rooms.tasks import giveaways_sweep_task
from tests import factories
from tests.chaos.worker_support import (
    Worker,
    broker_backlog,
    broker_clear,
    freeze_mid_transaction,
    kill_mid_transaction,
    wait_for_dead_backends,
    wait_until,
    worker_start,
)
from tests.orders.conftest import SHIPPING

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


@pytest.fixture(autouse=True)
def _no_unpaid_caps(settings: Any) -> None:
    # A few buyers place the hundreds of unpaid orders these faults are measured on.
    settings.UNPAID_UNITS_PER_SKU = settings.UNPAID_UNITS_PER_BUYER = 1_000_000


@pytest.fixture
def workers(tmp_path: Path) -> Iterator[list[Worker]]:
    """Workers the test starts, all stopped before the database is emptied."""
    if connection.vendor != "postgresql" or not django_settings.REDIS_URL:
        pytest.skip("killing workers needs PostgreSQL and Redis (DATABASE_URL, REDIS_URL)")
    broker_clear()
    started: list[Worker] = []
    yield started
    for worker in started:
        worker.stop()
    broker_clear()
    ledger_forget()  # the accounts this test committed are about to be deleted


def _start(workers: list[Worker], tmp_path: Path, name: str, **kwargs: Any) -> Worker:
    worker = worker_start(tmp_path, name=name, **kwargs)
    workers.append(worker)
    return worker


def _live_shelf(*, stock: int, skus: int = 1) -> tuple[Room, list[Any]]:
    host = factories.HostFactory.create()
    shop = factories.ShopFactory.create(owner=host.user)
    room = factories.RoomFactory.create(host=host, status=Room.Status.LIVE)
    items = [
        factories.RoomItemFactory.create(
            room=room, sku=factories.SkuFactory.create(product__shop=shop, stock=stock, price=1000 + 100 * n)
        )
        for n in range(skus)
    ]
    return room, items


def _orders(room: Room, items: list[Any], count: int) -> list[Order]:
    buyers = [factories.UserFactory.create() for _ in range(10)]
    return [
        order_create(
            buyer=buyers[n % len(buyers)],
            lines=[LineRequest(quantity=1 + n % 3, item=items[n % len(items)])],
            room=room,
            shipping=SHIPPING,
        )
        for n in range(count)
    ]


def _succeeded(order: Order, event_id: str) -> dict[str, Any]:
    intent = {
        "id": f"pi_chaos_{order.pk}",
        "object": "payment_intent",
        "amount": order.total,
        "amount_received": order.total,
        "currency": order.currency,
        "status": "succeeded",
        "metadata": {"liveshop_order": order.number, "liveshop_order_id": str(order.pk)},
    }
    return {"id": event_id, "object": "event", "type": "payment_intent.succeeded", "data": {"object": intent}}


def _assert_ledger_balanced() -> None:
    assert ledger_check() == {"unbalanced_transactions": [], "drifted_balances": []}


# --- Settlement ------------------------------------------------------------------------------


SETTLE_ORDERS = 400
DUPLICATE_EVERY = 8  # every 8th order's success comes twice, under two event ids (Stripe may)


def settlement_work() -> tuple[list[Order], list[dict[str, Any]]]:
    """SETTLE_ORDERS pending orders with their PaymentIntents, and the success events Stripe
    would send for them (every DUPLICATE_EVERY-th twice, under two event ids)."""
    room, items = _live_shelf(stock=10_000)
    orders = _orders(room, items, SETTLE_ORDERS)
    Payment.objects.bulk_create(
        Payment(
            order=order,
            payment_intent_id=f"pi_chaos_{order.pk}",
            client_secret=f"pi_chaos_{order.pk}_secret",
            amount=order.total,
            currency=order.currency,
        )
        for order in orders
    )
    events = [_succeeded(order, f"evt_chaos_{order.pk}") for order in orders]
    events += [_succeeded(order, f"evt_chaos_{order.pk}_again") for order in orders[::DUPLICATE_EVERY]]
    return orders, events


def test_worker_killed_mid_settlement_settles_every_order_once(workers: list[Worker], tmp_path: Path) -> None:
    orders, events = settlement_work()
    # The webhook's path with no worker running: each event stored, and on commit a
    # drainer woken while a slot is free: two tasks in all, not one per event.
    assert all(stripe_event_record(event=event) for event in events)
    assert not stripe_event_record(event=events[0])  # Stripe's retry of a delivery: stored once
    total_events = len(events)
    assert broker_backlog() == (django_settings.SETTLEMENT_DRAINERS, 0)
    stock_after_holds = {sku.pk: sku.stock for sku in Sku.objects.all()}

    def processed() -> int:
        return StripeEvent.objects.filter(processed_at__isnull=False).count()

    first = _start(workers, tmp_path, "settle-1")
    kill = kill_mid_transaction(
        first, done=processed, total=total_events, at_least=3 * BATCH_SIZE, timeout=60, holding=Order._meta.db_table
    )
    killed_at = time.monotonic()
    print(f"\nsettlement: {kill}")
    wait_for_dead_backends(kill)

    # What committed before the kill is whole: each applied event paid its order and
    # posted its ledger transaction, in the same transaction.
    settled_at_kill = StripeEvent.objects.filter(outcome="settled").count()
    assert Order.objects.filter(status=Order.Status.PAID).count() == settled_at_kill
    assert LedgerTransaction.objects.filter(kind="order_payment").count() == settled_at_kill
    assert 0 < processed() < total_events
    _assert_ledger_balanced()

    second = _start(workers, tmp_path, "settle-2")
    second.wait_ready()
    wait_until(lambda: processed() == total_events, timeout=60, interval=0.2, what="every event processed")
    settled_in = time.monotonic() - killed_at
    print(f"settlement: all {total_events} events processed {settled_in:.1f} s after the kill")
    # The killed worker's unacknowledged tasks come back after the visibility timeout and
    # find their events done; the broker then holds nothing.
    wait_until(lambda: broker_backlog() == (0, 0), timeout=60, interval=0.2, what="the broker drained")
    drained_in = time.monotonic() - killed_at
    print(f"settlement: broker drained (redelivered tasks acknowledged) {drained_in:.1f} s after the kill")

    assert StripeEvent.objects.count() == total_events
    outcomes = dict(StripeEvent.objects.values_list("outcome").annotate(n=Count("id")))
    assert outcomes == {"settled": SETTLE_ORDERS, "duplicate: already settled": len(orders[::DUPLICATE_EVERY])}
    # attempts counts committed applications: each event was applied exactly once.
    assert set(StripeEvent.objects.values_list("attempts", flat=True)) == {1}
    assert Order.objects.filter(status=Order.Status.PAID).count() == SETTLE_ORDERS
    assert Payment.objects.filter(status=Payment.Status.SUCCEEDED).count() == SETTLE_ORDERS
    payments = LedgerTransaction.objects.filter(kind="order_payment")
    assert payments.count() == payments.values("order").distinct().count() == SETTLE_ORDERS
    _assert_ledger_balanced()
    paid_total = Order.objects.aggregate(total=Sum("total"))["total"]
    processor = LedgerAccount.objects.get(kind=LedgerAccount.Kind.PROCESSOR)
    assert ledger_balance(account=processor) == paid_total
    # Settlement moves money, not units: the stock is what the orders left.
    assert {sku.pk: sku.stock for sku in Sku.objects.all()} == stock_after_holds


# --- Giveaway draws ------------------------------------------------------------------------------


GIVEAWAYS = 200
WINNERS = 3
PRIZE_STOCK = 1_000


def test_worker_killed_mid_draw_draws_every_giveaway_once(workers: list[Worker], tmp_path: Path) -> None:
    room, (item,) = _live_shelf(stock=PRIZE_STOCK)
    prize = item.sku
    entrants = [factories.UserFactory.create() for _ in range(7)]
    Ban.objects.create(room=room, user=entrants[0], reason="spam")  # excluded at every draw
    giveaways = [
        giveaway_create(room=room, title=f"Prize {n}", winners=WINNERS, duration_s=60, prize_sku=prize)
        for n in range(GIVEAWAYS)
    ]
    # 0 to 6 entrants each: some draws give spare prize units back, some exclude the banned one.
    GiveawayEntry.objects.bulk_create(
        GiveawayEntry(giveaway=giveaway, user=user)
        for n, giveaway in enumerate(giveaways)
        for user in entrants[: n % len(entrants)]
    )
    Giveaway.objects.update(closes_at=timezone.now())
    assert Sku.objects.get(pk=prize.pk).stock == PRIZE_STOCK - WINNERS * GIVEAWAYS

    def drawn() -> int:
        return Giveaway.objects.filter(status=Giveaway.Status.DRAWN).count()

    def expected_winners(giveaway: Giveaway) -> list[int]:
        eligible = [
            user.pk for user in entrants[: giveaways.index(giveaway) % len(entrants)] if user.pk != entrants[0].pk
        ]
        return fairness.draw_winners(giveaway.seed, eligible, WINNERS)

    def assert_draws_whole() -> None:
        """Every drawn giveaway has its whole draw; every open one none of it; units exact."""
        winners_of: dict[int, list[int]] = {}
        for winner in GiveawayWinner.objects.order_by("giveaway", "rank"):
            winners_of.setdefault(winner.giveaway_id, []).append(winner.user_id)
        units_held = 0
        for giveaway in giveaways:
            current = Giveaway.objects.get(pk=giveaway.pk)
            excluded = GiveawayEntry.objects.filter(giveaway=giveaway, eligible=False).count()
            if current.status == Giveaway.Status.DRAWN:
                assert current.drawn_at is not None
                assert winners_of.get(giveaway.pk, []) == expected_winners(giveaway)
                assert excluded == (1 if giveaways.index(giveaway) % len(entrants) else 0)
                units_held += len(winners_of.get(giveaway.pk, []))
            else:
                assert current.status == Giveaway.Status.OPEN
                assert (giveaway.pk not in winners_of, excluded) == (True, 0)
                units_held += WINNERS
        assert Sku.objects.get(pk=prize.pk).stock == PRIZE_STOCK - units_held

    giveaways_sweep_task.delay()  # one sweep, as beat sends it: it draws all of them
    first = _start(workers, tmp_path, "draw-1")
    kill = kill_mid_transaction(
        first, done=drawn, total=GIVEAWAYS, at_least=GIVEAWAYS // 4, timeout=60, holding=GiveawayWinner._meta.db_table
    )
    killed_at = time.monotonic()
    print(f"\ndraws: {kill}")
    wait_for_dead_backends(kill)
    assert 0 < drawn() < GIVEAWAYS
    assert_draws_whole()

    # The product recovers with its sweeper: beat sends it every second.
    second = _start(workers, tmp_path, "draw-2", beat=True)
    wait_until(lambda: drawn() == GIVEAWAYS, timeout=60, interval=0.2, what="every giveaway drawn")
    print(f"draws: all {GIVEAWAYS} drawn {time.monotonic() - killed_at:.1f} s after the kill")
    # Further sweeps (and the killed worker's redelivered one) change nothing.
    wait_until(lambda: second.log().count("giveaways_sweep_task") >= 6, timeout=30, what="more sweeps")

    assert_draws_whole()
    assert GiveawayWinner.objects.count() == sum(len(expected_winners(g)) for g in giveaways)
    # The prizes are claimable once each: a second claim returns the first order.
    winner = GiveawayWinner.objects.select_related("giveaway", "user").order_by("id").first()
    assert winner is not None
    user = User.objects.get(pk=winner.user_id)
    order, created = giveaway_prize_claim(giveaway=winner.giveaway, user=user, shipping=SHIPPING)
    again, created_again = giveaway_prize_claim(giveaway=winner.giveaway, user=user, shipping=SHIPPING)
    assert (created, created_again, again.pk) == (True, False, order.pk)
    assert PrizeClaim.objects.filter(winner=winner).count() == 1
    assert Order.objects.filter(buyer=user, total=0).count() == 1


# --- Expiry sweeps --------------------------------------------------------------------------------


EXPIRE_ORDERS = 600
INITIAL_STOCK = 2_000


def test_worker_killed_mid_expiry_sweep_expires_every_order_once(workers: list[Worker], tmp_path: Path) -> None:
    room, items = _live_shelf(stock=INITIAL_STOCK, skus=3)
    _orders(room, items, EXPIRE_ORDERS)
    Order.objects.update(expires_at=timezone.now())
    skus = [item.sku_id for item in items]

    def expired() -> int:
        return Order.objects.filter(status=Order.Status.EXPIRED).count()

    def assert_units_exact() -> None:
        """Each sku's free stock is its initial stock less what pending orders hold."""
        held = dict(
            OrderItem.objects.filter(order__status=Order.Status.PENDING_PAYMENT)
            .values_list("sku")
            .annotate(units=Sum("quantity"))
        )
        assert dict(Sku.objects.filter(pk__in=skus).values_list("pk", "stock")) == {
            pk: INITIAL_STOCK - int(held.get(pk, 0)) for pk in skus
        }

    orders_expire_due_task.delay()  # one sweep, as beat sends it (it expires up to 500)
    first = _start(workers, tmp_path, "expire-1")
    kill = kill_mid_transaction(
        first, done=expired, total=EXPIRE_ORDERS, at_least=EXPIRE_ORDERS // 4, timeout=60, holding=Sku._meta.db_table
    )
    killed_at = time.monotonic()
    print(f"\nexpiry: {kill}")
    wait_for_dead_backends(kill)
    assert 0 < expired() < EXPIRE_ORDERS
    assert Order.objects.filter(status=Order.Status.EXPIRED, closed_at__isnull=True).count() == 0
    assert_units_exact()

    second = _start(workers, tmp_path, "expire-2", beat=True)
    wait_until(lambda: expired() == EXPIRE_ORDERS, timeout=60, interval=0.2, what="every order expired")
    print(f"expiry: all {EXPIRE_ORDERS} expired {time.monotonic() - killed_at:.1f} s after the kill")
    wait_until(lambda: second.log().count("orders_expire_due_task") >= 6, timeout=30, what="more sweeps")

    assert Order.objects.filter(status=Order.Status.EXPIRED, closed_at__isnull=False).count() == EXPIRE_ORDERS
    assert_units_exact()  # every unit back exactly once: a double release would overshoot
    assert set(Sku.objects.filter(pk__in=skus).values_list("stock", flat=True)) == {INITIAL_STOCK}


# --- A frozen worker ---------------------------------------------------------------------------------

IDLE_TIMEOUT_S = 3


def test_a_worker_frozen_mid_expiry_holds_its_locks_only_until_postgresql_ends_its_session(
    workers: list[Worker], tmp_path: Path
) -> None:
    """SIGSTOP, not SIGKILL (a paused VM, a stopped container): the socket stays open, and
    without settings.DATABASE_IDLE_IN_TRANSACTION_TIMEOUT_S the frozen transaction would
    hold its order's and its sku's row locks for ever, stalling every order of that sku
    and every sweep behind it."""
    room, items = _live_shelf(stock=INITIAL_STOCK, skus=3)
    _orders(room, items, EXPIRE_ORDERS)
    Order.objects.update(expires_at=timezone.now())
    skus = [item.sku_id for item in items]
    idle_timeout = {"DATABASE_IDLE_IN_TRANSACTION_TIMEOUT_S": str(IDLE_TIMEOUT_S)}

    def expired() -> int:
        return Order.objects.filter(status=Order.Status.EXPIRED).count()

    orders_expire_due_task.delay()
    first = _start(workers, tmp_path, "frozen", env=idle_timeout)
    freeze = freeze_mid_transaction(
        first, done=expired, total=EXPIRE_ORDERS, at_least=EXPIRE_ORDERS // 4, timeout=60, holding=Sku._meta.db_table
    )
    frozen_at = time.monotonic()
    print(f"\nfrozen: {freeze}")

    # A buyer orders every sku meanwhile: the frozen sweep holds one of their rows (it gave
    # an expiring order's units back), so that order waits for PostgreSQL to end the session.
    buyer = factories.UserFactory.create()
    with connection.cursor() as cursor:
        cursor.execute("SET lock_timeout = '20s'")  # fail, rather than hang, if the lock is never freed
    for item in items:
        order_create(buyer=buyer, lines=[LineRequest(quantity=1, item=item)], room=room, shipping=SHIPPING)
    ordered_in = time.monotonic() - frozen_at
    with connection.cursor() as cursor:
        cursor.execute("RESET lock_timeout")
    second = _start(workers, tmp_path, "after-freeze", beat=True, env=idle_timeout)
    wait_until(lambda: expired() == EXPIRE_ORDERS, timeout=60, interval=0.2, what="every due order expired")
    print(f"frozen: the buyer's orders went through {ordered_in:.1f} s after the freeze, all {EXPIRE_ORDERS} "
          f"expired {time.monotonic() - frozen_at:.1f} s after it")  # fmt: skip
    assert 1 < ordered_in < IDLE_TIMEOUT_S + 10  # it did wait for the frozen lock, and not for long

    # The frozen worker wakes up: its session is gone, so its sweep fails and does nothing twice.
    # psycopg reports the ended session as OperationalError (the socket is closed) or, when it
    # reads PostgreSQL's goodbye first, InternalError ("idle-in-transaction timeout").
    first.resume()
    swept_failed = re.compile(r"orders_expire_due_task\[[^\]]+\] raised unexpected: (OperationalError|InternalError)\(")
    wait_until(
        lambda: swept_failed.search(first.log()) is not None,
        timeout=30,
        what="the woken worker's sweep to fail",
    )
    wait_until(lambda: second.log().count("orders_expire_due_task") >= 6, timeout=30, what="more sweeps")

    assert Order.objects.filter(status=Order.Status.EXPIRED, closed_at__isnull=False).count() == EXPIRE_ORDERS
    assert Order.objects.filter(status=Order.Status.PENDING_PAYMENT).count() == len(items)
    held = dict(
        OrderItem.objects.filter(order__status=Order.Status.PENDING_PAYMENT)
        .values_list("sku")
        .annotate(units=Sum("quantity"))
    )
    assert held == dict.fromkeys(skus, 1)
    assert set(Sku.objects.filter(pk__in=skus).values_list("stock", flat=True)) == {INITIAL_STOCK - 1}
