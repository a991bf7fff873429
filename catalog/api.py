"""Catalog over REST: shops, products and their skus."""

from __future__ import annotations

from typing import Any

import django_filters
from django.db.models import Q, QuerySet
from drf_spectacular.utils import extend_schema
from rest_framework import generics, permissions, serializers, status
from rest_framework.request import Request
from rest_framework.response import Response

from catalog import services
from catalog.models import MAX_PRICE, MAX_STOCK, Product, Shop, Sku
from liveshop.api_docs import errors
from liveshop.errors import PermissionDenied
from liveshop.models import User
from liveshop.permissions import authenticated_user, is_staff, is_verified_host

# --- Serializers --------------------------------------------------------------------------


class ShopSerializer(serializers.ModelSerializer[Shop]):
    class Meta:
        model = Shop
        fields = ["id", "name", "district", "owner", "created_at"]
        read_only_fields = fields


class ShopCreateSerializer(serializers.Serializer[Any]):
    name = serializers.CharField(max_length=100)
    district = serializers.CharField(max_length=64)
    owner = serializers.PrimaryKeyRelatedField(
        queryset=User.objects.all(), required=False, help_text="Staff only: open the shop for this user."
    )


class SkuSerializer(serializers.ModelSerializer[Sku]):
    class Meta:
        model = Sku
        fields = ["id", "name", "price", "currency", "stock"]
        read_only_fields = fields


class ProductSerializer(serializers.ModelSerializer[Product]):
    skus = SkuSerializer(many=True, read_only=True)
    # Declared so that the schema says "a URL or blank": read-only model fields lose allow_blank.
    image_url = serializers.URLField(read_only=True, allow_blank=True)

    class Meta:
        model = Product
        fields = [
            "id",
            "shop",
            "title",
            "description",
            "category",
            "origin_district",
            "image_url",
            "is_active",
            "skus",
            "created_at",
        ]
        read_only_fields = fields


class SkuCreateSerializer(serializers.Serializer[Any]):
    name = serializers.CharField(max_length=100)
    price = serializers.IntegerField(min_value=1, max_value=MAX_PRICE, help_text="Minor units (fen).")
    stock = serializers.IntegerField(min_value=0, max_value=MAX_STOCK)


class ProductCreateSerializer(serializers.Serializer[Any]):
    shop = serializers.PrimaryKeyRelatedField(queryset=Shop.objects.all())
    title = serializers.CharField(max_length=120)
    description = serializers.CharField(max_length=5000, required=False, allow_blank=True, default="")
    category = serializers.CharField(max_length=64, required=False, allow_blank=True, default="")
    origin_district = serializers.CharField(max_length=64, required=False, allow_blank=True, default="")
    image_url = serializers.URLField(max_length=500, required=False, allow_blank=True, default="")
    skus = serializers.ListField(child=SkuCreateSerializer(), min_length=1, max_length=50)


class ProductUpdateSerializer(serializers.ModelSerializer[Product]):
    class Meta:
        model = Product
        fields = ["title", "description", "category", "origin_district", "image_url", "is_active"]
        extra_kwargs = {"description": {"max_length": 5000}}


class SkuUpdateSerializer(serializers.Serializer[Any]):
    price = serializers.IntegerField(min_value=1, max_value=MAX_PRICE, required=False)
    stock = serializers.IntegerField(min_value=0, max_value=MAX_STOCK, required=False)


# --- Permissions --------------------------------------------------------------------------


def _ensure_shop_owner_or_staff(request: Request, shop: Shop) -> None:
    if not (shop.owner_id == request.user.pk or is_staff(request.user)):
        raise PermissionDenied("Only the shop's owner or staff may change its products.")


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
            district=data.validated_data["district"],
        )
        return Response(ShopSerializer(shop).data, status=status.HTTP_201_CREATED)


class ShopDetailView(generics.RetrieveAPIView[Shop]):
    queryset = Shop.objects.all()
    serializer_class = ShopSerializer

    @extend_schema(responses={200: ShopSerializer, **errors(404)})
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().get(request, *args, **kwargs)


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
        return queryset.filter(Q(origin_district__iexact=value) | Q(origin_district="", shop__district__iexact=value))

    def filter_search(self, queryset: QuerySet[Product], name: str, value: str) -> QuerySet[Product]:
        for word in value.split()[:8]:
            queryset = queryset.filter(Q(title__icontains=word) | Q(description__icontains=word))
        return queryset


class ProductListCreateView(generics.ListAPIView[Product]):
    queryset = Product.objects.filter(is_active=True).prefetch_related("skus").order_by("id")
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


class ProductDetailView(generics.GenericAPIView[Product]):
    serializer_class = ProductSerializer

    def get_queryset(self) -> QuerySet[Product]:
        products = Product.objects.select_related("shop").prefetch_related("skus")
        if is_staff(self.request.user):
            return products
        if self.request.user.is_authenticated:
            return products.filter(Q(is_active=True) | Q(shop__owner=self.request.user))
        return products.filter(is_active=True)

    @extend_schema(responses={200: ProductSerializer, **errors(404)})
    def get(self, request: Request, pk: int) -> Response:
        return Response(ProductSerializer(self.get_object()).data)

    @extend_schema(request=ProductUpdateSerializer, responses={200: ProductSerializer, **errors(400, 401, 403, 404)})
    def patch(self, request: Request, pk: int) -> Response:
        product = self.get_object()
        _ensure_shop_owner_or_staff(request, product.shop)
        data = ProductUpdateSerializer(product, data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        data.save()
        return Response(ProductSerializer(self.get_object()).data)


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
