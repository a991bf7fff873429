"""Settlement takes only the money it expects (audit items 4, 5 and 10).

- a late payment cannot carry a buyer past a flash sale's per-buyer limit;
- a signed but malformed event is recorded and skipped, never blocks the others;
- a PaymentIntent whose amount or currency is not the order's (or the top-up's) never
  settles: it is flagged for staff and refunded in full.
"""

from __future__ import annotations

from typing import Any

import pytest

from orders import stripe_api
from orders.models import FlaggedPayment, LedgerAccount, LedgerTransaction, Order, Payment, Refund, StripeEvent, TopUp
from orders.services.flagged import flagged_payments_refund_pending
from orders.services.ledger import ledger_account, ledger_balance
from orders.services.orders import order_cancel
from orders.services.payments import stripe_events_process
from rooms.models import FlashSale
from tests.coins import assert_ledger_balanced
from tests.helpers import assert_error
from tests.orders.conftest import deliver, order_body, pay_at_stripe, place, stripe_event, succeeded_event
from tests.orders.test_flash_sales import START, start_url

pytestmark = pytest.mark.django_db


# --- Item 5: the per-buyer limit through a late payment --------------------------------------------


def test_a_late_payment_cannot_pass_the_per_buyer_limit(client_for, host, buyer, shelf_item, committed):
    with committed():
        sale = FlashSale.objects.get(pk=client_for(host).post(start_url(shelf_item), START, format="json").json()["id"])
    client = client_for(buyer)
    first = Order.objects.get(pk=place(client, order_body({"item": shelf_item.pk, "quantity": 2})).json()["id"])
    # A's intent is confirmed at Stripe before A's cancel reaches it...
    paid_a = stripe_event("payment_intent.succeeded", pay_at_stripe(first))
    with committed():
        order_cancel(order=first)
    # ...B takes the limit again and is paid...
    second = Order.objects.get(pk=place(client, order_body({"item": shelf_item.pk, "quantity": 2})).json()["id"])
    with committed():
        assert deliver(client_for(None), succeeded_event(second)).status_code == 200
    # ...then A's payment arrives: it must be refunded, not re-held over the limit.
    with committed():
        assert deliver(client_for(None), paid_a).status_code == 200

    first.refresh_from_db()
    assert first.status == Order.Status.CANCELLED
    assert Refund.objects.get(order=first).kind == Refund.Kind.LATE_PAYMENT
    assert StripeEvent.objects.get(event_id=paid_a["id"]).outcome == "late payment refunded (LimitExceeded)"
    sale.refresh_from_db()
    assert sale.remaining == START["quantity"] - 2
    assert_error(place(client, order_body({"item": shelf_item.pk, "quantity": 1})), 409, "limit_exceeded")
    assert_ledger_balanced()


def test_a_late_payment_within_the_limit_is_taken(client_for, host, buyer, shelf_item, committed):
    with committed():
        client_for(host).post(start_url(shelf_item), START, format="json")
    order = Order.objects.get(
        pk=place(client_for(buyer), order_body({"item": shelf_item.pk, "quantity": 2})).json()["id"]
    )
    paid = stripe_event("payment_intent.succeeded", pay_at_stripe(order))
    with committed():
        order_cancel(order=order)
        assert deliver(client_for(None), paid).status_code == 200
    order.refresh_from_db()
    assert order.status == Order.Status.PAID


# --- Item 10: malformed events ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "event",
    [
        {"id": "evt_no_data", "object": "event", "type": "payment_intent.succeeded"},
        {"id": "evt_null_object", "object": "event", "type": "payment_intent.succeeded", "data": {"object": None}},
        {"id": "evt_list", "object": "event", "type": "charge.refunded", "data": {"object": []}},
        {"id": "evt_no_id", "object": "event", "type": "refund.updated", "data": {"object": {"object": "refund"}}},
        {"id": "evt_wrong_object", "type": "payment_intent.succeeded",
         "data": {"object": {"id": "ch_1", "object": "charge"}}},
        {"id": "evt_str_amount", "type": "payment_intent.succeeded",
         "data": {"object": {"id": "pi_1", "object": "payment_intent", "amount": "100", "currency": "cny"}}},
    ],
)  # fmt: skip
def test_a_malformed_event_is_recorded_and_skipped(client_for, order, committed, event):
    with committed():
        response = deliver(client_for(None), event)
    assert response.status_code == 200
    assert response.json() == {"received": True, "stored": False}
    stored = StripeEvent.objects.get(event_id=event["id"])
    assert (stored.outcome, stored.processed_at is not None) == ("rejected: malformed event", True)
    # The next good event settles as usual.
    with committed():
        assert deliver(client_for(None), succeeded_event(order)).status_code == 200
    order.refresh_from_db()
    assert order.status == Order.Status.PAID


def test_a_malformed_row_already_in_the_outbox_does_not_stop_the_batch(client_for, order, committed):
    StripeEvent.objects.create(event_id="evt_legacy", type="payment_intent.succeeded", payload={"id": "evt_legacy"})
    good = succeeded_event(order)
    StripeEvent.objects.create(event_id=good["id"], type=good["type"], payload=good)

    outcomes = stripe_events_process()

    assert outcomes == {"evt_legacy": "rejected: malformed event", good["id"]: "settled"}
    order.refresh_from_db()
    assert order.status == Order.Status.PAID
    assert LedgerTransaction.objects.filter(kind="order_payment").count() == 1


# --- Item 4: amounts and currencies that are not what was asked --------------------------------------


def _tamper(intent_id: str | None, **changes: Any) -> dict[str, Any]:
    """Change a PaymentIntent at Stripe (localstripe) before it is paid, as an attacker with
    a leaked key could, then pay it; returns the paid intent."""
    assert intent_id
    intents = stripe_api.client().v1.payment_intents
    params: Any = {**changes, "payment_method": "pm_card_visa"}
    intents.update(intent_id, params=params)
    intents.confirm(intent_id)
    intent = intents.retrieve(intent_id).to_dict()
    # localstripe echoes an updated amount back as the string it was sent as; Stripe's is an integer.
    return {**intent, "amount": int(intent["amount"])}


@pytest.mark.parametrize(
    ("changes", "reason"),
    [({"amount": 30000, "currency": "usd"}, "paid in usd, not cny"), ({"amount": 2}, "received 2, not 17400")],
)
def test_an_order_paid_with_the_wrong_amount_or_currency_never_settles(client_for, order, committed, changes, reason):
    event = stripe_event("payment_intent.succeeded", _tamper(order.payment.payment_intent_id, **changes))
    with committed():
        for delivery in (event, event, {**event, "id": event["id"] + "_again"}):
            assert deliver(client_for(None), delivery).status_code == 200

    order.refresh_from_db()
    assert (order.status, order.paid_at, order.refunded_amount) == (Order.Status.PENDING_PAYMENT, None, 0)
    assert Payment.objects.get(order=order).status == Payment.Status.FAILED
    flagged = FlaggedPayment.objects.get()
    assert (flagged.order_id, flagged.reason, flagged.refund_status) == (order.pk, reason, "succeeded")
    assert (flagged.received_amount, flagged.received_currency) == (changes["amount"], changes.get("currency", "cny"))
    refunds = stripe_api.refunds_of_payment_intent(payment_intent_id=flagged.payment_intent_id)
    assert [(r["amount"], r["status"]) for r in refunds] == [(changes["amount"], "succeeded")]
    assert sorted(StripeEvent.objects.values_list("outcome", flat=True)) == [
        "duplicate: payment already flagged",
        f"flagged: {reason}; refunding",
    ]
    assert not LedgerTransaction.objects.filter(kind="order_payment").exists()
    assert not Refund.objects.exists()
    assert_ledger_balanced()
    currency = changes.get("currency", "cny")
    assert ledger_balance(account=ledger_account(kind=LedgerAccount.Kind.UNALLOCATED, currency=currency)) == 0
    assert ledger_balance(account=ledger_account(kind=LedgerAccount.Kind.PROCESSOR, currency=currency)) == 0


def test_a_top_up_paid_50_fen_credits_no_coins(client_for, viewer, committed):
    created = client_for(viewer).post("/api/v1/wallet/top-ups/", {"coins": 100}, format="json").json()
    intent = _tamper(TopUp.objects.get(pk=created["id"]).payment_intent_id, amount=50)
    with committed():
        assert deliver(client_for(None), stripe_event("payment_intent.succeeded", intent)).status_code == 200

    top_up = TopUp.objects.get()
    assert (top_up.status, top_up.amount_received) == (TopUp.Status.PENDING, 0)
    assert top_up.last_error == "flagged: received 50, not 1000"
    assert client_for(viewer).get("/api/v1/wallet/").json()["coins"] == 0
    flagged = FlaggedPayment.objects.get()
    assert (flagged.top_up_id, flagged.refund_status, flagged.received_amount) == (top_up.pk, "succeeded", 50)
    assert_ledger_balanced()


def test_a_flagged_refund_stripe_could_not_take_is_sent_again_by_the_sweeper(
    client_for, order, committed, settings, localstripe_url
):
    intent = _tamper(order.payment.payment_intent_id, amount=100)
    settings.STRIPE_API_BASE = "http://127.0.0.1:9"  # Stripe out of reach when the refund goes out
    with committed():
        deliver(client_for(None), stripe_event("payment_intent.succeeded", intent))
    assert FlaggedPayment.objects.get().refund_status == "pending"

    settings.STRIPE_API_BASE = localstripe_url
    assert flagged_payments_refund_pending(older_than_s=0) == 1
    flagged = FlaggedPayment.objects.get()
    assert flagged.refund_status == "succeeded"
    assert_ledger_balanced()
