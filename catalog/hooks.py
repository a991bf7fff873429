"""Hooks through which apps built on catalog extend it without catalog importing them:
streams lists a product's clips (the farmer explaining it in a show's replay)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from catalog.models import Product

# The product detail's `clips`: [{room, url, at_s, duration_s}], newest first.
product_clips_provider: Callable[[Product], list[dict[str, Any]]] | None = None


def product_clips(product: Product) -> list[dict[str, Any]]:
    return product_clips_provider(product) if product_clips_provider is not None else []
