"""`manage.py verify_giveaway --url https://host/api/v1/giveaways/ID/`: check a draw from outside.

It reads only the public API, as any viewer could: the giveaway (commitment, revealed
seed, winners) and every entrant; it checks that the seed hashes to the commitment
published at the start and recomputes the winners, printing each step. The same check
runs without Django: `python -m rooms.fairness --url ...`, or any copy of
rooms/fairness.py (standard library only). Exits 0 when verified, 1 otherwise.
"""

from __future__ import annotations

import urllib.error
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from rooms.fairness import verify_giveaway


class Command(BaseCommand):
    help = "Verify a giveaway's draw from its public data: the commitment, the seed and the winners."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument(
            "--url", required=True, help="the giveaway's API URL, e.g. https://host/api/v1/giveaways/42/"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        url = options["url"]
        if not url.startswith(("http://", "https://")):
            raise CommandError("--url must be an http(s) URL of a giveaway, e.g. https://host/api/v1/giveaways/42/")
        try:
            verified = verify_giveaway(url, out=self.stdout.write)
        except (urllib.error.URLError, TimeoutError, ConnectionError) as exc:
            raise CommandError(f"Could not fetch the giveaway's public data: {exc}") from None
        except (KeyError, TypeError, ValueError) as exc:  # ValueError includes bad JSON
            raise CommandError(f"The answer is not a liveshop giveaway: {exc!r}") from None
        if not verified:
            raise CommandError("NOT VERIFIED")
        self.stdout.write(self.style.SUCCESS("VERIFIED"))
