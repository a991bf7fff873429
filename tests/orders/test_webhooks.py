"""Stripe's webhook, settlement and refunds: signatures, each event, duplicates, any order."""

from __future__ import annotations

import json
import time
from datetime import timedelta

import pytest
import stripe
from django.db.models import Sum
from django.utils import timezone

from catalog.models import Sku
from orders import stripe_api
from orders.models import LedgerAccount, LedgerEntry, LedgerTransaction, Order, Payment, Refund, StripeEvent
from orders.services.ledger import ledger_balance, ledger_check
from orders.services.payments import stripe_events_requeue
from rooms.models import Room
from tests import factories
from tests.helpers import assert_error, on_postgresql, run_concurrently
from tests.orders.conftest import (
    deliver,
    order_body,
    pay_at_stripe,
    place,
    settle,
    signed,
    stripe_event,
    succeeded_event,
)

pytestmark = pytest.mark.django_db

WEBHOOK = "/api/v1/payments/stripe/webhook/"


def assert_ledger_balanced():
    assert ledger_check() == {"unbalanced_transactions": [], "drifted_balances": []}
    for currency_total in LedgerEntry.objects.values("currency").annotate(total=Sum("amount")):
        assert currency_total["total"] == 0


def account(kind, **kwargs):
    return LedgerAccount.objects.get(kind=kind, **kwargs)


# --- Signatures ---------------------------------------------------------------------------------


def test_bad_signatures_are_400_and_store_nothing(client_for, order):
    client = client_for(None)
    event = succeeded_event(order)
    payload = json.dumps(event).encode()
    cases = [
        {},  # no header
        {"HTTP_STRIPE_SIGNATURE": signed(payload, secret="whsec_someone_else")},
        {"HTTP_STRIPE_SIGNATURE": signed(payload, timestamp=int(time.time()) - 3600)},  # a replay
        {"HTTP_STRIPE_SIGNATURE": "t=1,v1=deadbeef"},
        {"HTTP_STRIPE_SIGNATURE": "garbage"},
    ]
    for headers in cases:
        response = client.post(WEBHOOK, payload, content_type="application/json", **headers)
        assert_error(response, 400, "invalid")
    tampered = payload.replace(b'"amount": 17400', b'"amount": 1')
    response = client.post(WEBHOOK, tampered, content_type="application/json", HTTP_STRIPE_SIGNATURE=signed(payload))
    assert_error(response, 400, "invalid")
    not_json = b"not json"
    response = client.post(WEBHOOK, not_json, content_type="application/json", HTTP_STRIPE_SIGNATURE=signed(not_json))
    assert_error(response, 400, "invalid")
    assert not StripeEvent.objects.exists()
    assert Order.objects.get(pk=order.pk).status == Order.Status.PENDING_PAYMENT


def test_ignored_types_are_200_and_not_stored(client_for):
    response = deliver(client_for(None), stripe_event("customer.created", {"id": "cus_1"}))
    assert response.status_code == 200
    assert response.json() == {"received": True, "stored": False}
    assert not StripeEvent.objects.exists()


def test_without_a_webhook_secret_events_are_refused_503(client_for, settings):
    settings.STRIPE_WEBHOOK_SECRET = ""
    assert_error(deliver(client_for(None), stripe_event("customer.created", {})), 503, "unavailable")


# --- payment_intent.succeeded: settlement --------------------------------------------------------


def test_succeeded_settles_once_with_a_balanced_ledger_and_the_ticker(
    client_for, order, committed, published, live_room, shop
):
    event = succeeded_event(order)
    with committed():
        response = deliver(client_for(None), event)
    assert response.json() == {"received": True, "stored": True}

    order.refresh_from_db()
    assert order.status == Order.Status.PAID
    assert order.paid_at is not None
    assert Payment.objects.get(order=order).status == Payment.Status.SUCCEEDED
    assert StripeEvent.objects.get().outcome == "settled"
    # 17,400 paid: 5% platform fee (870); the host sells its own goods, so no commission.
    assert (order.platform_fee, order.host_commission) == (870, 0)
    assert ledger_balance(account=account("processor")) == 17400
    assert ledger_balance(account=account("platform_fees")) == -870
    assert ledger_balance(account=account("seller", shop=shop)) == -16530
    assert not LedgerAccount.objects.filter(kind="host_commission").exists()
    assert_ledger_balanced()
    assert published == [
        (
            live_room.pk,
            "order.placed",
            {"buyer": "Z***i", "district": "Jiangbei", "title": "Xiannv Black Tea", "title_en": "", "quantity": 3},
        )
    ]


def test_a_cadre_host_earns_commission_on_a_farmers_goods(client_for, buyer, other_host, sku, committed):
    cadre_room = factories.RoomFactory.create(host=other_host.host, status=Room.Status.LIVE)
    offer = factories.OfferFactory.create(sku=sku, commission_bps=1000)
    item = factories.RoomItemFactory.create(room=cadre_room, sku=sku, offer=offer)
    order = Order.objects.get(pk=place(client_for(buyer), order_body({"item": item.pk, "quantity": 1})).json()["id"])

    settle(client_for(None), order, committed)

    order.refresh_from_db()
    # 6,800: fee 5% = 340, the offer's commission 10% = 680, the farmer's shop gets 5,780.
    assert (order.platform_fee, order.host_commission) == (340, 680)
    assert ledger_balance(account=account("host_commission", user=other_host)) == -680
    assert ledger_balance(account=account("seller", shop=sku.product.shop)) == -5780
    assert_ledger_balanced()


def test_events_of_one_batch_in_reverse_order_settle_in_it(client_for, order, committed, published):
    # Delivered while no worker runs: one task then applies them all in one transaction,
    # retrying the refund after the payment it depends on.
    client = client_for(None)
    paid = succeeded_event(order)
    refund = stripe_api.refund_create(
        payment_intent_id=order.payment.payment_intent_id, amount=100, refund_id=0, reason="x"
    )
    refunded = stripe_event(
        "refund.updated",
        {"id": refund.id, "object": "refund", "amount": 100, "status": "succeeded",
         "payment_intent": order.payment.payment_intent_id},
    )  # fmt: skip
    for event in (refunded, paid):
        deliver(client, event)  # stored; their tasks are not run (no commit hooks here)
    from orders.services.payments import stripe_events_process

    with committed():
        outcomes = stripe_events_process(event_id=refunded["id"])
    assert outcomes[paid["id"]] == "settled"
    assert outcomes[refunded["id"]].endswith("succeeded")
    assert Order.objects.get(pk=order.pk).refunded_amount == 100
    assert_ledger_balanced()
    assert [t for _, t, _ in published] == ["order.placed"]


def _paid_orders_delivered(client_for, buyer, shelf_item, count):
    """`count` orders of the buyer, each paid at Stripe, their webhooks stored (not applied)."""
    client = client_for(buyer)
    orders, events = [], []
    for n in range(count):
        answer = place(client, order_body({"item": shelf_item.pk, "quantity": 1}), key=f"batch-{n}")
        order = Order.objects.get(pk=answer.json()["id"])
        event = succeeded_event(order)
        deliver(client_for(None), event)  # stored; no commit hooks run here: not applied
        orders.append(order)
        events.append(event)
    return orders, events


def test_a_failing_event_leaves_the_rest_of_its_batch_settled(
    client_for, buyer, shelf_item, committed, monkeypatch, settings
):
    settings.UNPAID_UNITS_PER_SKU = settings.UNPAID_UNITS_PER_BUYER = 50
    orders, events = _paid_orders_delivered(client_for, buyer, shelf_item, 4)
    from orders.services import payments

    real = payments._ledger_order_payment
    poisoned = orders[2].pk

    def ledger_or_fail(order, amount, **kwargs):
        if order.pk == poisoned:
            raise RuntimeError("a bug in this event only")
        return real(order, amount, **kwargs)

    monkeypatch.setattr(payments, "_ledger_order_payment", ledger_or_fail)
    with committed():
        outcomes = payments.stripe_events_process(event_id=events[0]["id"])
    assert outcomes[events[2]["id"]] == "error: RuntimeError"
    assert [outcomes[e["id"]] for n, e in enumerate(events) if n != 2] == ["settled"] * 3
    assert [Order.objects.get(pk=o.pk).status for o in orders] == ["paid", "paid", "pending_payment", "paid"]
    failed = StripeEvent.objects.get(event_id=events[2]["id"])
    assert (failed.processed_at, failed.outcome, failed.attempts) == (None, "error: RuntimeError", 1)
    assert LedgerTransaction.objects.filter(order_id=poisoned).count() == 0  # nothing half-written
    assert_ledger_balanced()

    monkeypatch.setattr(payments, "_ledger_order_payment", real)  # fixed: the sweeper's retry settles it
    with committed():
        assert payments.stripe_events_process(event_id=events[2]["id"])[events[2]["id"]] == "settled"
    assert LedgerTransaction.objects.filter(order_id=poisoned).count() == 1
    assert_ledger_balanced()


def test_a_batch_settles_in_a_few_statements_per_event(
    client_for, buyer, shelf_item, committed, settings, django_assert_max_num_queries
):
    # Per event: the payment's update, the order's, the ledger's transaction and its
    # entries, the buyer's notification: 5 statements (the ledger's accounts are cached).
    # Per batch: the claim (2), the preload (the payments' orders, their locks, the
    # payments, the lines), the events' one update, and the transaction (a savepoint in
    # a test): 9 more.
    settings.UNPAID_UNITS_PER_SKU = settings.UNPAID_UNITS_PER_BUYER = 50
    orders, events = _paid_orders_delivered(client_for, buyer, shelf_item, 9)
    from orders.services.payments import stripe_events_process

    with committed():
        stripe_events_process(event_id=events[0]["id"], batch=1)  # warms the ledger's account cache
    with committed(), django_assert_max_num_queries(5 * 8 + 9):
        outcomes = stripe_events_process(event_id=events[1]["id"])
    assert sorted(outcomes.values()) == ["settled"] * 8
    assert Order.objects.filter(pk__in=[o.pk for o in orders], status="paid").count() == 9
    assert_ledger_balanced()


def test_every_event_twice_and_in_reverse_order_settles_once(client_for, order, committed, published):
    client = client_for(None)
    paid = succeeded_event(order)
    refund = stripe_api.refund_create(
        payment_intent_id=order.payment.payment_intent_id, amount=4000, refund_id=0, reason="dented tin"
    )
    refunded = stripe_event(
        "charge.refunded",
        {
            "id": "ch_1",
            "object": "charge",
            "payment_intent": order.payment.payment_intent_id,
            "amount": 17400,
            "amount_refunded": 4000,
            "refunds": {
                "object": "list",
                "has_more": False,
                "data": [
                    {
                        "id": refund.id,
                        "object": "refund",
                        "amount": 4000,
                        "status": "succeeded",
                        "payment_intent": order.payment.payment_intent_id,
                    }
                ],
            },
        },
    )
    # A second, distinct event for the same payment (Stripe may send several).
    paid_again = {**paid, "id": paid["id"] + "_2"}

    with committed():  # the refund arrives first, twice: it waits for its payment
        assert deliver(client, refunded).status_code == 200
        assert deliver(client, refunded).status_code == 200
    assert StripeEvent.objects.get(event_id=refunded["id"]).outcome.startswith("deferred")
    with committed():
        for event in (paid, paid, paid_again, paid_again):
            assert deliver(client, event).status_code == 200
    assert Order.objects.get(pk=order.pk).status == Order.Status.PAID
    assert StripeEvent.objects.get(event_id=refunded["id"]).processed_at is None
    # The outbox sweeper picks the deferred refund up.
    with committed():
        assert stripe_events_requeue(older_than_s=0) == 1

    order.refresh_from_db()
    assert order.status == Order.Status.PAID
    assert order.refunded_amount == 4000
    assert StripeEvent.objects.count() == 3
    assert StripeEvent.objects.filter(processed_at__isnull=True).count() == 0
    assert LedgerTransaction.objects.filter(kind="order_payment").count() == 1
    assert LedgerTransaction.objects.filter(kind="order_refund").count() == 1
    assert Refund.objects.get().kind == Refund.Kind.EXTERNAL
    assert ledger_balance(account=account("processor")) == 17400 - 4000
    assert_ledger_balanced()
    assert [event_type for _, event_type, _ in published] == ["order.placed"]


def test_lost_broker_message_is_recovered_by_the_outbox_sweeper(client_for, order, committed):
    event = succeeded_event(order)
    deliver(client_for(None), event)  # no commit hook runs: as if the broker lost the task
    assert StripeEvent.objects.get().processed_at is None
    with committed():
        assert stripe_events_requeue() == 0  # not yet a minute old
    StripeEvent.objects.update(enqueued_at=timezone.now() - timedelta(minutes=2))
    with committed():
        assert stripe_events_requeue() == 1
    assert Order.objects.get(pk=order.pk).status == Order.Status.PAID


def test_a_lost_payment_cancel_is_sent_again_by_the_outbox_sweeper(order, committed):
    from orders.services.orders import order_expire
    from orders.services.payments import order_payments_cancel_lost

    Order.objects.filter(pk=order.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    assert order_expire(order_id=order.pk)  # no commit hook runs: as if the process died there
    assert Payment.objects.get(order=order).status == Payment.Status.REQUIRES_PAYMENT
    with committed():
        assert order_payments_cancel_lost() == 0  # not yet a minute old
    Order.objects.filter(pk=order.pk).update(closed_at=timezone.now() - timedelta(days=2))
    with committed():
        assert order_payments_cancel_lost() == 0  # too old: left alone
    Order.objects.filter(pk=order.pk).update(closed_at=timezone.now() - timedelta(minutes=2))
    with committed():
        assert order_payments_cancel_lost() == 1

    assert Payment.objects.get(order=order).status == Payment.Status.CANCELED
    intent = stripe_api.client().v1.payment_intents.retrieve(order.payment.payment_intent_id)
    assert intent["status"] == "canceled"
    with committed():
        assert order_payments_cancel_lost() == 0  # done: nothing sent again


def test_payment_failed_marks_the_payment_and_keeps_the_order_open(client_for, order, committed):
    intents = stripe_api.client().v1.payment_intents
    intent_id = order.payment.payment_intent_id
    intents.update(intent_id, params={"payment_method": "pm_card_chargeCustomerFail"})
    with pytest.raises(stripe.CardError):
        intents.confirm(intent_id)
    failed = intents.retrieve(intent_id).to_dict()

    with committed():
        deliver(client_for(None), stripe_event("payment_intent.payment_failed", failed))

    payment = Payment.objects.get(order=order)
    assert payment.status == Payment.Status.FAILED
    assert "declined" in payment.last_error
    assert Order.objects.get(pk=order.pk).status == Order.Status.PENDING_PAYMENT
    # The buyer tries another card (localstripe cannot retry a failed intent, so the
    # success is a signed event of our own); a late failure event never undoes it.
    succeeded = {**failed, "status": "succeeded", "amount_received": 17400, "last_payment_error": None}
    with committed():
        deliver(client_for(None), stripe_event("payment_intent.succeeded", succeeded))
    assert Order.objects.get(pk=order.pk).status == Order.Status.PAID
    with committed():
        deliver(client_for(None), stripe_event("payment_intent.payment_failed", failed))
    assert Payment.objects.get(order=order).status == Payment.Status.SUCCEEDED


def test_canceled_elsewhere_closes_the_order_and_returns_units(client_for, order, committed, sku):
    intent = stripe_api.client().v1.payment_intents.cancel(order.payment.payment_intent_id).to_dict()
    with committed():
        deliver(client_for(None), stripe_event("payment_intent.canceled", intent))
    order.refresh_from_db()
    assert order.status == Order.Status.CANCELLED
    assert Payment.objects.get(order=order).status == Payment.Status.CANCELED
    assert Sku.objects.get(pk=sku.pk).stock == 50


UNKNOWN_INTENT = {"id": "pi_unknown", "object": "payment_intent", "amount": 100, "currency": "cny"}


def test_unknown_payment_intent_is_ignored(client_for, committed):
    with committed():
        deliver(client_for(None), stripe_event("payment_intent.succeeded", UNKNOWN_INTENT))
    assert StripeEvent.objects.get().outcome.startswith("ignored")


# --- Late payments -------------------------------------------------------------------------------


def test_late_payment_is_taken_when_the_units_can_be_held_again(client_for, order, committed, sku, published):
    Order.objects.filter(pk=order.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    # Expired, but its PaymentIntent was paid before the cancel reached Stripe.
    event = succeeded_event(order)
    from orders.services.orders import order_expire

    with committed():
        assert order_expire(order_id=order.pk)
    assert Sku.objects.get(pk=sku.pk).stock == 50

    with committed():
        deliver(client_for(None), event)

    order.refresh_from_db()
    assert order.status == Order.Status.PAID
    assert Sku.objects.get(pk=sku.pk).stock == 47
    assert StripeEvent.objects.get().outcome == "settled late: units held again"
    assert not Refund.objects.exists()
    assert LedgerTransaction.objects.filter(kind="order_payment").count() == 1
    assert [t for _, t, _ in published] == ["order.placed"]
    assert_ledger_balanced()


def test_late_payment_is_refunded_in_full_when_the_units_are_gone(client_for, order, committed, sku, other_buyer):
    event = succeeded_event(order)
    with committed():
        assert client_for(order.buyer).post(f"/api/v1/orders/{order.pk}/cancel/").status_code == 200
    Sku.objects.filter(pk=sku.pk).update(stock=1)  # sold to others meanwhile

    with committed():
        deliver(client_for(None), event)
        deliver(client_for(None), {**event, "id": event["id"] + "_again"})

    order.refresh_from_db()
    assert order.status == Order.Status.CANCELLED
    refund = Refund.objects.get()
    assert (refund.kind, refund.amount, refund.status) == (Refund.Kind.LATE_PAYMENT, 17400, Refund.Status.SUCCEEDED)
    assert order.refunded_amount == 17400
    assert Sku.objects.get(pk=sku.pk).stock == 1
    stripe_refunds = stripe_api.refunds_of_payment_intent(payment_intent_id=order.payment.payment_intent_id)
    assert [(r["amount"], r["status"]) for r in stripe_refunds] == [(17400, "succeeded")]
    assert ledger_balance(account=account("processor")) == 0
    assert ledger_balance(account=account("unallocated")) == 0
    assert not LedgerTransaction.objects.filter(kind="order_payment").exists()
    assert_ledger_balanced()


# --- Refunds through the API ------------------------------------------------------------------------


@pytest.fixture
def paid_order(client_for, order, committed):
    settle(client_for(None), order, committed)
    order.refresh_from_db()
    return order


@pytest.mark.parametrize(
    ("who", "status"),
    [("anonymous", 401), ("buyer", 403), ("other_buyer", 404), ("host", 200), ("other_host", 404), ("staff", 200)],
)
def test_refund_matrix(client_for, persona, paid_order, committed, who, status):
    with committed():
        response = client_for(persona(who)).post(
            f"/api/v1/orders/{paid_order.pk}/refund/", {"amount": 1000, "reason": "late delivery"}, format="json"
        )
    assert response.status_code == status
    if status == 200:
        refund = Refund.objects.get()
        assert response.json() == {"id": refund.pk, "amount": 1000, "status": "succeeded"}
        assert Order.objects.get(pk=paid_order.pk).refunded_amount == 1000
    else:
        assert not Refund.objects.exists()


def test_partial_then_full_refund(client_for, host, paid_order, shop, committed):
    client = client_for(host)
    with committed():
        first = client.post(
            f"/api/v1/orders/{paid_order.pk}/refund/", {"amount": 4001, "reason": "one tin dented"}, format="json"
        )
        rest = client.post(f"/api/v1/orders/{paid_order.pk}/refund/", {"reason": "the rest arrived wet"}, format="json")
    assert first.status_code == rest.status_code == 200
    assert rest.json()["amount"] == 17400 - 4001

    order = Order.objects.get(pk=paid_order.pk)
    assert order.status == Order.Status.REFUNDED
    assert order.refunded_amount == 17400
    detail = client_for(order.buyer).get(f"/api/v1/orders/{order.pk}/").json()
    assert [(r["amount"], r["status"]) for r in detail["refunds"]] == [(4001, "succeeded"), (13399, "succeeded")]
    at_stripe = stripe_api.refunds_of_payment_intent(payment_intent_id=order.payment.payment_intent_id)
    assert sorted(r["amount"] for r in at_stripe) == [4001, 13399]
    # Everything reversed exactly, rounding included.
    assert ledger_balance(account=account("processor")) == 0
    assert ledger_balance(account=account("platform_fees")) == 0
    assert ledger_balance(account=account("seller", shop=shop)) == 0
    assert_ledger_balanced()

    more = client.post(f"/api/v1/orders/{order.pk}/refund/", {"amount": 1, "reason": "again"}, format="json")
    assert_error(more, 400, "invalid")


def test_refund_more_than_left_is_invalid(client_for, host, paid_order):
    response = client_for(host).post(
        f"/api/v1/orders/{paid_order.pk}/refund/", {"amount": 17401, "reason": "too much"}, format="json"
    )
    assert_error(response, 400, "invalid")
    assert not Refund.objects.exists()


def test_refund_of_an_unpaid_order_is_conflict(client_for, host, order):
    response = client_for(host).post(f"/api/v1/orders/{order.pk}/refund/", {"reason": "x"}, format="json")
    assert_error(response, 409, "conflict")


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"amount": 100},
        {"amount": 0, "reason": "x"},
        {"amount": -5, "reason": "x"},
        {"amount": "all", "reason": "x"},
        {"amount": 100, "reason": ""},
        {"amount": 100, "reason": "x" * 501},
        {"amount": 1.5, "reason": "x"},
    ],
)
def test_refund_bad_input(client_for, host, paid_order, body):
    response = client_for(host).post(f"/api/v1/orders/{paid_order.pk}/refund/", body, format="json")
    assert_error(response, 400, "invalid")
    assert not Refund.objects.exists()


def test_refund_webhook_for_our_pending_refund_applies_it_once(client_for, host, paid_order, committed, settings):
    # Stripe answers "pending" (a bank transfer refund); the webhook tells the end later.
    from orders.services.refunds import refund_apply_result, refund_request

    refund = refund_request(order=paid_order, amount=500, reason="late", requested_by=host)
    refund_apply_result(refund_id=refund.pk, stripe_refund_id="re_pending_1", status="pending")
    update = stripe_event(
        "refund.updated",
        {"id": "re_pending_1", "object": "refund", "amount": 500, "status": "succeeded", "payment_intent": "pi_x"},
    )
    with committed():
        deliver(client_for(None), update)
        deliver(client_for(None), {**update, "id": update["id"] + "b"})
    refund.refresh_from_db()
    assert refund.status == Refund.Status.SUCCEEDED
    assert Order.objects.get(pk=paid_order.pk).refunded_amount == 500
    assert LedgerTransaction.objects.filter(kind="order_refund").count() == 1
    assert_ledger_balanced()


def test_paying_at_stripe_alone_does_not_mark_the_order_paid(client_for, order):
    pay_at_stripe(order)  # the client's word, with no verified webhook
    assert Order.objects.get(pk=order.pk).status == Order.Status.PENDING_PAYMENT


def test_refund_failed_webhook_frees_the_reserved_amount(client_for, host, paid_order, committed):
    from orders.services.refunds import refund_apply_result, refund_request

    refund = refund_request(order=paid_order, amount=17400, reason="lost parcel", requested_by=host)
    refund_apply_result(refund_id=refund.pk, stripe_refund_id="re_will_fail", status="pending")
    # Nothing left while it is pending...
    response = client_for(host).post(f"/api/v1/orders/{paid_order.pk}/refund/", {"reason": "again"}, format="json")
    assert_error(response, 400, "invalid")
    failed = stripe_event(
        "refund.failed",
        {"id": "re_will_fail", "object": "refund", "amount": 17400, "status": "failed", "payment_intent": "pi_x"},
    )
    with committed():
        deliver(client_for(None), failed)
    refund.refresh_from_db()
    assert refund.status == Refund.Status.FAILED
    order = Order.objects.get(pk=paid_order.pk)
    assert (order.status, order.refunded_amount) == (Order.Status.PAID, 0)
    assert not LedgerTransaction.objects.filter(kind="order_refund").exists()
    # ...and all of it again once it failed.
    with committed():
        again = client_for(host).post(f"/api/v1/orders/{paid_order.pk}/refund/", {"reason": "again"}, format="json")
    assert again.json()["status"] == "succeeded"
    assert Order.objects.get(pk=paid_order.pk).status == Order.Status.REFUNDED
    assert_ledger_balanced()


# --- Late, repeated, out of order, unknown (issue 8) -----------------------------------------------


def test_a_canceled_event_after_the_success_changes_nothing(client_for, order, committed, sku):
    paid = succeeded_event(order)
    canceled = stripe_event("payment_intent.canceled", {**paid["data"]["object"], "status": "canceled"})
    with committed():
        deliver(client_for(None), paid)
        deliver(client_for(None), canceled)  # out of order, or about an earlier attempt

    order.refresh_from_db()
    assert order.status == Order.Status.PAID
    assert order.closed_at is None
    assert Payment.objects.get(order=order).status == Payment.Status.SUCCEEDED
    assert Sku.objects.get(pk=sku.pk).stock == 47  # the paid units stay held
    assert StripeEvent.objects.get(event_id=canceled["id"]).processed_at is not None
    assert LedgerTransaction.objects.filter(kind="order_payment").count() == 1
    assert_ledger_balanced()


def test_a_success_after_the_canceled_event_is_settled_as_a_late_payment(client_for, order, committed, sku):
    intent = stripe_api.client().v1.payment_intents.retrieve(order.payment.payment_intent_id).to_dict()
    canceled = stripe_event("payment_intent.canceled", {**intent, "status": "canceled"})
    # Stripe's events about one intent can arrive in any order: the success comes last.
    succeeded = stripe_event("payment_intent.succeeded", {**intent, "status": "succeeded", "amount_received": 17400})
    with committed():
        deliver(client_for(None), canceled)
    assert Order.objects.get(pk=order.pk).status == Order.Status.CANCELLED
    assert Sku.objects.get(pk=sku.pk).stock == 50
    with committed():
        deliver(client_for(None), succeeded)

    order.refresh_from_db()
    assert order.status == Order.Status.PAID
    assert Payment.objects.get(order=order).status == Payment.Status.SUCCEEDED
    assert Sku.objects.get(pk=sku.pk).stock == 47
    assert StripeEvent.objects.get(event_id=succeeded["id"]).outcome == "settled late: units held again"
    assert LedgerTransaction.objects.filter(kind="order_payment").count() == 1
    assert_ledger_balanced()


def test_a_failure_after_the_cancel_leaves_the_payment_canceled(client_for, order, committed):
    intent = stripe_api.client().v1.payment_intents.cancel(order.payment.payment_intent_id).to_dict()
    failed = {**intent, "last_payment_error": {"code": "card_declined", "message": "Your card was declined."}}
    with committed():
        deliver(client_for(None), stripe_event("payment_intent.canceled", intent))
        deliver(client_for(None), stripe_event("payment_intent.payment_failed", failed))
    payment = Payment.objects.get(order=order)
    assert (payment.status, payment.last_error) == (Payment.Status.CANCELED, "")
    assert Order.objects.get(pk=order.pk).status == Order.Status.CANCELLED


@pytest.mark.parametrize(
    ("event_type", "obj"),
    [
        ("payment_intent.payment_failed", UNKNOWN_INTENT),
        ("payment_intent.canceled", UNKNOWN_INTENT),
        ("refund.updated", {"id": "re_unknown", "object": "refund", "amount": 100, "status": "succeeded",
                            "payment_intent": "pi_unknown"}),
    ],
)  # fmt: skip
def test_events_for_unknown_intents_are_ignored(client_for, order, committed, event_type, obj):
    with committed():
        response = deliver(client_for(None), stripe_event(event_type, obj))
    assert response.json() == {"received": True, "stored": True}
    event = StripeEvent.objects.get()
    assert event.processed_at is not None
    assert event.outcome.startswith("ignored"), event.outcome
    assert Order.objects.get(pk=order.pk).status == Order.Status.PENDING_PAYMENT
    assert Payment.objects.get(order=order).status == Payment.Status.REQUIRES_PAYMENT
    assert not Refund.objects.exists()
    assert not LedgerTransaction.objects.exists()


def test_a_replayed_event_is_refused_once_stale_and_changes_nothing_when_fresh(client_for, order, committed, settings):
    event = succeeded_event(order)
    with committed():
        assert deliver(client_for(None), event).json() == {"received": True, "stored": True}
    tolerance = settings.STRIPE_WEBHOOK_TOLERANCE_S
    # The same bytes with their original, valid signature, replayed past the tolerance: 400.
    stale = deliver(client_for(None), event, timestamp=int(time.time()) - tolerance - 30)
    assert_error(stale, 400, "invalid")
    # Within the tolerance (Stripe's own late retry), or freshly signed: 200, stored once.
    with committed():
        late = deliver(client_for(None), event, timestamp=int(time.time()) - tolerance + 30)
        again = deliver(client_for(None), event)
    assert late.json() == again.json() == {"received": True, "stored": False}
    assert StripeEvent.objects.count() == 1
    assert LedgerTransaction.objects.filter(kind="order_payment").count() == 1
    assert Order.objects.get(pk=order.pk).status == Order.Status.PAID


@pytest.mark.django_db(transaction=True)
def test_the_same_event_delivered_concurrently_is_stored_and_settled_once(client_for, order):
    if not on_postgresql():
        pytest.skip("needs PostgreSQL (set DATABASE_URL)")
    first = succeeded_event(order)
    second = {**first, "id": first["id"] + "_2"}  # the same fact under a second event id
    payloads = [json.dumps(event).encode() for event in (first, second)]

    def deliver_at_once(index: int) -> tuple[int, bool]:
        payload = payloads[index % 2]
        response = client_for(None).post(
            WEBHOOK, payload, content_type="application/json", HTTP_STRIPE_SIGNATURE=signed(payload)
        )
        return response.status_code, response.json()["stored"]

    # Each delivery's task runs in its thread on commit (the eager worker of these tests).
    results = run_concurrently(deliver_at_once, 8)

    assert sorted(results) == [(200, False)] * 6 + [(200, True)] * 2
    assert StripeEvent.objects.count() == 2
    outcomes = sorted(StripeEvent.objects.values_list("outcome", flat=True))
    assert outcomes == ["duplicate: already settled", "settled"]
    assert Order.objects.get(pk=order.pk).status == Order.Status.PAID
    assert LedgerTransaction.objects.filter(kind="order_payment").count() == 1
    assert_ledger_balanced()


# --- The buyer's refund claim -----------------------------------------------------------------


def test_the_buyer_asks_for_a_refund_once_and_the_seller_sees_it(client_for, host, paid_order, committed):
    buyer = client_for(paid_order.buyer)
    url = f"/api/v1/orders/{paid_order.pk}/refund-claim/"
    first = buyer.post(url, {"reason": "The tin arrived dented."}, format="json")
    assert first.status_code == 201
    claim = first.json()["refund_claim"]
    assert (claim["reason"], claim["status"], claim["resolved_at"]) == ("The tin arrived dented.", "open", None)
    again = buyer.post(url, {"reason": "Hello?"}, format="json")
    assert again.status_code == 200
    assert again.json()["refund_claim"]["reason"] == "The tin arrived dented."
    seen = client_for(host).get(f"/api/v1/shops/{paid_order.shop_id}/orders/").json()["results"]
    assert [o["refund_claim"]["status"] for o in seen if o["id"] == paid_order.pk] == ["open"]

    # The seller refunds: the claim is answered.
    with committed():
        client_for(host).post(f"/api/v1/orders/{paid_order.pk}/refund/", {"reason": "sorry"}, format="json")
    answered = buyer.get(f"/api/v1/orders/{paid_order.pk}/").json()
    assert answered["status"] == "refunded"
    assert answered["refund_claim"]["status"] == "refunded"
    assert answered["refund_claim"]["resolved_at"] is not None


def test_a_refund_claim_needs_a_paid_order(client_for, order):
    response = client_for(order.buyer).post(f"/api/v1/orders/{order.pk}/refund-claim/", {"reason": "x"}, format="json")
    assert_error(response, 409, "conflict")  # not paid yet: cancel it instead
    assert_error(client_for(order.buyer).post("/api/v1/orders/999999/refund-claim/", {"reason": "x"}), 404, "not_found")


@pytest.mark.parametrize("body", [{}, {"reason": ""}, {"reason": "x" * 501}, {"reason": ["a"]}])
def test_a_refund_claim_needs_a_reason(client_for, paid_order, body):
    response = client_for(paid_order.buyer).post(f"/api/v1/orders/{paid_order.pk}/refund-claim/", body, format="json")
    assert_error(response, 400, "invalid")
    assert client_for(paid_order.buyer).get(f"/api/v1/orders/{paid_order.pk}/").json()["refund_claim"] is None


def test_the_buyer_is_told_paid_shipped_and_refunded_once_each(client_for, host, paid_order, committed):
    from notifications.models import Notification

    with committed():
        # Stripe delivers the success again (a new event id): no second "paid".
        intent = stripe_api.client().v1.payment_intents.retrieve(paid_order.payment.payment_intent_id).to_dict()
        assert deliver(client_for(None), stripe_event("payment_intent.succeeded", intent)).status_code == 200
        client_for(host).post(f"/api/v1/orders/{paid_order.pk}/ship/", {"tracking": "SF42"}, format="json")
        client_for(host).post(f"/api/v1/orders/{paid_order.pk}/refund/", {"amount": 100, "reason": "x"}, format="json")
        client_for(host).post(f"/api/v1/orders/{paid_order.pk}/refund/", {"amount": 200, "reason": "y"}, format="json")
    told = list(Notification.objects.filter(user=paid_order.buyer).order_by("id").values_list("kind", "data"))
    order = {"id": paid_order.pk, "number": paid_order.number}
    assert told == [
        ("order.paid", {"order": order}),
        ("order.shipped", {"order": {**order, "tracking": "SF42"}}),
        ("order.refunded", {"order": {**order, "amount": 100}}),
        ("order.refunded", {"order": {**order, "amount": 200}}),
    ]


# --- Waking the settlement: a few drainers, not a task per webhook -------------------------------


def new_order(client, shelf_item, *, key):
    return Order.objects.get(pk=place(client, order_body({"item": shelf_item.pk, "quantity": 1}), key=key).json()["id"])


@pytest.fixture
def drains(monkeypatch, settings):
    """Drainers started by webhooks, recorded (not run): [(slot, token)]."""
    settings.SETTLEMENT_DRAINERS = 2
    started = []
    monkeypatch.setattr(
        "orders.tasks.stripe_events_drain_task.delay", lambda slot, token: started.append((slot, token))
    )
    singles = []
    monkeypatch.setattr("orders.tasks.stripe_event_process_task.delay", lambda event_id: singles.append(event_id))
    return started, singles


def test_a_flood_of_webhooks_wakes_at_most_two_drainers_which_apply_them_all(
    client_for, buyer, shelf_item, committed, drains, settings
):
    from orders.services.payments import stripe_events_drain

    settings.UNPAID_UNITS_PER_SKU = settings.UNPAID_UNITS_PER_BUYER = 50
    started, singles = drains
    client = client_for(buyer)
    orders = []
    for n in range(6):
        order = Order.objects.get(
            pk=place(client, order_body({"item": shelf_item.pk, "quantity": 1}), key=f"d{n}").json()["id"]
        )
        with committed():
            assert deliver(client_for(None), succeeded_event(order)).status_code == 200
        orders.append(order)
    assert [slot for slot, _ in started] == [0, 1]  # then every slot was taken: nothing more
    assert singles == []
    with committed():
        applied = stripe_events_drain(slot=started[0][0], token=started[0][1])
    assert applied == 6
    assert Order.objects.filter(pk__in=[o.pk for o in orders], status="paid").count() == 6
    with committed():
        assert stripe_events_drain(slot=started[1][0], token=started[1][1]) == 0  # nothing left for it
    # Both slots are free again: the next webhook wakes a drainer at once.
    order = Order.objects.get(
        pk=place(client, order_body({"item": shelf_item.pk, "quantity": 1}), key="d9").json()["id"]
    )
    with committed():
        deliver(client_for(None), succeeded_event(order))
    assert [slot for slot, _ in started] == [0, 1, 0]


def test_an_event_stored_while_the_drainer_lets_go_wakes_another(
    client_for, buyer, shelf_item, committed, drains, settings, monkeypatch
):
    from orders.services import payments

    settings.SETTLEMENT_DRAINERS = 1
    settings.UNPAID_UNITS_PER_SKU = settings.UNPAID_UNITS_PER_BUYER = 50
    started, _ = drains
    client = client_for(buyer)
    first, late = (new_order(client, shelf_item, key=k) for k in ("a", "b"))
    with committed():
        deliver(client_for(None), succeeded_event(first))
    assert len(started) == 1
    real = payments.stripe_events_process
    late_event = succeeded_event(late)

    def process_then_a_webhook(**kwargs):
        outcomes = real(**kwargs)
        if not outcomes and late_event is not None:
            # After the drainer's last (empty) batch, before it lets go: the slot is taken.
            with committed():
                deliver(client_for(None), late_event)
        return outcomes

    monkeypatch.setattr(payments, "stripe_events_process", process_then_a_webhook)
    with committed():
        payments.stripe_events_drain(slot=started[0][0], token=started[0][1])
    assert len(started) == 2  # the drainer looked again after letting go, and woke another
    assert Order.objects.get(pk=late.pk).status == "pending_payment"
    monkeypatch.setattr(payments, "stripe_events_process", real)
    with committed():
        payments.stripe_events_drain(slot=started[1][0], token=started[1][1])
    assert Order.objects.get(pk=late.pk).status == "paid"


def test_with_redis_down_each_webhook_sends_its_own_task(client_for, order, committed, drains, monkeypatch):
    import redis as redis_lib

    from liveshop import redis_client

    started, singles = drains

    class Down:
        def set(self, *args, **kwargs):
            raise redis_lib.exceptions.ConnectionError("down")

    monkeypatch.setattr("orders.services.payments.redis_sync", lambda: Down())
    event = succeeded_event(order)
    with committed():
        assert deliver(client_for(None), event).status_code == 200
    assert (started, singles) == ([], [event["id"]])
    assert redis_client.REDIS_UNAVAILABLE  # the errors it falls back on
