"""The provably fair giveaway draw, and a verifier anyone can run.

At creation the server picks a secret 32-byte seed and publishes
`commitment = sha256(seed_hex)`. At the close every entrant gets the key
`sha256(seed_hex + ":" + str(user_id))`; the entrants with the smallest keys win, ties
broken by user id. Then the seed is published, and anyone can check the commitment and
recompute the winners from the public entrant list.

This module needs only the standard library, so that a viewer can verify a draw without
installing liveshop:

    python -m rooms.fairness --url https://liveshop.example/api/v1/giveaways/42/
"""

from __future__ import annotations

import argparse
import hashlib
import json
import secrets
import sys
import urllib.request
from collections.abc import Callable, Iterable
from typing import Any


def new_seed() -> str:
    """A fresh secret seed: 32 random bytes as 64 lower-case hex characters."""
    return secrets.token_hex(32)


def commitment_of(seed_hex: str) -> str:
    return hashlib.sha256(seed_hex.encode("ascii")).hexdigest()


def entrant_key(seed_hex: str, user_id: int) -> str:
    return hashlib.sha256(f"{seed_hex}:{user_id}".encode("ascii")).hexdigest()


def draw_winners(seed_hex: str, entrant_ids: Iterable[int], winners: int) -> list[int]:
    """The user ids that win, best first. Deterministic in the seed and the entrant set."""
    ranked = sorted(set(entrant_ids), key=lambda user_id: (entrant_key(seed_hex, user_id), user_id))
    return ranked[: max(0, winners)]


# --- The verifier -----------------------------------------------------------------------

Fetch = Callable[[str], Any]


def _fetch_json(url: str) -> Any:
    request = urllib.request.Request(url, headers={"Accept": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.load(response)


def _entries_url(giveaway_url: str) -> str:
    base = giveaway_url.split("?", 1)[0]
    return base.rstrip("/") + "/entries/?page_size=1000"


def verify_giveaway(url: str, *, fetch: Fetch = _fetch_json, out: Callable[[str], None] = print) -> bool:
    """Fetch a drawn giveaway's public data, check the commitment, recompute the winners.

    Prints each step through `out`; returns True only if everything matches.
    """
    out(f"1. Fetching the giveaway: {url}")
    giveaway = fetch(url)
    out(f"   title: {giveaway.get('title')!r}, status: {giveaway.get('status')}")
    out(f"   winners to draw: {giveaway.get('winners_count')}")
    seed = giveaway.get("seed")
    if not seed:
        out("   The seed is not published yet: the giveaway has not been drawn. Nothing to verify.")
        return False

    commitment = giveaway["commitment"]
    out("2. Checking the commitment published at the start against the revealed seed")
    out(f"   commitment:        {commitment}")
    out(f"   seed:              {seed}")
    recomputed = commitment_of(seed)
    out(f"   sha256(seed):      {recomputed}")
    if recomputed != commitment:
        out("   MISMATCH: the seed does not hash to the commitment.")
        return False
    out("   OK: the seed is the one committed to before anyone entered.")

    out(f"3. Fetching every entrant from {_entries_url(url)}")
    entrant_ids: list[int] = []
    excluded: list[tuple[int, str]] = []
    page_url: str | None = _entries_url(url)
    while page_url:
        page = fetch(page_url)
        for entry in page["results"]:
            # Entrants the rules excluded at the draw (they unfollowed, were banned) are
            # listed with `eligible: false` and the reason, and are not in the draw.
            if entry.get("eligible", True):
                entrant_ids.append(int(entry["user_id"]))
            else:
                excluded.append((int(entry["user_id"]), str(entry.get("excluded_reason") or "")))
        page_url = page.get("next")
    out(f"   {len(entrant_ids)} entrants in the draw")
    for user_id, reason in excluded:
        out(f"   excluded by the rules at the draw: user {user_id} ({reason or 'no reason given'})")

    out("4. Recomputing each entrant's key sha256(seed + ':' + user_id) and ranking them")
    expected = draw_winners(seed, entrant_ids, int(giveaway["winners_count"]))
    for rank, user_id in enumerate(expected, start=1):
        out(f"   #{rank}: user {user_id}  key {entrant_key(seed, user_id)}")
    published = [int(winner["user"]["id"]) for winner in giveaway.get("winners", [])]
    out(f"5. Published winners: {published}")
    if published != expected:
        out(f"   MISMATCH: recomputed winners are {expected}.")
        return False
    out("   OK: the published winners are exactly the recomputed ones.")
    return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Verify a liveshop giveaway draw.")
    parser.add_argument("--url", required=True, help="the giveaway's API URL, e.g. https://host/api/v1/giveaways/42/")
    args = parser.parse_args(argv)
    ok = verify_giveaway(args.url)
    print("VERIFIED" if ok else "NOT VERIFIED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
