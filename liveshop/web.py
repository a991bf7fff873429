"""The web client: pages that Django serves, whose JavaScript speaks only the public API.

Each page is a template with the page's words (translated here, by Django's i18n) and a
small ES module under static/liveshop/js/ that fetches everything else from the REST API
of docs/CONTRACT.md and the room WebSocket, as any other client would. These views
only decide who may open a page (the studio is its host's) and hand the page its
configuration; they read no data that the API does not give the page anyway.

Signing in is Django's session login: the pages then call the API with the session
cookie and the CSRF token (DRF's SessionAuthentication requires it on writes).
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.conf import settings
from django.contrib.auth import login
from django.contrib.auth.decorators import login_required
from django.contrib.messages.middleware import MessageMiddleware
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseBase, HttpResponseRedirect
from django.middleware.locale import LocaleMiddleware
from django.shortcuts import render, resolve_url
from django.utils import translation
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext_lazy
from django.views.decorators.http import require_GET, require_http_methods

from catalog.models import Shop
from catalog.selectors import products_visible_to
from liveshop import services
from liveshop.districts import district_names_zh
from liveshop.errors import Invalid
from liveshop.models import User
from liveshop.ratelimit import REGISTER, rate_limited_page
from orders import selectors as order_selectors
from rooms import selectors as room_selectors
from rooms.models import Room
from rooms.services.covers import room_cover_image

# Paths whose answers are the API's, in its own words: never translated.
_UNTRANSLATED_PREFIXES = ("/api/", "/ws/", "/healthz", "/readyz")


class WebLocaleMiddleware(LocaleMiddleware):
    """Django's LocaleMiddleware (the browser's Accept-Language, or the language cookie
    set by /i18n/setlang/) for the web pages and the admin, not for the API."""

    def process_request(self, request: HttpRequest) -> None:
        if not request.path.startswith(_UNTRANSLATED_PREFIXES):
            super().process_request(request)

    def process_response(self, request: HttpRequest, response: HttpResponseBase) -> HttpResponseBase:
        if request.path.startswith(_UNTRANSLATED_PREFIXES):
            return response
        response = super().process_response(request, response)
        # HTTP threads serve request after request: the page's language must not stay
        # active on this thread for the next one (an API answer, in English).
        translation.deactivate()
        return response


class WebMessageMiddleware(MessageMiddleware):
    """Django's messages (the admin's notices) for the pages, not for the API: its cookie
    signer cost an order 7 % of its CPU, for messages no API answer carries."""

    def process_request(self, request: HttpRequest) -> None:
        if not request.path.startswith(_UNTRANSLATED_PREFIXES):
            super().process_request(request)


def _page_config(request: HttpRequest, **extra: Any) -> dict[str, Any]:
    """What every page's script needs to know, given to it as JSON (json_script)."""
    user = request.user
    return {
        "user": {"id": user.pk, "display_name": user.public_name} if isinstance(user, User) else None,
        "language": translation.get_language(),
        # District names are English in the API; a Chinese page shows them in Chinese.
        "district_names": district_names_zh() if translation.get_language().startswith("zh") else {},
        "login_url": f"{resolve_url(settings.LOGIN_URL)}?next={request.get_full_path()}",
        **extra,
    }


@require_GET
def home(request: HttpRequest) -> HttpResponse:
    """Rooms live now and coming up, by district."""
    return render(request, "liveshop/home.html", {"config": _page_config(request)})


def _visible_room(request: HttpRequest, room_id: int) -> Room:
    room = room_selectors.rooms_visible_to(request.user).filter(pk=room_id).first()
    if room is None:
        raise Http404("No such room.")
    return room


def _in_page_language(room: Room) -> str:
    """The room's title in the page's language, as the pages' scripts choose it."""
    english = not translation.get_language().startswith("zh")
    return room.title_en if english and room.title_en else room.title


def _stripe_config() -> dict[str, str]:
    return {"publishable_key": settings.STRIPE_PUBLISHABLE_KEY, "js_url": settings.STRIPE_JS_URL}


@require_GET
def room_page(request: HttpRequest, room_id: int) -> HttpResponse:
    """The viewer page: video, comments, likes, the shelf, buying, gifts, giveaways."""
    room = _visible_room(request, room_id)
    config = _page_config(request, room=room.pk, stripe=_stripe_config())
    return render(
        request, "liveshop/room.html", {"room": room, "room_title": _in_page_language(room), "config": config}
    )


@require_GET
def replay_page(request: HttpRequest, room_id: int) -> HttpResponse:
    """A show to watch again: its video, its comments at their moments, chapters to jump to
    each product, and its shelf to buy from. A show not over yet is on its live page."""
    room = _visible_room(request, room_id)
    if room.status != Room.Status.ENDED:
        return HttpResponseRedirect(resolve_url("room", room_id=room.pk))
    config = _page_config(request, room=room.pk, stripe=_stripe_config())
    cover = room_cover_image(room)
    return render(
        request,
        "liveshop/replay.html",
        {
            "room": room,
            "room_title": _in_page_language(room),
            "room_cover": cover["url"] if cover else "",
            "config": config,
        },
    )


@require_GET
def product_page(request: HttpRequest, product_id: int) -> HttpResponse:
    """A product: its photos, price, shop, and the clips of the shows that explained it."""
    if not products_visible_to(request.user).filter(pk=product_id).exists():
        raise Http404("No such product.")
    return render(request, "liveshop/product.html", {"config": _page_config(request, product=product_id)})


@require_GET
@login_required
def studio_page(request: HttpRequest, room_id: int) -> HttpResponse:
    """The host console. Anyone but the room's host gets a 404, as from the API."""
    room = _visible_room(request, room_id)
    if not room_selectors.is_room_host(request.user, room):
        raise Http404("No such room.")
    config = _page_config(request, room=room.pk, stripe=_stripe_config())
    return render(
        request, "liveshop/studio.html", {"room": room, "room_title": _in_page_language(room), "config": config}
    )


@require_GET
@login_required
def orders_page(request: HttpRequest) -> HttpResponse:
    """My orders: every order of the signed-in buyer, newest first."""
    return render(request, "liveshop/orders.html", {"config": _page_config(request)})


@require_GET
@login_required
def order_page(request: HttpRequest, order_id: int) -> HttpResponse:
    """One of my orders: its status as it changes, items, shipping, paying, cancelling,
    asking for a refund. Anyone but its buyer gets a 404 (the seller has the API)."""
    if not order_selectors.orders_of_buyer(user=request.user).filter(pk=order_id).exists():
        raise Http404("No such order.")
    config = _page_config(request, order=order_id, stripe=_stripe_config())
    return render(request, "liveshop/order.html", {"config": config})


@require_GET
@login_required
def shop_page(request: HttpRequest) -> HttpResponse:
    """The seller's products and their photos (add, delete), through the public API."""
    names = district_names_zh() if translation.get_language().startswith("zh") else {}
    shops = [
        {
            "id": shop.pk,
            "name": shop.name,
            "district": shop.district,
            "district_name": names.get(shop.district, shop.district),
        }
        for shop in Shop.objects.filter(owner_id=request.user.pk).order_by("id")
    ]
    config = _page_config(request, shops=shops, photos_max=settings.PRODUCT_PHOTOS_MAX)
    return render(request, "liveshop/shop.html", {"config": config, "shops": shops})


@require_GET
@login_required
def money_page(request: HttpRequest) -> HttpResponse:
    """What the seller's shops and the host are owed and were paid: balances, statements
    (JSON shown, CSV to download), payouts, and a host's coin cash-out, through the API."""
    payees = [
        {"kind": "shop", "id": shop.pk, "name": shop.name}
        for shop in Shop.objects.filter(owner_id=request.user.pk).order_by("id")
    ]
    host = getattr(request.user, "host", None)
    if host is not None:
        payees.append({"kind": "host", "id": host.pk, "name": request.user.public_name})  # type: ignore[union-attr]
    config = _page_config(request, payees=payees, time_zone=settings.STATS_TIME_ZONE)
    return render(request, "liveshop/money.html", {"config": config, "payees": payees})


@require_GET
def giveaway_verify_page(request: HttpRequest, giveaway_id: int) -> HttpResponse:
    """Checks a drawn giveaway in the browser: the seed against the commitment, and the
    winners recomputed from the public entrant list (CONTRACT.md, provably fair draw)."""
    return render(request, "liveshop/verify.html", {"config": _page_config(request, giveaway=giveaway_id)})


# Django 5.2's Chinese catalog has this validator message only in an older wording, so a
# Chinese page would show it in English: liveshop's catalog (liveshop/locale/) carries it.
PASSWORD_TOO_SHORT = ngettext_lazy(
    "This password is too short. It must contain at least %d character.",
    "This password is too short. It must contain at least %d characters.",
    "min_length",
)


class RegisterForm(forms.Form):
    username = forms.CharField(label=_("Username"), max_length=150)
    password = forms.CharField(label=_("Password"), max_length=128, widget=forms.PasswordInput)
    display_name = forms.CharField(label=_("Display name"), max_length=64, required=False)
    district = forms.CharField(
        label=_("District"),
        max_length=64,
        required=False,
        help_text=_("Your district or county in Chongqing, e.g. Wulong"),
    )


def _next_url(request: HttpRequest) -> str:
    target = request.POST.get("next") or request.GET.get("next") or ""
    if url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}, require_https=request.is_secure()):
        return target
    return resolve_url(settings.LOGIN_REDIRECT_URL)


@require_http_methods(["GET", "POST"])
@rate_limited_page(REGISTER)
def register_page(request: HttpRequest) -> HttpResponse:
    """A new account (the same service as POST /api/v1/auth/register/), signed in at once."""
    if request.user.is_authenticated:
        return HttpResponseRedirect(_next_url(request))
    form = RegisterForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            user = services.user_register(**form.cleaned_data)
        except Invalid as exc:
            # The service checks the username and the password (for the API too); its
            # messages (Django's validators', liveshop's) speak the page's language.
            fields = exc.fields or {}
            for name in ("username", "password"):
                for message in fields.get(name, []):
                    form.add_error(name, message)
            if not fields:
                form.add_error(None, exc.detail)
        else:
            login(request, user, backend="django.contrib.auth.backends.ModelBackend")
            return HttpResponseRedirect(_next_url(request))
    return render(request, "liveshop/register.html", {"form": form, "next": _next_url(request)})
