"""Orders, refunds and Stripe's webhook over REST: translate HTTP to service calls and back."""

from __future__ import annotations

import logging
from typing import Any

import stripe
from django.conf import settings
from django.db.models import QuerySet
from django.http import HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema, extend_schema_field
from rest_framework import generics, permissions, serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from catalog.models import Shop, Sku
from liveshop.api_docs import errors, idempotency_key_parameter
from liveshop.errors import Conflict, Invalid, NotFound, PermissionDenied, ServiceUnavailable
from liveshop.idempotency import IdempotentCall, idempotent
from liveshop.permissions import authenticated_user, is_staff
from liveshop.ratelimit import OrderThrottle
from orders import selectors, stripe_api
from orders.models import Order, OrderItem, Refund, RefundClaim
from orders.services import orders as order_services
from orders.services import payments, refunds
from rooms.models import Room, RoomItem

logger = logging.getLogger(__name__)

# --- Serializers ----------------------------------------------------------------------------


class ShippingSerializer(serializers.Serializer[Any]):
    name = serializers.CharField(max_length=64)
    phone = serializers.RegexField(r"^\+?[0-9][0-9 \-]{4,30}$", max_length=32)
    address = serializers.CharField(max_length=300)
    district = serializers.CharField(max_length=64)


class OrderLineSerializer(serializers.Serializer[Any]):
    item = serializers.PrimaryKeyRelatedField(
        queryset=RoomItem.objects.select_related("room__host", "sku__product__shop", "offer"),
        required=False,
        help_text="A shelf item of the room (its live or flash price applies).",
    )
    sku = serializers.PrimaryKeyRelatedField(
        queryset=Sku.objects.select_related("product"), required=False, help_text="A sku, at its list price."
    )
    quantity = serializers.IntegerField(min_value=1, max_value=order_services.MAX_QUANTITY)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if ("item" in attrs) == ("sku" in attrs):
            raise serializers.ValidationError("Give either `item` or `sku`.")
        return attrs


class OrderCreateSerializer(serializers.Serializer[Any]):
    room = serializers.PrimaryKeyRelatedField(
        queryset=Room.objects.select_related("host"), required=False, allow_null=True, default=None
    )
    items = serializers.ListField(
        child=OrderLineSerializer(), min_length=1, max_length=order_services.MAX_LINES, allow_empty=False
    )
    shipping = ShippingSerializer()


class PaymentInfoSerializer(serializers.Serializer[Any]):
    provider = serializers.CharField()
    payment_intent = serializers.CharField(allow_null=True, help_text="null while `preparing`.")
    client_secret = serializers.CharField(allow_null=True, help_text="Shown to the buyer only; null while `preparing`.")
    status = serializers.CharField(
        help_text="Stripe's, or `preparing`: the PaymentIntent waits for a slot under Stripe's rate limit."
    )


# Orders are read on the hot path (every order placed answers with one): plain
# serializers with declared fields, not ModelSerializers, which introspect the model
# on every instantiation.


class OrderItemSerializer(serializers.Serializer[OrderItem]):
    sku = serializers.IntegerField(source="sku_id")
    title = serializers.CharField()
    quantity = serializers.IntegerField()
    unit_price = serializers.IntegerField()
    flash_sale = serializers.IntegerField(source="flash_sale_id", allow_null=True)


class RefundSerializer(serializers.Serializer[Refund]):
    id = serializers.IntegerField()
    amount = serializers.IntegerField()
    status = serializers.ChoiceField(choices=Refund.Status.choices)
    reason = serializers.CharField()
    kind = serializers.ChoiceField(choices=Refund.Kind.choices)
    created_at = serializers.DateTimeField()
    completed_at = serializers.DateTimeField(allow_null=True)


class RefundClaimSerializer(serializers.Serializer[RefundClaim]):
    reason = serializers.CharField()
    status = serializers.ChoiceField(choices=RefundClaim.Status.choices)
    created_at = serializers.DateTimeField()
    resolved_at = serializers.DateTimeField(allow_null=True)


class RefundClaimCreateSerializer(serializers.Serializer[Any]):
    reason = serializers.CharField(max_length=500)


class ShippingOutSerializer(serializers.Serializer[Any]):
    name = serializers.CharField()
    phone = serializers.CharField()
    address = serializers.CharField()
    district = serializers.CharField()


class OrderSerializer(serializers.Serializer[Order]):
    id = serializers.IntegerField()
    number = serializers.CharField()
    status = serializers.ChoiceField(choices=Order.Status.choices)
    buyer = serializers.IntegerField(source="buyer_id")
    room = serializers.IntegerField(source="room_id", allow_null=True)
    shop = serializers.IntegerField(source="shop_id")
    items = OrderItemSerializer(many=True, source="items.all")
    subtotal = serializers.IntegerField()
    total = serializers.IntegerField()
    currency = serializers.CharField()
    shipping = ShippingOutSerializer()
    tracking = serializers.CharField()
    created_at = serializers.DateTimeField()
    expires_at = serializers.DateTimeField()
    paid_at = serializers.DateTimeField(allow_null=True)
    shipped_at = serializers.DateTimeField(allow_null=True)
    delivered_at = serializers.DateTimeField(allow_null=True, help_text="Added: when the order was delivered.")
    payment = serializers.SerializerMethodField()
    refunded_amount = serializers.IntegerField()
    refunds = RefundSerializer(many=True, source="refunds.all")
    refund_claim = serializers.SerializerMethodField(help_text="The buyer's request for a refund, if any (added).")

    @extend_schema_field(RefundClaimSerializer(allow_null=True))
    def get_refund_claim(self, order: Order) -> dict[str, Any] | None:
        try:
            claim = order.refund_claim
        except RefundClaim.DoesNotExist:
            return None
        return dict(RefundClaimSerializer(claim).data)

    @extend_schema_field(PaymentInfoSerializer(allow_null=True))
    def get_payment(self, order: Order) -> dict[str, Any] | None:
        payment = getattr(order, "payment", None)
        if payment is None:
            if order.status != Order.Status.PENDING_PAYMENT:
                return None
            # Its PaymentIntent waits for a slot under Stripe's rate limit: filled in within
            # seconds (POST /orders/{id}/payment/; the socket's `order.payment_ready`).
            return {"provider": "stripe", "payment_intent": None, "client_secret": None, "status": "preparing"}
        viewer = self.context.get("viewer")
        # The client secret lets its holder pay: the buyer's eyes only.
        is_buyer = viewer is not None and viewer.pk == order.buyer_id
        return {
            "provider": payment.provider,
            "payment_intent": payment.payment_intent_id,
            "client_secret": payment.client_secret if is_buyer else None,
            "status": payment.status,
        }


class OrderShipSerializer(serializers.Serializer[Any]):
    tracking = serializers.CharField(max_length=100, required=False, allow_blank=True, default="")


class RefundCreateSerializer(serializers.Serializer[Any]):
    amount = serializers.IntegerField(
        min_value=1, required=False, allow_null=True, default=None, help_text="Default: all that is left."
    )
    reason = serializers.CharField(max_length=500)


class RefundResultSerializer(serializers.Serializer[Refund]):
    id = serializers.IntegerField()
    amount = serializers.IntegerField()
    status = serializers.ChoiceField(choices=Refund.Status.choices)


def _buyers_order(request: Request, pk: int, *, doing: str) -> Order:
    """The order, for what only its buyer may do: 404 if the user may not see it, 403 if
    they may see it (its seller, staff) but are not its buyer."""
    order = selectors.order_visible_get(user=request.user, order_id=pk)
    if order.buyer_id != request.user.pk:
        raise PermissionDenied(f"Only the buyer may {doing}.")
    return order


def _order_response(request: Request, order_id: int, code: int = status.HTTP_200_OK) -> Response:
    order = selectors.orders_with_details().get(pk=order_id)
    return Response(OrderSerializer(order, context={"viewer": request.user}).data, status=code)


# --- Orders ---------------------------------------------------------------------------------

_IDEMPOTENCY_PARAMETER = idempotency_key_parameter(
    "Retries with the same key and body return the first response; kept 24 hours."
)


class OrderListCreateView(generics.ListAPIView[Order]):
    permission_classes = [permissions.IsAuthenticated]
    serializer_class = OrderSerializer
    throttle_classes = [OrderThrottle]  # POST only

    def get_queryset(self) -> QuerySet[Order]:
        if getattr(self, "swagger_fake_view", False):  # the schema generator
            return Order.objects.none()
        return selectors.orders_of_buyer(user=self.request.user)

    def get_serializer_context(self) -> dict[str, Any]:
        return {**super().get_serializer_context(), "viewer": self.request.user}

    @extend_schema(responses={200: OrderSerializer(many=True), **errors(401)})
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().get(request, *args, **kwargs)

    @extend_schema(
        request=OrderCreateSerializer,
        parameters=[_IDEMPOTENCY_PARAMETER],
        responses={201: OrderSerializer, **errors(400, 401, 409, 422, 503)},
        description="Place an order: its units are held at once at server-set prices; pay with "
        "`payment.client_secret`. 409 `out_of_stock`, `flash_sold_out`, `limit_exceeded` or `room_not_live`.",
    )
    def post(self, request: Request) -> HttpResponse:
        return idempotent(request, lambda call: self._create(request, call))

    def _create(self, request: Request, call: IdempotentCall) -> Response:
        buyer = authenticated_user(request)
        data = OrderCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        order = call.resumed(Order)
        created_now = order is None
        if order is None:
            values = data.validated_data
            order = order_services.order_create(
                buyer=buyer,
                lines=[
                    order_services.LineRequest(quantity=line["quantity"], item=line.get("item"), sku=line.get("sku"))
                    for line in values["items"]
                ],
                room=values["room"],
                shipping=dict(values["shipping"]),
                idempotency_key=call.key,
                on_created=call.attach,
            )
        payments.order_payment_start(order=order, created_now=created_now)
        return _order_response(request, order.pk, status.HTTP_201_CREATED)


class OrderDetailView(APIView):
    permission_classes = [permissions.IsAuthenticated]

    @extend_schema(responses={200: OrderSerializer, **errors(401, 404)})
    def get(self, request: Request, pk: int) -> Response:
        order = selectors.order_visible_get(user=request.user, order_id=pk)
        return Response(OrderSerializer(order, context={"viewer": request.user}).data)


class OrderCancelView(APIView):
    permission_classes = [permissions.IsAuthenticated]

    @extend_schema(request=None, responses={200: OrderSerializer, **errors(401, 403, 404, 409)})
    def post(self, request: Request, pk: int) -> Response:
        order = _buyers_order(request, pk, doing="cancel an order")
        order_services.order_cancel(order=order)
        return _order_response(request, order.pk)


class OrderPaymentView(APIView):
    permission_classes = [permissions.IsAuthenticated]

    @extend_schema(
        request=None,
        responses={200: PaymentInfoSerializer, **errors(401, 403, 404, 409, 503)},
        description="The order's payment, its PaymentIntent created now if it has none yet and a write to Stripe "
        "is free under the rate limit (else still `preparing`: ask again in a second, or wait for the socket's "
        "`order.payment_ready`). 409 `conflict` for an order no longer waiting for payment that never had one.",
    )
    def post(self, request: Request, pk: int) -> Response:
        order = _buyers_order(request, pk, doing="pay an order")
        if order.status == Order.Status.PENDING_PAYMENT and getattr(order, "payment", None) is None:
            payment = payments.order_payment_start(order=order, asked_again=True)
            if payment is not None:
                order.payment = payment  # the answer below reads it; no second read of the order
        answer = OrderSerializer(context={"viewer": request.user}).get_payment(order)
        if answer is None:
            raise Conflict("This order is no longer waiting for payment.")
        return Response(answer)


class OrderShipView(APIView):
    permission_classes = [permissions.IsAuthenticated]

    @extend_schema(request=OrderShipSerializer, responses={200: OrderSerializer, **errors(400, 401, 403, 404, 409)})
    def post(self, request: Request, pk: int) -> Response:
        order = selectors.order_visible_get(user=request.user, order_id=pk)
        if not (selectors.is_order_seller(request.user, order) or is_staff(request.user)):
            raise PermissionDenied("Only the shop's owner or staff may ship an order.")
        data = OrderShipSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        order_services.order_ship(order=order, tracking=data.validated_data["tracking"])
        return _order_response(request, order.pk)


class OrderDeliverView(APIView):
    permission_classes = [permissions.IsAuthenticated]

    @extend_schema(
        request=None,
        responses={200: OrderSerializer, **errors(401, 403, 404, 409)},
        description="The buyer confirms receipt of a shipped order (staff may too, on the carrier's word): 200 "
        "`delivered`. The seller's share becomes payable PAYOUT_HOLD_DAYS later. Shipped orders are delivered "
        "automatically AUTO_DELIVER_DAYS after shipping; 409 `conflict` for an order not shipped.",
    )
    def post(self, request: Request, pk: int) -> Response:
        order = selectors.order_visible_get(user=request.user, order_id=pk)
        if not (order.buyer_id == request.user.pk or is_staff(request.user)):
            raise PermissionDenied("Only the buyer or staff may confirm delivery.")
        order_services.order_deliver(order_id=order.pk)
        return _order_response(request, order.pk)


class OrderRefundClaimView(APIView):
    permission_classes = [permissions.IsAuthenticated]

    @extend_schema(
        request=RefundClaimCreateSerializer,
        responses={201: OrderSerializer, 200: OrderSerializer, **errors(400, 401, 403, 404, 409)},
        description="The buyer asks the seller for a refund of a paid (shipped, delivered) order: 201 with the "
        "order and its `refund_claim`; asking again, 200 with the first claim; 409 `conflict` for an order not "
        "paid or refunded in full.",
    )
    def post(self, request: Request, pk: int) -> Response:
        order = _buyers_order(request, pk, doing="ask for a refund")
        data = RefundClaimCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        _, created = refunds.refund_claim_open(order=order, reason=data.validated_data["reason"])
        return _order_response(request, order.pk, status.HTTP_201_CREATED if created else status.HTTP_200_OK)


class OrderRefundView(APIView):
    permission_classes = [permissions.IsAuthenticated]

    @extend_schema(
        request=RefundCreateSerializer,
        responses={200: RefundResultSerializer, **errors(400, 401, 403, 404, 409)},
        description="Refund `amount` (default: all that is left) through Stripe. 400 `invalid` "
        "for more than is left; 409 `conflict` for an unpaid order.",
    )
    def post(self, request: Request, pk: int) -> Response:
        order = selectors.order_visible_get(user=request.user, order_id=pk)
        if not (selectors.is_order_seller(request.user, order) or is_staff(request.user)):
            raise PermissionDenied("Only the shop's owner or staff may refund an order.")
        data = RefundCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        refund = refunds.refund_request(
            order=order,
            amount=data.validated_data["amount"],
            reason=data.validated_data["reason"],
            requested_by=authenticated_user(request),
        )
        refund = refunds.refund_execute(refund_id=refund.pk)
        return Response(RefundResultSerializer(refund).data)


class ShopOrdersView(generics.ListAPIView[Order]):
    permission_classes = [permissions.IsAuthenticated]
    serializer_class = OrderSerializer

    def get_queryset(self) -> QuerySet[Order]:
        if getattr(self, "swagger_fake_view", False):  # the schema generator
            return Order.objects.none()
        shop = Shop.objects.filter(pk=self.kwargs["pk"]).first()
        if shop is None:
            raise NotFound("No such shop.")
        if not (shop.owner_id == self.request.user.pk or is_staff(self.request.user)):
            raise PermissionDenied("Only the shop's owner or staff may see its orders.")
        return selectors.orders_of_shop(shop=shop)

    def get_serializer_context(self) -> dict[str, Any]:
        return {**super().get_serializer_context(), "viewer": self.request.user}

    @extend_schema(responses={200: OrderSerializer(many=True), **errors(401, 403, 404)})
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().get(request, *args, **kwargs)


# --- Stripe's webhook ---------------------------------------------------------------------------


class StripeWebhookView(APIView):
    """Stripe's signed events: verified, stored as outbox rows, settled by a worker."""

    authentication_classes: list[type] = []
    permission_classes = [permissions.AllowAny]

    @extend_schema(
        request=OpenApiTypes.OBJECT,
        responses={200: OpenApiTypes.OBJECT, **errors(400, 503)},
        description="Stripe's webhook. 400 on a bad signature; 200 for duplicates and ignored types.",
    )
    def post(self, request: Request) -> Response:
        if not settings.STRIPE_WEBHOOK_SECRET:
            logger.error("a Stripe webhook arrived but STRIPE_WEBHOOK_SECRET is not set")
            raise ServiceUnavailable("Webhooks are not configured.")
        try:
            event = stripe_api.webhook_payload_verify(
                payload=request.body, signature=request.headers.get("Stripe-Signature", "")
            )
        except (stripe.SignatureVerificationError, ValueError):
            raise Invalid("The Stripe signature is missing, wrong or too old.") from None
        stored = payments.stripe_event_record(event=event)
        return Response({"received": True, "stored": stored})
