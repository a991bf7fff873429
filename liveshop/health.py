"""Liveness and readiness probes for load balancers and orchestrators."""

from __future__ import annotations

import functools
from collections.abc import Callable

from django.conf import settings
from django.db import connection
from django.http import HttpRequest, JsonResponse


def healthz(request: HttpRequest) -> JsonResponse:
    """The process is up and serving."""
    return JsonResponse({"status": "ok"})


def _check_database() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")


def _check_redis(url: str) -> None:
    import redis

    client = redis.Redis.from_url(url, socket_connect_timeout=1, socket_timeout=1)
    try:
        client.ping()
    finally:
        client.close()


def _check_redis_cluster() -> None:
    """Every slot is served (CLUSTER INFO's state is ok) by the nodes this process reaches."""
    from rooms.realtime.backend import get_backend

    client = get_backend()._sync  # type: ignore[attr-defined]
    state = client.cluster_info(target_nodes=client.get_random_node())["cluster_state"]
    if state != "ok":
        raise RuntimeError(f"cluster state {state}")


def _check_broker() -> None:
    from liveshop.celery import app

    with app.connection_for_write() as conn:
        conn.ensure_connection(max_retries=1, timeout=1)


def readyz(request: HttpRequest) -> JsonResponse:
    """Database, Redis (when configured) and the Celery broker are reachable; 503 names what is not."""
    checks: dict[str, Callable[[], None]] = {"database": _check_database, "broker": _check_broker}
    if settings.REDIS_URL:
        checks["redis"] = functools.partial(_check_redis, settings.REDIS_URL)
    if settings.REDIS_CLUSTER_URL:
        checks["redis_cluster"] = _check_redis_cluster
    results: dict[str, str] = {}
    for name, check in checks.items():
        try:
            check()
            results[name] = "ok"
        except Exception as exc:  # noqa: BLE001 - any failure means "not ready", named below
            results[name] = f"error: {type(exc).__name__}"
    failing = [name for name, result in results.items() if result != "ok"]
    if failing:
        return JsonResponse(
            {"code": "unavailable", "detail": f"Not ready: {', '.join(failing)}.", "checks": results}, status=503
        )
    return JsonResponse({"status": "ok", "checks": results})
