"""deploy/nginx.conf in front of three nodes: the README's load-balancer example, run.

The config is used as written, with only its addresses rewritten (the upstream ports,
the listen port, the pid and temp paths). Sockets through nginx spread over the nodes
(least_conn); one node is killed with SIGKILL mid-show; its clients come back through
nginx with ?since= to the live nodes and lose nothing; HTTP through nginx keeps
answering (a refused connect goes to the next node).
"""

from __future__ import annotations

import asyncio
import re
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
from channels.db import database_sync_to_async
from django.conf import settings

from rooms.broadcast import room_publish
from rooms.realtime.backend import get_backend
from rooms.realtime.redis_backend import RedisBackend
from tests.chaos.nodes_support import (
    RoomClient,
    check_client,
    http_call,
    node_env,
    room_history,
    start_nodes,
    wait_until,
)
from tests.servers import BASE_DIR, Server, free_port

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

CLIENTS = 12


def nginx_config(nodes: list[Server], port: int, run_dir: Path) -> str:
    text = (BASE_DIR / "deploy" / "nginx.conf").read_text()
    upstream = "".join(f"        server 127.0.0.1:{node.port} max_fails=2 fail_timeout=5s;\n" for node in nodes)
    text, count = re.subn(r"(        server 127\.0\.0\.1:800\d [^\n]*\n)+", upstream, text)
    assert count == 1
    text = text.replace("listen 8080;", f"listen 127.0.0.1:{port};")
    return text.replace("/tmp/liveshop-nginx", str(run_dir / "nginx"))


@pytest.fixture
def behind_nginx(realtime_prefix: str, tmp_path: Path) -> Any:
    binary = shutil.which("nginx") or "/usr/sbin/nginx"
    if not settings.REDIS_URL or not Path(binary).exists():
        pytest.skip("needs REDIS_URL and nginx")
    nodes = start_nodes(3, node_env(redis_url=settings.REDIS_URL, prefix=realtime_prefix), tmp_path)
    port = free_port()
    config = tmp_path / "nginx.conf"
    config.write_text(nginx_config(nodes, port, tmp_path))
    log = tmp_path / "nginx-error.log"
    nginx = subprocess.Popen(
        [binary, "-p", str(tmp_path), "-e", str(log), "-c", str(config), "-g", "daemon off;"],
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
    )
    front = Server(port=port, process=nginx, log_path=log)
    try:
        deadline = time.monotonic() + 10
        while http_call_ok(front) is False:
            assert nginx.poll() is None, log.read_text()
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.1)
        yield front, nodes
    finally:
        front.stop()
        for node in nodes:
            node.stop()


def http_call_ok(front: Server) -> bool:
    try:
        return http_call("GET", f"{front.http}/healthz").status == 200
    except OSError:
        return False


def sockets_per_process(room_id: int) -> dict[int, int]:
    """Open sockets per web process id, from the presence reports in Redis."""
    backend = get_backend()
    assert isinstance(backend, RedisBackend)
    reports: Any = backend._sync.hgetall(backend.room_key(room_id, "presence"))
    return {int(name.split(b":")[1]): int(value.split(b":")[0]) for name, value in reports.items()}


async def test_nginx_conf_in_front_of_three_nodes(behind_nginx: Any, live_room: Any) -> None:
    front: Server = behind_nginx[0]
    nodes: list[Server] = behind_nginx[1]
    room_id = live_room.pk
    clients = [RoomClient(f"viewer{i}", room_id, [front], home=0) for i in range(CLIENTS)]
    for client in clients:
        client.start()
        await client.connected()

    # least_conn spread the sockets over the three nodes.
    await wait_until(
        lambda: sum(sockets_per_process(room_id).values()) == CLIENTS, timeout=10, what="all sockets reported"
    )
    spread = sockets_per_process(room_id)
    assert sorted(spread.get(node.process.pid, 0) for node in nodes) == [CLIENTS // 3] * 3
    victim = nodes[1]

    published = []
    for i in range(40):
        if i == 20:
            victim.kill()
        published.append(await database_sync_to_async(room_publish)(room_id, "order.placed", {"n": i}))
        # HTTP through nginx keeps answering, whichever node it tries first.
        answer = await asyncio.to_thread(http_call, "GET", f"{front.http}/api/v1/rooms/{room_id}/")
        assert answer.status == 200
        await asyncio.sleep(0.05)

    await wait_until(lambda: all((c.last_seq or 0) >= published[-1] for c in clients), timeout=15, what="caught up")
    for client in clients:
        await client.stop()
    truth = await room_history(room_id)
    moved = [c for c in clients if len(c.connects) > 1]
    assert len(moved) == CLIENTS // 3  # the victim's, and only those
    for client in clients:
        check_client(client, truth, every_counter=client not in moved, upto=published[-1])
        assert [e["data"]["n"] for e in client.events if e["type"] == "order.placed"] == list(range(40))
        assert len(client.snapshots) == 1
    for client in moved:
        assert client.connects[1].since is not None
        assert client.connects[1].first != "room.snapshot"
