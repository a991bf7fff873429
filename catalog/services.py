"""Writes to the catalog. Stock only ever changes through conditional updates."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from django.db import transaction
from django.db.models import F

from catalog.models import Product, Shop, Sku
from liveshop.errors import OutOfStock
from liveshop.models import User


@dataclass(frozen=True)
class SkuSpec:
    name: str
    price: int
    stock: int


def shop_create(*, owner: User, name: str, district: str) -> Shop:
    return Shop.objects.create(owner=owner, name=name, district=district)


@transaction.atomic
def product_create(
    *,
    shop: Shop,
    title: str,
    skus: Sequence[SkuSpec],
    description: str = "",
    category: str = "",
    origin_district: str = "",
    image_url: str = "",
) -> Product:
    product = Product.objects.create(
        shop=shop,
        title=title,
        description=description,
        category=category,
        origin_district=origin_district,
        image_url=image_url,
    )
    Sku.objects.bulk_create([Sku(product=product, name=spec.name, price=spec.price, stock=spec.stock) for spec in skus])
    return product


def sku_update(*, sku: Sku, price: int | None = None, stock: int | None = None) -> Sku:
    """Set a sku's price and/or its free stock. Holds already taken are not affected."""
    fields: dict[str, int] = {}
    if price is not None:
        fields["price"] = price
    if stock is not None:
        fields["stock"] = stock
    if fields:
        Sku.objects.filter(pk=sku.pk).update(**fields)
        sku.refresh_from_db()
    return sku


def sku_hold(*, sku_id: int, quantity: int) -> None:
    """Take `quantity` free units of a sku, or raise OutOfStock having taken nothing."""
    if Sku.objects.filter(pk=sku_id, stock__gte=quantity).update(stock=F("stock") - quantity) != 1:
        raise OutOfStock(f"Not enough units of sku {sku_id} in stock.")


def sku_release(*, sku_id: int, quantity: int) -> None:
    """Give `quantity` held units of a sku back to its free stock."""
    Sku.objects.filter(pk=sku_id).update(stock=F("stock") + quantity)
