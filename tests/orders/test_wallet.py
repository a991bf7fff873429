"""The coin wallet and top-ups: a PaymentIntent at localstripe, coins credited once from
the signed webhook through the outbox and settlement, nothing from the client's word."""

from __future__ import annotations

from typing import Any

import pytest
import stripe
from rest_framework.test import APIClient

from liveshop.models import IdempotencyRecord
from orders import stripe_api
from orders.models import LedgerAccount, LedgerTransaction, StripeEvent, TopUp
from orders.services.ledger import ledger_balance
from orders.services.wallet import wallet_coins, wallet_grant
from tests.coins import assert_ledger_balanced, grant
from tests.helpers import assert_error
from tests.orders.conftest import deliver, stripe_event

pytestmark = pytest.mark.django_db

TOP_UPS = "/api/v1/wallet/top-ups/"


def top_up(client: APIClient, coins: Any = 100, key: str | None = None) -> Any:
    headers: dict[str, Any] = {"HTTP_IDEMPOTENCY_KEY": key} if key else {}
    return client.post(TOP_UPS, {"coins": coins}, format="json", **headers)


def pay(top_up_id: int, card: str = "pm_card_visa") -> dict[str, Any]:
    """The buyer's app pays the top-up's PaymentIntent at localstripe; returns the intent."""
    intents = stripe_api.client().v1.payment_intents
    intent_id = TopUp.objects.get(pk=top_up_id).payment_intent_id
    assert intent_id
    intents.update(intent_id, params={"payment_method": card})
    intents.confirm(intent_id)
    return intents.retrieve(intent_id).to_dict()


def wallet(client: APIClient) -> dict[str, Any]:
    response = client.get("/api/v1/wallet/")
    assert response.status_code == 200
    return dict(response.json())


# --- Reading the wallet ------------------------------------------------------------------------


def test_a_new_wallet_is_empty_and_prices_coins(client_for, viewer):
    assert wallet(client_for(viewer)) == {"coins": 0, "earned_coins": 0, "coin_price": 10, "currency": "cny"}
    assert not LedgerAccount.objects.exists()  # reading creates nothing


def test_wallet_needs_a_user(client_for):
    assert_error(client_for(None).get("/api/v1/wallet/"), 401, "not_authenticated")
    assert_error(top_up(client_for(None)), 401, "not_authenticated")
    assert_error(client_for(None).get(TOP_UPS), 401, "not_authenticated")


# --- Top-ups ------------------------------------------------------------------------------------


def test_top_up_creates_a_payment_intent_and_credits_nothing_yet(client_for, viewer, settings):
    settings.COIN_PRICE_FEN = 12
    response = top_up(client_for(viewer), 150, key="t1")

    assert response.status_code == 201, response.content
    body = response.json()
    assert body["coins"] == 150
    assert body["amount"] == 1800
    assert (body["currency"], body["status"]) == ("cny", "pending")
    assert body["payment"]["provider"] == "stripe"
    assert body["payment"]["payment_intent"].startswith("pi_")
    assert body["payment"]["client_secret"]
    assert body["payment"]["status"] == "requires_payment"
    intent = stripe_api.payment_intent_retrieve(payment_intent_id=body["payment"]["payment_intent"])
    assert (intent.amount, intent.currency) == (1800, "cny")
    assert wallet(client_for(viewer))["coins"] == 0
    assert not LedgerTransaction.objects.exists()


def test_paid_top_up_credits_the_coins_once_whatever_the_deliveries(client_for, viewer, committed):
    created = top_up(client_for(viewer), 100).json()
    intent = pay(created["id"])
    assert intent["status"] == "succeeded"
    first = stripe_event("payment_intent.succeeded", intent)
    # The same event twice, and a second event of the same payment (Stripe may send several).
    again = {**first, "id": first["id"] + "_again"}

    with committed():
        for event in (first, first, again, again):
            assert deliver(client_for(None), event).status_code == 200

    assert wallet(client_for(viewer))["coins"] == 100
    top = TopUp.objects.get()
    assert (top.status, top.amount_received) == (TopUp.Status.PAID, 1000)
    assert top.paid_at is not None
    assert StripeEvent.objects.count() == 2
    assert sorted(StripeEvent.objects.values_list("outcome", flat=True)) == [
        "duplicate: top-up already credited",
        "top-up credited",
    ]
    assert LedgerTransaction.objects.filter(kind="top_up").count() == 1
    # The money and the coins, each balanced in its own currency.
    assert ledger_balance(account=LedgerAccount.objects.get(kind="processor")) == 1000
    assert ledger_balance(account=LedgerAccount.objects.get(kind="coin_sales")) == -1000
    assert ledger_balance(account=LedgerAccount.objects.get(kind="coin_issue")) == 100
    assert LedgerAccount.objects.get(kind="wallet", user=viewer).balance == -100
    assert_ledger_balanced()
    detail = client_for(viewer).get(f"{TOP_UPS}{created['id']}/").json()
    assert (detail["status"], detail["payment"]["status"]) == ("paid", "succeeded")


def test_coins_come_only_from_a_verified_event(client_for, viewer, committed):
    created = top_up(client_for(viewer), 100).json()
    forged = stripe_event(
        "payment_intent.succeeded",
        {"id": created["payment"]["payment_intent"], "amount": 1000, "amount_received": 1000, "currency": "cny"},
    )
    with committed():
        response = deliver(client_for(None), forged, secret="whsec_not_ours")
    assert_error(response, 400, "invalid")
    assert wallet(client_for(viewer))["coins"] == 0


def test_an_intent_whose_id_was_never_stored_is_found_by_its_metadata(client_for, viewer, committed):
    created = top_up(client_for(viewer), 30).json()
    intent = pay(created["id"])
    # As if the answer of the creation call had been lost before the id was stored.
    TopUp.objects.filter(pk=created["id"]).update(payment_intent_id=None)
    with committed():
        deliver(client_for(None), stripe_event("payment_intent.succeeded", intent))
    assert wallet(client_for(viewer))["coins"] == 30
    assert TopUp.objects.get().payment_intent_id == intent["id"]


def test_a_failed_payment_credits_nothing_and_a_canceled_one_closes_the_top_up(client_for, viewer, committed):
    created = top_up(client_for(viewer), 100).json()
    intents = stripe_api.client().v1.payment_intents
    intent_id = created["payment"]["payment_intent"]
    intents.update(intent_id, params={"payment_method": "pm_card_chargeCustomerFail"})
    with pytest.raises(stripe.CardError):
        intents.confirm(intent_id)
    failed = intents.retrieve(intent_id).to_dict()
    with committed():
        deliver(client_for(None), stripe_event("payment_intent.payment_failed", failed))
    top = TopUp.objects.get()
    assert top.status == TopUp.Status.PENDING
    assert "declined" in top.last_error
    assert client_for(viewer).get(f"{TOP_UPS}{top.pk}/").json()["payment"]["status"] == "failed"

    canceled = stripe_api.client().v1.payment_intents.cancel(intent_id).to_dict()
    with committed():
        deliver(client_for(None), stripe_event("payment_intent.canceled", canceled))
    assert TopUp.objects.get().status == TopUp.Status.CANCELED
    assert wallet(client_for(viewer))["coins"] == 0
    assert not LedgerTransaction.objects.exists()


def test_a_payment_that_succeeds_after_a_cancel_is_still_credited(client_for, viewer, committed):
    created = top_up(client_for(viewer), 40).json()
    intent = pay(created["id"])
    TopUp.objects.filter(pk=created["id"]).update(status=TopUp.Status.CANCELED)
    with committed():
        deliver(client_for(None), stripe_event("payment_intent.succeeded", intent))
    assert wallet(client_for(viewer))["coins"] == 40


def test_idempotent_top_up_replays_and_refuses_another_body(client_for, viewer):
    client = client_for(viewer)
    first = top_up(client, 100, key="buy-100")
    again = top_up(client, 100, key="buy-100")
    assert first.status_code == again.status_code == 201
    assert again.content == first.content
    assert again["Idempotent-Replayed"] == "true"
    assert TopUp.objects.count() == 1
    assert_error(top_up(client, 200, key="buy-100"), 422, "idempotency_key_reused")
    assert TopUp.objects.count() == 1


def test_stripe_unreachable_is_503_and_a_retry_resumes_the_same_top_up(client_for, viewer, settings, localstripe_url):
    settings.STRIPE_API_BASE = "http://127.0.0.1:9"  # nothing listens on the discard port
    assert_error(top_up(client_for(viewer), 100, key="k"), 503, "unavailable")
    assert TopUp.objects.get().payment_intent_id is None
    settings.STRIPE_API_BASE = localstripe_url
    response = top_up(client_for(viewer), 100, key="k")
    assert response.status_code == 201, response.content
    assert TopUp.objects.count() == 1
    assert response.json()["payment"]["payment_intent"] == TopUp.objects.get().payment_intent_id
    assert IdempotencyRecord.objects.get().response_status == 201


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"coins": 0},
        {"coins": -5},
        {"coins": "many"},
        {"coins": 1.5},
        {"coins": None},
        {"coins": 100_001},
        [],
    ],
)
def test_bad_top_ups_are_400_and_create_nothing(client_for, viewer, body):
    response = client_for(viewer).post(TOP_UPS, body, format="json", HTTP_IDEMPOTENCY_KEY="bad")
    assert_error(response, 400, "invalid")
    assert not TopUp.objects.exists()
    assert not IdempotencyRecord.objects.exists()  # a refusal keeps no key


def test_a_bad_idempotency_key_is_400(client_for, viewer):
    assert_error(top_up(client_for(viewer), 10, key="x" * 300), 400, "invalid")
    assert not TopUp.objects.exists()


def test_top_ups_are_private(client_for, viewer, other_buyer, staff):
    created = top_up(client_for(viewer), 10).json()
    assert client_for(viewer).get(f"{TOP_UPS}{created['id']}/").status_code == 200
    assert [t["id"] for t in client_for(viewer).get(TOP_UPS).json()["results"]] == [created["id"]]
    for other in (other_buyer, staff):
        assert_error(client_for(other).get(f"{TOP_UPS}{created['id']}/"), 404, "not_found")
        assert client_for(other).get(TOP_UPS).json()["results"] == []


# --- Staff grants -------------------------------------------------------------------------------


def test_a_grant_is_balanced_and_made_once_per_key(viewer):
    assert wallet_grant(user=viewer, coins=500, key="welcome", reason="welcome gift")
    assert not wallet_grant(user=viewer, coins=500, key="welcome", reason="welcome gift")
    assert wallet_coins(user_id=viewer.pk) == 500
    promotions = LedgerAccount.objects.get(kind="coin_promotions")
    assert ledger_balance(account=promotions) == 500
    assert LedgerTransaction.objects.get().kind == "coin_grant"
    assert_ledger_balanced()


def test_grants_add_up(viewer):
    grant(viewer, 5)
    grant(viewer, 7)
    assert wallet_coins(user_id=viewer.pk) == 12


# --- The demo's helper ----------------------------------------------------------------------------


def test_pay_top_up_pays_at_stripe_and_leaves_the_credit_to_the_webhook(client_for, viewer, committed):
    from io import StringIO

    from django.core.management import CommandError, call_command

    created = top_up(client_for(viewer), 25).json()
    out = StringIO()
    call_command("pay_top_up", str(created["id"]), stdout=out)
    assert "is succeeded" in out.getvalue()
    intent = stripe_api.client().v1.payment_intents.retrieve(created["payment"]["payment_intent"]).to_dict()
    assert intent["status"] == "succeeded"
    assert wallet(client_for(viewer))["coins"] == 0  # until the webhook
    with committed():
        deliver(client_for(None), stripe_event("payment_intent.succeeded", intent))
    assert wallet(client_for(viewer))["coins"] == 25
    with pytest.raises(CommandError, match="No top-up"):
        call_command("pay_top_up", "999999")
