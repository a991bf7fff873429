from __future__ import annotations

from django.contrib import admin
from django.urls import URLPattern, URLResolver, include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from liveshop import api, health

api_v1: list[URLPattern | URLResolver] = [
    path("auth/register/", api.RegisterView.as_view(), name="register"),
    path("auth/token/", api.TokenView.as_view(), name="token"),
    path("me/", api.MeView.as_view(), name="me"),
    path("", include("catalog.urls")),
    path("", include("rooms.urls")),
    path("", include("orders.urls")),
]

urlpatterns = [
    path("api/v1/", include(api_v1)),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="swagger-ui"),
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
    path("admin/", admin.site.urls),
]

handler400 = "liveshop.errors.error_400"
handler403 = "liveshop.errors.error_403"
handler404 = "liveshop.errors.error_404"
handler500 = "liveshop.errors.error_500"
