"""The naive flash-sale endpoint: what a team would write first (the benchmark's reference).

A DRF view that locks the sale's row with select_for_update, checks and decrements the
remaining units and the buyer's limit, and creates the order, for every click. Correct
(it cannot oversell) but every click, the thousands of late ones too, queues on one row.
It lives in bench/, never in the product's URLs.
"""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.db.models import Sum
from django.utils import timezone
from rest_framework import permissions
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from liveshop.permissions import authenticated_user
from orders.models import Order, OrderItem
from orders.services.orders import order_number_new
from rooms.models import FlashSale


class NaiveFlashBuyView(APIView):
    permission_classes = [permissions.IsAuthenticated]

    def post(self, request: Request) -> Response:
        buyer = authenticated_user(request)
        sale_id = int(request.data["flash_sale"])
        quantity = int(request.data.get("quantity", 1))
        shipping: dict[str, Any] = request.data.get("shipping") or {}
        with transaction.atomic():
            sale = FlashSale.objects.select_for_update().select_related("item__sku__product").get(pk=sale_id)
            if sale.status != FlashSale.Status.ACTIVE or sale.remaining < quantity:
                return Response({"code": "flash_sold_out", "detail": "Sold out."}, status=409)
            bought = OrderItem.objects.filter(flash_sale=sale, order__buyer=buyer).aggregate(n=Sum("quantity"))["n"]
            if sale.per_buyer_limit and (bought or 0) + quantity > sale.per_buyer_limit:
                return Response({"code": "limit_exceeded", "detail": "Limit reached."}, status=409)
            sale.remaining -= quantity
            sale.save(update_fields=["remaining"])
            sku = sale.item.sku
            order = Order.objects.create(
                number=order_number_new(),
                buyer=buyer,
                shop_id=sku.product.shop_id,
                room_id=sale.item.room_id,
                subtotal=sale.price * quantity,
                total=sale.price * quantity,
                shipping=shipping,
                expires_at=timezone.now(),
            )
            OrderItem.objects.create(
                order=order,
                sku=sku,
                flash_sale=sale,
                title=sku.product.title,
                quantity=quantity,
                unit_price=sale.price,
                line_total=sale.price * quantity,
            )
        return Response({"id": order.pk, "number": order.number}, status=201)
