"""Money out under concurrency, on PostgreSQL with real commits and threads:

- a refund racing a payout's build never has its money paid out;
- beat runs racing build each payout once;
- a transfer's webhook delivered twice at once fails the payout once;
- cash-outs racing never take more coins than were earned;
- approvals racing send one transfer.
"""

from __future__ import annotations

import datetime as dt
from functools import partial

import pytest
from django.db import IntegrityError
from django.utils import timezone

from liveshop.errors import Conflict, InsufficientCoins
from orders.models import LedgerAccount, LedgerTransaction, Refund
from orders.services.refunds import refund_apply_result, refund_request
from payouts.models import CoinCashOut, Payout
from payouts.services import cashouts, payouts
from payouts.services.payees import Payee
from rooms.models import Room
from tests import factories
from tests.coins import assert_ledger_balanced, gift, grant
from tests.helpers import on_postgresql, run_concurrently
from tests.orders.conftest import deliver, stripe_event
from tests.payouts.money import connect, offer_item, released_order

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(not on_postgresql(), reason="row locks and real commits: PostgreSQL"),
]


def _payable(payee: Payee) -> int:
    return -LedgerAccount.objects.get(pk=payee.payable().pk).balance


def test_a_refund_racing_a_payout_is_never_paid_out(client_for, host, shop, shelf_item, buyer, staff, committed):
    farmer = Payee(shop_id=shop.pk)
    for round_ in range(4):
        order = released_order(client_for(buyer), client_for(host), shelf_item, 2, committed)
        owed = _payable(farmer)
        refund = refund_request(order=order, reason="broken", requested_by=host, amount=3000)
        seller_share = 3000 - 3000 * order.platform_fee // order.total  # the fee goes back to the platform
        end = dt.date(2026, 1, 1) + dt.timedelta(days=round_)

        run_concurrently(partial(_build_or_refund, account_id=farmer.payable().pk, end=end, refund_id=refund.pk), 2)
        payout = Payout.objects.get(shop=shop, period_end=end)
        payouts.payout_approve(payout_id=payout.pk, by=staff)  # sent on commit: no connected account
        assert Payout.objects.get(pk=payout.pk).method == "bank"
        assert payouts.bank_mark_sent(payout_id=payout.pk)
        payout.refresh_from_db()
        # Whichever came first, what left is what was owed less the refund's share.
        assert payout.amount == owed - seller_share
        assert _payable(farmer) == 0
        assert Refund.objects.get(pk=refund.pk).status == "succeeded"
    assert_ledger_balanced()


def _build_or_refund(index: int, *, account_id: int, end: dt.date, refund_id: int) -> object:
    """Thread 0 builds the payout while thread 1 applies Stripe's word that the refund succeeded."""
    if index == 0:
        return payouts.payout_build(account_id=account_id, start=end, end=end)
    return refund_apply_result(refund_id=refund_id, stripe_refund_id=f"re_race_{refund_id}", status="succeeded")


def test_two_beat_runs_build_each_payout_once(client_for, host, shop, shelf_item, other_host, buyer, committed):
    cadre_room = factories.RoomFactory.create(host=other_host.host, status=Room.Status.LIVE)
    on_offer = offer_item(cadre_room, shelf_item.sku, commission_bps=1000)
    released_order(client_for(buyer), client_for(host), shelf_item, 1, committed)
    released_order(client_for(buyer), client_for(host), on_offer, 2, committed)
    owed = {payee: _payable(payee) for payee in (Payee(shop_id=shop.pk), Payee(user_id=other_host.pk))}
    today = timezone.localdate()

    built = run_concurrently(lambda _: payouts.payouts_build(today=today), 4)

    assert sum(len(run) for run in built) == 2
    for payee, amount in owed.items():
        assert Payout.objects.get(**payee.fields).amount == amount
        assert _payable(payee) == 0
    assert LedgerTransaction.objects.filter(kind="payout").count() == 2
    assert_ledger_balanced()


def test_a_transfer_webhook_delivered_twice_fails_the_payout_once(
    client_for, host, shop, shelf_item, buyer, staff, committed
):
    from orders import stripe_api

    farmer = Payee(shop_id=shop.pk)
    connect(farmer)
    released_order(client_for(buyer), client_for(host), shelf_item, 2, committed)
    owed = _payable(farmer)
    (payout,) = payouts.payouts_build(today=timezone.localdate())
    payouts.payout_approve(payout_id=payout.pk, by=staff)  # sent on commit (eager task)
    payout.refresh_from_db()
    assert payout.status == "sent"
    assert payout.stripe_transfer_id
    stripe_api.client().v1.transfers.reversals.create(payout.stripe_transfer_id)
    transfer = stripe_api.client().v1.transfers.retrieve(payout.stripe_transfer_id).to_dict()
    events = [stripe_event("transfer.reversed", transfer) for _ in range(2)]

    answers = run_concurrently(lambda i: deliver(client_for(None), events[i]).status_code, 2)

    assert answers == [200, 200]
    payout.refresh_from_db()
    assert payout.status == "failed"
    assert LedgerTransaction.objects.filter(kind="payout_failed").count() == 1
    assert _payable(farmer) == owed  # owed again, once
    assert_ledger_balanced()


def test_cash_outs_racing_never_take_more_than_was_earned(client_for, other_host, viewer, settings):
    cadre_room = factories.RoomFactory.create(host=other_host.host, status=Room.Status.LIVE)
    grant(viewer, 2000)
    sent = client_for(viewer).post(
        f"/api/v1/rooms/{cadre_room.pk}/gifts/", {"gift": gift().pk, "quantity": 10}, format="json"
    )
    assert sent.status_code == 201, sent.content
    earned = 990 - 990 * settings.GIFT_PLATFORM_SHARE_BPS // 10_000

    def cash_out(_: int) -> str:
        try:
            cashouts.coin_cash_out(user=other_host, coins=earned * 6 // 10)
        except InsufficientCoins:
            return "refused"
        return "done"

    assert sorted(run_concurrently(cash_out, 4)) == ["done", "refused", "refused", "refused"]
    assert CoinCashOut.objects.get().amount == earned * 6 // 10 * settings.COIN_CASHOUT_FEN
    assert_ledger_balanced()


def test_approvals_racing_send_one_transfer(client_for, host, shop, shelf_item, buyer, staff, other_host, committed):
    farmer = Payee(shop_id=shop.pk)
    connect(farmer)
    released_order(client_for(buyer), client_for(host), shelf_item, 1, committed)
    (payout,) = payouts.payouts_build(today=timezone.localdate())

    def approve(_: int) -> str:
        try:
            payouts.payout_approve(payout_id=payout.pk, by=staff)
        except (Conflict, IntegrityError):
            return "conflict"
        return "approved"

    assert sorted(run_concurrently(approve, 3)) == ["approved", "conflict", "conflict"]
    payout.refresh_from_db()
    assert payout.status == "sent"
    assert payout.stripe_transfer_id
    assert LedgerTransaction.objects.filter(kind="payout_sent").count() == 1
    assert payouts.payout_send(payout_id=payout.pk) == "nothing to send"
    assert_ledger_balanced()


def _release_or_refund(index: int, *, order_id: int, refund_id: int) -> object:
    """Thread 0 runs the release sweep while thread 1 applies Stripe's word on a refund."""
    from payouts.services.balances import orders_release

    if index == 0:
        return orders_release(order_ids=[order_id])
    return refund_apply_result(refund_id=refund_id, stripe_refund_id=f"re_release_{refund_id}", status="succeeded")


def test_a_refund_racing_the_release_comes_out_of_one_account_once(
    client_for, host, shop, shelf_item, buyer, committed
):
    from datetime import timedelta

    from orders.models import Order
    from payouts.services.balances import orders_release_due, payee_balance
    from tests.payouts.money import paid_order, ship

    farmer = Payee(shop_id=shop.pk)
    for _ in range(4):
        order = paid_order(client_for(buyer), shelf_item, 2, committed)
        ship(client_for(host), order)
        Order.objects.filter(pk=order.pk).update(status="delivered", delivered_at=timezone.now() - timedelta(days=30))
        owed_before = payee_balance(payee=farmer)
        refund = refund_request(order=order, reason="dented", requested_by=host, amount=1000)
        # A pending refund holds the release back; applying it races the sweep.
        run_concurrently(partial(_release_or_refund, order_id=order.pk, refund_id=refund.pk), 2)
        orders_release_due()  # the next sweep releases what the race skipped
        after = payee_balance(payee=farmer)
        share = order.total - order.platform_fee - (1000 - 1000 * order.platform_fee // order.total)
        assert after.pending == owed_before.pending - (order.total - order.platform_fee)
        assert after.available == owed_before.available + share
        assert Order.objects.get(pk=order.pk).released_at is not None
    assert_ledger_balanced()
