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
    # In English, for English pages, when the seller gives it (added; the text above is as written).
    name_en = models.CharField(max_length=100, blank=True)
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
    # In English, for English pages, when the seller gives it (added; the text above is as written).
    title_en = models.CharField(max_length=120, blank=True)
    description_en = models.TextField(blank=True, max_length=5000)
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
    name_en = models.CharField(max_length=100, blank=True)  # as Product.title_en
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


# The most a seller may give a host: half of what a line sells for.
MAX_COMMISSION_BPS = 5000


class Offer(models.Model):
    """A seller's terms for hosts who sell one of its skus from their rooms' shelves.

    Offers do not change once made (a seller who wants other terms withdraws and opens a
    new one), so every shelf item and order line placed under one keeps its terms. The
    hosts it is open to are `hosts`, or every verified host when that is empty.
    """

    class Status(models.TextChoices):
        ACTIVE = "active"
        WITHDRAWN = "withdrawn"
        EXPIRED = "expired"

    sku = models.ForeignKey(Sku, on_delete=models.PROTECT, related_name="offers")
    commission_bps = models.PositiveIntegerField(help_text="The host's share of each paid line, in basis points.")
    min_live_price = models.PositiveIntegerField(help_text="The lowest unit price on a shelf (minor units).")
    flash_allowed = models.BooleanField(default=False)
    min_flash_price = models.PositiveIntegerField(null=True, blank=True)
    flash_max_units = models.PositiveIntegerField(null=True, blank=True)
    # A string reference: `rooms` depends on `catalog`, never the other way round in code.
    hosts = models.ManyToManyField("rooms.Host", blank=True, related_name="offers")
    ends_at = models.DateTimeField(null=True, blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.ACTIVE)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    withdrawn_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]
        constraints = [
            models.UniqueConstraint(fields=["sku"], condition=Q(status="active"), name="offer_one_active_per_sku"),
            models.CheckConstraint(
                condition=Q(commission_bps__lte=MAX_COMMISSION_BPS), name="offer_commission_within_bounds"
            ),
        ]

    def __str__(self) -> str:
        return f"offer {self.pk} on sku {self.sku_id}"


class ProductPhoto(models.Model):
    """A photo of a product, in the sizes liveshop/images.py makes (PHOTO_SIZES).

    The files' names are random; a row exists only once all its files are stored, and its
    files are deleted after the row is (catalog.services). Photos show in `position` order;
    the first is the product's picture on cards, the shelf and checkout.
    """

    product = models.ForeignKey(Product, on_delete=models.CASCADE, related_name="photos")
    position = models.PositiveIntegerField(default=0)
    # The upload, upright and without its metadata, at most 2048 px (JPEG).
    original = models.ImageField(max_length=255)
    # At most 1080 px wide (WebP): what a detail view shows.
    large = models.ImageField(max_length=255)
    # At most 360 px wide (WebP): cards, the shelf, checkout.
    thumb = models.ImageField(max_length=255)
    # Of `original`; the other sizes keep its aspect ratio.
    width = models.PositiveIntegerField()
    height = models.PositiveIntegerField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["position", "id"]
        indexes = [models.Index(fields=["product", "position"])]

    def __str__(self) -> str:
        return f"photo {self.pk} of product {self.product_id}"

    @property
    def file_names(self) -> list[str]:
        return [self.original.name or "", self.large.name or "", self.thumb.name or ""]
