from __future__ import annotations

from django.urls import path

from catalog import api

urlpatterns = [
    path("shops/", api.ShopCreateView.as_view(), name="shop-create"),
    path("shops/<int:pk>/", api.ShopDetailView.as_view(), name="shop-detail"),
    path("products/", api.ProductListCreateView.as_view(), name="product-list"),
    path("products/<int:pk>/", api.ProductDetailView.as_view(), name="product-detail"),
    path("skus/<int:pk>/", api.SkuUpdateView.as_view(), name="sku-update"),
]
