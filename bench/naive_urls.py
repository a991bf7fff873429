"""The product's URLs plus the naive flash-sale endpoint, for the reference run only."""

from __future__ import annotations

from django.urls import URLPattern, URLResolver, path

from bench.naive_view import NaiveFlashBuyView
from liveshop.urls import urlpatterns as product_urlpatterns

urlpatterns: list[URLPattern | URLResolver] = [
    path("bench/naive-flash-buy/", NaiveFlashBuyView.as_view()),
    *product_urlpatterns,
]
