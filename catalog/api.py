"""Catalog over REST: shops, products and their skus."""

from __future__ import annotations

from typing import Any

import django_filters
from django.db.models import Q, QuerySet
from drf_spectacular.utils import extend_schema, extend_schema_field
from rest_framework import generics, parsers, permissions, serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from catalog import hooks, selectors, services
from catalog.models import MAX_COMMISSION_BPS, MAX_PRICE, MAX_STOCK, Offer, Product, ProductPhoto, Shop, Sku
from liveshop import images
from liveshop.api_docs import errors
from liveshop.errors import NotFound, PermissionDenied
from liveshop.models import User
from liveshop.permissions import authenticated_user, host_of, is_staff, is_verified_host

# --- Serializers --------------------------------------------------------------------------


def in_english(*, max_length: int) -> serializers.CharField:
    """The optional English version of a text field sellers write in Chinese (added)."""
    return serializers.CharField(
        max_length=max_length,
        required=False,
        allow_blank=True,
        default="",
        help_text="In English, for English pages (optional; added).",
    )


class ShopSerializer(serializers.ModelSerializer[Shop]):
    class Meta:
        model = Shop
        fields = ["id", "name", "name_en", "district", "owner", "created_at"]
        read_only_fields = fields


class ShopCreateSerializer(serializers.Serializer[Any]):
    name = serializers.CharField(max_length=100)
    name_en = in_english(max_length=100)
    district = serializers.CharField(max_length=64)
    owner = serializers.PrimaryKeyRelatedField(
        queryset=User.objects.all(), required=False, help_text="Staff only: open the shop for this user."
    )


class SkuSerializer(serializers.ModelSerializer[Sku]):
    class Meta:
        model = Sku
        fields = ["id", "name", "name_en", "price", "currency", "stock"]
        read_only_fields = fields


class ProductPhotoSerializer(serializers.ModelSerializer[ProductPhoto]):
    """A product photo. URLs are absolute with a bucket or a CDN, site-relative ("/media/…")
    when liveshop serves the files itself; `width` and `height` are the original's, and
    every size keeps its aspect ratio."""

    url = serializers.SerializerMethodField(help_text="At most 1080 px wide (WebP).")
    thumb_url = serializers.SerializerMethodField(help_text="At most 360 px wide (WebP).")
    original_url = serializers.SerializerMethodField(help_text="At most 2048 px (JPEG).")

    class Meta:
        model = ProductPhoto
        fields = ["id", "url", "thumb_url", "original_url", "width", "height", "position"]
        read_only_fields = fields

    def get_url(self, photo: ProductPhoto) -> str | None:
        return images.image_url(photo.large.name or "")

    def get_thumb_url(self, photo: ProductPhoto) -> str | None:
        return images.image_url(photo.thumb.name or "")

    def get_original_url(self, photo: ProductPhoto) -> str | None:
        return images.image_url(photo.original.name or "")


class ImageRefSerializer(serializers.Serializer[Any]):
    """A picture to show: `{url, thumb_url, width, height}`."""

    url = serializers.CharField()
    thumb_url = serializers.CharField()
    width = serializers.IntegerField(required=False)
    height = serializers.IntegerField(required=False)


def product_photos(product: Product) -> list[ProductPhoto]:
    """The product's photos in order (from `prefetch_related("photos")` where the query had it)."""
    return sorted(product.photos.all(), key=lambda photo: (photo.position, photo.pk))


def product_image(product: Product) -> dict[str, Any] | None:
    """The product's picture: its first photo, or None."""
    photos = product_photos(product)
    if not photos:
        return None
    first = ProductPhotoSerializer(photos[0]).data
    return {key: first[key] for key in ("url", "thumb_url", "width", "height")}


class ProductPhotosMixin(serializers.Serializer[Any]):
    photos = serializers.SerializerMethodField()
    image = serializers.SerializerMethodField(help_text="The first photo, or null.")

    @extend_schema_field(ProductPhotoSerializer(many=True))
    def get_photos(self, product: Product) -> list[dict[str, Any]]:
        return list(ProductPhotoSerializer(product_photos(product), many=True).data)

    @extend_schema_field(ImageRefSerializer(allow_null=True))
    def get_image(self, product: Product) -> dict[str, Any] | None:
        return product_image(product)


# What a product's owner may change (PATCH /products/{id}/), shown in every product.
PRODUCT_EDITABLE_FIELDS = [
    "title",
    "title_en",
    "description",
    "description_en",
    "category",
    "origin_district",
    "image_url",
    "is_active",
]


class ProductSerializer(ProductPhotosMixin, serializers.ModelSerializer[Product]):
    skus = SkuSerializer(many=True, read_only=True)
    # Declared so that the schema says "a URL or blank": read-only model fields lose allow_blank.
    image_url = serializers.URLField(read_only=True, allow_blank=True)

    class Meta:
        model = Product
        fields = ["id", "shop", *PRODUCT_EDITABLE_FIELDS, "image", "photos", "skus", "created_at"]
        read_only_fields = fields


class SkuCreateSerializer(serializers.Serializer[Any]):
    name = serializers.CharField(max_length=100)
    name_en = in_english(max_length=100)
    price = serializers.IntegerField(min_value=1, max_value=MAX_PRICE, help_text="Minor units (fen).")
    stock = serializers.IntegerField(min_value=0, max_value=MAX_STOCK)


class ProductCreateSerializer(serializers.Serializer[Any]):
    shop = serializers.PrimaryKeyRelatedField(queryset=Shop.objects.all())
    title = serializers.CharField(max_length=120)
    title_en = in_english(max_length=120)
    description = serializers.CharField(max_length=5000, required=False, allow_blank=True, default="")
    description_en = in_english(max_length=5000)
    category = serializers.CharField(max_length=64, required=False, allow_blank=True, default="")
    origin_district = serializers.CharField(max_length=64, required=False, allow_blank=True, default="")
    image_url = serializers.URLField(max_length=500, required=False, allow_blank=True, default="")
    skus = serializers.ListField(child=SkuCreateSerializer(), min_length=1, max_length=50)


class ProductUpdateSerializer(serializers.ModelSerializer[Product]):
    class Meta:
        model = Product
        fields = PRODUCT_EDITABLE_FIELDS
        extra_kwargs = {"description": {"max_length": 5000}, "description_en": {"max_length": 5000}}


class SkuUpdateSerializer(serializers.Serializer[Any]):
    price = serializers.IntegerField(min_value=1, max_value=MAX_PRICE, required=False)
    stock = serializers.IntegerField(min_value=0, max_value=MAX_STOCK, required=False)


# --- Permissions --------------------------------------------------------------------------


def _ensure_shop_owner_or_staff(request: Request, shop: Shop) -> None:
    if not (shop.owner_id == request.user.pk or is_staff(request.user)):
        raise PermissionDenied("Only the shop's owner or staff may do this.")


# --- Views --------------------------------------------------------------------------------


class ShopCreateView(generics.GenericAPIView[Shop]):
    permission_classes = [permissions.IsAuthenticated]
    serializer_class = ShopCreateSerializer

    @extend_schema(request=ShopCreateSerializer, responses={201: ShopSerializer, **errors(400, 401, 403)})
    def post(self, request: Request) -> Response:
        if not (is_verified_host(request.user) or is_staff(request.user)):
            raise PermissionDenied("Only a verified host or staff may open a shop.")
        data = self.get_serializer(data=request.data)
        data.is_valid(raise_exception=True)
        owner = data.validated_data.get("owner") if is_staff(request.user) else None
        shop = services.shop_create(
            owner=owner or authenticated_user(request),
            name=data.validated_data["name"],
            name_en=data.validated_data["name_en"],
            district=data.validated_data["district"],
        )
        return Response(ShopSerializer(shop).data, status=status.HTTP_201_CREATED)


class ShopDetailView(generics.RetrieveAPIView[Shop]):
    queryset = Shop.objects.all()
    serializer_class = ShopSerializer

    @extend_schema(responses={200: ShopSerializer, **errors(404)})
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().get(request, *args, **kwargs)


def product_in_district(value: str, *, path: str = "") -> Q:
    """Products (at `path`, e.g. "sku__product__") from a district: their origin, or their
    shop's district where the origin is blank."""
    return Q(**{f"{path}origin_district__iexact": value}) | Q(
        **{f"{path}origin_district": "", f"{path}shop__district__iexact": value}
    )


def product_matching(value: str, *, path: str = "") -> Q:
    """Products (at `path`) with every word (the first 8) in their title or description."""
    matching = Q()
    for word in value.split()[:8]:
        matching &= Q(**{f"{path}title__icontains": word}) | Q(**{f"{path}description__icontains": word})
    return matching


class ProductFilter(django_filters.FilterSet):
    shop = django_filters.NumberFilter(field_name="shop_id")
    district = django_filters.CharFilter(
        method="filter_district", help_text="The product's origin district, or its shop's where that is blank."
    )
    category = django_filters.CharFilter(field_name="category", lookup_expr="iexact")
    search = django_filters.CharFilter(method="filter_search", help_text="Words in the title or description.")

    class Meta:
        model = Product
        fields = ["shop", "district", "category", "search"]

    def filter_district(self, queryset: QuerySet[Product], name: str, value: str) -> QuerySet[Product]:
        return queryset.filter(product_in_district(value))

    def filter_search(self, queryset: QuerySet[Product], name: str, value: str) -> QuerySet[Product]:
        return queryset.filter(product_matching(value))


class ProductListCreateView(generics.ListAPIView[Product]):
    queryset = Product.objects.filter(is_active=True).prefetch_related("skus", "photos").order_by("id")
    serializer_class = ProductSerializer
    filterset_class = ProductFilter

    @extend_schema(responses={200: ProductSerializer(many=True), **errors(400)})
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().get(request, *args, **kwargs)

    @extend_schema(request=ProductCreateSerializer, responses={201: ProductSerializer, **errors(400, 401, 403)})
    def post(self, request: Request) -> Response:
        data = ProductCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = dict(data.validated_data)
        shop = values.pop("shop")
        _ensure_shop_owner_or_staff(request, shop)
        skus = [services.SkuSpec(**sku) for sku in values.pop("skus")]
        product = services.product_create(shop=shop, skus=skus, **values)
        return Response(ProductSerializer(product).data, status=status.HTTP_201_CREATED)


class ProductClipSerializer(serializers.Serializer[Any]):
    room = serializers.IntegerField()
    url = serializers.CharField()
    at_s = serializers.FloatField()
    duration_s = serializers.FloatField()


class ProductDetailSerializer(ProductSerializer):
    """A product as its page shows it: with the clips of shows' replays that explain it."""

    clips = serializers.SerializerMethodField()

    class Meta(ProductSerializer.Meta):
        fields = [*ProductSerializer.Meta.fields, "clips"]

    @extend_schema_field(ProductClipSerializer(many=True))
    def get_clips(self, product: Product) -> list[dict[str, Any]]:
        return hooks.product_clips(product)


class ProductDetailView(generics.GenericAPIView[Product]):
    serializer_class = ProductDetailSerializer

    def get_queryset(self) -> QuerySet[Product]:
        return selectors.products_visible_to(self.request.user)

    @extend_schema(responses={200: ProductDetailSerializer, **errors(404)})
    def get(self, request: Request, pk: int) -> Response:
        return Response(ProductDetailSerializer(self.get_object()).data)

    @extend_schema(request=ProductUpdateSerializer, responses={200: ProductSerializer, **errors(400, 401, 403, 404)})
    def patch(self, request: Request, pk: int) -> Response:
        product = self.get_object()
        _ensure_shop_owner_or_staff(request, product.shop)
        data = ProductUpdateSerializer(product, data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        data.save()
        return Response(ProductSerializer(self.get_object()).data)


# --- Product photos -----------------------------------------------------------------------


class PhotoUploadSerializer(serializers.Serializer[Any]):
    image = serializers.FileField(
        help_text="A JPEG, PNG or WebP image (multipart/form-data), at most IMAGE_UPLOAD_MAX_BYTES (8 MB)."
    )


class PhotoOrderSerializer(serializers.Serializer[Any]):
    photos = serializers.ListField(
        child=serializers.IntegerField(min_value=1, max_value=2**63 - 1),
        max_length=100,
        help_text="Every photo id, in order.",
    )


def _visible_product(request: Request, pk: int) -> Product:
    product = selectors.products_visible_to(request.user).filter(pk=pk).first()
    if product is None:
        raise NotFound("No such product.")
    return product


def _owned_product(request: Request, pk: int) -> Product:
    """The product if the requester owns its shop: 404 if they may not see it, 403 otherwise."""
    product = _visible_product(request, pk)
    if product.shop.owner_id != request.user.pk:
        raise PermissionDenied("Only the shop's owner may change its products' photos.")
    return product


class ProductPhotosView(APIView):
    parser_classes = [parsers.MultiPartParser]

    @extend_schema(responses={200: ProductPhotoSerializer(many=True), **errors(404)})
    def get(self, request: Request, pk: int) -> Response:
        return Response(ProductPhotoSerializer(product_photos(_visible_product(request, pk)), many=True).data)

    @extend_schema(
        request={"multipart/form-data": PhotoUploadSerializer},
        responses={201: ProductPhotoSerializer, **errors(400, 401, 403, 404, 409, 413)},
        description="Add a photo (the shop's owner). It is checked and re-encoded: EXIF and other "
        "metadata are dropped, the orientation applied. 400 `invalid` for what is not a JPEG, PNG or "
        "WebP image or is damaged or too many pixels, 413 `payload_too_large` past the byte limit, "
        "409 `limit_exceeded` past PRODUCT_PHOTOS_MAX photos.",
    )
    def post(self, request: Request, pk: int) -> Response:
        product = _owned_product(request, pk)
        data = PhotoUploadSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        upload = data.validated_data["image"]
        photo = services.product_photo_add(product=product, upload=upload, size=upload.size)
        return Response(ProductPhotoSerializer(photo).data, status=status.HTTP_201_CREATED)


class ProductPhotoDetailView(APIView):
    permission_classes = [permissions.IsAuthenticated]

    @extend_schema(responses={204: None, **errors(401, 403, 404)})
    def delete(self, request: Request, pk: int, photo_id: int) -> Response:
        product = _visible_product(request, pk)
        # Staff take down a photo that breaks the rules; only the owner adds or reorders.
        _ensure_shop_owner_or_staff(request, product.shop)
        photo = ProductPhoto.objects.filter(product=product, pk=photo_id).first()
        if photo is None:
            raise NotFound("No such photo.")
        services.product_photo_delete(photo=photo)
        return Response(status=status.HTTP_204_NO_CONTENT)


class ProductPhotosOrderView(APIView):
    permission_classes = [permissions.IsAuthenticated]

    @extend_schema(
        request=PhotoOrderSerializer,
        responses={200: ProductPhotoSerializer(many=True), **errors(400, 401, 403, 404)},
        description="Reorder the photos (the shop's owner): the first is the product's picture.",
    )
    def post(self, request: Request, pk: int) -> Response:
        product = _owned_product(request, pk)
        data = PhotoOrderSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        photos = services.product_photos_reorder(product=product, photo_ids=data.validated_data["photos"])
        return Response(ProductPhotoSerializer(photos, many=True).data)


class SkuUpdateView(generics.GenericAPIView[Sku]):
    permission_classes = [permissions.IsAuthenticated]
    queryset = Sku.objects.select_related("product__shop")
    serializer_class = SkuUpdateSerializer

    @extend_schema(request=SkuUpdateSerializer, responses={200: SkuSerializer, **errors(400, 401, 403, 404)})
    def patch(self, request: Request, pk: int) -> Response:
        sku = self.get_object()
        _ensure_shop_owner_or_staff(request, sku.product.shop)
        data = self.get_serializer(data=request.data)
        data.is_valid(raise_exception=True)
        sku = services.sku_update(sku=sku, **data.validated_data)
        return Response(SkuSerializer(sku).data)


# --- Promotion offers ---------------------------------------------------------------------


class ShopRefSerializer(serializers.ModelSerializer[Shop]):
    class Meta:
        model = Shop
        fields = ["id", "name", "district"]
        read_only_fields = fields


class OfferProductSerializer(serializers.ModelSerializer[Product]):
    image_url = serializers.URLField(read_only=True, allow_blank=True)

    class Meta:
        model = Product
        fields = ["id", "title", "category", "origin_district", "image_url"]
        read_only_fields = fields


class OfferSerializer(serializers.ModelSerializer[Offer]):
    shop = serializers.IntegerField(source="sku.product.shop_id", read_only=True)
    hosts = serializers.SerializerMethodField(help_text="Host ids it is open to; empty: every verified host.")
    status = serializers.SerializerMethodField()

    class Meta:
        model = Offer
        fields = [
            "id",
            "sku",
            "shop",
            "commission_bps",
            "min_live_price",
            "flash_allowed",
            "min_flash_price",
            "flash_max_units",
            "hosts",
            "ends_at",
            "status",
            "created_at",
            "withdrawn_at",
        ]
        read_only_fields = fields

    def get_hosts(self, offer: Offer) -> list[int]:
        return sorted(host.pk for host in offer.hosts.all())

    def get_status(self, offer: Offer) -> str:
        return selectors.offer_effective_status(offer)


class OpenOfferSerializer(OfferSerializer):
    """An offer as a host browsing for goods to sell sees it: with the product and sku."""

    product = OfferProductSerializer(source="sku.product", read_only=True)
    sku_detail = SkuSerializer(source="sku", read_only=True)
    shop_detail = ShopRefSerializer(source="sku.product.shop", read_only=True)

    class Meta(OfferSerializer.Meta):
        fields = [*OfferSerializer.Meta.fields, "product", "sku_detail", "shop_detail"]
        read_only_fields = fields


class ShopOfferSerializer(OfferSerializer):
    sold_units = serializers.IntegerField(read_only=True, help_text="Units of paid orders sold under the offer.")
    sales = serializers.IntegerField(read_only=True, help_text="Their amount, in minor units.")

    class Meta(OfferSerializer.Meta):
        fields = [*OfferSerializer.Meta.fields, "sold_units", "sales"]
        read_only_fields = fields


class OfferCreateSerializer(serializers.Serializer[Any]):
    sku = serializers.PrimaryKeyRelatedField(queryset=Sku.objects.select_related("product__shop"))
    commission_bps = serializers.IntegerField(min_value=0, max_value=MAX_COMMISSION_BPS)
    min_live_price = serializers.IntegerField(min_value=1, max_value=MAX_PRICE, required=False, allow_null=True)
    flash_allowed = serializers.BooleanField(required=False, default=False)
    min_flash_price = serializers.IntegerField(min_value=1, max_value=MAX_PRICE, required=False, allow_null=True)
    flash_max_units = serializers.IntegerField(min_value=1, max_value=MAX_STOCK, required=False, allow_null=True)
    hosts = serializers.ListField(
        child=serializers.IntegerField(min_value=1, max_value=2**31 - 1), required=False, max_length=200, default=list
    )
    ends_at = serializers.DateTimeField(required=False, allow_null=True)

    def validate_hosts(self, value: list[int]) -> list[int]:
        from django.apps import apps

        # The host model by name: `catalog` never imports `rooms`.
        host_model = apps.get_model("rooms", "Host")
        wanted = set(value)
        found = set(host_model.objects.filter(pk__in=wanted).values_list("pk", flat=True))
        if missing := sorted(wanted - found):
            raise serializers.ValidationError(f"No such hosts: {', '.join(map(str, missing))}.")
        return sorted(wanted)


class OfferFilter(django_filters.FilterSet):
    shop = django_filters.NumberFilter(field_name="sku__product__shop_id")
    district = django_filters.CharFilter(
        method="filter_district", help_text="The product's origin district, or its shop's where that is blank."
    )
    category = django_filters.CharFilter(field_name="sku__product__category", lookup_expr="iexact")
    search = django_filters.CharFilter(method="filter_search", help_text="Words in the product's title or description.")

    class Meta:
        model = Offer
        fields = ["shop", "district", "category", "search"]

    def filter_district(self, queryset: QuerySet[Offer], name: str, value: str) -> QuerySet[Offer]:
        return queryset.filter(product_in_district(value, path="sku__product__"))

    def filter_search(self, queryset: QuerySet[Offer], name: str, value: str) -> QuerySet[Offer]:
        return queryset.filter(product_matching(value, path="sku__product__"))


class OfferListCreateView(generics.ListAPIView[Offer]):
    permission_classes = [permissions.IsAuthenticated]
    serializer_class = OpenOfferSerializer
    filterset_class = OfferFilter

    def get_queryset(self) -> QuerySet[Offer]:
        if getattr(self, "swagger_fake_view", False):  # the schema generator asks for the model
            return Offer.objects.none()
        host = host_of(self.request.user)
        if host is None or not host.verified:
            raise PermissionDenied("Only a verified host may browse offers.")
        return (
            selectors.offers_open_to(host_id=host.pk)
            .filter(sku__product__is_active=True)
            .select_related("sku__product__shop")
            .prefetch_related("hosts")
            .order_by("-id")
        )

    @extend_schema(responses={200: OpenOfferSerializer(many=True), **errors(400, 401, 403)})
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().get(request, *args, **kwargs)

    @extend_schema(request=OfferCreateSerializer, responses={201: OfferSerializer, **errors(400, 401, 403, 409)})
    def post(self, request: Request) -> Response:
        data = OfferCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = dict(data.validated_data)
        sku: Sku = values.pop("sku")
        if sku.product.shop.owner_id != request.user.pk:
            raise PermissionDenied("Only the owner of the sku's shop may open an offer on it.")
        host_ids = values.pop("hosts")
        offer = services.offer_create(
            sku=sku, created_by=authenticated_user(request), terms=services.OfferTerms(**values), host_ids=host_ids
        )
        return Response(OfferSerializer(offer).data, status=status.HTTP_201_CREATED)


class ShopOffersView(generics.ListAPIView[Offer]):
    permission_classes = [permissions.IsAuthenticated]
    serializer_class = ShopOfferSerializer

    def get_queryset(self) -> QuerySet[Offer]:
        if getattr(self, "swagger_fake_view", False):  # the schema generator asks for the model
            return Offer.objects.none()
        shop = generics.get_object_or_404(Shop, pk=self.kwargs["pk"])
        _ensure_shop_owner_or_staff(self.request, shop)
        return selectors.shop_offers(shop_id=shop.pk)

    @extend_schema(responses={200: ShopOfferSerializer(many=True), **errors(401, 403, 404)})
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().get(request, *args, **kwargs)


class OfferWithdrawView(generics.GenericAPIView[Offer]):
    permission_classes = [permissions.IsAuthenticated]
    queryset = Offer.objects.select_related("sku__product__shop")
    serializer_class = OfferSerializer

    @extend_schema(request=None, responses={200: OfferSerializer, **errors(401, 403, 404, 409)})
    def post(self, request: Request, pk: int) -> Response:
        offer = self.get_object()
        _ensure_shop_owner_or_staff(request, offer.sku.product.shop)
        return Response(OfferSerializer(services.offer_withdraw(offer=offer)).data)
