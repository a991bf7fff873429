from __future__ import annotations

from django.urls import path

from catalog import api

urlpatterns = [
    path("shops/", api.ShopCreateView.as_view(), name="shop-create"),
    path("shops/<int:pk>/", api.ShopDetailView.as_view(), name="shop-detail"),
    path("products/", api.ProductListCreateView.as_view(), name="product-list"),
    path("products/<int:pk>/", api.ProductDetailView.as_view(), name="product-detail"),
    path("skus/<int:pk>/", api.SkuUpdateView.as_view(), name="sku-update"),
    path("offers/", api.OfferListCreateView.as_view(), name="offer-list"),
    path("offers/<int:pk>/withdraw/", api.OfferWithdrawView.as_view(), name="offer-withdraw"),
    path("shops/<int:pk>/offers/", api.ShopOffersView.as_view(), name="shop-offers"),
]
