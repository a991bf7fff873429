"""The gift catalog, the leaderboard and giveaways over REST.

Sending a gift and claiming a prize move money or create orders, so they are served by
orders (orders/api_wallet.py) at the contract's paths.
"""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from drf_spectacular.utils import extend_schema
from rest_framework import generics, permissions, serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from catalog.models import Sku
from liveshop.api_docs import errors
from liveshop.errors import NotFound, PermissionDenied
from liveshop.pagination import PageNumberPagination
from liveshop.permissions import authenticated_user, is_staff
from rooms import selectors, selectors_gifts, services
from rooms.models import Gift, Giveaway, GiveawayEntry, GiveawayWinner, Room
from rooms.services import giveaways as giveaway_rules

# --- Serializers ----------------------------------------------------------------------------


class GiftSerializer(serializers.Serializer[Any]):
    id = serializers.IntegerField()
    name = serializers.CharField()
    name_zh = serializers.CharField(help_text="Its Chinese name, for Chinese pages (added).")
    coins = serializers.IntegerField(help_text="The price of one, in coins.")
    image_url = serializers.SerializerMethodField(help_text="Relative to the API's origin unless absolute.")

    def get_image_url(self, gift: Gift) -> str:
        return selectors_gifts.gift_image_url(gift)


class PublicUserSerializer(serializers.Serializer[Any]):
    id = serializers.IntegerField()
    display_name = serializers.CharField()


class LeaderboardRowSerializer(serializers.Serializer[Any]):
    user = PublicUserSerializer()
    coins = serializers.IntegerField()


class PrizeSerializer(serializers.Serializer[Any]):
    sku = serializers.IntegerField()
    title = serializers.CharField()


class GiveawayWinnerSerializer(serializers.Serializer[Any]):
    user = PublicUserSerializer()
    rank = serializers.IntegerField()
    status = serializers.ChoiceField(choices=GiveawayWinner.Status.choices)
    claim_deadline = serializers.DateTimeField(allow_null=True)


class GiveawaySerializer(serializers.Serializer[Any]):
    """The shape of rooms.selectors_gifts.giveaway_public (for the schema)."""

    id = serializers.IntegerField()
    room = serializers.IntegerField()
    title = serializers.CharField()
    status = serializers.ChoiceField(choices=Giveaway.Status.choices)
    winners_count = serializers.IntegerField()
    entries = serializers.IntegerField(help_text="How many entered.")
    keyword = serializers.CharField(help_text="A comment equal to it enters its author (trimmed, any case).")
    followers_only = serializers.BooleanField()
    min_account_age_s = serializers.IntegerField()
    prize = PrizeSerializer(allow_null=True)
    created_at = serializers.DateTimeField()
    closes_at = serializers.DateTimeField()
    drawn_at = serializers.DateTimeField(allow_null=True)
    commitment = serializers.CharField(help_text="sha256 of the seed's 64-character hex text, lower-case hex.")
    seed = serializers.CharField(allow_null=True, help_text="Revealed at the draw; null before.")
    winners = GiveawayWinnerSerializer(many=True, help_text="Best first; empty before the draw.")


class GiveawayCreateSerializer(serializers.Serializer[Any]):
    title = serializers.CharField(max_length=120)
    prize_sku = serializers.PrimaryKeyRelatedField(
        queryset=Sku.objects.select_related("product__shop"),
        required=False,
        allow_null=True,
        default=None,
        help_text="A sku of the host's own shop: one unit per winner is held until the draw.",
    )
    winners = serializers.IntegerField(min_value=1, max_value=giveaway_rules.GIVEAWAY_MAX_WINNERS)
    duration_s = serializers.IntegerField(
        min_value=giveaway_rules.GIVEAWAY_MIN_DURATION_S, max_value=giveaway_rules.GIVEAWAY_MAX_DURATION_S
    )
    keyword = serializers.CharField(
        max_length=Giveaway.KEYWORD_MAX_LENGTH, required=False, allow_blank=True, default=""
    )
    followers_only = serializers.BooleanField(required=False, default=False)
    min_account_age_s = serializers.IntegerField(
        min_value=0, max_value=giveaway_rules.GIVEAWAY_MAX_ACCOUNT_AGE_S, required=False, default=0
    )


class GiveawayEntrySerializer(serializers.Serializer[GiveawayEntry]):
    user_id = serializers.IntegerField()
    entered_at = serializers.DateTimeField()
    via = serializers.ChoiceField(choices=GiveawayEntry.Via.choices)
    eligible = serializers.BooleanField(help_text="False when the rules excluded the entrant at the draw.")
    excluded_reason = serializers.CharField(help_text="Why, when not eligible.")


class EntriesPagination(PageNumberPagination):
    # A verifier reads every entrant: let it ask for large pages.
    max_page_size = 1000


# --- Helpers ----------------------------------------------------------------------------------


def _visible_room(request: Request, room_id: int) -> Room:
    room = selectors.rooms_visible_to(request.user).filter(pk=room_id).first()
    if room is None:
        raise NotFound("No such room.")
    return room


def _giveaway_response(giveaway_id: int, code: int = status.HTTP_200_OK) -> Response:
    giveaway = selectors_gifts.giveaways_with_details().get(pk=giveaway_id)
    return Response(selectors_gifts.giveaway_public(giveaway), status=code)


# --- Gifts ------------------------------------------------------------------------------------


class GiftCatalogView(APIView):
    permission_classes = [permissions.AllowAny]

    @extend_schema(responses={200: GiftSerializer(many=True)}, description="Every gift on offer (not paginated).")
    def get(self, request: Request) -> Response:
        return Response(GiftSerializer(selectors_gifts.gifts_catalog(), many=True).data)


class RoomGiftLeaderboardView(APIView):
    permission_classes = [permissions.AllowAny]

    @extend_schema(
        responses={200: LeaderboardRowSerializer(many=True), **errors(404)},
        description=f"The room's top {selectors_gifts.LEADERBOARD_SIZE} senders by coins (not paginated).",
    )
    def get(self, request: Request, pk: int) -> Response:
        room = _visible_room(request, pk)
        return Response(selectors_gifts.gift_leaderboard(room=room))


# --- Giveaways --------------------------------------------------------------------------------


class RoomGiveawaysView(generics.ListAPIView[Giveaway]):
    serializer_class = GiveawaySerializer

    def get_queryset(self) -> QuerySet[Giveaway]:
        if getattr(self, "swagger_fake_view", False):  # the schema generator
            return Giveaway.objects.none()
        return selectors_gifts.room_giveaways(room=_visible_room(self.request, self.kwargs["pk"]))

    def list(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        page = self.paginate_queryset(self.get_queryset())
        assert page is not None
        return self.get_paginated_response([selectors_gifts.giveaway_public(giveaway) for giveaway in page])

    @extend_schema(responses={200: GiveawaySerializer(many=True), **errors(404)})
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().get(request, *args, **kwargs)

    @extend_schema(
        request=GiveawayCreateSerializer,
        responses={201: GiveawaySerializer, **errors(400, 401, 403, 404, 409)},
        description="Start a giveaway (the room's host, while live): commits to a secret seed and holds the "
        "prize's units. 409 `room_not_live`, or `out_of_stock` with fewer free units than winners.",
    )
    def post(self, request: Request, pk: int) -> Response:
        room = _visible_room(request, pk)
        if not selectors.is_room_host(request.user, room):
            raise PermissionDenied("Only the room's host may start a giveaway.")
        data = GiveawayCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        giveaway = services.giveaway_create(
            room=room,
            title=values["title"],
            winners=values["winners"],
            duration_s=values["duration_s"],
            prize_sku=values["prize_sku"],
            keyword=values["keyword"],
            followers_only=values["followers_only"],
            min_account_age_s=values["min_account_age_s"],
        )
        return _giveaway_response(giveaway.pk, status.HTTP_201_CREATED)


class GiveawayDetailView(APIView):
    permission_classes = [permissions.AllowAny]

    @extend_schema(responses={200: GiveawaySerializer, **errors(404)})
    def get(self, request: Request, pk: int) -> Response:
        giveaway = selectors_gifts.giveaway_visible_get(user=request.user, giveaway_id=pk, details=True)
        return Response(selectors_gifts.giveaway_public(giveaway))


class GiveawayEntriesView(generics.ListAPIView[GiveawayEntry]):
    serializer_class = GiveawayEntrySerializer
    pagination_class = EntriesPagination

    def get_queryset(self) -> QuerySet[GiveawayEntry]:
        if getattr(self, "swagger_fake_view", False):  # the schema generator
            return GiveawayEntry.objects.none()
        giveaway = selectors_gifts.giveaway_visible_get(user=self.request.user, giveaway_id=self.kwargs["pk"])
        return selectors_gifts.giveaway_entries(giveaway=giveaway)

    @extend_schema(
        responses={200: GiveawayEntrySerializer(many=True), **errors(404)},
        description="Every entrant in entry order (public user ids): with the revealed seed, anyone can "
        "recompute the winners from the eligible ones. `?page_size=` up to 1000.",
    )
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().get(request, *args, **kwargs)

    @extend_schema(
        request=None,
        responses={201: GiveawayEntrySerializer, 200: GiveawayEntrySerializer, **errors(401, 403, 404, 409)},
        description="Enter the giveaway: 201, and 200 with the same entry again. 403 `permission_denied` when "
        "the rules exclude you (the host, not a follower, account too new; `banned`), 409 `conflict` once "
        "closed, `room_not_live` when the show is over.",
    )
    def post(self, request: Request, pk: int) -> Response:
        user = authenticated_user(request)
        giveaway = selectors_gifts.giveaway_visible_get(user=user, giveaway_id=pk)
        entry, created = services.giveaway_enter(giveaway=giveaway, user=user)
        return Response(
            GiveawayEntrySerializer(entry).data, status=status.HTTP_201_CREATED if created else status.HTTP_200_OK
        )


class GiveawayCancelView(APIView):
    permission_classes = [permissions.IsAuthenticated]

    @extend_schema(
        request=None,
        responses={200: GiveawaySerializer, **errors(401, 403, 404, 409)},
        description="Cancel an open giveaway before its close (the room's host or staff); its prize units "
        "go back to stock. 409 `conflict` once closed, drawn or cancelled.",
    )
    def post(self, request: Request, pk: int) -> Response:
        giveaway = selectors_gifts.giveaway_visible_get(user=request.user, giveaway_id=pk)
        if not (selectors.is_room_host(request.user, giveaway.room) or is_staff(request.user)):
            raise PermissionDenied("Only the room's host or staff may cancel a giveaway.")
        services.giveaway_cancel(giveaway=giveaway)
        return _giveaway_response(giveaway.pk)
