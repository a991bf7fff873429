from __future__ import annotations

import pytest

pytestmark = pytest.mark.django_db


def test_healthz(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_readyz_checks_every_part(client, settings):
    response = client.get("/readyz")
    assert response.status_code == 200, response.json()
    expected = {"database", "broker"} | ({"redis"} if settings.REDIS_URL else set())
    assert set(response.json()["checks"]) == expected


def test_readyz_names_the_failing_part(client, settings):
    settings.REDIS_URL = "redis://127.0.0.1:1/0"  # nothing listens on port 1
    response = client.get("/readyz")
    assert response.status_code == 503
    body = response.json()
    assert body["code"] == "unavailable"
    assert "redis" in body["detail"]
    assert body["checks"]["database"] == "ok"
