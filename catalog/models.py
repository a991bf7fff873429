from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q

# Upper bounds that keep every amount far inside PostgreSQL's integer columns.
MAX_PRICE = 100_000_000  # fen: one million yuan for one unit
MAX_STOCK = 10_000_000


class Shop(models.Model):
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="shops")
    name = models.CharField(max_length=100)
    district = models.CharField(max_length=64)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return self.name


class Product(models.Model):
    shop = models.ForeignKey(Shop, on_delete=models.PROTECT, related_name="products")
    title = models.CharField(max_length=120)
    description = models.TextField(blank=True, max_length=5000)
    category = models.CharField(max_length=64, blank=True)
    # Where the produce comes from; blank means the shop's district.
    origin_district = models.CharField(max_length=64, blank=True)
    image_url = models.URLField(max_length=500, blank=True)
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]
        indexes = [models.Index(fields=["category"]), models.Index(fields=["origin_district"])]

    def __str__(self) -> str:
        return self.title


class Sku(models.Model):
    """A sellable variant. `stock` counts units on hand that nobody holds."""

    product = models.ForeignKey(Product, on_delete=models.PROTECT, related_name="skus")
    name = models.CharField(max_length=100)
    price = models.PositiveIntegerField(help_text="Minor units (fen).")
    currency = models.CharField(max_length=3, default="cny")
    stock = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.CheckConstraint(condition=Q(stock__gte=0), name="sku_stock_not_negative"),
            models.CheckConstraint(condition=Q(price__gte=0), name="sku_price_not_negative"),
        ]

    def __str__(self) -> str:
        return f"{self.product.title} / {self.name}"
