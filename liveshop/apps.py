from __future__ import annotations

from django.apps import AppConfig


class LiveshopConfig(AppConfig):
    name = "liveshop"
    verbose_name = "liveshop accounts"
