"""`manage.py reconcile`: check that every fen adds up (payouts/reconcile.py).

Prints each difference and exits with status 1 if there is any; 0 when clean.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from payouts.reconcile import reconcile


class Command(BaseCommand):
    help = "Check the ledger, orders, refunds and payouts against each other and Stripe; exit 1 on a difference."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--stripe-days", type=int, default=35, help="read Stripe's balance history this far back")

    def handle(self, *args: Any, **options: Any) -> None:
        self.stdout.write("Reconciling the ledger, orders, refunds and payouts…")
        run = reconcile(stripe_days=options["stripe_days"])
        counted = ", ".join(f"{count} {name.replace('_', ' ')}" for name, count in sorted(run.checked.items()))
        self.stdout.write(f"Checked {counted}.")
        for difference in run.differences:
            self.stdout.write(f"DIFFERENCE [{difference['check']}] {difference['subject']}: {difference['detail']}")
        if run.differences:
            self.stderr.write(f"Reconciliation {run.pk}: {len(run.differences)} differences.")
            raise SystemExit(1)
        self.stdout.write(self.style.SUCCESS(f"Reconciliation {run.pk}: clean."))
