"""A private Redis Cluster for the chaos tests: three masters, each with a replica.

`redis-server --cluster-enabled yes` six times on free loopback ports, joined with
`redis-cli --cluster create --cluster-replicas 1`, as an operator would. A short
`cluster-node-timeout` makes a failover take seconds, not the default fifteen.
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import redis
from redis.crc import key_slot

from tests.servers import free_port

NODE_TIMEOUT_MS = 1000


@dataclass
class ClusterNode:
    port: int
    bus_port: int  # the cluster bus (free ports may lie above 55535, where port + 10000 fails)
    directory: Path
    process: subprocess.Popen[bytes] | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> None:
        binary = shutil.which("redis-server")
        assert binary, "redis-server is not installed"
        self.directory.mkdir(parents=True, exist_ok=True)
        options: dict[str, object] = {
            "port": self.port,
            "cluster-port": self.bus_port,
            "bind": "127.0.0.1",
            "dir": self.directory,
            "cluster-enabled": "yes",
            "cluster-config-file": "nodes.conf",
            "cluster-node-timeout": NODE_TIMEOUT_MS,
            "repl-diskless-sync-delay": 0,  # a replica is in sync at once, able to take over
            "save": "",
            "appendonly": "no",
        }
        self.process = subprocess.Popen(
            [binary, *(part for name, value in options.items() for part in (f"--{name}", str(value)))],
            stdout=(self.directory / "redis.log").open("ab"),
            stderr=subprocess.STDOUT,
        )

    def kill(self) -> None:
        """Die at once (SIGKILL), as a crashed machine does."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)

    def client(self) -> redis.Redis:
        return redis.Redis(host="127.0.0.1", port=self.port, socket_connect_timeout=1, socket_timeout=5)

    def node_id(self) -> str:
        return str(self.client().execute_command("CLUSTER MYID").decode())


@dataclass
class PrivateCluster:
    nodes: list[ClusterNode] = field(default_factory=list)

    @property
    def url(self) -> str:
        """REDIS_CLUSTER_URL: every node, as a deployment lists its startup nodes."""
        return ",".join(f"redis://{node.address}" for node in self.nodes)

    def live(self) -> list[ClusterNode]:
        return [node for node in self.nodes if node.process is not None and node.process.poll() is None]

    def master_of(self, key: str) -> ClusterNode:
        """The node that serves `key`'s slot now, as the live nodes agree."""
        slot = key_slot(key.encode())
        for node in self.live():
            for start, end, (_host, port, *_), *_replicas in node.client().execute_command("CLUSTER SLOTS"):
                if start <= slot <= end:
                    return next(n for n in self.nodes if n.port == int(port))
        raise AssertionError(f"slot {slot} is served by no node")

    def masters(self) -> list[ClusterNode]:
        return [node for node in self.live() if node.client().info("replication")["role"] == "master"]

    def cli(self, *args: str, timeout: float = 60) -> str:
        binary = shutil.which("redis-cli")
        assert binary, "redis-cli is not installed"
        done = subprocess.run([binary, *args], capture_output=True, timeout=timeout, check=False)
        output = done.stdout.decode() + done.stderr.decode()
        assert done.returncode == 0, f"redis-cli {' '.join(args)} failed:\n{output}"
        return output

    def wait_ok(self, timeout: float = 30) -> None:
        """Until every live node says the cluster is ok, they agree on who serves what,
        and every replica is in sync with its master (else it could not take over)."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                states = [node.client().cluster("info")["cluster_state"] for node in self.live()]
                views = {
                    tuple(sorted((s[0], s[1], int(s[2][1])) for s in node.client().execute_command("CLUSTER SLOTS")))
                    for node in self.live()
                }
                replicas = [node.client().info("replication") for node in self.live()]
                synced = all(info.get("master_link_status") == "up" for info in replicas if info["role"] == "slave")
                if all(state == "ok" for state in states) and len(views) == 1 and synced:
                    return
            except redis.RedisError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError(f"the cluster is not ok within {timeout} s")
            time.sleep(0.1)

    def stop(self) -> None:
        for node in self.nodes:
            node.kill()


@contextlib.contextmanager
def private_cluster(directory: Path, masters: int = 3) -> Iterator[PrivateCluster]:
    cluster = PrivateCluster(
        [ClusterNode(free_port(), free_port(), directory / f"node{i}") for i in range(masters * 2)]
    )
    try:
        for node in cluster.nodes:
            node.start()
        for node in cluster.nodes:
            deadline = time.monotonic() + 10
            while True:
                try:
                    node.client().ping()
                    break
                except redis.ConnectionError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.05)
        # The first `masters` addresses become masters, the rest their replicas.
        cluster.cli(
            "--cluster", "create", *(n.address for n in cluster.nodes), "--cluster-replicas", "1", "--cluster-yes"
        )
        cluster.wait_ok()
        yield cluster
    finally:
        cluster.stop()
