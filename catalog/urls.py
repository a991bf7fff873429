from __future__ import annotations

from django.urls import path

from catalog import api

urlpatterns = [
    path("shops/", api.ShopCreateView.as_view(), name="shop-create"),
    path("shops/<int:pk>/", api.ShopDetailView.as_view(), name="shop-detail"),
    path("products/", api.ProductListCreateView.as_view(), name="product-list"),
    path("products/<int:pk>/", api.ProductDetailView.as_view(), name="product-detail"),
    path("products/<int:pk>/photos/", api.ProductPhotosView.as_view(), name="product-photos"),
    path("products/<int:pk>/photos/order/", api.ProductPhotosOrderView.as_view(), name="product-photos-order"),
    path("products/<int:pk>/photos/<int:photo_id>/", api.ProductPhotoDetailView.as_view(), name="product-photo-detail"),
    path("skus/<int:pk>/", api.SkuUpdateView.as_view(), name="sku-update"),
    path("offers/", api.OfferListCreateView.as_view(), name="offer-list"),
    path("offers/<int:pk>/withdraw/", api.OfferWithdrawView.as_view(), name="offer-withdraw"),
    path("shops/<int:pk>/offers/", api.ShopOffersView.as_view(), name="shop-offers"),
]
