"""Reads of the catalog: which offers a host may sell under, and what they sold."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.db.models import Q, QuerySet, Sum
from django.db.models.functions import Coalesce
from django.utils import timezone

from catalog.models import Offer, Product
from liveshop.permissions import is_staff

# Order statuses whose lines count as sold (paid, not wholly refunded). Named as strings:
# `catalog` reads orders through the reverse relation and never imports `orders`.
SOLD_ORDER_STATUSES = ("paid", "shipped", "delivered")


def offers_open(*, now: datetime | None = None) -> QuerySet[Offer]:
    """Offers a host may put on a shelf, order under or run a flash sale under now."""
    now = now or timezone.now()
    return Offer.objects.filter(status=Offer.Status.ACTIVE).filter(Q(ends_at__isnull=True) | Q(ends_at__gt=now))


def offers_open_to(*, host_id: int, now: datetime | None = None) -> QuerySet[Offer]:
    """Open offers that name `host_id`, or name no host (open to every verified host)."""
    return offers_open(now=now).filter(Q(hosts__isnull=True) | Q(hosts__id=host_id)).distinct()


def offer_is_open_to(*, offer_id: int, host_id: int, now: datetime | None = None) -> bool:
    return offers_open_to(host_id=host_id, now=now).filter(pk=offer_id).exists()


def offer_open_for_sku(*, sku_id: int, host_id: int) -> Offer | None:
    """The sku's open offer if `host_id` may sell under it (one active offer per sku)."""
    return offers_open_to(host_id=host_id).filter(sku_id=sku_id).first()


def shop_offers(*, shop_id: int) -> QuerySet[Offer]:
    """A shop's offers, any status, with `sold_units` and `sales` of paid lines sold under each."""
    sold = Q(order_items__order__status__in=SOLD_ORDER_STATUSES)
    return (
        Offer.objects.filter(sku__product__shop_id=shop_id)
        .select_related("sku__product__shop")
        .prefetch_related("hosts")
        .annotate(
            sold_units=Coalesce(Sum("order_items__quantity", filter=sold), 0),
            sales=Coalesce(Sum("order_items__line_total", filter=sold), 0),
        )
        .order_by("-id")
    )


def offer_effective_status(offer: Offer, *, now: datetime | None = None) -> str:
    """`expired` for an active offer past its end (stored as active until a new one replaces it)."""
    if offer.status == Offer.Status.ACTIVE and offer.ends_at is not None and offer.ends_at <= (now or timezone.now()):
        return Offer.Status.EXPIRED
    return offer.status


def products_visible_to(user: Any) -> QuerySet[Product]:
    """Products a user may see: inactive ones only to their shop's owner and to staff."""
    products = Product.objects.select_related("shop").prefetch_related("skus", "photos")
    if is_staff(user):
        return products
    if user is not None and user.is_authenticated:
        return products.filter(Q(is_active=True) | Q(shop__owner=user))
    return products.filter(is_active=True)
