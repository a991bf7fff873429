"""Benchmark 10: money out for a big show: 29,600 orders released, a balance, the month's
statement, the payout and the reconciliation.

    DATABASE_URL=postgres://... REDIS_URL=redis://.../N flock /tmp/liveshop-bench.lock \\
        .venv/bin/python -m bench.money_out [--orders 29600]

Set up (not timed, with progress): a farmer's shop and `--orders` orders of one show, each
paid (its payment's ledger transaction as settlement writes it: the processor, the
platform's fee and the seller's share), shipped and delivered PAYOUT_HOLD_DAYS + 1 days ago.

Measured, each against a reference in the same run:

1. The release: `orders_release_due` (one transaction per order, under its row lock) over
   every order; the reference writes the same ledger rows for all of them in bulk, set
   based (INSERT ... SELECT), which is the least the database can do for them.
2. The shop's balance (`payee_balance`, what `GET /shops/{id}/balance/` answers), the median
   of 20 calls; the reference is the one SQL sum of the same entries.
3. The month's statement as the API answers it, JSON and CSV (serialised, through the
   test client); the reference fetches the same entry rows with one raw SQL query.
4. The payout's build (`payouts_build`), then `reconcile` (without Stripe).

Checks: every order released once, the payout equal to the sum of the sellers' shares,
the statement's closing = opening + its lines, the ledger balanced. Writes
bench/results/money_out-<time>.json.
"""

from __future__ import annotations

import argparse
import json
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from bench.flash_sale import ROOT, SHIPPING, log, setup_django
from bench.loadgen import median_ms

RESULTS = ROOT / "bench" / "results"
BATCH = 2000


def _show(orders: int) -> dict[str, Any]:
    """A shop and its show's orders, paid, shipped and delivered long enough ago."""
    from django.conf import settings
    from django.utils import timezone

    from catalog.models import Shop
    from liveshop.models import User
    from orders.models import LedgerAccount, LedgerEntry, LedgerTransaction, Order
    from orders.services import ledger
    from rooms.models import Host, Room

    run = f"{time.time_ns():x}"
    farmer = User.objects.create(username=f"bench-money-farmer-{run}", display_name="Bench Farmer")
    host = Host.objects.create(user=farmer, kind="farmer", district="Wulong", verified=True)
    shop = Shop.objects.create(owner=farmer, name=f"Bench farm {run}", district="Wulong")
    room = Room.objects.create(host=host, title=f"Bench show {run}", status=Room.Status.ENDED)
    buyer = User.objects.create(username=f"bench-money-buyer-{run}", display_name="Bench Buyer")
    delivered = timezone.now() - timedelta(days=settings.PAYOUT_HOLD_DAYS + 1)
    Kind = LedgerAccount.Kind
    processor = ledger.ledger_account(kind=Kind.PROCESSOR, currency="cny")
    fees = ledger.ledger_account(kind=Kind.PLATFORM_FEES, currency="cny")
    seller = ledger.ledger_account(kind=Kind.SELLER, currency="cny", shop_id=shop.pk)
    owed = 0
    for start in range(0, orders, BATCH):
        count = min(BATCH, orders - start)
        rows = []
        for n in range(start, start + count):
            total = 5800 + (n % 7) * 100
            rows.append(
                Order(
                    number=f"B{run}{n:07d}",
                    buyer=buyer,
                    shop=shop,
                    room=room,
                    status=Order.Status.DELIVERED,
                    subtotal=total,
                    total=total,
                    shipping=SHIPPING,
                    platform_fee=total * settings.PLATFORM_FEE_BPS // 10_000,
                    expires_at=delivered,
                    paid_at=delivered - timedelta(days=2),
                    shipped_at=delivered - timedelta(days=1),
                    delivered_at=delivered,
                )
            )
        created = Order.objects.bulk_create(rows)
        txns = LedgerTransaction.objects.bulk_create(
            [
                LedgerTransaction(key=f"order:{o.pk}:payment", kind=LedgerTransaction.Kind.ORDER_PAYMENT, order=o)
                for o in created
            ]
        )
        entries = []
        for order, txn in zip(created, txns, strict=True):
            net = order.total - order.platform_fee
            owed += net
            entries += [
                LedgerEntry(transaction=txn, account=processor, amount=order.total, currency="cny"),
                LedgerEntry(transaction=txn, account=fees, amount=-order.platform_fee, currency="cny"),
                LedgerEntry(transaction=txn, account=seller, amount=-net, currency="cny"),
            ]
        LedgerEntry.objects.bulk_create(entries, batch_size=6000)
        log(f"  set up {start + count:,} of {orders:,} orders")
    return {"shop": shop, "farmer": farmer, "owed": owed, "orders": orders}


def _release(show: dict[str, Any]) -> dict[str, Any]:
    from orders.models import Order
    from payouts.services.balances import orders_release_due

    started = time.perf_counter()
    released = 0
    while True:
        done = orders_release_due(batch=1000, budget_s=5)
        released += done
        log(f"  released {released:,} of {show['orders']:,}")
        if not done:
            break
    seconds = time.perf_counter() - started
    assert released == show["orders"], released
    assert not Order.objects.filter(shop=show["shop"], released_at=None).exists()
    return {"orders": released, "seconds": round(seconds, 2), "orders_per_s": round(released / seconds)}


def _release_in_bulk(show: dict[str, Any]) -> dict[str, Any]:
    """The reference: the same rows (a transaction and two entries an order, the orders
    marked) written set based, in one database transaction, then rolled back."""
    from django.db import connection, transaction

    sql = [
        """INSERT INTO orders_ledgertransaction (key, kind, order_id, memo, created_at, refund_id)
           SELECT 'bulk:' || o.id, 'order_release', o.id, '', now(), NULL FROM orders_order o WHERE o.shop_id = %s""",
        """INSERT INTO orders_ledgerentry (transaction_id, account_id, amount, currency)
           SELECT t.id, a.id, 1, 'cny' FROM orders_ledgertransaction t, orders_ledgeraccount a
           WHERE t.key LIKE 'bulk:%%' AND a.kind = 'processor'""",
        """INSERT INTO orders_ledgerentry (transaction_id, account_id, amount, currency)
           SELECT t.id, a.id, -1, 'cny' FROM orders_ledgertransaction t, orders_ledgeraccount a
           WHERE t.key LIKE 'bulk:%%' AND a.kind = 'processor'""",
        "UPDATE orders_order SET released_at = now() WHERE shop_id = %s",
    ]
    started = time.perf_counter()
    with transaction.atomic(), connection.cursor() as cursor:
        for statement in sql:
            cursor.execute(statement, [show["shop"].pk] if "%s" in statement else [])
        seconds = time.perf_counter() - started
        transaction.set_rollback(True)
    return {"seconds": round(seconds, 2), "orders_per_s": round(show["orders"] / seconds)}


def _reads(show: dict[str, Any]) -> dict[str, Any]:
    from django.db import connection
    from django.utils import timezone
    from rest_framework.test import APIClient

    from payouts.services.balances import payee_balance
    from payouts.services.payees import Payee

    payee = Payee(shop_id=show["shop"].pk)
    balance = payee_balance(payee=payee)
    assert balance.available == show["owed"], (balance, show["owed"])

    def raw_sum() -> None:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT kind, sum(e.amount) FROM orders_ledgerentry e JOIN orders_ledgeraccount a"
                " ON a.id = e.account_id WHERE a.shop_id = %s GROUP BY kind",
                [show["shop"].pk],
            )
            cursor.fetchall()

    client = APIClient()
    client.force_authenticate(show["farmer"])
    today = timezone.localdate()
    path = f"/api/v1/shops/{show['shop'].pk}/statement/?from={today - timedelta(days=30)}&to={today}"
    answer = client.get(path).json()
    assert answer["closing"] == answer["opening"] + sum(line["amount"] for line in answer["lines"])

    def raw_rows() -> None:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT t.created_at, t.kind, o.number, e.amount FROM orders_ledgerentry e"
                " JOIN orders_ledgertransaction t ON t.id = e.transaction_id"
                " LEFT JOIN orders_order o ON o.id = t.order_id"
                " JOIN orders_ledgeraccount a ON a.id = e.account_id WHERE a.shop_id = %s",
                [show["shop"].pk],
            )
            cursor.fetchall()

    return {
        "balance_ms": median_ms(lambda: payee_balance(payee=payee), 20),
        "balance_reference_ms": median_ms(raw_sum, 20),
        "statement_lines": len(answer["lines"]),
        "statement_json_ms": median_ms(lambda: client.get(path), 3),
        "statement_csv_ms": median_ms(lambda: client.get(path + "&format=csv"), 3),
        "statement_reference_ms": median_ms(raw_rows, 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--orders", type=int, default=29_600)
    args = parser.parse_args()
    setup_django()
    from django.core.management import call_command
    from django.test.utils import override_settings

    from orders.services.ledger import ledger_check
    from payouts.reconcile import reconcile
    from payouts.services.payouts import payouts_build

    log("migrating the bench database")
    call_command("migrate", verbosity=0)
    log(f"setting up a show of {args.orders:,} orders")
    show = _show(args.orders)
    report: dict[str, Any] = {
        "benchmark": "money_out",
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "orders": args.orders,
    }
    log("reference: the same ledger rows written in bulk")
    report["release_reference"] = _release_in_bulk(show)
    log("releasing every order, one transaction each")
    report["release"] = _release(show)
    report["release"]["ratio_to_reference"] = round(
        report["release"]["orders_per_s"] / report["release_reference"]["orders_per_s"], 3
    )
    log("balance and statement")
    report["reads"] = _reads(show)
    log("the payout")
    started = time.perf_counter()
    with override_settings(PAYOUT_SCHEDULE="daily"):
        built = [p for p in payouts_build() if p.shop_id == show["shop"].pk]
    report["payout_build_s"] = round(time.perf_counter() - started, 2)
    assert len(built) == 1
    assert built[0].amount == show["owed"], (built[0].amount, show["owed"])
    log("the reconciliation (without Stripe)")
    started = time.perf_counter()
    run = reconcile()
    report["reconcile_s"] = round(time.perf_counter() - started, 2)
    report["reconcile_checked"] = run.checked
    checks = ledger_check()
    assert checks == {"unbalanced_transactions": [], "drifted_balances": []}, checks
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / f"money_out-{datetime.now(UTC):%Y%m%dT%H%M%S}.json"
    out.write_text(json.dumps(report, indent=2))
    print(json.dumps(report, indent=2))
    log(f"wrote {out}")


if __name__ == "__main__":
    main()
