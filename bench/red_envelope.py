"""Benchmark: 10,000 viewers grab one red envelope of 100 shares.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/liveshop_bench_envelope \\
    REDIS_URL=redis://127.0.0.1:6379/14 flock /tmp/liveshop-bench.lock \\
    .venv/bin/python -m bench.red_envelope [--grabs 10000] [--shares 100] [--concurrency 64] [--workers 2]

Two servers in turn, each `--workers` uvicorn processes, each getting `--grabs` POSTs at
`--concurrency` keep-alive connections (bench/loadgen.py), one per user:

- bare: bench/bare_envelope_gate.py, an ASGI app that runs only the gate's Lua script
  (no Django, no authentication, no database): the reference, in the same run;
- liveshop: `POST /api/v1/red-envelopes/{id}/grab/` as served in production: the grab
  intake (envelopes/intake.py) runs the gate before Django and answers "all gone" there;
  the winners go on to Django: token authentication, the envelope's facts, the gate, and
  for the winners the claim, the envelope's row and the ledger in PostgreSQL. The
  viewers' tokens are known to Redis, as after their earlier requests of the show.

Prints grabs/s, p50/p99 and the answers of each, the ratio, and the coin check: the
shares claimed plus those left add up to the envelope, every winner's wallet holds its
share, the ledger balances (0 coins lost or created). Writes bench/results/.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from datetime import UTC, datetime
from typing import Any

from bench import loadgen
from bench.flash_sale import (
    ROOT,
    free_port,
    log,
    prepare_buyers,
    run_burst,
    setup_django,
    start_server,
    stop,
    uvicorn_argv,
)

RESULTS = ROOT / "bench" / "results"
COINS_PER_SHARE = 88


def prepare_envelope(shares: int) -> tuple[int, int]:
    """A live room whose host dropped an envelope of `shares` shares; (envelope id, coins)."""
    from envelopes.services import red_envelope_drop
    from liveshop.models import User
    from orders.services.wallet import wallet_grant
    from rooms.models import Host, Room

    cadre, _ = User.objects.get_or_create(username="bench-cadre-envelopes", defaults={"display_name": "Cadre Liu"})
    host, _ = Host.objects.get_or_create(user=cadre, defaults={"kind": "cadre", "district": "Wulong", "verified": True})
    room = Room.objects.create(host=host, title="Bench red envelopes", status=Room.Status.LIVE)
    coins = shares * COINS_PER_SHARE
    wallet_grant(user=cadre, coins=coins, key=f"bench-envelope-{time.time_ns()}", reason="benchmark")
    envelope = red_envelope_drop(room=room, sender=cadre, coins=coins, shares=shares)
    return envelope.pk, coins


def remember_tokens(tokens: list[str]) -> None:
    """The viewers of a live show have used their tokens before the envelope drops (the
    page, the socket's ticket): put them where authentication keeps them (liveshop.auth),
    as their earlier requests would have."""
    from knox.models import AuthToken
    from knox.settings import CONSTANTS

    from liveshop.auth import token_cache_set

    users = dict(
        AuthToken.objects.filter(token_key__in=[t[: CONSTANTS.TOKEN_KEY_LENGTH] for t in tokens]).values_list(
            "token_key", "user_id"
        )
    )
    for token in tokens:
        token_cache_set(key=token, user_id=users[token[: CONSTANTS.TOKEN_KEY_LENGTH]])


def coin_check(envelope_id: int, coins: int) -> dict[str, Any]:
    from django.db.models import Sum

    from envelopes.models import RedEnvelopeShare
    from orders.models import LedgerAccount, LedgerEntry
    from orders.services.ledger import ledger_check

    shares = RedEnvelopeShare.objects.filter(envelope_id=envelope_id)
    claimed = shares.filter(user__isnull=False)
    by_user = dict(claimed.values_list("user_id", "coins"))
    # What this envelope's grabs put into wallets (the bench's viewers are reused by later runs).
    credited = LedgerEntry.objects.filter(
        transaction__key__startswith=f"red_envelope:{envelope_id}:share:", account__kind=LedgerAccount.Kind.WALLET
    ).values_list("account__user_id", "amount")
    wallets = dict(credited)
    return {
        "winners": claimed.count(),
        "coins_claimed": int(claimed.aggregate(total=Sum("coins"))["total"] or 0),
        "coins_left": int(shares.filter(user__isnull=True).aggregate(total=Sum("coins"))["total"] or 0),
        "coins_lost_or_created": coins - int(shares.aggregate(total=Sum("coins"))["total"] or 0),
        "wallets_hold_their_shares": {u: -b for u, b in wallets.items()} == by_user,
        "ledger_balanced": ledger_check() == {"unbalanced_transactions": [], "drifted_balances": []},
    }


def run_server(kind: str, args: Any, env: dict[str, str], tokens: list[str]) -> dict[str, Any]:
    envelope_id, coins = prepare_envelope(args.shares)
    port = free_port()
    if kind == "bare":
        argv = uvicorn_argv("bench.bare_envelope_gate:app", port, args.workers)
        server_env = {**env, "BARE_ENVELOPE": str(envelope_id), "BARE_ENVELOPE_SHARES": str(args.shares)}
    else:
        argv = uvicorn_argv("liveshop.asgi:application", port, args.workers)
        server_env = env
    log_dir = RESULTS / "logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    log(f"{kind}: starting {args.workers} uvicorn worker(s) on port {port}")
    server = start_server(f"red-envelope-{kind}", argv, server_env, port, log_dir)
    path = f"/api/v1/red-envelopes/{envelope_id}/grab/"
    try:
        if kind == "liveshop":  # warm up: connections, pools, code paths
            warm = [loadgen.Request("/api/v1/me/", b"", {"Authorization": f"Token {t}"}, "GET") for t in tokens[:500]]
            run_burst(port, warm, args.concurrency, "warm-up")
        grabs = [loadgen.Request(path, b"", {"Authorization": f"Token {t}"}) for t in tokens[: args.grabs]]
        log(f"{kind}: {len(grabs)} grabs at concurrency {args.concurrency}")
        run = run_burst(port, grabs, args.concurrency, kind)
    finally:
        stop(server)
    result = {"server": kind, **loadgen.summary(run)}
    if kind == "liveshop":
        result["coins"] = coins
        result.update(coin_check(envelope_id, coins))
    log(f"{kind}: {result['rps']} grabs/s, p99 {result['p99_ms']} ms, {result['codes']}")
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--grabs", type=int, default=10_000)
    parser.add_argument("--shares", type=int, default=100)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--workers", type=int, default=2, help="uvicorn worker processes")
    args = parser.parse_args()
    setup_django()
    from django.core.management import call_command

    log("migrating the bench database")
    call_command("migrate", verbosity=0)
    tokens = prepare_buyers(args.grabs)
    remember_tokens(tokens)
    env = {
        **os.environ,
        "PYTHONUNBUFFERED": "1",
        "DEBUG": "0",
        "SECRET_KEY": "bench-secret-key-not-for-production",
        "LOG_LEVEL": "WARNING",
    }
    results = [run_server(kind, args, env, tokens) for kind in ("bare", "liveshop")]
    bare, liveshop = results
    ratio = liveshop["rps"] / bare["rps"] if bare["rps"] else 0.0
    print()
    print(f"red envelope: {args.grabs} grabs of {args.shares} shares, concurrency {args.concurrency}, "
          f"{args.workers} uvicorn workers, {os.cpu_count()} cpus")  # fmt: skip
    print("| server | grabs/s | p50 ms | p99 ms | answers |")
    print("|---|---:|---:|---:|---|")
    for r in results:
        print(f"| {r['server']} | {r['rps']} | {r['p50_ms']} | {r['p99_ms']} | {r['codes']} |")
    print(f"liveshop / bare: {ratio:.2f} (goal >= 0.50); p99 {liveshop['p99_ms']} ms (goal < 100)")
    print(
        f"winners {liveshop['winners']}, coins claimed {liveshop['coins_claimed']} + left {liveshop['coins_left']} "
        f"of {liveshop['coins']}: lost or created {liveshop['coins_lost_or_created']}; wallets hold their shares: "
        f"{liveshop['wallets_hold_their_shares']}; ledger balanced: {liveshop['ledger_balanced']}"
    )
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / f"red-envelope-{datetime.now(UTC):%Y%m%dT%H%M%S}.json"
    machine = {"cpus": os.cpu_count(), "python": platform.python_version()}
    out.write_text(json.dumps({"args": vars(args), "machine": machine, "ratio": ratio, "results": results}, indent=2))
    log(f"wrote {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
