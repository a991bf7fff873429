"""URLs whose views lose the database, for tests/liveshop/test_errors.py (plain Django
views: their failure reaches Django's 500 handler, not DRF's exception handler)."""

from __future__ import annotations

from django.db import OperationalError
from django.http import HttpRequest, HttpResponse
from django.urls import path


def lose_the_database(request: HttpRequest) -> HttpResponse:
    raise OperationalError("server closed the connection unexpectedly")


urlpatterns = [path("api/v1/fail/", lose_the_database), path("fail/", lose_the_database)]

handler500 = "liveshop.errors.error_500"
