"""Hosts, rooms and the shelf over REST: translate HTTP to service calls and back."""

from __future__ import annotations

from typing import Any

import django_filters
from django.db.models import QuerySet
from drf_spectacular.utils import extend_schema, extend_schema_field, inline_serializer
from rest_framework import generics, parsers, permissions, serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from catalog.api import ImageRefSerializer, PhotoUploadSerializer, ProductPhotosMixin, in_english
from catalog.models import MAX_PRICE, MAX_STOCK, Sku
from liveshop.api_docs import errors
from liveshop.errors import NotFound, PermissionDenied
from liveshop.permissions import authenticated_user, host_of, is_staff
from rooms import hooks, payloads, selectors, services
from rooms.broadcast import room_viewers_now
from rooms.models import FlashSale, Host, Room, RoomItem

# --- Serializers --------------------------------------------------------------------------


class UserPublicSerializer(serializers.Serializer[Any]):
    id = serializers.IntegerField()
    display_name = serializers.CharField(source="public_name")


class HostSummarySerializer(serializers.ModelSerializer[Host]):
    user = UserPublicSerializer()

    class Meta:
        model = Host
        fields = ["id", "user", "kind", "district", "verified"]
        read_only_fields = fields


class HostSerializer(serializers.ModelSerializer[Host]):
    user = UserPublicSerializer(read_only=True)
    followers = serializers.IntegerField(source="followers_count", read_only=True)
    following = serializers.SerializerMethodField(
        help_text="Whether the signed-in user follows this host; null for anonymous requests."
    )

    class Meta:
        model = Host
        fields = ["id", "user", "kind", "district", "bio", "verified", "followers", "following", "created_at"]
        read_only_fields = ["id", "user", "verified", "followers", "following", "created_at"]
        extra_kwargs = {"bio": {"max_length": 2000}}

    def get_following(self, host: Host) -> bool | None:
        request = self.context.get("request")
        if request is None or not request.user.is_authenticated:
            return None
        return selectors.host_followed_by(host=host, user_id=request.user.pk)


class FlashSaleSerializer(serializers.ModelSerializer[FlashSale]):
    class Meta:
        model = FlashSale
        fields = [
            "id",
            "item",
            "price",
            "quantity",
            "remaining",
            "per_buyer_limit",
            "starts_at",
            "ends_at",
            "status",
        ]
        read_only_fields = fields


class ProductRefSerializer(ProductPhotosMixin):
    id = serializers.IntegerField()
    title = serializers.CharField()
    title_en = serializers.CharField(help_text="In English, when the seller gives it (added).")


class RoomItemSerializer(serializers.ModelSerializer[RoomItem]):
    product = ProductRefSerializer(source="sku.product", read_only=True)
    sku_name = serializers.CharField(source="sku.name", read_only=True)
    sku_name_en = serializers.CharField(source="sku.name_en", read_only=True)
    price = serializers.IntegerField(source="sku.price", read_only=True, help_text="The sku's list price.")
    currency = serializers.CharField(source="sku.currency", read_only=True)
    stock = serializers.IntegerField(source="sku.stock", read_only=True)
    flash_sale = serializers.SerializerMethodField()
    effective_price = serializers.SerializerMethodField(
        help_text="What a buyer pays now: the flash price, else the live price, else the list price."
    )

    class Meta:
        model = RoomItem
        fields = [
            "id",
            "sku",
            "sku_name",
            "sku_name_en",
            "product",
            "price",
            "live_price",
            "effective_price",
            "currency",
            "stock",
            "offer",
            "flash_sale",
        ]
        read_only_fields = fields

    @extend_schema_field(FlashSaleSerializer(allow_null=True))
    def get_flash_sale(self, item: RoomItem) -> dict[str, Any] | None:
        sale = selectors.item_active_flash_sale(item)
        return FlashSaleSerializer(sale).data if sale else None

    def get_effective_price(self, item: RoomItem) -> int:
        sale = selectors.item_active_flash_sale(item)
        if sale is not None:
            return sale.price
        return selectors.item_shelf_price(item)


# Built from a dict: a declared field named `source` would shadow Field.source.
RoomVideoSerializer = inline_serializer(
    "RoomVideo",
    fields={
        "source": serializers.ChoiceField(choices=["ingest", "external"]),
        "state": serializers.ChoiceField(choices=["off_air", "on_air"]),
        "playback_url": serializers.CharField(allow_blank=True),
        "on_air_since": serializers.DateTimeField(allow_null=True),
    },
)


class RoomIngestSerializer(serializers.Serializer[Any]):
    url = serializers.CharField(allow_blank=True)
    stream_key = serializers.CharField()


class RoomSerializer(serializers.ModelSerializer[Room]):
    host = HostSummarySerializer(read_only=True)
    viewers_now = serializers.SerializerMethodField()
    featured_item = serializers.SerializerMethodField()
    video = serializers.SerializerMethodField()
    cover = serializers.SerializerMethodField(help_text="The show's 16:9 cover image, or null.")
    # Declared so that the schema says "a URL or blank": read-only model fields lose allow_blank.
    playback_url = serializers.URLField(read_only=True, allow_blank=True)

    class Meta:
        model = Room
        fields = [
            "id",
            "title",
            "title_en",
            "description",
            "host",
            "status",
            "scheduled_start",
            "started_at",
            "ended_at",
            "viewers_now",
            "featured_item",
            "slow_mode_s",
            "comment_min_account_age_s",
            "playback_url",
            "video",
            "cover",
            "created_at",
        ]
        read_only_fields = fields

    @extend_schema_field(ImageRefSerializer(allow_null=True))
    def get_cover(self, room: Room) -> dict[str, Any] | None:
        return services.room_cover_image(room)

    @extend_schema_field(RoomVideoSerializer)
    def get_video(self, room: Room) -> dict[str, Any]:
        return hooks.room_video(room)

    def get_viewers_now(self, room: Room) -> int:
        # Live presence comes from the real-time hub; the view passes it in as context.
        viewers: dict[int, int] = self.context.get("viewers_now", {})
        return viewers.get(room.pk, 0)

    @extend_schema_field(RoomItemSerializer(allow_null=True))
    def get_featured_item(self, room: Room) -> dict[str, Any] | None:
        item = room.featured_item
        return RoomItemSerializer(item).data if item else None


class RoomHostSerializer(RoomSerializer):
    """The room as its host sees it: with the stream key."""

    ingest = serializers.SerializerMethodField()

    class Meta(RoomSerializer.Meta):
        fields = [*RoomSerializer.Meta.fields, "stream_key", "ingest"]
        read_only_fields = fields

    @extend_schema_field(RoomIngestSerializer)
    def get_ingest(self, room: Room) -> dict[str, Any]:
        return hooks.room_ingest(room)


class RoomCreateSerializer(serializers.Serializer[Any]):
    title = serializers.CharField(max_length=120)
    title_en = in_english(max_length=120)
    description = serializers.CharField(max_length=5000, required=False, allow_blank=True, default="")
    scheduled_start = serializers.DateTimeField(required=False, allow_null=True, default=None)


class RoomUpdateSerializer(serializers.Serializer[Any]):
    title = serializers.CharField(max_length=120, required=False)
    title_en = serializers.CharField(max_length=120, required=False, allow_blank=True)
    description = serializers.CharField(max_length=5000, required=False, allow_blank=True)
    scheduled_start = serializers.DateTimeField(required=False, allow_null=True)
    slow_mode_s = serializers.IntegerField(min_value=0, max_value=3600, required=False)
    comment_min_account_age_s = serializers.IntegerField(
        min_value=0,
        max_value=30 * 24 * 3600,
        required=False,
        help_text="New-account protection: accounts younger than this many seconds may watch but not "
        "comment (403 `account_too_new`, with `allowed_at`). 0 turns it off.",
    )
    playback_url = serializers.URLField(max_length=500, required=False, allow_blank=True)


class RoomSuspendSerializer(serializers.Serializer[Any]):
    reason = serializers.CharField(max_length=500)


class FlashSaleStartSerializer(serializers.Serializer[Any]):
    price = serializers.IntegerField(min_value=1, max_value=MAX_PRICE, help_text="The flash price, in fen.")
    quantity = serializers.IntegerField(min_value=1, max_value=MAX_STOCK, help_text="Units for the sale.")
    duration_s = serializers.IntegerField(min_value=5, max_value=services.FLASH_MAX_DURATION_S)
    per_buyer_limit = serializers.IntegerField(min_value=1, max_value=MAX_STOCK, required=False, allow_null=True)


class RoomItemCreateSerializer(serializers.Serializer[Any]):
    sku = serializers.PrimaryKeyRelatedField(queryset=Sku.objects.select_related("product"))
    live_price = serializers.IntegerField(min_value=1, max_value=MAX_PRICE, required=False, allow_null=True)


# --- Helpers ------------------------------------------------------------------------------


def _room_serializer_for(request: Request, room: Room, **kwargs: Any) -> RoomSerializer:
    kwargs.setdefault("context", {"request": request, "viewers_now": room_viewers_now([room.pk])})
    if selectors.is_room_host(request.user, room):
        return RoomHostSerializer(room, **kwargs)
    return RoomSerializer(room, **kwargs)


def _visible_room(request: Request, room_id: int) -> Room:
    room = selectors.rooms_visible_to(request.user).filter(pk=room_id).first()
    if room is None:
        raise NotFound("No such room.")
    return room


def _hosted_room(request: Request, room_id: int) -> Room:
    """The room, if the requester is its host; 403 for others who may see it."""
    room = _visible_room(request, room_id)
    if not selectors.is_room_host(request.user, room):
        raise PermissionDenied("Only the room's host may do this.")
    return room


def _room_response(request: Request, room: Room, code: int = status.HTTP_200_OK) -> Response:
    return Response(_room_serializer_for(request, room).data, status=code)


# --- Hosts --------------------------------------------------------------------------------


class HostCreateView(APIView):
    permission_classes = [permissions.IsAuthenticated]

    @extend_schema(request=HostSerializer, responses={201: HostSerializer, **errors(400, 401, 409)})
    def post(self, request: Request) -> Response:
        data = HostSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        host = services.host_create(user=authenticated_user(request), **data.validated_data)
        return Response(HostSerializer(host).data, status=status.HTTP_201_CREATED)


class HostDetailView(APIView):
    permission_classes = [permissions.AllowAny]

    @extend_schema(responses={200: HostSerializer, **errors(404)})
    def get(self, request: Request, pk: int) -> Response:
        host = selectors.host_get(host_id=pk)
        if host is None:
            raise NotFound("No such host.")
        return Response(HostSerializer(host, context={"request": request}).data)


class HostVerifyView(APIView):
    permission_classes = [permissions.IsAdminUser]

    @extend_schema(request=None, responses={200: HostSerializer, **errors(401, 403, 404)})
    def post(self, request: Request, pk: int) -> Response:
        host = selectors.host_get(host_id=pk)
        if host is None:
            raise NotFound("No such host.")
        return Response(HostSerializer(services.host_verify(host=host, actor=authenticated_user(request))).data)


class HostFollowView(APIView):
    permission_classes = [permissions.IsAuthenticated]

    def _host(self, pk: int) -> Host:
        host = selectors.host_get(host_id=pk)
        if host is None:
            raise NotFound("No such host.")
        return host

    @extend_schema(request=None, responses={204: None, **errors(400, 401, 404)})
    def post(self, request: Request, pk: int) -> Response:
        services.host_follow(user=authenticated_user(request), host=self._host(pk))
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(responses={204: None, **errors(401, 404)})
    def delete(self, request: Request, pk: int) -> Response:
        services.host_unfollow(user=authenticated_user(request), host=self._host(pk))
        return Response(status=status.HTTP_204_NO_CONTENT)


# --- Rooms --------------------------------------------------------------------------------


class RoomFilter(django_filters.FilterSet):
    status = django_filters.ChoiceFilter(choices=Room.Status.choices)
    host = django_filters.NumberFilter(field_name="host_id")
    district = django_filters.CharFilter(field_name="host__district", lookup_expr="iexact")
    following = django_filters.BooleanFilter(
        method="filter_following", help_text="true: only rooms of hosts the signed-in user follows (none if anonymous)."
    )

    class Meta:
        model = Room
        fields = ["status", "host", "district", "following"]

    def filter_following(self, queryset: QuerySet[Room], name: str, value: bool | None) -> QuerySet[Room]:
        if not value:
            return queryset
        user = self.request.user if self.request is not None else None
        if user is None or not user.is_authenticated:
            return queryset.none()
        return queryset.filter(host__follows__user_id=user.pk)


class RoomListCreateView(generics.ListAPIView[Room]):
    serializer_class = RoomSerializer
    filterset_class = RoomFilter

    def get_queryset(self) -> QuerySet[Room]:
        return selectors.rooms_visible_to(self.request.user).order_by("-id")

    def get_serializer(self, *args: Any, **kwargs: Any) -> Any:
        # The page's rooms get their live viewer counts in one Redis round trip.
        if args:
            context = self.get_serializer_context()
            context["viewers_now"] = room_viewers_now([room.pk for room in args[0]])
            kwargs["context"] = context
        return super().get_serializer(*args, **kwargs)

    @extend_schema(responses={200: RoomSerializer(many=True), **errors(400)})
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().get(request, *args, **kwargs)

    @extend_schema(request=RoomCreateSerializer, responses={201: RoomHostSerializer, **errors(400, 401, 403)})
    def post(self, request: Request) -> Response:
        host = host_of(request.user)
        if host is None or not host.verified:
            raise PermissionDenied("Only a verified host may create rooms.")
        data = RoomCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        room = services.room_create(host=host, **data.validated_data)
        return Response(RoomHostSerializer(room).data, status=status.HTTP_201_CREATED)


class RoomDetailView(APIView):
    @extend_schema(responses={200: RoomSerializer, **errors(404)})
    def get(self, request: Request, pk: int) -> Response:
        return _room_response(request, _visible_room(request, pk))

    @extend_schema(request=RoomUpdateSerializer, responses={200: RoomHostSerializer, **errors(400, 401, 403, 404, 409)})
    def patch(self, request: Request, pk: int) -> Response:
        room = _hosted_room(request, pk)
        data = RoomUpdateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        return _room_response(request, services.room_update(room=room, **data.validated_data))


class RoomStartView(APIView):
    permission_classes = [permissions.IsAuthenticated]

    @extend_schema(request=None, responses={200: RoomHostSerializer, **errors(401, 403, 404, 409)})
    def post(self, request: Request, pk: int) -> Response:
        return _room_response(request, services.room_start(room=_hosted_room(request, pk)))


class RoomEndView(APIView):
    permission_classes = [permissions.IsAuthenticated]

    @extend_schema(request=None, responses={200: RoomSerializer, **errors(401, 403, 404, 409)})
    def post(self, request: Request, pk: int) -> Response:
        room = _visible_room(request, pk)
        if not (selectors.is_room_host(request.user, room) or is_staff(request.user)):
            raise PermissionDenied("Only the room's host or staff may end it.")
        return _room_response(request, services.room_end(room=room))


class RoomSuspendView(APIView):
    permission_classes = [permissions.IsAdminUser]

    @extend_schema(request=RoomSuspendSerializer, responses={200: RoomSerializer, **errors(400, 401, 403, 404, 409)})
    def post(self, request: Request, pk: int) -> Response:
        room = _visible_room(request, pk)
        data = RoomSuspendSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        room = services.room_suspend(room=room, reason=data.validated_data["reason"], actor=authenticated_user(request))
        return _room_response(request, room)


class RoomCoverView(APIView):
    """The show's cover image (liveshop/images.py does the checking and the sizes)."""

    parser_classes = [parsers.MultiPartParser]
    permission_classes = [permissions.IsAuthenticated]

    @extend_schema(
        request={"multipart/form-data": PhotoUploadSerializer},
        responses={200: RoomHostSerializer, **errors(400, 401, 403, 404, 413)},
        description="Set the cover (the host): a JPEG, PNG or WebP image, cropped to 16:9; it "
        "replaces the previous cover, whose files are deleted. Same checks as product photos.",
    )
    def post(self, request: Request, pk: int) -> Response:
        room = _hosted_room(request, pk)
        data = PhotoUploadSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        upload = data.validated_data["image"]
        return _room_response(request, services.room_cover_set(room=room, upload=upload, size=upload.size))

    @extend_schema(responses={204: None, **errors(401, 403, 404)})
    def delete(self, request: Request, pk: int) -> Response:
        room = _visible_room(request, pk)
        if not (selectors.is_room_host(request.user, room) or is_staff(request.user)):
            raise PermissionDenied("Only the room's host or staff may remove its cover.")
        services.room_cover_set(room=room, upload=None)
        return Response(status=status.HTTP_204_NO_CONTENT)


# --- The shelf ----------------------------------------------------------------------------


class RoomItemsView(APIView):
    @extend_schema(responses={200: RoomItemSerializer(many=True), **errors(404)})
    def get(self, request: Request, pk: int) -> Response:
        room = _visible_room(request, pk)
        return Response(RoomItemSerializer(selectors.room_items(room=room), many=True).data)

    @extend_schema(
        request=RoomItemCreateSerializer, responses={201: RoomItemSerializer, **errors(400, 401, 403, 404, 409)}
    )
    def post(self, request: Request, pk: int) -> Response:
        room = _hosted_room(request, pk)
        data = RoomItemCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        item = services.room_item_add(room=room, **data.validated_data)
        item = selectors.room_items_queryset().get(pk=item.pk)
        return Response(RoomItemSerializer(item).data, status=status.HTTP_201_CREATED)


class RoomItemDetailView(APIView):
    permission_classes = [permissions.IsAuthenticated]

    @extend_schema(responses={204: None, **errors(401, 403, 404, 409)})
    def delete(self, request: Request, pk: int, item_id: int) -> Response:
        room = _hosted_room(request, pk)
        services.room_item_remove(item=services.room_item_get(room=room, item_id=item_id))
        return Response(status=status.HTTP_204_NO_CONTENT)


class RoomItemFeatureView(APIView):
    permission_classes = [permissions.IsAuthenticated]

    @extend_schema(request=None, responses={200: RoomItemSerializer, **errors(401, 403, 404, 409)})
    def post(self, request: Request, pk: int, item_id: int) -> Response:
        room = _hosted_room(request, pk)
        item = services.room_item_feature(item=services.room_item_get(room=room, item_id=item_id))
        item = selectors.room_items_queryset().get(pk=item.pk)
        return Response(RoomItemSerializer(item).data)


class RoomItemFlashSaleView(APIView):
    permission_classes = [permissions.IsAuthenticated]

    @extend_schema(
        request=FlashSaleStartSerializer,
        responses={201: FlashSaleSerializer, **errors(400, 401, 403, 404, 409)},
        description="Start a flash sale: `quantity` units leave the sku's stock until it ends. "
        "409 `out_of_stock` without enough units, `room_not_live`, or `conflict` while one is active.",
    )
    def post(self, request: Request, pk: int, item_id: int) -> Response:
        room = _hosted_room(request, pk)
        item = services.room_item_get(room=room, item_id=item_id)
        data = FlashSaleStartSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        sale = services.flash_sale_start(item=item, **data.validated_data)
        return Response(FlashSaleSerializer(sale).data, status=status.HTTP_201_CREATED)


# --- Live: WebSocket tickets and comment history ------------------------------------------------


class WsTicketSerializer(serializers.Serializer[Any]):
    ticket = serializers.CharField()
    expires_at = serializers.DateTimeField()


class CommentUserSerializer(serializers.Serializer[Any]):
    id = serializers.IntegerField()
    display_name = serializers.CharField()
    role = serializers.ChoiceField(choices=["host", "moderator", "viewer"])


class CommentSerializer(serializers.Serializer[Any]):
    """A comment as `comment.new` carries it."""

    id = serializers.IntegerField()
    user = CommentUserSerializer()
    text = serializers.CharField()
    ts = serializers.DateTimeField()


class CommentPageSerializer(serializers.Serializer[Any]):
    next = serializers.URLField(allow_null=True, help_text="The next (older) page, or null.")
    previous = serializers.URLField(allow_null=True, help_text="Always null: pages go back in time from `before`.")
    results = CommentSerializer(many=True)


class CommentHistoryQuerySerializer(serializers.Serializer[Any]):
    before = serializers.IntegerField(min_value=1, required=False, help_text="Comments older than this comment id.")
    page_size = serializers.IntegerField(min_value=1, max_value=100, required=False, default=50)


class RoomWsTicketView(APIView):
    permission_classes = [permissions.IsAuthenticated]

    @extend_schema(
        request=None,
        responses={201: WsTicketSerializer, **errors(401, 403, 404)},
        description="A single-use ticket (60 s) that opens `/ws/rooms/{id}/?ticket=...` as the requester.",
    )
    def post(self, request: Request, pk: int) -> Response:
        room = _visible_room(request, pk)
        ticket, expires_at = services.ws_ticket_issue(user=authenticated_user(request), room=room)
        return Response(
            WsTicketSerializer({"ticket": ticket, "expires_at": expires_at}).data, status=status.HTTP_201_CREATED
        )


class RoomCommentsView(APIView):
    permission_classes = [permissions.AllowAny]

    @extend_schema(
        parameters=[CommentHistoryQuerySerializer],
        responses={200: CommentPageSerializer, **errors(400, 404)},
        description="The room's comments, newest first; follow `next` (`?before=<id>`) for older ones.",
    )
    def get(self, request: Request, pk: int) -> Response:
        room = _visible_room(request, pk)
        query = CommentHistoryQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        page_size = query.validated_data["page_size"]
        comments = list(
            selectors.room_comments(room=room, before=query.validated_data.get("before"), limit=page_size + 1)
        )
        more = len(comments) > page_size
        comments = comments[:page_size]
        moderator_ids = selectors.room_moderator_ids(room=room)
        results = [
            payloads.comment_history_payload(c, host_user_id=room.host.user_id, moderator_ids=moderator_ids)
            for c in comments
        ]
        next_url = None
        if more:
            next_url = request.build_absolute_uri(f"{request.path}?before={comments[-1].pk}&page_size={page_size}")
        return Response({"next": next_url, "previous": None, "results": results})
