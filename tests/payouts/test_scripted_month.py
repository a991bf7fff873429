"""A month of a farmer's and a cadre host's money, end to end, with the clock moved.

Orders are paid (through localstripe and signed webhooks), refunded before and after
their payout, shipped, delivered by the buyer, by staff and automatically; a cadre
host earns commissions and gift coins and cashes some out; the payouts are built by
the sweeper, approved by staff and sent by Stripe transfer (the farmer) and by bank
(the host); one transfer comes back. Then the statements add up, the ledger sums to
zero, the reconciliation is clean, and it reports the differences planted after.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
import time_machine
from django.core.management import call_command
from django.db.models import F
from django.utils import timezone

from orders import stripe_api
from orders.models import LedgerEntry, Order
from payouts.models import Payout, Reconciliation
from payouts.services import balances, payouts
from rooms.models import Room
from tests import factories
from tests.coins import assert_ledger_balanced, gift, grant
from tests.payouts.money import offer_item, onboard, paid_order, refund, ship, transfer_webhook

pytestmark = pytest.mark.django_db

DAY = timedelta(days=1)


def _sweep() -> dict[str, int]:
    released = balances.orders_release_due()
    built = payouts.payouts_build()
    return {"released": released, "built": len(built)}


def test_a_scripted_month(
    settings, client_for, host, shop, sku, shelf_item, other_host, buyer, viewer, staff, committed
):
    settings.PAYOUT_SCHEDULE = "daily"
    settings.PAYOUT_HOLD_DAYS, settings.AUTO_DELIVER_DAYS = 7, 14
    settings.PAYOUT_AUTO_APPROVE_FEN = 0
    farmer, cadre, buyer_api, staff_api = client_for(host), client_for(other_host), client_for(buyer), client_for(staff)
    cadre_room = factories.RoomFactory.create(host=other_host.host, status=Room.Status.LIVE)
    tea_on_offer = offer_item(cadre_room, sku, commission_bps=1000)
    start = (timezone.now() - timedelta(days=30)).replace(hour=2, minute=0, second=0, microsecond=0)

    with time_machine.travel(start, tick=True) as clock:
        # Day 0: four orders paid; D is refunded in full before it ships; gifts for the cadre.
        a = paid_order(buyer_api, shelf_item, 2, committed)  # 11,600 in the farmer's own room
        b = paid_order(buyer_api, tea_on_offer, 1, committed)  # 6,800 in the cadre's room, 10 %
        c = paid_order(buyer_api, tea_on_offer, 2, committed)  # 13,600 in the cadre's room
        d = paid_order(buyer_api, shelf_item, 1, committed)  # 5,800, refunded before shipping
        refund(farmer, d, d.total, committed)
        grant(viewer, 1000)
        hotpot = gift()
        sent = client_for(viewer).post(
            f"/api/v1/rooms/{cadre_room.pk}/gifts/",
            {"gift": hotpot.pk, "quantity": 5},
            format="json",
            HTTP_IDEMPOTENCY_KEY="g1",
        )
        assert sent.status_code == 201, sent.content
        for order in (a, b, c):
            ship(farmer, order)
        assert farmer.get(f"/api/v1/shops/{shop.pk}/balance/").json() == {
            "pending": 11020 + 5780 + 11560,
            "available": 0,
            "in_payout": 0,
            "paid_out": 0,
            "currency": "cny",
        }

        # Day 1: the buyer confirms A, staff confirm B on the carrier's word; C is left.
        clock.shift(DAY)
        assert buyer_api.post(f"/api/v1/orders/{a.pk}/deliver/").json()["status"] == "delivered"
        assert staff_api.post(f"/api/v1/orders/{b.pk}/deliver/").status_code == 200
        onboard(farmer, f"/api/v1/shops/{shop.pk}/payout-account/")
        bank = {
            "bank_name": "Chongqing Rural Bank",
            "bank_account_name": "Zhou Min",
            "bank_account_number": "6228 4800",
        }
        assert cadre.post(f"/api/v1/hosts/{other_host.host.pk}/payout-account/", bank, format="json").status_code == 200
        cash_out = cadre.post("/api/v1/wallet/cash-outs/", {"coins": 300}, format="json", HTTP_IDEMPOTENCY_KEY="c1")
        assert cash_out.json()["amount"] == 300 * settings.COIN_CASHOUT_FEN

        # Day 9: A and B are past their hold: released and paid out.
        clock.shift(8 * DAY)
        assert _sweep() == {"released": 2, "built": 2}
        first = Payout.objects.get(shop=shop)
        host_payout = Payout.objects.get(user=other_host)
        assert (first.amount, first.status) == (11020 + 5780, "pending")
        assert host_payout.amount == 680 + 3000
        assert _sweep() == {"released": 0, "built": 0}  # the beat again: nothing twice
        balance = farmer.get(f"/api/v1/shops/{shop.pk}/balance/").json()
        assert (balance["pending"], balance["available"], balance["in_payout"]) == (11560, 0, 16800)

        with committed():
            assert staff_api.post(f"/api/v1/payouts/{first.pk}/approve/").json()["status"] == "approved"
            assert staff_api.post(f"/api/v1/payouts/{host_payout.pk}/approve/").status_code == 200
        first.refresh_from_db()
        assert (first.status, first.method) == ("sent", "stripe")
        assert first.stripe_transfer_id
        event = transfer_webhook("transfer.created", first, committed)
        transfer_webhook("transfer.created", first, committed, event_id=event["id"])  # redelivered
        transfer_webhook("transfer.created", first, committed)  # sent again under a new id
        first.refresh_from_db()
        assert first.status == "paid"
        host_payout.refresh_from_db()
        assert (host_payout.status, host_payout.method) == ("approved", "bank")
        csv_text = payouts.bank_export(payout_ids=[host_payout.pk])
        assert "Chongqing Rural Bank" in csv_text
        assert "36.80,CNY" in csv_text
        assert payouts.bank_mark_sent(payout_id=host_payout.pk)
        assert payouts.payout_paid(payout_id=host_payout.pk)

        # Day 12: half of B refunded after its payout: the farmer and the cadre owe it back.
        clock.shift(3 * DAY)
        refund(farmer, b, 3400, committed)
        assert farmer.get(f"/api/v1/shops/{shop.pk}/balance/").json()["available"] == -(3400 - 170 - 340)

        # Day 15: C delivered automatically; day 23: released, the refund netted from it.
        clock.shift(3 * DAY)
        from orders.services.orders import orders_deliver_due

        assert orders_deliver_due() == 1
        assert Order.objects.get(pk=c.pk).status == "delivered"
        clock.shift(8 * DAY)
        assert _sweep() == {"released": 1, "built": 2}
        second = Payout.objects.filter(shop=shop).latest("pk")
        assert second.amount == 11560 - 2890
        assert Payout.objects.filter(user=other_host).latest("pk").amount == 1360 - 340
        with committed():
            staff_api.post(f"/api/v1/payouts/{second.pk}/approve/")
        second.refresh_from_db()
        # The transfer comes back (the connected account was closed): owed to the farmer again.
        _reverse(second)
        transfer_webhook("transfer.reversed", second, committed)
        second.refresh_from_db()
        assert second.status == "failed"
        assert farmer.get(f"/api/v1/shops/{shop.pk}/balance/").json()["available"] == 11560 - 2890

    # The statements, at the end of the month.
    today = timezone.localdate()
    period = f"from={(start - DAY).date()}&to={today}"
    statement = farmer.get(f"/api/v1/shops/{shop.pk}/statement/?{period}").json()
    balance = farmer.get(f"/api/v1/shops/{shop.pk}/balance/").json()
    assert statement["opening"] == 0
    assert statement["closing"] == statement["opening"] + sum(line["amount"] for line in statement["lines"])
    assert statement["closing"] == balance["pending"] + balance["available"] == 11560 - 2890
    kinds = {line["kind"] for line in statement["lines"]}
    assert kinds == {"sale", "fee", "commission", "refund", "payout", "payout_returned"}
    host_statement = cadre.get(f"/api/v1/hosts/{other_host.host.pk}/statement/?{period}").json()
    assert {line["kind"] for line in host_statement["lines"]} == {"commission", "gift_earnings", "payout"}
    assert host_statement["closing"] == sum(line["amount"] for line in host_statement["lines"]) == 0
    csv_answer = farmer.get(f"/api/v1/shops/{shop.pk}/statement/?{period}&format=csv")
    assert csv_answer["Content-Type"].startswith("text/csv")
    assert csv_answer.content.decode("utf-8-sig").splitlines()[-1].split(",")[-2] == str(statement["closing"])

    assert_ledger_balanced()
    call_command("reconcile")
    assert Reconciliation.objects.latest("pk").is_clean

    # Planted: a transfer Stripe never made, then an entry changed by hand.
    first.refresh_from_db()
    transfer_id = str(first.stripe_transfer_id)
    Payout.objects.filter(pk=first.pk).update(stripe_transfer_id="tr_missing")
    with pytest.raises(SystemExit) as exit_:
        call_command("reconcile")
    assert exit_.value.code == 1
    found = {(d["check"], d["subject"]) for d in Reconciliation.objects.latest("pk").differences}
    assert ("payouts", f"payout {first.pk}") in found
    assert ("payouts", f"transfer {transfer_id}") in found
    Payout.objects.filter(pk=first.pk).update(stripe_transfer_id=transfer_id)
    entry = LedgerEntry.objects.filter(transaction__order=a).order_by("pk")[0]
    LedgerEntry.objects.filter(pk=entry.pk).update(amount=F("amount") + 1)
    with pytest.raises(SystemExit):
        call_command("reconcile")
    checks = {d["check"] for d in Reconciliation.objects.latest("pk").differences}
    assert checks == {"ledger", "orders"}


def _reverse(payout: Payout) -> None:
    stripe_api.client().v1.transfers.reversals.create(str(payout.stripe_transfer_id))
