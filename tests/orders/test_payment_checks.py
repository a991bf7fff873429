"""Settlement takes only the money it expects (audit items 4, 5 and 10).

- a late payment cannot carry a buyer past a flash sale's per-buyer limit;
- a signed but malformed event is recorded and skipped, never blocks the others;
- a PaymentIntent whose amount or currency is not the order's (or the top-up's) never
  settles: it is flagged for staff and refunded in full.
"""

from __future__ import annotations

import pytest

from orders.models import LedgerTransaction, Order, Refund, StripeEvent
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
