"""Real Celery workers to kill: start `celery -A liveshop worker` on the Redis broker, watch
the database for partial progress, SIGKILL the whole process group, start a fresh one.

The worker runs as docker-compose runs it (the prefork pool), in its own session, and is
killed with its pool children at once, as an OOM kill or a lost node would. Its
connection to the test database and to the test's Redis (broker and real-time prefix)
come from the test's own settings.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import redis
from django.conf import settings
from django.db import connection

from liveshop.celery import app as celery_app
from tests.servers import database_url, wait_until

ROOT = Path(__file__).resolve().parents[2]

# Short, so that a dead worker's unacknowledged task comes back within the test: the
# broker restores a task unacknowledged for this long (settings.CELERY_VISIBILITY_TIMEOUT_S).
# Longer than any single task of these tests takes on a busy machine.
VISIBILITY_TIMEOUT_S = 8


def broker() -> redis.Redis:
    return redis.Redis.from_url(celery_app.conf.broker_url)


# kombu's Redis transport keeps the default queue in the list "celery" and the messages
# delivered but not acknowledged in the hash "unacked" (indexed by delivery time in the
# sorted set "unacked_index").
QUEUE_KEY = "celery"
UNACKED_KEY = "unacked"
UNACKED_INDEX_KEY = "unacked_index"


def _channel(conn: Any) -> Any:
    return conn.default_channel  # an AMQP channel (kombu's stubs type it as the bare protocol)


def _on_amqp() -> bool:
    return str(celery_app.conf.broker_url).startswith("amqp")


def broker_clear() -> None:
    """Drop every task left on the test broker (its Redis index, or its RabbitMQ queue, is
    this test run's own)."""
    if _on_amqp():
        with celery_app.connection_for_write() as conn:
            _channel(conn).queue_purge(celery_app.conf.task_default_queue)
        return
    broker().delete(QUEUE_KEY, UNACKED_KEY, UNACKED_INDEX_KEY, "unacked_mutex")


def broker_backlog() -> tuple[int, int]:
    """(tasks waiting in the queue, tasks delivered and not acknowledged). Over AMQP the
    second is not visible to a client: 0."""
    if _on_amqp():
        with celery_app.connection_for_write() as conn:
            _, ready, _ = _channel(conn).queue_declare(celery_app.conf.task_default_queue, passive=True)
        return int(ready), 0
    client = broker()
    return int(client.llen(QUEUE_KEY)), int(client.hlen(UNACKED_KEY))


def database_backends() -> list[dict[str, Any]]:
    """The test database's backends other than this connection's."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pid, state, xact_start IS NOT NULL, query, wait_event_type FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid() AND backend_type = 'client backend'"
        )
        return [
            {"pid": pid, "state": state, "in_transaction": in_xact, "query": query[:80], "wait_event_type": waiting}
            for pid, state, in_xact, query, waiting in cursor.fetchall()
        ]


@dataclass
class Worker:
    """A `celery -A liveshop worker` process group (with embedded beat if asked)."""

    name: str
    process: subprocess.Popen[bytes]
    log_path: Path
    # The test's own backends on the database when the worker started: not the worker's.
    other_backends: frozenset[int] = frozenset()
    started_at: float = field(default_factory=time.monotonic)

    def backends(self) -> list[dict[str, Any]]:
        """The worker's backends on the test database: state and open transaction."""
        return [backend for backend in database_backends() if backend["pid"] not in self.other_backends]

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_ready(self, timeout: float = 60) -> None:
        def ready() -> bool:
            if self.process.poll() is not None:
                raise RuntimeError(f"worker {self.name} exited with {self.process.returncode}:\n{self.log()[-3000:]}")
            return " ready." in self.log()

        wait_until(ready, timeout=timeout, interval=0.1, what=f"worker {self.name} to be ready")

    def kill(self) -> None:
        """SIGKILL the worker and its pool children at once: no goodbye to the broker."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)

    def freeze(self) -> None:
        """SIGSTOP the worker and its children, as a paused VM: its sockets stay open."""
        os.killpg(self.process.pid, signal.SIGSTOP)

    def resume(self) -> None:
        os.killpg(self.process.pid, signal.SIGCONT)

    def stop(self) -> None:
        """A warm shutdown (SIGTERM), then SIGKILL if it does not end."""
        if self.process.poll() is None:
            self.resume()  # a frozen worker cannot act on SIGTERM
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.kill()


def worker_start(
    log_dir: Path, *, name: str, beat: bool = False, concurrency: int = 2, env: dict[str, str] | None = None
) -> Worker:
    """Start a worker on the test's broker and database; it takes tasks as soon as it is up."""
    full_env = {
        **os.environ,
        "PYTHONUNBUFFERED": "1",
        "DATABASE_URL": database_url(),
        "REDIS_URL": str(settings.REDIS_URL),
        "LIVESHOP_REDIS_PREFIX": settings.LIVESHOP_REDIS_PREFIX,
        "LIVESHOP_VAR_DIR": str(log_dir),
        "CELERY_VISIBILITY_TIMEOUT_S": str(VISIBILITY_TIMEOUT_S),
        "CELERY_TASK_LOG_LEVEL": "INFO",
        **(env or {}),
    }
    full_env.pop("CELERY_TASK_ALWAYS_EAGER", None)
    command = [
        sys.executable, "-m", "celery", "-A", "liveshop", "worker", "-P", "prefork", "-c", str(concurrency),
        "-l", "info", "-n", f"{name}@%h", "--without-mingle", "--without-gossip",
    ]  # fmt: skip
    if beat:
        command += ["-B", "-s", str(log_dir / f"celerybeat-{name}")]
    log_path = log_dir / f"worker-{name}.log"
    others = frozenset(backend["pid"] for backend in database_backends())
    process = subprocess.Popen(
        command,
        cwd=ROOT,
        env=full_env,
        stdout=log_path.open("wb"),
        stderr=subprocess.STDOUT,
        start_new_session=True,  # its own process group: killed with its children
    )
    return Worker(name=name, process=process, log_path=log_path, other_backends=others)


@dataclass
class KillReport:
    """Where a kill landed, for the test's assertions and the reliability notes."""

    done_at_kill: int
    total: int
    seconds_into_work: float
    worker_backends: list[dict[str, Any]]
    backlog_at_kill: tuple[int, int]

    def __str__(self) -> str:
        open_transactions = [
            backend.get("written", []) for backend in self.worker_backends if backend["in_transaction"]
        ]
        return (
            f"struck with {self.done_at_kill}/{self.total} done, {self.seconds_into_work:.2f} s into the work, "
            f"worker transactions open having written to {open_transactions}, queue/unacked {self.backlog_at_kill}"
        )


def tables_written(pid: int) -> set[str]:
    """The tables a backend's open transaction has written to (and so holds row locks in)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.relname FROM pg_locks l JOIN pg_class c ON c.oid = l.relation "
            "WHERE l.pid = %s AND l.mode = 'RowExclusiveLock' AND c.relkind = 'r'",
            [pid],
        )
        return {name for (name,) in cursor.fetchall()}


def freeze_mid_transaction(
    worker: Worker, *, done: Callable[[], int], total: int, at_least: int, timeout: float, holding: str
) -> KillReport:
    """Wait until `done()` shows partial progress (at least `at_least`, not all), then
    SIGSTOP the worker, and only inside one of its transactions that has written to the
    table `holding` (a worker stopped between transactions would prove nothing)."""
    began = time.monotonic()

    def partial() -> int | None:
        count = done()
        if count >= total:
            raise AssertionError(f"the work finished ({count}/{total}) before the freeze: make it bigger")
        return count if count >= at_least else None

    wait_until(partial, timeout=timeout, interval=0.02, what=f"{at_least} of {total} done")
    seen: list[tuple[int, list[tuple[str, list[str]]]]] = []
    for _attempt in range(100):
        worker.freeze()
        time.sleep(0.2)  # let a statement in flight finish: the session is then idle in its transaction
        backends = worker.backends()
        for backend in backends:
            backend["written"] = sorted(tables_written(backend["pid"])) if backend["in_transaction"] else []
        if any(backend["state"] == "idle in transaction" and holding in backend["written"] for backend in backends):
            return KillReport(
                done_at_kill=done(),
                total=total,
                seconds_into_work=time.monotonic() - began,
                worker_backends=backends,
                backlog_at_kill=broker_backlog(),
            )
        seen.append((done(), [(backend["state"], backend["written"]) for backend in backends]))
        worker.resume()
        time.sleep(0.01)
    raise AssertionError(f"never froze the worker inside a transaction that wrote to {holding}: {seen[-5:]}")


def kill_mid_transaction(
    worker: Worker, *, done: Callable[[], int], total: int, at_least: int, timeout: float, holding: str
) -> KillReport:
    """Wait for partial progress, freeze the worker inside a transaction that has written
    to `holding` (freeze_mid_transaction), then SIGKILL it there: the kill lands in the
    middle of a transaction every time, not by luck."""
    report = freeze_mid_transaction(worker, done=done, total=total, at_least=at_least, timeout=timeout, holding=holding)
    worker.kill()
    report.done_at_kill = done()  # what committed: the worker's open transaction rolls back
    return report


def wait_for_dead_backends(kill: KillReport, *, timeout: float = 20) -> None:
    """PostgreSQL ends a killed client's backend (rolling back its transaction) once it
    notices the closed socket; wait for that so the test reads a settled database."""
    dead = {backend["pid"] for backend in kill.worker_backends}

    def gone() -> bool:
        return not dead & {backend["pid"] for backend in database_backends()}

    try:
        wait_until(gone, timeout=timeout, interval=0.05, what="the dead worker's backends to end")
    except TimeoutError as exc:
        raise TimeoutError(f"{exc}: {database_backends()}") from None
