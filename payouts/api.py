"""Money out over REST (CONTRACT.md, "Money out"): balances, statements, payouts, the
payee's payout account, and hosts' coin cash-outs."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any

from django.conf import settings
from django.db.models import Q, QuerySet
from django.http import HttpResponse
from django.utils import timezone
from drf_spectacular.utils import (
    extend_schema,
    extend_schema_field,
    extend_schema_view,
)
from rest_framework import generics, permissions, renderers, serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from catalog.models import Shop
from liveshop.api_docs import errors, idempotency_key_parameter
from liveshop.csv_export import CsvRenderer, JsonOrCsvMixin, PeriodQuerySerializer, csv_cell, period_report_schema
from liveshop.errors import NotFound, PermissionDenied, ServiceUnavailable
from liveshop.idempotency import IdempotentCall, idempotent
from liveshop.models import User
from liveshop.permissions import authenticated_user, host_of, is_staff
from orders import stripe_api
from payouts.models import CoinCashOut, Payout, PayoutAccount
from payouts.services import balances, cashouts, payouts
from payouts.services.payees import Payee
from rooms import selectors as room_selectors

# --- Whose money ---------------------------------------------------------------------------------


def _payee_of(request: Request, kind: str, pk: int) -> Payee:
    """The shop's or host's payee, for its owner and staff only: 404 if it does not
    exist, 403 for anyone else."""
    user = authenticated_user(request)
    if kind == "shop":
        shop = Shop.objects.filter(pk=pk).first()
        if shop is None:
            raise NotFound("No such shop.")
        if shop.owner_id != user.pk and not is_staff(user):
            raise PermissionDenied("Only the shop's owner and staff see its money.")
        return Payee(shop_id=shop.pk)
    host = room_selectors.host_get(host_id=pk)
    if host is None:
        raise NotFound("No such host.")
    if host.user_id != user.pk and not is_staff(user):
        raise PermissionDenied("Only the host and staff see its money.")
    return Payee(user_id=host.user_id)


# --- Balance -------------------------------------------------------------------------------------


class BalanceSerializer(serializers.Serializer[Any]):
    pending = serializers.IntegerField(help_text="Earned, not payable yet: not delivered, or within the hold.")
    available = serializers.IntegerField(help_text="Payable; negative when refunds after a payout are owed back.")
    paid_out = serializers.IntegerField(help_text="Sent, and not come back.")
    in_payout = serializers.IntegerField(help_text="Added: in payouts built and not sent yet.")
    currency = serializers.CharField()


class _BalanceView(APIView):
    permission_classes = [permissions.IsAuthenticated]
    payee_kind = "shop"

    def get(self, request: Request, pk: int) -> Response:
        balance = balances.payee_balance(payee=_payee_of(request, self.payee_kind, pk))
        return Response(BalanceSerializer(balance).data)


@extend_schema(responses={200: BalanceSerializer, **errors(401, 403, 404)})
class ShopBalanceView(_BalanceView):
    payee_kind = "shop"


@extend_schema(responses={200: BalanceSerializer, **errors(401, 403, 404)})
class HostBalanceView(_BalanceView):
    payee_kind = "host"


# --- Statement -----------------------------------------------------------------------------------

STATEMENT_MAX_DAYS = 366


class StatementQuerySerializer(PeriodQuerySerializer):
    MAX_DAYS = STATEMENT_MAX_DAYS


class StatementLineSerializer(serializers.Serializer[Any]):
    at = serializers.DateTimeField()
    kind = serializers.ChoiceField(
        choices=[
            "sale",
            "refund",
            "fee",
            "commission",
            "gift_earnings",
            "payout",
            "payout_netted",
            "payout_returned",
            "adjustment",
        ]
    )
    order = serializers.CharField(allow_null=True, help_text="The order's number.")
    amount = serializers.IntegerField(help_text="Fen; what the line adds to what is owed to the payee.")
    payout = serializers.IntegerField(allow_null=True, help_text="Added: the payout a payout line is about.")


class StatementSerializer(serializers.Serializer[Any]):
    period_from = serializers.DateField(source="start")
    to = serializers.DateField(source="end")
    time_zone = serializers.SerializerMethodField()
    currency = serializers.CharField()
    opening = serializers.IntegerField()
    closing = serializers.IntegerField(help_text="opening + Σ amount")
    lines = StatementLineSerializer(many=True)

    def get_fields(self) -> dict[str, Any]:
        fields = super().get_fields()
        fields["from"] = fields.pop("period_from")
        return fields

    def get_time_zone(self, _obj: Any) -> str:
        return settings.STATS_TIME_ZONE


def _iso(value: dt.datetime) -> str:
    """As DRF writes a datetime (in the current time zone, UTC as "Z"), at a fraction of
    its cost: a big show's month has tens of thousands of lines."""
    text = timezone.localtime(value).isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


def _statement_body(statement: balances.Statement) -> dict[str, Any]:
    """StatementSerializer's shape, built directly (its fields per line cost ~17 µs each)."""
    return {
        "from": statement.start.isoformat(),
        "to": statement.end.isoformat(),
        "time_zone": settings.STATS_TIME_ZONE,
        "currency": statement.currency,
        "opening": statement.opening,
        "closing": statement.closing,
        "lines": [
            {"at": _iso(line.at), "kind": line.kind, "order": line.order, "amount": line.amount, "payout": line.payout}
            for line in statement.lines
        ],
    }


STATEMENT_CSV_COLUMNS = ("at", "kind", "order", "payout", "amount", "currency")


class StatementCsvRenderer(CsvRenderer):
    """A header, an `OPENING` line, one line per statement line, a `CLOSING` line."""

    def rows(self, data: Any) -> Iterable[Iterable[Any]]:
        currency = data["currency"]
        yield STATEMENT_CSV_COLUMNS
        yield [data["from"], "OPENING", "", "", data["opening"], currency]
        for line in data["lines"]:
            yield [
                line["at"],
                line["kind"],
                csv_cell(line["order"] or ""),
                line["payout"] or "",
                line["amount"],
                currency,
            ]
        yield [data["to"], "CLOSING", "", "", data["closing"], currency]


class _StatementView(JsonOrCsvMixin, APIView):
    permission_classes = [permissions.IsAuthenticated]
    renderer_classes = [renderers.JSONRenderer, StatementCsvRenderer]
    payee_kind = "shop"

    def get(self, request: Request, pk: int) -> Response:
        payee = _payee_of(request, self.payee_kind, pk)
        query = StatementQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        start: dt.date = query.validated_data["from"]
        end: dt.date = query.validated_data["to"]
        response = Response(_statement_body(balances.statement(payee=payee, start=start, end=end)))
        if isinstance(request.accepted_renderer, StatementCsvRenderer):
            name = f"liveshop-statement-{self.payee_kind}-{pk}-{start}-{end}.csv"
            response["Content-Disposition"] = f'attachment; filename="{name}"'
        return response


_STATEMENT_SCHEMA = extend_schema(
    **period_report_schema(
        json_answer=StatementSerializer, csv_columns=STATEMENT_CSV_COLUMNS, errors=errors(400, 401, 403, 404)
    ),
    description="Every sale, refund, fee, commission, gift earning and payout that changed what the payee is "
    "owed in the period (days in STATS_TIME_ZONE), with opening and closing balances: closing = opening + Σ amount.",
)


@_STATEMENT_SCHEMA
class ShopStatementView(_StatementView):
    payee_kind = "shop"


@_STATEMENT_SCHEMA
class HostStatementView(_StatementView):
    payee_kind = "host"


# --- Payouts -------------------------------------------------------------------------------------


class PayeeSerializer(serializers.Serializer[Any]):
    kind = serializers.ChoiceField(choices=["shop", "host"])
    id = serializers.IntegerField(help_text="The shop's id, or the host's.")
    name = serializers.CharField()


class PayoutSerializer(serializers.ModelSerializer[Payout]):
    payee = serializers.SerializerMethodField()

    class Meta:
        model = Payout
        fields = (
            "id",
            "payee",
            "amount",
            "built_amount",
            "currency",
            "status",
            "method",
            "period_start",
            "period_end",
            "created_at",
            "approved_at",
            "sent_at",
            "paid_at",
            "failure_reason",
        )

    @extend_schema_field(PayeeSerializer)
    def get_payee(self, payout: Payout) -> dict[str, Any]:
        if payout.shop is not None:
            return {"kind": "shop", "id": payout.shop_id, "name": payout.shop.name}
        assert payout.user is not None
        host = host_of(payout.user)
        return {"kind": "host", "id": host.pk if host else None, "name": str(payout.user)}


class PayoutListView(generics.ListAPIView[Payout]):
    permission_classes = [permissions.IsAuthenticated]
    serializer_class = PayoutSerializer

    def get_queryset(self) -> QuerySet[Payout]:
        if getattr(self, "swagger_fake_view", False):
            return Payout.objects.none()
        user = authenticated_user(self.request)
        rows = Payout.objects.select_related("shop", "user__host").order_by("-id")
        if is_staff(user):
            return rows
        return rows.filter(Q(shop__owner=user) | Q(user=user))

    @extend_schema(
        responses={200: PayoutSerializer(many=True), **errors(401)},
        description="A payee's own payouts (its shops' and its own as a host); staff see all.",
    )
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().get(request, *args, **kwargs)


class PayoutApproveView(APIView):
    permission_classes = [permissions.IsAuthenticated]

    @extend_schema(request=None, responses={200: PayoutSerializer, **errors(401, 403, 404, 409)})
    def post(self, request: Request, pk: int) -> Response:
        user = authenticated_user(request)
        if not is_staff(user):
            raise PermissionDenied("Only staff approve payouts.")
        if not Payout.objects.filter(pk=pk).exists():
            raise NotFound("No such payout.")
        payout = payouts.payout_approve(payout_id=pk, by=user)
        return Response(PayoutSerializer(payout).data)


# --- Where the money goes ------------------------------------------------------------------------


class PayoutAccountSerializer(serializers.ModelSerializer[PayoutAccount]):
    onboarding_url = serializers.SerializerMethodField(
        help_text="Where the payee finishes Stripe's onboarding (a link valid minutes); null once done."
    )

    class Meta:
        model = PayoutAccount
        fields = (
            "stripe_account_id",
            "transfers_enabled",
            "bank_name",
            "bank_account_name",
            "bank_account_number",
            "onboarding_url",
        )
        read_only_fields = ("stripe_account_id", "transfers_enabled")

    def get_onboarding_url(self, account: PayoutAccount) -> str | None:
        url = self.context.get("onboarding_url")
        return str(url) if url else None


class PayoutAccountUpdateSerializer(serializers.Serializer[Any]):
    bank_name = serializers.CharField(max_length=100, required=False, allow_blank=True)
    bank_account_name = serializers.CharField(max_length=100, required=False, allow_blank=True)
    bank_account_number = serializers.RegexField(r"^[0-9 -]{6,40}$", max_length=40, required=False, allow_blank=True)
    stripe = serializers.BooleanField(
        default=False, help_text="Start (or continue) Stripe onboarding: the answer has `onboarding_url`."
    )


class _PayoutAccountView(APIView):
    permission_classes = [permissions.IsAuthenticated]
    payee_kind = "shop"

    def _account(self, payee: Payee) -> PayoutAccount:
        account, _ = PayoutAccount.objects.get_or_create(shop_id=payee.shop_id, user_id=payee.user_id)
        return account

    def get(self, request: Request, pk: int) -> Response:
        payee = _payee_of(request, self.payee_kind, pk)
        account = PayoutAccount.objects.filter(**payee.fields).first()
        if account is None:  # nothing given yet: the empty account, not saved by a read
            return Response(PayoutAccountSerializer(PayoutAccount(**payee.fields)).data)
        if account.stripe_account_id and not account.transfers_enabled and stripe_api.is_configured():
            _refresh(account)
        return Response(PayoutAccountSerializer(account).data)

    def post(self, request: Request, pk: int) -> Response:
        payee = _payee_of(request, self.payee_kind, pk)
        data = PayoutAccountUpdateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = dict(data.validated_data)
        wants_stripe = values.pop("stripe")
        account = self._account(payee)
        if values:
            PayoutAccount.objects.filter(pk=account.pk).update(**values)
            account.refresh_from_db()
        url = None
        if wants_stripe:
            url = _onboarding(request, payee, account)
        return Response(PayoutAccountSerializer(account, context={"onboarding_url": url}).data)


def _refresh(account: PayoutAccount) -> None:
    try:
        info = stripe_api.connected_account_retrieve(account_id=str(account.stripe_account_id))
    except stripe_api.StripeError:
        return
    if info.transfers_enabled != account.transfers_enabled:
        PayoutAccount.objects.filter(pk=account.pk).update(transfers_enabled=info.transfers_enabled)
        account.transfers_enabled = info.transfers_enabled


def _onboarding(request: Request, payee: Payee, account: PayoutAccount) -> str | None:
    if not stripe_api.is_configured():
        raise ServiceUnavailable("Stripe is not configured here: payouts go by bank transfer.")
    user: User = authenticated_user(request)
    try:
        if not account.stripe_account_id:
            info = stripe_api.connected_account_create(payee=payee.code, email=user.email or None, country="CN")
            PayoutAccount.objects.filter(pk=account.pk).update(stripe_account_id=info.id)
            account.stripe_account_id = info.id
        _refresh(account)
        if account.transfers_enabled:
            return None
        back = request.build_absolute_uri("/money/")
        return stripe_api.account_onboarding_link(
            account_id=account.stripe_account_id, return_url=back, refresh_url=back
        )
    except stripe_api.StripeError as exc:
        raise ServiceUnavailable("Stripe did not answer; try again.") from exc


_ACCOUNT_SCHEMA = extend_schema_view(
    get=extend_schema(responses={200: PayoutAccountSerializer, **errors(401, 403, 404)}),
    post=extend_schema(
        request=PayoutAccountUpdateSerializer,
        responses={200: PayoutAccountSerializer, **errors(400, 401, 403, 404, 503)},
        description="Added. Where the payee is paid: its bank account (paid by bank transfer), and with "
        "`stripe: true` a Stripe connected account, whose `onboarding_url` the payee opens to finish it. Once "
        "Stripe says the account takes transfers, payouts go there.",
    ),
)


@_ACCOUNT_SCHEMA
class ShopPayoutAccountView(_PayoutAccountView):
    payee_kind = "shop"


@_ACCOUNT_SCHEMA
class HostPayoutAccountView(_PayoutAccountView):
    payee_kind = "host"


# --- Coin cash-outs ------------------------------------------------------------------------------


class CashOutCreateSerializer(serializers.Serializer[Any]):
    coins = serializers.IntegerField(min_value=1, max_value=cashouts.MAX_COINS)


class CashOutSerializer(serializers.ModelSerializer[CoinCashOut]):
    class Meta:
        model = CoinCashOut
        fields = ("id", "coins", "amount", "currency", "created_at")


class CashOutListCreateView(generics.ListAPIView[CoinCashOut]):
    permission_classes = [permissions.IsAuthenticated]
    serializer_class = CashOutSerializer

    def get_queryset(self) -> QuerySet[CoinCashOut]:
        if getattr(self, "swagger_fake_view", False):
            return CoinCashOut.objects.none()
        return CoinCashOut.objects.filter(user=authenticated_user(self.request)).order_by("-id")

    @extend_schema(responses={200: CashOutSerializer(many=True), **errors(401)})
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().get(request, *args, **kwargs)

    @extend_schema(
        request=CashOutCreateSerializer,
        parameters=[
            idempotency_key_parameter("Retries with the same key and body answer the first cash-out; kept 24 hours.")
        ],
        responses={201: CashOutSerializer, **errors(400, 401, 402, 403, 409)},
        description="Added. A host cashes out earned gift coins (at least COIN_CASHOUT_MINIMUM_COINS) at "
        "COIN_CASHOUT_FEN each: the money is added to its available balance and paid with its next payout. "
        "402 `insufficient_coins` past what it earned.",
    )
    def post(self, request: Request) -> HttpResponse:
        return idempotent(request, lambda call: self._create(request, call))

    def _create(self, request: Request, call: IdempotentCall) -> Response:
        data = CashOutCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        cash_out = call.resumed(CoinCashOut) or cashouts.coin_cash_out(
            user=authenticated_user(request), coins=data.validated_data["coins"], on_created=call.attach
        )
        return Response(CashOutSerializer(cash_out).data, status=status.HTTP_201_CREATED)
