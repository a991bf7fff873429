"""Benchmark 5: gifts in a busy room, the keyword check on the comment path, the draw.

    DATABASE_URL=postgres://... REDIS_URL=redis://.../N flock /tmp/liveshop-bench.lock \\
        .venv/bin/python -m bench.gifts [--senders 8] [--seconds 6] [--comments 2000] [--entrants 10000,50000]

Three measurements, each against a reference in the same run:

1. Gifts in one busy room. `--senders` threads (each a viewer with its own wallet and
   database connection) send 1-coin gifts in one live room through `gift_send` (the
   service behind `POST /rooms/{id}/gifts/`: wallet debit, ledger entries, the gift's
   record, `gift.sent` on commit) as fast as they can for `--seconds`. As shipped, the
   host's earned coins are summed from the ledger on read; the reference keeps them as a
   balance column that every gift updates (LedgerAccount.BALANCE_KINDS with
   `coin_earnings` in it), the way the wallet is kept. Rounds alternate, twice each.
2. The comment path, one comment at a time (in its transaction,
   `rooms.services.comment_create`), for `--comments` comments
   a round, with an open keyword giveaway in the room: comments that are not the
   keyword, and comments that are (each enters its author); the reference is the same
   service with the keyword hook taken out. Rounds alternate.
3. The draw. `giveaway_draw` at the close of a giveaway of N entrants (the rules checked
   again, winners stored, the seed revealed), against the bare recomputation anyone can
   run (`rooms.fairness.draw_winners` on the same ids).

Checks: no wallet overdrawn, every gift in the ledger once, the ledger balanced, the
draw equal to the recomputation. Writes bench/results/gifts-<time>.json.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from bench.flash_sale import ROOT, log, setup_django

RESULTS = ROOT / "bench" / "results"


def _cast(label: str, senders: int) -> dict[str, Any]:
    """A live room with its host, and `senders` viewers with a million coins each."""
    from liveshop.models import User
    from orders.services.wallet import wallet_grant
    from rooms.models import Gift, Host, Room

    run = f"{label}-{time.time_ns():x}"
    host_user = User.objects.create(username=f"bench-gift-host-{run}", display_name="Bench Host")
    host = Host.objects.create(user=host_user, kind="cadre", district="Jiangbei", verified=True)
    room = Room.objects.create(host=host, title=f"Bench gifts {run}", status=Room.Status.LIVE)
    fans = User.objects.bulk_create(
        [User(username=f"bench-gift-fan-{run}-{n}", display_name=f"Fan {n}") for n in range(senders)]
    )
    for fan in fans:
        wallet_grant(user=fan, coins=1_000_000, key=f"bench:{run}:{fan.pk}", reason="benchmark")
    gift, _ = Gift.objects.get_or_create(name="Shizhu red chili", defaults={"coins": 1, "image_url": "gifts/chili.svg"})
    return {"room": room, "host": host_user, "fans": fans, "gift": gift}


def gifts_round(*, kept_earnings: bool, senders: int, seconds: float) -> dict[str, Any]:
    from django.db import connections

    from orders.models import LedgerAccount
    from orders.services.gifts import gift_send

    cast = _cast("kept" if kept_earnings else "shipped", senders)
    shipped_kinds = LedgerAccount.BALANCE_KINDS
    if kept_earnings:
        LedgerAccount.BALANCE_KINDS = frozenset({*shipped_kinds, LedgerAccount.Kind.COIN_EARNINGS})
    counts = [0] * senders
    latencies: list[list[float]] = [[] for _ in range(senders)]
    start = threading.Barrier(senders + 1)
    stop_at = [0.0]

    def send(index: int) -> None:
        fan = cast["fans"][index]
        try:
            start.wait()
            while time.perf_counter() < stop_at[0]:
                began = time.perf_counter()
                gift_send(room=cast["room"], sender=fan, gift=cast["gift"], quantity=1)
                latencies[index].append(time.perf_counter() - began)
                counts[index] += 1
        finally:
            connections.close_all()

    threads = [threading.Thread(target=send, args=(i,)) for i in range(senders)]
    for thread in threads:
        thread.start()
    stop_at[0] = time.perf_counter() + seconds
    began = time.perf_counter()
    start.wait()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - began
    LedgerAccount.BALANCE_KINDS = shipped_kinds
    every = sorted(x for per in latencies for x in per)
    return {
        "variant": "kept earnings (reference)" if kept_earnings else "summed earnings (shipped)",
        "gifts": sum(counts),
        "gifts_per_s": round(sum(counts) / elapsed, 1),
        "p50_ms": round(every[len(every) // 2] * 1000, 2),
        "p99_ms": round(every[int(len(every) * 0.99)] * 1000, 2),
        "room": cast["room"].pk,
        "host": cast["host"].pk,
    }


def comments_round(*, mode: str, count: int) -> dict[str, Any]:
    """µs per `comment_create` (role moderator: no rate limit, which is Redis work alike in every mode)."""
    from django.db import transaction

    from liveshop.models import User
    from rooms.models import Giveaway, Host, Room
    from rooms.services import comment_create, giveaway_create, live

    run = f"{mode}-{time.time_ns():x}"
    host_user = User.objects.create(username=f"bench-cm-host-{run}", display_name="Bench Host")
    host = Host.objects.create(user=host_user, kind="farmer", district="Wulong", verified=True)
    room = Room.objects.create(host=host, title=f"Bench comments {run}", status=Room.Status.LIVE)
    giveaway_create(room=room, title="Bench giveaway", winners=1, duration_s=3600, keyword="Hotpot")
    users = User.objects.bulk_create(
        [User(username=f"bench-cm-{run}-{n}", display_name=f"Viewer {n}") for n in range(count)]
    )
    text = "hotpot" if mode == "keyword comments" else "多少钱一斤? 包邮吗"
    hook = live.giveaways_enter_by_comment
    if mode == "no keyword hook (reference)":
        live.giveaways_enter_by_comment = lambda **kwargs: []
    try:
        began = time.perf_counter()
        for user in users:
            with transaction.atomic():
                comment_create(room=room, user=user, text=text, role="moderator")
        elapsed = time.perf_counter() - began
    finally:
        live.giveaways_enter_by_comment = hook
    entered = Giveaway.objects.get(room=room).entries.count()
    return {"mode": mode, "comments": count, "us_per_comment": round(elapsed / count * 1e6, 1), "entered": entered}


def draw_round(*, entrants: int) -> dict[str, Any]:
    from django.contrib.auth.hashers import make_password
    from django.utils import timezone

    from liveshop.models import User
    from rooms import fairness
    from rooms.models import Giveaway, GiveawayEntry, GiveawayWinner, Host, Room
    from rooms.services import giveaway_create, giveaway_draw

    run = f"{entrants}-{time.time_ns():x}"
    host_user = User.objects.create(username=f"bench-draw-host-{run}")
    host = Host.objects.create(user=host_user, kind="cadre", district="Jiangbei", verified=True)
    room = Room.objects.create(host=host, title=f"Bench draw {run}", status=Room.Status.LIVE)
    giveaway = giveaway_create(room=room, title="Bench draw", winners=10, duration_s=3600)
    password = make_password(None)
    users = User.objects.bulk_create(
        [User(username=f"bench-draw-{run}-{n}", password=password) for n in range(entrants)], batch_size=5000
    )
    GiveawayEntry.objects.bulk_create([GiveawayEntry(giveaway=giveaway, user=u) for u in users], batch_size=5000)
    Giveaway.objects.filter(pk=giveaway.pk).update(closes_at=timezone.now() - timedelta(seconds=1))

    began = time.perf_counter()
    assert giveaway_draw(giveaway_id=giveaway.pk)
    draw_s = time.perf_counter() - began
    giveaway.refresh_from_db()
    ids = [u.pk for u in users]
    began = time.perf_counter()
    expected = fairness.draw_winners(giveaway.seed, ids, 10)
    recompute_s = time.perf_counter() - began
    stored = list(GiveawayWinner.objects.filter(giveaway=giveaway).order_by("rank").values_list("user_id", flat=True))
    return {
        "entrants": entrants,
        "draw_ms": round(draw_s * 1000, 1),
        "recompute_ms": round(recompute_s * 1000, 1),
        "matches_recomputation": stored == expected,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--senders", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=6.0)
    parser.add_argument("--comments", type=int, default=2000)
    parser.add_argument("--entrants", default="10000,50000")
    parser.add_argument("--parts", default="gifts,comments,draw", help="which measurements to run")
    args = parser.parse_args()
    parts = set(args.parts.split(","))
    # One pooled connection per sender thread, and a spare.
    os.environ.setdefault("DATABASE_POOL_MAX_SIZE", str(args.senders + 2))
    setup_django()
    from django.core.management import call_command
    from django.db.models import Count

    from orders.models import LedgerAccount, LedgerTransaction
    from orders.services.ledger import ledger_check
    from rooms.models import GiftSend

    log("migrating the bench database")
    call_command("migrate", verbosity=0)
    report: dict[str, Any] = {
        "benchmark": "gifts",
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "cpus": os.cpu_count(),
        "senders": args.senders,
        "seconds": args.seconds,
    }

    gift_rounds = []
    for kept in (False, True, False, True) if "gifts" in parts else ():
        label = "kept earnings (reference)" if kept else "summed earnings (shipped)"
        log(f"gifts: {args.senders} senders for {args.seconds:g} s, {label}")
        gift_rounds.append(gifts_round(kept_earnings=kept, senders=args.senders, seconds=args.seconds))
        log(f"  {gift_rounds[-1]['gifts_per_s']} gifts/s, p99 {gift_rounds[-1]['p99_ms']} ms")
    report["gifts"] = gift_rounds

    modes = ["no keyword hook (reference)", "comments not the keyword", "keyword comments"]
    comment_rounds = []
    for _ in range(2 if "comments" in parts else 0):
        for mode in modes:
            log(f"comments: {args.comments} through comment_create, {mode}")
            comment_rounds.append(comments_round(mode=mode, count=args.comments))
            log(f"  {comment_rounds[-1]['us_per_comment']} µs a comment")
    report["comments"] = comment_rounds

    draws = []
    for entrants in (int(n) for n in args.entrants.split(",") if "draw" in parts):
        log(f"draw: a giveaway of {entrants} entrants")
        draws.append(draw_round(entrants=entrants))
        log(f"  {draws[-1]['draw_ms']} ms (recomputation {draws[-1]['recompute_ms']} ms)")
    report["draws"] = draws

    rooms = [r["room"] for r in gift_rounds]
    sends = GiftSend.objects.filter(room_id__in=rooms)
    per_room = dict(sends.values_list("room_id").annotate(n=Count("id")))
    gift_keys = [f"gift:{pk}" for pk in sends.values_list("pk", flat=True)]
    in_ledger = LedgerTransaction.objects.filter(kind="gift", key__in=gift_keys).count()
    report["checks"] = {
        "no_wallet_overdrawn": not LedgerAccount.objects.filter(kind="wallet", balance__gt=0).exists(),
        "every_gift_in_the_ledger_once": in_ledger == sum(r["gifts"] for r in gift_rounds)
        and all(per_room.get(r["room"], 0) == r["gifts"] for r in gift_rounds),
        "ledger_balanced": ledger_check()["unbalanced_transactions"] == [],
        "draws_match_recomputation": all(d["matches_recomputation"] for d in draws),
    }

    if gift_rounds:
        print()
        print(f"gifts: {args.senders} senders in one room, {args.seconds:g} s a round, {os.cpu_count()} cpus")
        print(f"{'variant':<30}{'gifts/s':>10}{'p50 ms':>10}{'p99 ms':>10}")
        for r in gift_rounds:
            print(f"{r['variant']:<30}{r['gifts_per_s']:>10}{r['p50_ms']:>10}{r['p99_ms']:>10}")
        shipped = statistics.mean(r["gifts_per_s"] for r in gift_rounds if r["variant"].startswith("summed"))
        kept = statistics.mean(r["gifts_per_s"] for r in gift_rounds if r["variant"].startswith("kept"))
        report["gifts_shipped_vs_kept"] = round(shipped / kept, 2)
        print(f"shipped / reference: {report['gifts_shipped_vs_kept']}x")
    if comment_rounds:
        print()
        print(f"{'comment path':<30}{'µs/comment':>12}{'entered':>10}")
        for r in comment_rounds:
            print(f"{r['mode']:<30}{r['us_per_comment']:>12}{r['entered']:>10}")
        base = statistics.mean(r["us_per_comment"] for r in comment_rounds if r["mode"].startswith("no keyword"))
        for mode in modes[1:]:
            cost = statistics.mean(r["us_per_comment"] for r in comment_rounds if r["mode"] == mode)
            report.setdefault("comment_cost_vs_reference", {})[mode] = round(cost / base, 2)
            print(f"{mode} / reference: {cost / base:.2f}x")
    if draws:
        print()
        print(f"{'draw':<30}{'draw ms':>10}{'recompute ms':>14}")
        for d in draws:
            print(f"{str(d['entrants']) + ' entrants':<30}{d['draw_ms']:>10}{d['recompute_ms']:>14}")
    print()
    for name, ok in report["checks"].items():
        print(f"  {name:<34}{'OK' if ok else 'FAILED'}")
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / f"gifts-{datetime.now(UTC):%Y%m%dT%H%M%S}.json"
    out.write_text(json.dumps(report, indent=2))
    log(f"wrote {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
