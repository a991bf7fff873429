"""Helpers of the money-out tests: orders placed, paid, shipped, delivered and refunded
through the API, with the webhooks Stripe would send."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from rest_framework.test import APIClient

from orders import stripe_api
from orders.models import Order
from payouts.models import Payout
from rooms.models import Room, RoomItem
from tests import factories
from tests.orders.conftest import deliver, order_body, place, settle, stripe_event

Committed = Callable[..., Any]


def offer_item(room: Room, sku: Any, commission_bps: int) -> RoomItem:
    offer = factories.OfferFactory.create(sku=sku, commission_bps=commission_bps)
    return factories.RoomItemFactory.create(room=room, sku=sku, offer=offer)


def paid_order(client: APIClient, item: RoomItem, quantity: int, committed: Committed) -> Order:
    response = place(client, order_body({"item": item.pk, "quantity": quantity}))
    assert response.status_code == 201, response.content
    order = Order.objects.get(pk=response.json()["id"])
    settle(APIClient(), order, committed)
    order.refresh_from_db()
    assert order.status == Order.Status.PAID
    return order


def ship(seller: APIClient, order: Order) -> None:
    response = seller.post(f"/api/v1/orders/{order.pk}/ship/", {"tracking": "SF1234"}, format="json")
    assert response.status_code == 200, response.content


def refund(seller: APIClient, order: Order, amount: int, committed: Committed) -> None:
    with committed():
        response = seller.post(
            f"/api/v1/orders/{order.pk}/refund/", {"amount": amount, "reason": "a broken tin"}, format="json"
        )
    assert response.status_code in (200, 201), response.content
    assert order.refunds.get(amount=amount).status == "succeeded"


def transfer_webhook(event_type: str, payout: Payout, committed: Committed, event_id: str | None = None) -> dict:
    """Deliver Stripe's event about the payout's transfer, as read back from localstripe."""
    payout.refresh_from_db()
    transfer = stripe_api.client().v1.transfers.retrieve(str(payout.stripe_transfer_id)).to_dict()
    event = stripe_event(event_type, transfer, event_id=event_id)
    with committed():
        assert deliver(APIClient(), event).status_code == 200
    return event


def onboard(client: APIClient, path: str) -> str:
    """The payee asks for Stripe onboarding and finishes it (the stand-in's page)."""
    import urllib.request

    response = client.post(path, {"stripe": True}, format="json")
    assert response.status_code == 200, response.content
    url = response.json()["onboarding_url"]
    assert url
    request = urllib.request.Request(url.split("?")[0])  # the stand-in marks it onboarded
    with urllib.request.urlopen(request, timeout=10) as answer:
        answer.read()
    again = client.get(path)
    assert again.json()["transfers_enabled"] is True
    return str(again.json()["stripe_account_id"])


def released_order(client: APIClient, seller: APIClient, item: RoomItem, quantity: int, committed: Committed) -> Order:
    """An order paid, shipped, delivered past its hold and released: its seller's share
    (and its host's commission) payable."""
    from datetime import timedelta

    from django.conf import settings
    from django.utils import timezone

    from payouts.services.balances import order_release

    order = paid_order(client, item, quantity, committed)
    ship(seller, order)
    past = timezone.now() - timedelta(days=settings.PAYOUT_HOLD_DAYS + 1)
    Order.objects.filter(pk=order.pk).update(status=Order.Status.DELIVERED, delivered_at=past)
    assert order_release(order_id=order.pk)
    order.refresh_from_db()
    return order


def connect(payee: Any) -> str:
    """A connected account at the stand-in, onboarded, as the payee's payout account."""
    import urllib.request

    from payouts.models import PayoutAccount

    info = stripe_api.connected_account_create(payee=payee.code, email=None, country="CN")
    url = stripe_api.account_onboarding_link(
        account_id=info.id, return_url="https://liveshop.test/money/", refresh_url="https://liveshop.test/money/"
    )
    with urllib.request.urlopen(url.split("?")[0], timeout=10) as answer:
        answer.read()
    PayoutAccount.objects.update_or_create(
        shop_id=payee.shop_id, user_id=payee.user_id, defaults={"stripe_account_id": info.id, "transfers_enabled": True}
    )
    return info.id


def settled_order(buyer: Any, item: RoomItem, quantity: int) -> Order:
    """An order paid without a Stripe server: its PaymentIntent as Stripe would have made
    it and the `payment_intent.succeeded` event stored and applied by the real outbox."""
    from django.utils import timezone

    from orders.models import Payment, StripeEvent
    from orders.services.orders import LineRequest, order_create
    from orders.services.payments import stripe_events_process
    from tests.orders.conftest import SHIPPING

    order = order_create(
        buyer=buyer, lines=[LineRequest(item=item, quantity=quantity)], room=item.room, shipping=SHIPPING
    )
    intent_id = f"pi_test_{order.number}"
    Payment.objects.create(
        order=order, payment_intent_id=intent_id, client_secret=f"{intent_id}_secret", amount=order.total
    )
    intent = {"id": intent_id, "object": "payment_intent", "amount": order.total, "currency": order.currency}
    event_id = f"evt_{order.number}"
    payload = stripe_event("payment_intent.succeeded", intent | {"status": "succeeded"}, event_id=event_id)
    StripeEvent.objects.create(event_id=event_id, type=payload["type"], payload=payload, enqueued_at=timezone.now())
    stripe_events_process(event_id=event_id, batch=1)
    order.refresh_from_db()
    assert order.status == Order.Status.PAID
    return order
