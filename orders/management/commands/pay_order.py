"""`manage.py pay_order <order>`: pay a test order with a test card, as a buyer's app would.

For local development and demos: it attaches a Stripe test card to the order's
PaymentIntent and confirms it, against localstripe (as `make run` starts it when no
STRIPE_SECRET_KEY is set) or a Stripe *test* account. The order turns `paid` only when
Stripe's signed webhook reaches the server and a worker settles it, as in production.
"""

from __future__ import annotations

import time
from typing import Any

import stripe
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db.models import Q

from orders import localstripe_server, stripe_api
from orders.models import Order
from orders.services import payments

CARDS = {
    "visa": "pm_card_visa",  # succeeds
    "declined": "pm_card_chargeCustomerFail",  # the charge is declined
}


def use_test_stripe() -> None:
    """Point the SDK at localstripe as `make run` starts it, unless a Stripe *test* key is set."""
    if not settings.STRIPE_SECRET_KEY:
        # `make run` started localstripe with these settings for its processes.
        env = localstripe_server.local_stripe_environment(port=settings.LOCALSTRIPE_PORT)
        settings.STRIPE_SECRET_KEY = env["STRIPE_SECRET_KEY"]
        settings.STRIPE_API_BASE = env["STRIPE_API_BASE"]
    elif not settings.STRIPE_SECRET_KEY.startswith("sk_test_"):
        raise CommandError("Refusing to pay with a live Stripe key: use a test key or localstripe.")


def pay_intent(*, intent_id: str, card: str) -> str:
    """Pay a PaymentIntent with a test card as the buyer's app would; returns its status.

    Raises stripe.CardError for a declined card, CommandError if Stripe refuses.
    """
    intents = stripe_api.client().v1.payment_intents
    try:
        # localstripe's confirm takes no payment method: attach it first (Stripe accepts both).
        intents.update(intent_id, params={"payment_method": card})
        return str(intents.confirm(intent_id)["status"])
    except stripe.CardError:
        raise
    except stripe.StripeError as exc:
        raise CommandError(f"Stripe refused: {exc}") from exc


class Command(BaseCommand):
    help = "Pay an order's PaymentIntent with a test card (localstripe or a Stripe test account)."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("order", help="the order's number (LS...) or id")
        parser.add_argument("--card", choices=sorted(CARDS), default="visa")

    def handle(self, *args: Any, **options: Any) -> None:
        use_test_stripe()
        reference = options["order"]
        query = Q(number=reference) | (Q(pk=int(reference)) if reference.isdigit() else Q())
        order = Order.objects.select_related("payment").filter(query).first()
        if order is None:
            raise CommandError(f"No order {reference}.")
        if not hasattr(order, "payment"):
            order = self._prepared(order)
        intent_id = order.payment.payment_intent_id
        try:
            status = pay_intent(intent_id=intent_id, card=CARDS[options["card"]])
        except stripe.CardError as exc:
            self.stdout.write(self.style.WARNING(f"{order.number}: the card was declined ({exc.user_message})."))
            return
        self.stdout.write(
            self.style.SUCCESS(
                f"{order.number}: PaymentIntent {intent_id} is {status}; the webhook will mark it paid "
                "within a few seconds (GET /api/v1/orders/{id}/)."
            )
        )

    def _prepared(self, order: Order) -> Order:
        """A "preparing" order (its PaymentIntent waits for Stripe's rate limit): make the
        intent now, in the next free write slot, as the worker would."""
        if order.status != Order.Status.PENDING_PAYMENT:
            raise CommandError(f"Order {order.number} is {order.status}: there is nothing to pay.")
        self.stdout.write(f"{order.number}: its payment is preparing; creating the PaymentIntent now.")
        wait = payments.order_payment_prepare(order_id=order.pk, slot_taken=False)
        for attempt in range(1, 6):  # a slot, then Stripe's backoffs while it is unreachable
            if wait <= 0:
                break
            time.sleep(wait)
            wait = payments.order_payment_prepare(order_id=order.pk, attempt=attempt)
        order = Order.objects.select_related("payment").get(pk=order.pk)
        if not hasattr(order, "payment"):
            raise CommandError(f"Order {order.number} got no PaymentIntent (it is {order.status}).")
        return order
