"""Error reports never show a credential (audit item 8)."""

from __future__ import annotations

import sys

import pytest
from django.test import RequestFactory
from django.views.debug import technical_500_response

from liveshop.reporting import SettingsFilter

# Built, not written out: the debug page shows the source lines around the error, and
# a password spelt in this file would show up there.
SECRET = "pa55" + "word"
PASSWORDS = tuple(f"{name}-{SECRET}" for name in ("pg", "redis", "broker", "shard"))


@pytest.fixture
def credentialed(settings):
    settings.DEBUG = True
    settings.REDIS_URL = f"redis://:redis-{SECRET}@redis.internal:6379/0"
    settings.CELERY_BROKER_URL = f"amqp://liveshop:broker-{SECRET}@rabbit.internal:5672//"
    settings.REDIS_CLUSTER_URL = f"redis://default:shard-{SECRET}@rt-0:6379,redis://default:shard-{SECRET}@rt-1:6379"
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": f"redis://:redis-{SECRET}@redis.internal:6379/1",
        }
    }
    settings.DATABASE_URL = f"postgres://liveshop:pg-{SECRET}@db.internal:5432/liveshop"
    return settings


def test_the_debug_page_shows_no_password(credentialed, rf: RequestFactory):
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        response = technical_500_response(rf.get("/"), *sys.exc_info())
    page = response.content.decode()
    assert "RuntimeError" in page
    for password in PASSWORDS:
        assert password not in page, password
    assert "redis.internal" in page  # which server was meant stays readable


def test_settings_filter_masks_url_passwords_only(credentialed):
    safe = SettingsFilter().get_safe_settings()
    assert safe["REDIS_URL"] == "redis://:********************@redis.internal:6379/0"
    assert safe["CELERY_BROKER_URL"] == "amqp://liveshop:********************@rabbit.internal:5672//"
    assert safe["REDIS_CLUSTER_URL"] == (
        "redis://default:********************@rt-0:6379,redis://default:********************@rt-1:6379"
    )
    assert SECRET not in str(safe)
    assert safe["ALLOWED_HOSTS"] == credentialed.ALLOWED_HOSTS
