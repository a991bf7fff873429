"""Reads for hosts, rooms and the shelf, and the predicates of who may do what."""

from __future__ import annotations

from typing import Any

from django.db.models import Prefetch, Q, QuerySet
from rest_framework import serializers

from liveshop.permissions import is_staff
from rooms.models import FlashSale, Host, Room, RoomItem


def _active_flash_sales(lookup: str) -> Prefetch[Any]:
    """Prefetch an item's active flash sale into `item.active_flash_sales`."""
    return Prefetch(
        lookup,
        queryset=FlashSale.objects.filter(status=FlashSale.Status.ACTIVE),
        to_attr="active_flash_sales",
    )


def rooms_visible_to(user: Any) -> QuerySet[Room]:
    """Rooms a user may see: suspended ones only to their host and to staff."""
    rooms = Room.objects.select_related("host__user", "featured_item__sku__product").prefetch_related(
        _active_flash_sales("featured_item__flash_sales")
    )
    if is_staff(user):
        return rooms
    if user is not None and user.is_authenticated:
        return rooms.filter(~Q(status=Room.Status.SUSPENDED) | Q(host__user=user))
    return rooms.exclude(status=Room.Status.SUSPENDED)


def is_room_host(user: Any, room: Room) -> bool:
    return bool(user is not None and user.is_authenticated and room.host.user_id == user.pk)


def room_items_queryset() -> QuerySet[RoomItem]:
    """Shelf items with what their serializer reads, in one query per relation."""
    return RoomItem.objects.select_related("sku__product").prefetch_related(_active_flash_sales("flash_sales"))


def room_items(*, room: Room) -> list[RoomItem]:
    return list(room_items_queryset().filter(room=room).order_by("position", "id"))


def item_active_flash_sale(item: RoomItem) -> FlashSale | None:
    sales = getattr(item, "active_flash_sales", None)
    if sales is None:
        sales = list(item.flash_sales.filter(status=FlashSale.Status.ACTIVE))
    return sales[0] if sales else None


def host_get(*, host_id: int) -> Host | None:
    return Host.objects.select_related("user").filter(pk=host_id).first()


_datetime = serializers.DateTimeField()


def flash_sale_public(sale: FlashSale) -> dict[str, Any]:
    """A flash sale as the API and the `flash.started` event show it."""
    return {
        "id": sale.pk,
        "item": sale.item_id,
        "price": sale.price,
        "quantity": sale.quantity,
        "remaining": sale.remaining,
        "per_buyer_limit": sale.per_buyer_limit,
        "starts_at": _datetime.to_representation(sale.starts_at),
        "ends_at": _datetime.to_representation(sale.ends_at),
        "status": str(sale.status),
    }
