"""Ten thousand viewers grab one red envelope of a hundred shares, while a web node is
killed and Redis restarts empty.

Two uvicorn nodes and a private redis-server (never the shared one); 10,000 users, each
with an API token, tap "open" through 64 concurrent connections. A third of the way in,
node 0 dies (SIGKILL): its clients' requests fail and go again to node 1. Two thirds of
the way in, Redis dies and comes back empty: the gate is gone, PostgreSQL hands out the
rest and sets the gate up again.

What must hold: exactly 100 winners, each once, their shares adding up to the envelope;
every user answered 201 or 200 (a winner) or 409 `red_envelope_empty`; every winner's
wallet holds its share; the escrow is empty and the ledger balances.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from typing import Any

import pytest

from bench import loadgen
from bench.flash_sale import prepare_buyers
from envelopes import services as envelope_services
from envelopes.models import RedEnvelopeShare
from liveshop.redis_client import redis_sync
from orders.models import LedgerAccount, LedgerEntry
from orders.services.ledger import ledger_check
from rooms.models import Room
from rooms.realtime.backend import reset_backend
from tests.chaos.nodes_support import node_env, private_redis, start_nodes
from tests.coins import grant

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

USERS = 10_000
SHARES = 100
COINS = 8_888
CONCURRENCY = 64


class Rush:
    """The users' taps: each retried on the other node until it gets a final answer."""

    def __init__(self, ports: list[int], envelope_id: int, tokens: list[str]) -> None:
        self.ports = ports
        self.alive = list(ports)
        self.path = f"/api/v1/red-envelopes/{envelope_id}/grab/"
        self.tokens = tokens
        self.answers: dict[int, tuple[int, str, int]] = {}  # user index -> (status, code, coins)
        self.retries = Counter[str]()

    async def worker(self, queue: asyncio.Queue[int]) -> None:
        connection: tuple[int, Any, Any] | None = None
        while not queue.empty():
            index = queue.get_nowait()
            request = loadgen.Request(self.path, b"", {"Authorization": f"Token {self.tokens[index]}"})
            while True:
                port = self.alive[index % len(self.alive)]
                try:
                    if connection is None or connection[0] != port:
                        if connection is not None:
                            connection[2].close()
                        reader, writer = await asyncio.open_connection("127.0.0.1", port)
                        connection = (port, reader, writer)
                    connection[2].write(loadgen._encode("127.0.0.1", port, request))
                    status, body = await asyncio.wait_for(loadgen._read_response(connection[1]), 30)
                except (OSError, asyncio.IncompleteReadError, TimeoutError):
                    self.retries["connection"] += 1
                    if connection is not None:
                        connection[2].close()
                    connection = None
                    await asyncio.sleep(0.05)
                    continue
                data = json.loads(body or b"{}")
                if status >= 500:  # Redis or the database restarting: the contract's 503, again
                    self.retries[str(status)] += 1
                    await asyncio.sleep(0.1)
                    continue
                self.answers[index] = (status, data.get("code", ""), int(data.get("coins", 0)))
                break
        if connection is not None:
            connection[2].close()

    async def run(self, on_progress: Any) -> None:
        queue: asyncio.Queue[int] = asyncio.Queue()
        for index in range(len(self.tokens)):
            queue.put_nowait(index)
        workers = [asyncio.create_task(self.worker(queue)) for _ in range(CONCURRENCY)]
        while not all(w.done() for w in workers):
            await asyncio.sleep(0.02)
            await on_progress(len(self.answers))
        for w in workers:
            w.result()


def test_ten_thousand_users_grab_one_envelope_through_a_node_kill_and_a_redis_restart(
    realtime_prefix, tmp_path, settings, live_room: Room
):
    with private_redis(tmp_path) as redis_server:
        settings.REDIS_URL = redis_server.url
        reset_backend()
        redis_sync.cache_clear()
        env = node_env(redis_url=redis_server.url, prefix=realtime_prefix, CONN_MAX_AGE="60")
        nodes = start_nodes(2, env, tmp_path)
        try:
            host = live_room.host.user
            grant(host, COINS)
            envelope = envelope_services.red_envelope_drop(room=live_room, sender=host, coins=COINS, shares=SHARES)
            tokens = prepare_buyers(USERS)
            rush = Rush([node.port for node in nodes], envelope.pk, tokens)
            events: list[str] = []

            async def chaos(answered: int) -> None:
                if answered >= USERS // 3 and "node" not in events:
                    events.append("node")
                    nodes[0].kill()
                    rush.alive = [nodes[1].port]
                if answered >= 2 * USERS // 3 and "redis" not in events:
                    events.append("redis")
                    redis_server.stop()
                    await asyncio.sleep(0.2)
                    redis_server.start()

            started = time.monotonic()
            asyncio.run(rush.run(chaos))
            elapsed = time.monotonic() - started
        finally:
            for node in nodes:
                node.stop()
            reset_backend()
            redis_sync.cache_clear()

    assert events == ["node", "redis"]
    answers = rush.answers
    assert len(answers) == USERS
    outcomes = Counter((status, code) for status, code, _ in answers.values())
    print(f"\n{USERS} grabs in {elapsed:.1f} s: {dict(outcomes)}, retries {dict(rush.retries)}")
    assert set(outcomes) <= {(201, ""), (200, ""), (409, "red_envelope_empty")}, outcomes

    claimed = list(RedEnvelopeShare.objects.filter(envelope=envelope, user__isnull=False).values("user_id", "coins"))
    assert len(claimed) == SHARES
    assert len({row["user_id"] for row in claimed}) == SHARES
    assert sum(row["coins"] for row in claimed) == COINS
    # Whoever was answered a share holds exactly that share (and nobody else holds one).
    winners = {index for index, (status, _, _) in answers.items() if status in (200, 201)}
    assert len(winners) == SHARES
    from knox.models import AuthToken

    by_token = dict(
        AuthToken.objects.filter(token_key__in=[tokens[i][:15] for i in winners]).values_list("token_key", "user_id")
    )
    shares = {row["user_id"]: row["coins"] for row in claimed}
    assert {by_token[tokens[i][:15]]: answers[i][2] for i in winners} == shares
    wallets = dict(
        LedgerAccount.objects.filter(kind=LedgerAccount.Kind.WALLET, user_id__in=list(shares)).values_list(
            "user_id", "balance"
        )
    )
    assert {user: -balance for user, balance in wallets.items()} == shares
    escrow = LedgerEntry.objects.filter(account__kind=LedgerAccount.Kind.RED_ENVELOPES)
    assert sum(escrow.values_list("amount", flat=True)) == 0
    assert ledger_check() == {"unbalanced_transactions": [], "drifted_balances": []}
