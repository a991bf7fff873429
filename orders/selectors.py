"""Reads of orders, and who may see or act on one."""

from __future__ import annotations

from typing import Any

from django.db.models import Prefetch, Q, QuerySet

from catalog.models import Shop
from liveshop.errors import NotFound
from liveshop.permissions import is_staff
from orders.models import Order, OrderItem, Refund


def orders_with_details() -> QuerySet[Order]:
    """Orders with everything their serializer reads, in one query per relation."""
    return Order.objects.select_related("payment", "shop", "refund_claim").prefetch_related(
        Prefetch("items", queryset=OrderItem.objects.order_by("id")),
        Prefetch("refunds", queryset=Refund.objects.order_by("id")),
    )


def orders_visible_to(user: Any) -> QuerySet[Order]:
    """The buyer's own orders, the orders of the shops a user owns, or all for staff."""
    orders = orders_with_details()
    if is_staff(user):
        return orders
    if user is None or not user.is_authenticated:
        return orders.none()
    return orders.filter(Q(buyer=user) | Q(shop__owner=user))


def order_visible_get(*, user: Any, order_id: int) -> Order:
    """The order if the user may see it; 404 otherwise (others' orders do not exist for them)."""
    order = orders_visible_to(user).filter(pk=order_id).first()
    if order is None:
        raise NotFound("No such order.")
    return order


def is_order_seller(user: Any, order: Order) -> bool:
    return bool(user is not None and user.is_authenticated and order.shop.owner_id == user.pk)


def orders_of_buyer(*, user: Any) -> QuerySet[Order]:
    return orders_with_details().filter(buyer=user).order_by("-id")


def orders_of_shop(*, shop: Shop) -> QuerySet[Order]:
    return orders_with_details().filter(shop=shop).order_by("-id")
