from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.db import models
from django.db.models import QuerySet
from django.http import HttpRequest

from catalog import services
from catalog.models import Offer, Product, ProductPhoto, Shop, Sku
from liveshop.errors import Conflict


@admin.register(Shop)
class ShopAdmin(admin.ModelAdmin[Shop]):
    list_display = ("id", "name", "district", "owner", "created_at")
    list_filter = ("district",)
    search_fields = ("name", "district", "owner__username", "owner__display_name")
    raw_id_fields = ("owner",)


class SkuInline(admin.TabularInline[Sku, Product]):
    model = Sku
    extra = 0


class ProductPhotoInline(admin.TabularInline[ProductPhoto, Product]):
    """Photos are added through the API (checked, cleaned, resized there); staff see and
    reorder them here, and remove one that breaks the rules (its files go with it)."""

    model = ProductPhoto
    extra = 0
    fields = ("position", "thumb", "width", "height", "created_at")
    readonly_fields = ("thumb", "width", "height", "created_at")

    def has_add_permission(self, request: HttpRequest, obj: Product | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # through ProductPhotoAdmin's action, which deletes the files too


@admin.register(ProductPhoto)
class ProductPhotoAdmin(admin.ModelAdmin[ProductPhoto]):
    list_display = ("id", "product", "position", "width", "height", "created_at")
    search_fields = ("product__title", "product__shop__name")
    list_select_related = ("product",)
    raw_id_fields = ("product",)
    readonly_fields = ("original", "large", "thumb", "width", "height", "created_at")
    actions = ["delete_with_files"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # uploads go through the API's checks

    def has_delete_permission(self, request: HttpRequest, obj: ProductPhoto | None = None) -> bool:
        return False  # Django's delete would leave the files: the action below removes both

    @admin.action(description="Delete the selected photos and their files")
    def delete_with_files(self, request: HttpRequest, queryset: QuerySet[ProductPhoto]) -> None:
        photos = list(queryset)
        for photo in photos:
            services.product_photo_delete(photo=photo)
        self.message_user(request, f"Deleted {len(photos)} photo(s).")


@admin.register(Product)
class ProductAdmin(admin.ModelAdmin[Product]):
    list_display = ("id", "title", "shop", "category", "origin_district", "is_active", "created_at")
    list_filter = ("is_active", "category", "origin_district", "shop__district")
    search_fields = ("title", "description", "shop__name")
    list_select_related = ("shop",)
    raw_id_fields = ("shop",)
    inlines = [SkuInline, ProductPhotoInline]
    # Django 6 assumes https for scheme-less URLs typed into forms; do so already.
    formfield_overrides = {models.URLField: {"assume_scheme": "https"}}
    actions = ["deactivate", "activate"]

    @admin.action(description="Take the selected products off sale")
    def deactivate(self, request: HttpRequest, queryset: QuerySet[Product]) -> None:
        queryset.update(is_active=False)

    @admin.action(description="Put the selected products on sale")
    def activate(self, request: HttpRequest, queryset: QuerySet[Product]) -> None:
        queryset.update(is_active=True)


@admin.register(Sku)
class SkuAdmin(admin.ModelAdmin[Sku]):
    list_display = ("id", "product", "name", "price", "currency", "stock")
    search_fields = ("name", "product__title")
    list_select_related = ("product",)
    raw_id_fields = ("product",)


@admin.register(Offer)
class OfferAdmin(admin.ModelAdmin[Offer]):
    """Offers are the seller's terms: staff read them and may withdraw one, never rewrite it
    (shelf items and orders placed under an offer keep the terms they were placed under)."""

    list_display = ("id", "sku", "commission_bps", "min_live_price", "flash_allowed", "status", "ends_at", "created_at")
    list_filter = ("status", "flash_allowed", "sku__product__shop__district")
    search_fields = ("sku__name", "sku__product__title", "sku__product__shop__name")
    list_select_related = ("sku__product",)
    raw_id_fields = ("sku", "created_by")
    filter_horizontal = ("hosts",)
    actions = ["withdraw"]

    def get_readonly_fields(self, request: HttpRequest, obj: Offer | None = None) -> list[str]:
        if obj is None:
            return ["status", "withdrawn_at"]
        return [field.name for field in Offer._meta.fields] + ["hosts"]

    @admin.action(description="Withdraw the selected offers")
    def withdraw(self, request: HttpRequest, queryset: QuerySet[Offer]) -> None:
        withdrawn = 0
        for offer in queryset:
            try:
                services.offer_withdraw(offer=offer)
            except Conflict:
                continue
            withdrawn += 1
        self.message_user(request, f"Withdrew {withdrawn} offer(s).")
