"""Money-out tests use the order path's fixtures: localstripe, signed webhooks, eager tasks."""

from __future__ import annotations

from tests.orders.conftest import (  # noqa: F401 (fixtures)
    _clean_redis,
    _eager_celery,
    _stripe_settings,
    buyer,
    committed,
    localstripe_url,
    other_buyer,
    shelf_item,
)
