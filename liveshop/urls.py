from __future__ import annotations

from django.conf import settings
from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import URLPattern, URLResolver, include, path
from django.views.i18n import JavaScriptCatalog
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from liveshop import api, health, media, web
from liveshop.ratelimit import LOGIN, rate_limited_page

api_v1: list[URLPattern | URLResolver] = [
    path("auth/register/", api.RegisterView.as_view(), name="register"),
    path("auth/token/", api.TokenView.as_view(), name="token"),
    path("auth/logout/", api.LogoutView.as_view(), name="api-logout"),
    path("auth/logout-all/", api.LogoutAllView.as_view(), name="api-logout-all"),
    path("me/", api.MeView.as_view(), name="me"),
    path("", include("catalog.urls")),
    path("", include("rooms.urls")),
    path("", include("orders.urls")),
    path("", include("streams.urls")),
    path("", include("notifications.urls")),
    path("", include("envelopes.urls")),
    path("", include("payouts.urls")),
]

# The web client (liveshop/web.py): pages whose scripts use the public API above.
web_pages: list[URLPattern | URLResolver] = [
    path("", web.home, name="home"),
    path("rooms/<int:room_id>/", web.room_page, name="room"),
    path("rooms/<int:room_id>/replay/", web.replay_page, name="replay"),
    path("products/<int:product_id>/", web.product_page, name="product"),
    path("studio/rooms/<int:room_id>/", web.studio_page, name="studio"),
    path("orders/", web.orders_page, name="orders"),
    path("orders/<int:order_id>/", web.order_page, name="order"),
    path("shop/", web.shop_page, name="shop"),
    path("money/", web.money_page, name="money"),
    path("giveaways/<int:giveaway_id>/verify/", web.giveaway_verify_page, name="giveaway-verify"),
    path(
        "login/",
        rate_limited_page(LOGIN)(
            auth_views.LoginView.as_view(template_name="liveshop/login.html", redirect_authenticated_user=True)
        ),
        name="login",
    ),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("register/", web.register_page, name="register"),
    # The pages' scripts' words, in the page's language (gettext() in JavaScript).
    path("jsi18n/", JavaScriptCatalog.as_view(packages=["liveshop"]), name="javascript-catalog"),
    path("i18n/", include("django.conf.urls.i18n")),
]

urlpatterns = [
    *web_pages,
    path("api/v1/", include(api_v1)),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="swagger-ui"),
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
    # The admin's sign-in has the same login limits as the API's and the web page's; this
    # path comes first, so it is the one that serves /admin/login/ (reverse() still names
    # the admin's own, which is the same address).
    path("admin/login/", rate_limited_page(LOGIN)(admin.site.login)),
    path("admin/", admin.site.urls),
]

# Uploads on the file system (MEDIA_ROOT), served by liveshop (liveshop/media.py); a bucket
# or a CDN serves them otherwise. A MEDIA_URL that is a full URL is served elsewhere too.
if settings.MEDIA_SERVE and settings.MEDIA_URL.startswith("/") and settings.MEDIA_URL.strip("/"):
    urlpatterns.append(path(f"{settings.MEDIA_URL.strip('/')}/<path:path>", media.media_file, name="media"))

handler400 = "liveshop.errors.error_400"
handler403 = "liveshop.errors.error_403"
handler404 = "liveshop.errors.error_404"
handler500 = "liveshop.errors.error_500"
