"""URLs whose views lose the database or Redis, for tests/liveshop/test_errors.py (plain
Django views: their failure reaches Django's 500 handler, not DRF's exception handler)."""

from __future__ import annotations

import redis
from django.db import OperationalError
from django.http import HttpRequest, HttpResponse
from django.urls import path


def lose_the_database(request: HttpRequest) -> HttpResponse:
    raise OperationalError("server closed the connection unexpectedly")


def lose_redis(request: HttpRequest) -> HttpResponse:
    raise redis.ConnectionError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")


urlpatterns = [
    path("api/v1/fail/", lose_the_database),
    path("fail/", lose_the_database),
    path("api/v1/fail-redis/", lose_redis),
    path("fail-redis/", lose_redis),
]

handler500 = "liveshop.errors.error_500"
