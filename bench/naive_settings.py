"""Settings of the naive reference server: the product's, plus one benchmark-only URL."""

from __future__ import annotations

from liveshop.settings import *  # noqa: F403

ROOT_URLCONF = "bench.naive_urls"
