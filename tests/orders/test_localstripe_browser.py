"""localstripe as the web page meets it: Stripe.js's card confirmation with a publishable
key and the client secret (orders/localstripe_server.py), against a running localstripe."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

import pytest

from orders import localstripe_server, stripe_api

CARD = {"exp_month": "12", "exp_year": "2034", "cvc": "123"}


def new_intent(amount: int = 1980) -> Any:
    # localstripe knows payment_method_types, not the SDK's typed automatic_payment_methods.
    params: dict[str, Any] = {"amount": amount, "currency": "cny", "payment_method_types": ["card"]}
    return stripe_api.client().v1.payment_intents.create(params=params)  # type: ignore[arg-type]


def browser_confirm(base: str, intent: Any, *, number: str, key: str = "pk_test_web", secret: str | None = None):
    """What Stripe.js sends from the page (localstripe_stripe.js): JSON, no Authorization."""
    body = {
        "key": key,
        "client_secret": secret if secret is not None else intent.client_secret,
        "payment_method_data": {"type": "card", "card": {"number": number, **CARD}, "billing_details": {"name": "Li"}},
    }
    request = urllib.request.Request(
        f"{base}/v1/payment_intents/{intent.id}/confirm", data=json.dumps(body).encode(), method="POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def status_of(intent: Any) -> str:
    return str(stripe_api.client().v1.payment_intents.retrieve(intent.id)["status"])


def test_a_good_card_pays_the_intent(localstripe_url):
    intent = new_intent()
    status, body = browser_confirm(localstripe_url, intent, number="4242424242424242")
    assert (status, body["status"]) == (200, "succeeded")
    assert status_of(intent) == "succeeded"
    method = stripe_api.client().v1.payment_methods.retrieve(body["payment_method"])
    assert method["card"]["last4"] == "4242"


def test_a_declined_card_leaves_the_intent_payable_with_another(localstripe_url):
    intent = new_intent()
    status, body = browser_confirm(localstripe_url, intent, number="4000000000000341")
    assert status == 402
    assert body["error"]["code"] == "card_declined"
    assert status_of(intent) == "requires_payment_method"
    status, body = browser_confirm(localstripe_url, intent, number="4242424242424242")
    assert (status, body["status"]) == (200, "succeeded")


def test_a_card_that_asks_for_3d_secure_waits_for_it(localstripe_url):
    intent = new_intent()
    status, body = browser_confirm(localstripe_url, intent, number="4000002500003155")
    assert (status, body["status"]) == (200, "requires_action")


@pytest.mark.parametrize(
    ("key", "secret"),
    [("pk_test_web", "pi_wrong_secret_x"), ("sk_test_not_for_browsers", None), ("", None)],
)
def test_without_the_client_secret_and_a_publishable_key_nothing_is_charged(localstripe_url, key, secret):
    intent = new_intent()
    status, _ = browser_confirm(localstripe_url, intent, number="4242424242424242", key=key, secret=secret)
    assert status == 401
    assert status_of(intent) == "requires_payment_method"


def test_a_paid_intent_is_not_paid_twice(localstripe_url):
    intent = new_intent()
    assert browser_confirm(localstripe_url, intent, number="4242424242424242")[0] == 200
    status, body = browser_confirm(localstripe_url, intent, number="4242424242424242")
    assert status == 400
    assert body["error"]["code"] == "payment_intent_unexpected_state"


def test_the_servers_own_confirm_still_goes_to_localstripe(localstripe_url):
    # The secret-key path (the SDK, as `pay_order` and the tests use it) is untouched.
    intent = new_intent()
    intents = stripe_api.client().v1.payment_intents
    intents.update(intent.id, params={"payment_method": "pm_card_visa"})
    assert intents.confirm(intent.id)["status"] == "succeeded"


def test_stripe_js_is_localstripes_stand_in_with_the_card_confirmation(localstripe_url):
    with urllib.request.urlopen(f"{localstripe_url}{localstripe_server.STRIPE_JS_PATH}", timeout=10) as response:
        script = response.read().decode()
        assert response.headers["Content-Type"].startswith("application/javascript")
    assert "LOCALSTRIPE_BASE_API" in script  # localstripe's own
    assert "stripe.confirmCardPayment = async" in script  # then liveshop's addition


def test_make_run_points_the_page_at_localstripe():
    env = localstripe_server.local_stripe_environment(port=8420)
    assert env["STRIPE_JS_URL"] == "http://127.0.0.1:8420/js.stripe.com/v3/"
    assert env["STRIPE_PUBLISHABLE_KEY"].startswith("pk_test_")
