"""Every call liveshop makes to Stripe, in one place (Saleor's shape).

The API version is pinned: Stripe's objects and events keep the shape this code reads
whatever the account's default version, until someone changes this line on purpose.
Every call that creates something carries an idempotency key derived from our own ids,
so a retry (ours, or the SDK's) never creates a second PaymentIntent or refund.

`STRIPE_API_BASE` points the SDK elsewhere: localstripe in tests and `make run`.
No call here is ever made while a database row lock is held.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from typing import Any

import stripe
from django.conf import settings

# Pinned: the version this code was written and tested against (stripe-python 16.1.0's).
STRIPE_API_VERSION = "2026-10-28.endive"
# Seconds before a call to Stripe gives up; the SDK retries network failures itself.
TIMEOUT_S = 20
MAX_NETWORK_RETRIES = 2

StripeError = stripe.StripeError
# Stripe refused the request itself (bad amount, a state that does not allow it):
# retrying cannot help, unlike a network or server error.
StripeRequestRefused = (stripe.InvalidRequestError, stripe.CardError)


@dataclass(frozen=True)
class IntentInfo:
    id: str
    client_secret: str
    status: str
    amount: int
    currency: str


@dataclass(frozen=True)
class RefundInfo:
    id: str
    status: str  # pending, requires_action, succeeded, failed, canceled
    amount: int


def is_configured() -> bool:
    return bool(settings.STRIPE_SECRET_KEY)


@functools.cache
def _client_for(api_key: str, api_base: str) -> stripe.StripeClient:
    base = {"api": api_base} if api_base else None
    return stripe.StripeClient(
        api_key,
        stripe_version=STRIPE_API_VERSION,
        base_addresses=base,  # type: ignore[arg-type]
        max_network_retries=MAX_NETWORK_RETRIES,
        http_client=stripe.RequestsClient(timeout=TIMEOUT_S),
    )


def client() -> stripe.StripeClient:
    if not settings.STRIPE_SECRET_KEY:
        raise stripe.AuthenticationError("STRIPE_SECRET_KEY is not set.")
    return _client_for(settings.STRIPE_SECRET_KEY, settings.STRIPE_API_BASE)


def _intent(obj: Any) -> IntentInfo:
    return IntentInfo(
        id=obj["id"],
        client_secret=obj["client_secret"],
        status=obj["status"],
        amount=int(obj["amount"]),
        currency=obj["currency"],
    )


def payment_intent_create(*, order_number: str, amount: int, currency: str, metadata: dict[str, str]) -> IntentInfo:
    """A PaymentIntent for an order, once per order number whatever the retries."""
    return _payment_intent_create(
        idempotency_key=f"order-{order_number}", amount=amount, currency=currency, metadata=metadata
    )


def top_up_payment_intent_create(*, top_up_id: int, amount: int, currency: str, metadata: dict[str, str]) -> IntentInfo:
    """A PaymentIntent for a wallet top-up, once per top-up whatever the retries."""
    return _payment_intent_create(
        idempotency_key=f"top-up-{top_up_id}", amount=amount, currency=currency, metadata=metadata
    )


def _payment_intent_create(*, idempotency_key: str, amount: int, currency: str, metadata: dict[str, str]) -> IntentInfo:
    """A PaymentIntent, created once per idempotency key.

    Payment method types are listed (card, plus those in STRIPE_PAYMENT_METHOD_TYPES)
    instead of `automatic_payment_methods`, which localstripe does not know. WeChat Pay
    needs the client kind; the web is the default.
    """
    types = list(dict.fromkeys(["card", *settings.STRIPE_PAYMENT_METHOD_TYPES]))
    params: dict[str, Any] = {
        "amount": amount,
        "currency": currency,
        "payment_method_types": types,
        "metadata": metadata,
    }
    if "wechat_pay" in types:
        params["payment_method_options"] = {"wechat_pay": {"client": "web"}}
    intent = client().v1.payment_intents.create(
        params=params,  # type: ignore[arg-type]
        options={"idempotency_key": idempotency_key},
    )
    return _intent(intent)


def payment_intent_retrieve(*, payment_intent_id: str) -> IntentInfo:
    return _intent(client().v1.payment_intents.retrieve(payment_intent_id))


def payment_intent_cancel(*, payment_intent_id: str) -> str:
    """Cancel a PaymentIntent that can no longer pay for anything; returns its status.

    One that already succeeded (or was canceled) cannot be canceled: its status comes
    back instead, and the succeeded webhook settles it as a late payment.
    """
    try:
        intent = client().v1.payment_intents.cancel(payment_intent_id)
    except stripe.InvalidRequestError:
        return payment_intent_retrieve(payment_intent_id=payment_intent_id).status
    return str(intent["status"])


def refund_create(
    *, payment_intent_id: str, amount: int, refund_id: int, reason: str, idempotency_key: str | None = None
) -> RefundInfo:
    """Give `amount` back on a PaymentIntent, once per liveshop refund id (or `idempotency_key`)."""
    refund = client().v1.refunds.create(
        params={
            "payment_intent": payment_intent_id,
            "amount": amount,
            # Stripe's `reason` is an enum; ours is free text, kept in the metadata.
            "metadata": {"liveshop_refund": str(refund_id), "reason": reason[:400]},
        },
        options={"idempotency_key": idempotency_key or f"refund-{refund_id}"},
    )
    return RefundInfo(id=refund["id"], status=refund["status"] or "pending", amount=int(refund["amount"]))


def refunds_of_payment_intent(*, payment_intent_id: str) -> list[dict[str, Any]]:
    """Every refund Stripe holds for a PaymentIntent, as plain dicts."""
    listing = client().v1.refunds.list(params={"payment_intent": payment_intent_id, "limit": 100})
    return [refund.to_dict() for refund in listing.data]


# --- Stripe Connect: paying shops and hosts (payouts/) ----------------------------------------


@dataclass(frozen=True)
class ConnectedAccountInfo:
    id: str
    transfers_enabled: bool


def connected_account_create(*, payee: str, email: str | None, country: str) -> ConnectedAccountInfo:
    """An Express connected account for a payee ("shop:12", "user:7"), once per payee."""
    params: dict[str, Any] = {
        "type": "express",
        "country": country,
        "capabilities": {"transfers": {"requested": True}},
        "metadata": {"liveshop_payee": payee},
    }
    if email:
        params["email"] = email
    account = client().v1.accounts.create(
        params=params,  # type: ignore[arg-type]
        options={"idempotency_key": f"payout-account-{payee}"},
    )
    return _connected_account(account)


def connected_account_retrieve(*, account_id: str) -> ConnectedAccountInfo:
    return _connected_account(client().v1.accounts.retrieve(account_id))


def _connected_account(account: Any) -> ConnectedAccountInfo:
    fields = account.to_dict()
    capabilities = fields.get("capabilities") or {}
    return ConnectedAccountInfo(id=fields["id"], transfers_enabled=capabilities.get("transfers") == "active")


def account_onboarding_link(*, account_id: str, return_url: str, refresh_url: str) -> str:
    """Where the payee fills in Stripe's onboarding forms (a link valid a few minutes)."""
    link = client().v1.account_links.create(
        params={
            "account": account_id,
            "return_url": return_url,
            "refresh_url": refresh_url,
            "type": "account_onboarding",
        }
    )
    return str(link["url"])


def transfer_create(*, payout_id: int, amount: int, currency: str, destination: str) -> str:
    """Send a payout to a connected account, once per payout id whatever the retries;
    returns the transfer's id."""
    transfer = client().v1.transfers.create(
        params={
            "amount": amount,
            "currency": currency,
            "destination": destination,
            "transfer_group": f"payout-{payout_id}",
            "metadata": {"liveshop_payout": str(payout_id)},
        },
        options={"idempotency_key": f"payout-{payout_id}"},
    )
    return str(transfer["id"])


def balance_transactions(*, since: int, until: int) -> list[dict[str, Any]]:
    """The platform's balance history between two Unix times: every charge, refund,
    transfer and transfer reversal, as plain dicts (all pages)."""
    listing = client().v1.balance_transactions.list(params={"created": {"gte": since, "lte": until}, "limit": 100})
    return [row.to_dict() for row in listing.auto_paging_iter()]


def webhook_payload_verify(*, payload: bytes, signature: str) -> dict[str, Any]:
    """The event in a webhook body, if its `Stripe-Signature` is valid for our secret.

    Raises stripe.SignatureVerificationError (bad or stale signature) or ValueError
    (not JSON).
    """
    stripe.WebhookSignature.verify_header(
        payload.decode("utf-8"),
        signature,
        settings.STRIPE_WEBHOOK_SECRET,
        tolerance=settings.STRIPE_WEBHOOK_TOLERANCE_S,
    )
    try:
        event = json.loads(payload)
    except RecursionError:
        raise ValueError("JSON nested too deep") from None
    if not isinstance(event, dict) or not isinstance(event.get("id"), str) or not isinstance(event.get("type"), str):
        raise ValueError("not a Stripe event")
    return event
