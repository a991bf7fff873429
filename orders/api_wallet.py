"""The coin wallet, top-ups, sending gifts and claiming prizes over REST.

These paths sit under rooms and giveaways in the contract, but they move coins or create
orders, which orders owns: so orders serves them (rooms may not import orders).
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db.models import QuerySet
from django.http import HttpResponse
from drf_spectacular.utils import extend_schema, extend_schema_field
from rest_framework import generics, permissions, serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from liveshop.api_docs import errors, idempotency_key_parameter
from liveshop.errors import NotFound, PermissionDenied
from liveshop.idempotency import IdempotentCall, idempotent
from liveshop.models import User
from liveshop.permissions import authenticated_user, is_staff
from orders.api import OrderSerializer, ShippingSerializer
from orders.models import TopUp
from orders.selectors import orders_with_details
from orders.services import gifts, prizes, wallet
from rooms import selectors as room_selectors
from rooms import selectors_gifts
from rooms.models import Gift, GiftSend

_IDEMPOTENCY_PARAMETER = idempotency_key_parameter(
    "Retries with the same key and body return the first response and do nothing twice; kept 24 hours."
)

# --- Serializers ----------------------------------------------------------------------------


class WalletSerializer(serializers.Serializer[Any]):
    coins = serializers.IntegerField(help_text="Coins to spend on gifts.")
    earned_coins = serializers.IntegerField(help_text="A host's share of the gifts it received.")
    coin_price = serializers.IntegerField(help_text="What one coin costs in a top-up, in minor units.")
    currency = serializers.CharField(help_text="The currency of `coin_price`.")


class TopUpCreateSerializer(serializers.Serializer[Any]):
    coins = serializers.IntegerField(min_value=1, max_value=wallet.TOP_UP_MAX_COINS)


class TopUpPaymentSerializer(serializers.Serializer[Any]):
    provider = serializers.CharField()
    payment_intent = serializers.CharField(allow_null=True)
    client_secret = serializers.CharField(allow_null=True)
    status = serializers.CharField()


class TopUpSerializer(serializers.Serializer[TopUp]):
    id = serializers.IntegerField()
    coins = serializers.IntegerField()
    amount = serializers.IntegerField(help_text="What the top-up costs, in minor units of `currency`.")
    currency = serializers.CharField()
    status = serializers.ChoiceField(choices=TopUp.Status.choices)
    payment = serializers.SerializerMethodField()
    created_at = serializers.DateTimeField()
    paid_at = serializers.DateTimeField(allow_null=True)

    @staticmethod
    def _payment_status(top_up: TopUp) -> str:
        if top_up.status == TopUp.Status.PAID:
            return "succeeded"
        if top_up.status == TopUp.Status.CANCELED:
            return "canceled"
        return "failed" if top_up.last_error else "requires_payment"

    @extend_schema_field(TopUpPaymentSerializer)
    def get_payment(self, top_up: TopUp) -> dict[str, Any]:
        return TopUpPaymentSerializer(
            {
                "provider": top_up.provider,
                "payment_intent": top_up.payment_intent_id,
                "client_secret": top_up.client_secret or None,
                "status": self._payment_status(top_up),
            }
        ).data


class GiftSendCreateSerializer(serializers.Serializer[Any]):
    gift = serializers.PrimaryKeyRelatedField(queryset=Gift.objects.filter(is_active=True))
    quantity = serializers.IntegerField(min_value=1, max_value=gifts.GIFT_MAX_QUANTITY, required=False, default=1)


class GiftSendResultSerializer(serializers.Serializer[Any]):
    id = serializers.IntegerField()
    gift = serializers.IntegerField()
    quantity = serializers.IntegerField()
    coins = serializers.IntegerField(help_text="What the gift cost.")
    balance = serializers.IntegerField(help_text="The sender's coins left.")


class PrizeClaimSerializer(serializers.Serializer[Any]):
    shipping = ShippingSerializer()


def _gift_result(send: GiftSend, balance: int) -> dict[str, Any]:
    return {"id": send.pk, "gift": send.gift_id, "quantity": send.quantity, "coins": send.coins, "balance": balance}


# --- The wallet and top-ups -------------------------------------------------------------------


def _wallet_body(balances: wallet.Wallet) -> Any:
    return WalletSerializer(
        {
            "coins": balances.coins,
            "earned_coins": balances.earned_coins,
            "coin_price": settings.COIN_PRICE_FEN,
            "currency": settings.CURRENCY,
        }
    ).data


class WalletView(APIView):
    permission_classes = [permissions.IsAuthenticated]

    @extend_schema(responses={200: WalletSerializer, **errors(401)})
    def get(self, request: Request) -> Response:
        balances = wallet.wallet_get(user=authenticated_user(request))
        return Response(_wallet_body(balances))


class WalletGrantSerializer(serializers.Serializer[Any]):
    user = serializers.PrimaryKeyRelatedField(queryset=User.objects.filter(is_active=True))
    coins = serializers.IntegerField(min_value=1, max_value=wallet.GRANT_MAX_COINS)
    reason = serializers.CharField(max_length=150, help_text="Why, for the ledger and the audit log.")
    key = serializers.CharField(
        max_length=80, help_text="Names the grant: the same key grants once (a retry, a double click)."
    )


class WalletGrantView(APIView):
    permission_classes = [permissions.IsAuthenticated]

    @extend_schema(
        request=WalletGrantSerializer,
        responses={201: WalletSerializer, 200: WalletSerializer, **errors(400, 401, 403)},
        description="Staff give a user coins (added): a county's campaign pays for its cadre host's red "
        "envelopes this way. From the platform's promotions account, once per `key` (200 when made already), "
        "written to the ledger with the reason and to the audit log. Answers the user's wallet.",
    )
    def post(self, request: Request) -> Response:
        actor = authenticated_user(request)
        if not is_staff(actor):
            raise PermissionDenied("Only staff grant coins.")
        data = WalletGrantSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        made = wallet.wallet_grant(
            user=values["user"],
            coins=values["coins"],
            key=f"staff:{values['key']}",
            reason=values["reason"],
            actor=actor,
        )
        body = _wallet_body(wallet.wallet_get(user=values["user"]))
        return Response(body, status=status.HTTP_201_CREATED if made else status.HTTP_200_OK)


class TopUpListCreateView(generics.ListAPIView[TopUp]):
    permission_classes = [permissions.IsAuthenticated]
    serializer_class = TopUpSerializer

    def get_queryset(self) -> QuerySet[TopUp]:
        if getattr(self, "swagger_fake_view", False):  # the schema generator
            return TopUp.objects.none()
        return TopUp.objects.filter(user=authenticated_user(self.request)).order_by("-id")

    @extend_schema(responses={200: TopUpSerializer(many=True), **errors(401)})
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().get(request, *args, **kwargs)

    @extend_schema(
        request=TopUpCreateSerializer,
        parameters=[_IDEMPOTENCY_PARAMETER],
        responses={201: TopUpSerializer, **errors(400, 401, 409, 422, 503)},
        description="Buy coins: pay `payment.client_secret` with Stripe; the coins are credited once, "
        "when the payment's webhook is settled (the wallet shows them then).",
    )
    def post(self, request: Request) -> HttpResponse:
        return idempotent(request, lambda call: self._create(request, call))

    def _create(self, request: Request, call: IdempotentCall) -> Response:
        user = authenticated_user(request)
        data = TopUpCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        top_up = call.resumed(TopUp) or wallet.top_up_create(
            user=user, coins=data.validated_data["coins"], on_created=call.attach
        )
        top_up = wallet.top_up_payment_start(top_up=top_up)
        return Response(TopUpSerializer(top_up).data, status=status.HTTP_201_CREATED)


class TopUpDetailView(APIView):
    permission_classes = [permissions.IsAuthenticated]

    @extend_schema(responses={200: TopUpSerializer, **errors(401, 404)})
    def get(self, request: Request, pk: int) -> Response:
        top_up = TopUp.objects.filter(pk=pk, user=authenticated_user(request)).first()
        if top_up is None:
            raise NotFound("No such top-up.")
        return Response(TopUpSerializer(top_up).data)


# --- Gifts ------------------------------------------------------------------------------------


class RoomGiftSendView(APIView):
    permission_classes = [permissions.IsAuthenticated]

    @extend_schema(
        request=GiftSendCreateSerializer,
        parameters=[_IDEMPOTENCY_PARAMETER],
        responses={201: GiftSendResultSerializer, **errors(400, 401, 402, 403, 404, 409, 422)},
        description="Send a gift to the room's host with your coins; the room sees `gift.sent`. 402 "
        "`insufficient_coins`; 409 `room_not_live`; 403 for the host in its own room.",
    )
    def post(self, request: Request, pk: int) -> HttpResponse:
        return idempotent(request, lambda call: self._send(request, pk, call))

    def _send(self, request: Request, pk: int, call: IdempotentCall) -> Response:
        sender = authenticated_user(request)
        room = room_selectors.rooms_visible_to(sender).filter(pk=pk).first()
        if room is None:
            raise NotFound("No such room.")
        previous = call.resumed(GiftSend)
        if previous is not None:  # sent by an attempt that died before answering
            return Response(
                _gift_result(previous, wallet.wallet_coins(user_id=sender.pk)), status=status.HTTP_201_CREATED
            )
        data = GiftSendCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        sent = gifts.gift_send(
            room=room,
            sender=sender,
            gift=data.validated_data["gift"],
            quantity=data.validated_data["quantity"],
            on_created=call.attach,
        )
        return Response(_gift_result(sent.send, sent.balance), status=status.HTTP_201_CREATED)


# --- Prize claims -----------------------------------------------------------------------------


class GiveawayClaimView(APIView):
    permission_classes = [permissions.IsAuthenticated]

    @extend_schema(
        request=PrizeClaimSerializer,
        responses={201: OrderSerializer, 200: OrderSerializer, **errors(400, 401, 403, 404, 409)},
        description="A winner claims the prize: 201 with the prize order (`total: 0`, `paid`), shipped by the "
        "host's shop; a second claim answers 200 with the same order. 403 for anyone not a winner; 409 "
        "before the draw, for a giveaway without a prize, or after the claim window.",
    )
    def post(self, request: Request, pk: int) -> Response:
        user = authenticated_user(request)
        giveaway = selectors_gifts.giveaway_visible_get(user=user, giveaway_id=pk)
        data = PrizeClaimSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        order, created = prizes.giveaway_prize_claim(
            giveaway=giveaway, user=user, shipping=dict(data.validated_data["shipping"])
        )
        order = orders_with_details().get(pk=order.pk)
        return Response(
            OrderSerializer(order, context={"viewer": user}).data,
            status=status.HTTP_201_CREATED if created else status.HTTP_200_OK,
        )
