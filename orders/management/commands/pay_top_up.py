"""`manage.py pay_top_up <top-up id>`: pay a wallet top-up with a test card, as a viewer's app would.

For local development and demos, like `pay_order`: against localstripe (as `make run`
starts it) or a Stripe *test* account. The coins reach the wallet only when Stripe's
signed webhook reaches the server and a worker settles it, as in production.
"""

from __future__ import annotations

from typing import Any

import stripe
from django.core.management.base import BaseCommand, CommandError

from orders.management.commands.pay_order import CARDS, pay_intent, use_test_stripe
from orders.models import TopUp


class Command(BaseCommand):
    help = "Pay a wallet top-up's PaymentIntent with a test card (localstripe or a Stripe test account)."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("top_up", type=int, help="the top-up's id (from POST /api/v1/wallet/top-ups/)")
        parser.add_argument("--card", choices=sorted(CARDS), default="visa")

    def handle(self, *args: Any, **options: Any) -> None:
        use_test_stripe()
        top_up = TopUp.objects.filter(pk=options["top_up"]).first()
        if top_up is None:
            raise CommandError(f"No top-up {options['top_up']}.")
        if not top_up.payment_intent_id:
            raise CommandError(f"Top-up {top_up.pk} has no PaymentIntent yet (retry its POST with the same key).")
        try:
            status = pay_intent(intent_id=top_up.payment_intent_id, card=CARDS[options["card"]])
        except stripe.CardError as exc:
            self.stdout.write(self.style.WARNING(f"Top-up {top_up.pk}: the card was declined ({exc.user_message})."))
            return
        self.stdout.write(
            self.style.SUCCESS(
                f"Top-up {top_up.pk}: PaymentIntent {top_up.payment_intent_id} is {status}; the webhook will credit "
                f"{top_up.coins} coins within a few seconds (GET /api/v1/wallet/)."
            )
        )
