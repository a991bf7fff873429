"""The draw algorithm of CONTRACT.md, recomputed independently, and the verifier."""

from __future__ import annotations

import hashlib
import subprocess
import sys

from rooms.fairness import commitment_of, draw_winners, new_seed, verify_giveaway

SEED = "7f" * 32


def contract_winners(seed_hex, user_ids, n):
    # Written from the contract's words, not from rooms.fairness.
    keyed = []
    for uid in set(user_ids):
        keyed.append((hashlib.sha256((seed_hex + ":" + str(uid)).encode()).hexdigest(), uid))
    keyed.sort()
    return [uid for _, uid in keyed[:n]]


def test_seed_is_64_lower_hex_and_fresh():
    seed = new_seed()
    assert len(seed) == 64
    assert seed == seed.lower()
    int(seed, 16)
    assert new_seed() != seed


def test_commitment_is_sha256_of_the_hex_text():
    assert commitment_of(SEED) == hashlib.sha256(SEED.encode()).hexdigest()


def test_draw_matches_the_contract_and_is_deterministic():
    entrants = list(range(1, 301))
    winners = draw_winners(SEED, entrants, 5)
    assert winners == contract_winners(SEED, entrants, 5)
    assert draw_winners(SEED, reversed(entrants), 5) == winners
    assert len(set(winners)) == 5


def test_draw_depends_on_the_seed():
    entrants = list(range(1, 301))
    assert draw_winners(SEED, entrants, 5) != draw_winners("00" * 32, entrants, 5)


def test_fewer_entrants_than_winners_and_none():
    assert sorted(draw_winners(SEED, [3, 9], 5)) == [3, 9]
    assert draw_winners(SEED, [], 3) == []
    assert draw_winners(SEED, [3, 3, 3], 2) == [3]


def _published(seed, entrants, n, *, winners=None, commitment=None, page_size=2):
    base = "https://shop.test/api/v1/giveaways/7/"
    pages = {}
    chunks = [entrants[i : i + page_size] for i in range(0, len(entrants), page_size)] or [[]]
    for index, chunk in enumerate(chunks):
        url = base + "entries/" + (f"?page={index + 1}" if index else "?page_size=1000")
        nxt = base + f"entries/?page={index + 2}" if index + 1 < len(chunks) else None
        pages[url] = {"count": len(entrants), "next": nxt, "previous": None, "results": [{"user_id": u} for u in chunk]}
    chosen = winners if winners is not None else contract_winners(seed, entrants, n)
    pages[base] = {
        "id": 7,
        "title": "Hotpot base for three viewers",
        "status": "drawn",
        "winners_count": n,
        "commitment": commitment or hashlib.sha256(seed.encode()).hexdigest(),
        "seed": seed,
        "winners": [{"user": {"id": u, "display_name": f"u{u}"}} for u in chosen],
    }
    return base, pages.__getitem__


def test_verifier_accepts_an_honest_draw():
    url, fetch = _published(SEED, list(range(10, 25)), 3)
    lines: list[str] = []
    assert verify_giveaway(url, fetch=fetch, out=lines.append) is True
    assert any("15 entrants" in line for line in lines)


def test_verifier_rejects_a_swapped_seed():
    url, fetch = _published(SEED, list(range(10, 25)), 3, commitment=hashlib.sha256(b"other").hexdigest())
    assert verify_giveaway(url, fetch=fetch, out=lambda _: None) is False


def test_verifier_rejects_hand_picked_winners():
    url, fetch = _published(SEED, list(range(10, 25)), 3, winners=[10, 11, 12])
    assert verify_giveaway(url, fetch=fetch, out=lambda _: None) is False


def test_verifier_runs_standalone_without_django():
    result = subprocess.run(
        [sys.executable, "-c", "import sys, rooms.fairness; assert 'django' not in sys.modules"],
        capture_output=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr


def test_verifier_leaves_out_the_entrants_excluded_at_the_draw():
    entrants = list(range(10, 25))
    excluded = {contract_winners(SEED, entrants, 1)[0], 17}  # the best key among them
    url, fetch = _published(
        SEED, entrants, 3, winners=contract_winners(SEED, [u for u in entrants if u not in excluded], 3)
    )

    def marked(page_url):
        page = fetch(page_url)
        if "results" in page:
            page = {**page, "results": [
                {**entry, "eligible": entry["user_id"] not in excluded, "excluded_reason": "banned"}
                for entry in page["results"]
            ]}  # fmt: skip
        return page

    lines: list[str] = []
    assert verify_giveaway(url, fetch=marked, out=lines.append) is True
    assert any("13 entrants in the draw" in line for line in lines)
    assert any("user 17 (banned)" in line for line in lines)
    # Counting them in would give other winners: the flag matters.
    assert contract_winners(SEED, entrants, 3) != contract_winners(SEED, [u for u in entrants if u not in excluded], 3)


def test_verify_giveaway_command_refuses_what_it_cannot_check():
    import pytest
    from django.core.management import CommandError, call_command

    from tests.servers import free_port

    with pytest.raises(CommandError, match="http"):
        call_command("verify_giveaway", "--url", "file:///etc/passwd")
    with pytest.raises(CommandError, match="Could not fetch"):
        call_command("verify_giveaway", "--url", f"http://127.0.0.1:{free_port()}/api/v1/giveaways/1/")
