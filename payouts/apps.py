from __future__ import annotations

from django.apps import AppConfig


class PayoutsConfig(AppConfig):
    name = "payouts"
    verbose_name = "Money out"

    def ready(self) -> None:
        # Stripe's transfer and payout events settle through the orders' webhook outbox.
        from payouts.services import transfers

        transfers.register_stripe_events()
