"""Writes to the catalog. Stock only ever changes through conditional updates."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import IO

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Count, F, Max
from django.utils import timezone

from catalog.models import Offer, Product, ProductPhoto, Shop, Sku
from liveshop import images
from liveshop.errors import Conflict, Invalid, LimitExceeded, OutOfStock
from liveshop.models import User


@dataclass(frozen=True)
class SkuSpec:
    name: str
    price: int
    stock: int
    name_en: str = ""


def shop_create(*, owner: User, name: str, district: str, name_en: str = "") -> Shop:
    return Shop.objects.create(owner=owner, name=name, name_en=name_en, district=district)


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
    title_en: str = "",
    description_en: str = "",
) -> Product:
    product = Product.objects.create(
        shop=shop,
        title=title,
        title_en=title_en,
        description=description,
        description_en=description_en,
        category=category,
        origin_district=origin_district,
        image_url=image_url,
    )
    Sku.objects.bulk_create(
        [
            Sku(product=product, name=spec.name, name_en=spec.name_en, price=spec.price, stock=spec.stock)
            for spec in skus
        ]
    )
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


# --- Promotion offers -----------------------------------------------------------------------


@dataclass(frozen=True)
class OfferTerms:
    """What a seller asks of hosts who sell its sku. Prices in minor units."""

    commission_bps: int
    min_live_price: int | None = None
    flash_allowed: bool = False
    min_flash_price: int | None = None
    flash_max_units: int | None = None
    ends_at: datetime | None = None


@transaction.atomic
def offer_create(*, sku: Sku, created_by: User, terms: OfferTerms, host_ids: Sequence[int] = ()) -> Offer:
    """Open an offer on `sku` (one active offer per sku: Conflict while another is open).

    The caller has checked that `created_by` owns the sku's shop and that `host_ids` are
    hosts. An unset `min_live_price` is the sku's list price; an unset `min_flash_price`
    is the `min_live_price`.
    """
    now = timezone.now()
    if not sku.product.is_active:
        raise Invalid("This product is not on sale.", fields={"sku": ["The product is not on sale."]})
    if terms.ends_at is not None and terms.ends_at <= now:
        raise Invalid("An offer must end in the future.", fields={"ends_at": ["Must be in the future."]})
    # An offer past its end no longer counts as the sku's active one.
    Offer.objects.filter(sku=sku, status=Offer.Status.ACTIVE, ends_at__lte=now).update(status=Offer.Status.EXPIRED)
    min_live_price = terms.min_live_price if terms.min_live_price is not None else sku.price
    try:
        with transaction.atomic():
            offer = Offer.objects.create(
                sku=sku,
                created_by=created_by,
                commission_bps=terms.commission_bps,
                min_live_price=min_live_price,
                flash_allowed=terms.flash_allowed,
                min_flash_price=terms.min_flash_price if terms.min_flash_price is not None else min_live_price,
                flash_max_units=terms.flash_max_units,
                ends_at=terms.ends_at,
            )
    except IntegrityError:
        raise Conflict("This sku already has an active offer; withdraw it first.") from None
    if host_ids:
        offer.hosts.set(host_ids)
    return offer


def offer_withdraw(*, offer: Offer) -> Offer:
    """Close an offer to new shelf items, orders and flash sales; placed orders keep their terms.

    Compare-and-set: a second withdrawal is a Conflict. Flash sales running under it are
    ended by the flash-sale sweeper (rooms), which `catalog` cannot call.
    """
    now = timezone.now()
    if (
        Offer.objects.filter(pk=offer.pk, status=Offer.Status.ACTIVE).update(
            status=Offer.Status.WITHDRAWN, withdrawn_at=now
        )
        != 1
    ):
        raise Conflict("Only an active offer can be withdrawn.")
    offer.refresh_from_db()
    return offer


# --- Product photos -------------------------------------------------------------------------


def product_photo_add(*, product: Product, upload: IO[bytes], size: int | None = None) -> ProductPhoto:
    """Check, clean and store an uploaded photo of `product`, last in its order.

    Invalid / PayloadTooLarge for what is not a usable image (liveshop/images.py),
    LimitExceeded past PRODUCT_PHOTOS_MAX. The files are written first, then the row; if
    the row cannot be made, the files are deleted: no row without files, no files left
    from a failed upload.
    """
    _ensure_photo_room(product_id=product.pk)  # refuse early, before the work
    image = images.image_open(upload, size=size)
    stored = images.image_store(image, folder=f"products/{product.pk}", sizes=images.PHOTO_SIZES)
    try:
        with transaction.atomic():
            # The product's row lock serialises concurrent uploads: the count cannot pass the limit.
            Product.objects.select_for_update().filter(pk=product.pk).first()
            last = _ensure_photo_room(product_id=product.pk)
            return ProductPhoto.objects.create(
                product=product,
                position=last + 1,
                original=stored.names["original"],
                large=stored.names["1080"],
                thumb=stored.names["360"],
                width=stored.width,
                height=stored.height,
            )
    except BaseException:
        images.image_delete(stored.names.values())
        raise


def _ensure_photo_room(*, product_id: int) -> int:
    """The highest position among the product's photos (0 for none); LimitExceeded when full."""
    photos = ProductPhoto.objects.filter(product_id=product_id).aggregate(count=Count("id"), last=Max("position"))
    limit: int = settings.PRODUCT_PHOTOS_MAX
    if photos["count"] >= limit:
        raise LimitExceeded(f"A product has at most {limit} photos; delete one first.")
    return int(photos["last"] or 0)


def product_photo_delete(*, photo: ProductPhoto) -> None:
    """Delete the photo's row, then (once that is committed) its files."""
    names = photo.file_names
    with transaction.atomic():
        ProductPhoto.objects.filter(pk=photo.pk).delete()
        transaction.on_commit(lambda: images.image_delete(names))


@transaction.atomic
def product_photos_reorder(*, product: Product, photo_ids: Sequence[int]) -> list[ProductPhoto]:
    """Put the product's photos in the order of `photo_ids`, which must name each exactly once."""
    Product.objects.select_for_update().filter(pk=product.pk).first()
    photos = {photo.pk: photo for photo in ProductPhoto.objects.filter(product=product)}
    if sorted(photo_ids) != sorted(photos):
        raise Invalid(
            "Name every photo of the product exactly once.", fields={"photos": ["Must list each photo once."]}
        )
    for position, photo_id in enumerate(photo_ids, start=1):
        photos[photo_id].position = position
    ProductPhoto.objects.bulk_update(photos.values(), ["position"])
    return [photos[photo_id] for photo_id in photo_ids]
