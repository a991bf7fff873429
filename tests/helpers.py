"""Assertions shared by the API tests."""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from django.db import connection, connections

T = TypeVar("T")


def assert_error(response: Any, status: int, code: str) -> dict[str, Any]:
    """The response is an error in the contract's shape with this status and code."""
    assert response.status_code == status, (response.status_code, getattr(response, "content", b"")[:500])
    body = response.json()
    assert body["code"] == code, body
    assert isinstance(body["detail"], str)
    assert body["detail"]
    return body


def on_postgresql() -> bool:
    return connection.vendor == "postgresql"


def run_concurrently(worker: Callable[[int], T], count: int, *, timeout: float = 60) -> list[T]:
    """Run `worker(i)` for i in range(count) on `count` threads released together.

    Each thread gets its own database connection (Django's are per thread) and closes it
    when done, so the test database can be dropped afterwards.
    """
    barrier = threading.Barrier(count)

    def run(index: int) -> T:
        try:
            barrier.wait(timeout=timeout)
            return worker(index)
        finally:
            connections.close_all()

    with ThreadPoolExecutor(max_workers=count) as pool:
        return list(pool.map(run, range(count), timeout=timeout))
