"""The host console on a phone, in English and in Chinese: the show's bar stays on screen,
the panels come in the order a host needs them mid-show, nothing runs off the side, and
a flash sale started from the phone shows what it sold and what is left as orders come
in, then what it sold in all once it has ended, without a reload."""

from __future__ import annotations

import gettext
import re
from collections.abc import Callable
from typing import Any

import pytest
from playwright.sync_api import expect

from rooms import services as room_services
from rooms.models import FlashSale, Room, RoomItem
from tests import factories
from tests.servers import BASE_DIR
from tests.web.conftest import Pages, screenshot
from tests.web.test_browser import SHIPPING

pytestmark = [pytest.mark.django_db(transaction=True)]

JS_CATALOG = BASE_DIR / "liveshop" / "locale" / "zh_Hans" / "LC_MESSAGES" / "djangojs.mo"
NO_SIDEWAYS_SCROLL = "document.documentElement.scrollWidth <= window.innerWidth"


def page_words(locale: str) -> Callable[[str], str]:
    """gettext() as the page's scripts have it: the compiled Chinese catalog for a Chinese
    browser (a word not translated yet reads as written, as on the page), else English."""
    if not locale.startswith("zh"):
        return lambda text: text
    with JS_CATALOG.open("rb") as compiled:
        return gettext.GNUTranslations(compiled).gettext


@pytest.fixture
def tofu(live_room: Room) -> RoomItem:
    shop = factories.ShopFactory.create(owner=live_room.host.user, name="Xiannv Mountain Farm")
    sku = factories.SkuFactory.create(
        product=factories.ProductFactory.create(shop=shop, title="Yangjiao Dried Tofu"),
        name="5 pieces",
        price=1500,
        stock=40,
    )
    return factories.RoomItemFactory.create(room=live_room, sku=sku, position=1)


def place_order(page: Any, room: Room, item: RoomItem, quantity: int) -> None:
    """POST /api/v1/orders/ from a buyer's page, as its checkout does: the order holds its
    units at once (flash units out of the sale), paid or not."""
    status, body = page.evaluate(
        """async ([room, item, quantity, shipping]) => {
          const answer = await fetch('/api/v1/orders/', {method: 'POST', credentials: 'same-origin', headers: {
            'Content-Type': 'application/json', 'Idempotency-Key': crypto.randomUUID(),
            'X-CSRFToken': document.querySelector('meta[name=csrf-token]').content},
            body: JSON.stringify({room, items: [{item, quantity}], shipping})});
          return [answer.status, await answer.json()];
        }""",
        [room.pk, item.pk, quantity, SHIPPING],
    )
    assert status == 201, body
    assert [line["flash_sale"] is not None for line in body["items"]] == [True]


@pytest.mark.parametrize("locale", ["en-US", "zh-CN"])
def test_the_host_runs_a_flash_sale_from_a_phone_and_watches_it_sell(
    pages: Pages, live_room: Room, tofu: RoomItem, host: Any, viewer: Any, locale: str
) -> None:
    _ = page_words(locale)
    studio = pages.open(f"/studio/rooms/{live_room.pk}/", user=host, locale=locale, phone=True)
    card = studio.get_by_test_id("host-shelf").locator(f"[data-item='{tofu.pk}']")
    expect(studio.get_by_test_id("end-show")).to_be_visible()
    expect(card).to_contain_text("Yangjiao Dried Tofu")
    studio.evaluate("window.sameStudioPage = true")  # gone if the page reloads
    assert studio.evaluate(NO_SIDEWAYS_SCROLL)

    # On a phone, what a host needs mid-show comes first: the show's bar, the preview, the
    # shelf, the live feed, comments; the streaming setup, the cover and moderators later.
    order = ["showbar", "video-status", "host-shelf", "live-feed", "comments"]
    order += ["stream-setup", "room-cover-panel", "moderators"]
    tops = [_top(studio, test_id) for test_id in order]
    assert tops == sorted(tops), dict(zip(order, tops, strict=True))
    # Buttons a thumb can hit.
    assert card.get_by_test_id("flash").bounding_box()["height"] >= 44

    # A flash sale of 5 units from the phone: the sheet comes up from the bottom.
    card.get_by_test_id("flash").click()
    sheet = studio.get_by_test_id("flash-dialog")
    sheet.get_by_test_id("flash-price").fill("9.90")
    sheet.get_by_test_id("flash-quantity").fill("5")
    sheet.get_by_test_id("flash-duration").fill("300")
    sheet.get_by_test_id("flash-start").click()
    expect(sheet).to_be_hidden()
    sold = card.get_by_test_id("flash-sold")
    left = card.get_by_test_id("flash-remaining")
    progress = card.get_by_test_id("flash-progress")
    expect(sold).to_have_text(_("%(sold)s of %(quantity)s sold") % {"sold": 0, "quantity": 5})
    expect(left).to_have_text(_("%(n)s left") % {"n": 5})
    expect(progress).to_have_attribute("aria-valuenow", "0")
    expect(card.get_by_test_id("flash-countdown")).to_have_text(re.compile(r"^[45]:\d\d$"))
    expect(card.get_by_test_id("flash")).to_be_disabled()
    sale = FlashSale.objects.get(item=tofu, status=FlashSale.Status.ACTIVE)

    # Orders hold flash units as they are placed: the host sees them go, live.
    buyer = pages.open("/orders/", user=viewer)
    place_order(buyer, live_room, tofu, 2)
    expect(sold).to_have_text(_("%(sold)s of %(quantity)s sold") % {"sold": 2, "quantity": 5})
    expect(left).to_have_text(_("%(n)s left") % {"n": 3})
    expect(progress).to_have_attribute("aria-valuenow", "2")
    place_order(buyer, live_room, tofu, 1)
    expect(sold).to_have_text(_("%(sold)s of %(quantity)s sold") % {"sold": 3, "quantity": 5})
    expect(left).to_have_text(_("%(n)s left") % {"n": 2})
    expect(progress).to_have_attribute("aria-valuenow", "3")

    # The show's bar stays at the top of the screen when the host scrolls to the comments.
    studio.get_by_test_id("comment-input").scroll_into_view_if_needed()
    expect(studio.get_by_test_id("end-show")).to_be_in_viewport()
    expect(studio.get_by_test_id("room-status")).to_be_in_viewport()
    assert abs(studio.get_by_test_id("showbar").bounding_box()["y"]) < 1
    assert studio.evaluate(NO_SIDEWAYS_SCROLL)
    screenshot(studio, f"studio-phone-{locale.split('-')[0]}")

    # The sale ends: the card keeps what it sold, and the host may start another.
    room_services.flash_sale_end(flash_sale_id=sale.pk)
    expect(card.get_by_test_id("flash-last")).to_have_text(
        _("Last flash sale: %(sold)s of %(quantity)s sold") % {"sold": 3, "quantity": 5}
    )
    expect(card.get_by_test_id("flash-sale")).to_have_count(0)
    expect(card.get_by_test_id("flash")).to_be_enabled()
    assert studio.evaluate("window.sameStudioPage") is True
    assert studio.evaluate(NO_SIDEWAYS_SCROLL)


def _top(page: Any, test_id: str) -> float:
    """Where an element's box starts on the page (its parent's, for one hidden itself)."""
    return float(
        page.get_by_test_id(test_id).evaluate(
            "(node) => { const box = (node.offsetParent ? node : node.parentElement).getBoundingClientRect();"
            " return box.top + window.scrollY; }"
        )
    )
