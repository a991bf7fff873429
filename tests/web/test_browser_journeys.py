"""The room page's journeys on a phone in Chinese and on a desktop in English, the two
layouts viewers meet: on a phone the video fills the screen and the shelf opens as a
bottom sheet from the dock's bag (or the flash pill on the video); on a desktop the
shelf sits below the video and the chat beside it."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from orders.models import Order
from rooms import services as room_services
from rooms.models import Report, Room, RoomItem
from tests import factories
from tests.web.conftest import Pages, screenshot
from tests.web.test_browser import SHIPPING, card_element
from tests.web.words import BOTH, Viewport

pytestmark = [pytest.mark.django_db(transaction=True)]


@pytest.fixture(params=BOTH, ids=lambda viewport: viewport.id)
def viewport(request: pytest.FixtureRequest) -> Viewport:
    return request.param


@pytest.fixture
def shelf(live_room: Room) -> list[RoomItem]:
    """Tea (featured) and dried tofu, whose flash sale runs: 5 units at ¥9.90."""
    shop = factories.ShopFactory.create(owner=live_room.host.user, name="Xiannv Mountain Farm")
    tea = factories.SkuFactory.create(
        product=factories.ProductFactory.create(shop=shop, title="仙女山红茶", title_en="Xiannv Black Tea"),
        name="250 g tin", price=6800, stock=50,
    )  # fmt: skip
    tofu = factories.SkuFactory.create(
        product=factories.ProductFactory.create(shop=shop, title="羊角豆腐干", title_en="Yangjiao Dried Tofu"),
        name="5 pieces", price=1500, stock=40,
    )  # fmt: skip
    items = [
        factories.RoomItemFactory.create(room=live_room, sku=tea, position=1),
        factories.RoomItemFactory.create(room=live_room, sku=tofu, position=2),
    ]
    Room.objects.filter(pk=live_room.pk).update(featured_item=items[0])
    room_services.flash_sale_start(item=items[1], price=990, quantity=5, duration_s=600)
    return items


def test_the_flash_pill_opens_the_shelf_and_the_printed_card_pays(pages: Pages, viewport: Viewport, shelf, viewer):
    tofu = shelf[1]
    page = pages.open(f"/rooms/{tofu.room_id}/", user=viewer, phone=viewport.phone, locale=viewport.locale)

    # The sale is on the video wherever the viewer is: price, units left, the countdown.
    pill = page.get_by_test_id("flash-now")
    expect(pill).to_contain_text("¥9.90")
    expect(pill.get_by_test_id("flash-now-remaining")).to_have_text(viewport.js("%(n)s left", n=5))
    expect(pill).to_contain_text("羊角豆腐干" if viewport.chinese else "Yangjiao Dried Tofu")
    shelf_panel = page.get_by_test_id("shelf-panel")
    if viewport.phone:
        # The shelf waits in a sheet; the bag counts its items.
        expect(shelf_panel).to_be_hidden()
        expect(page.get_by_test_id("shelf-count")).to_have_text("2")
        expect(page.get_by_test_id("featured")).to_be_in_viewport()  # "now explaining" is over the video
    else:
        expect(shelf_panel).to_be_visible()
        expect(page.get_by_test_id("dock")).to_be_hidden()
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")

    pill.click()
    row = page.get_by_test_id("shelf").locator(f"[data-item='{tofu.pk}']")
    expect(row).to_be_in_viewport()
    row.get_by_test_id("buy").click()
    sheet = page.get_by_test_id("checkout")
    for name, value in SHIPPING.items():
        sheet.locator(f"input[name={name}]").fill(value)
    expect(sheet.get_by_test_id("checkout-total")).to_have_text("¥9.90")
    card_element(page, "4242 4242 4242 4242")  # as the page prints it, spaces and all
    sheet.get_by_test_id("checkout-pay").click()
    expect(sheet.get_by_test_id("checkout-status")).to_have_attribute("data-order-status", "paid", timeout=30_000)
    assert Order.objects.get(buyer=viewer).status == Order.Status.PAID

    sheet.get_by_test_id("checkout-pay").click()  # "Done"
    expect(sheet).to_be_hidden()
    expect(pill.get_by_test_id("flash-now-remaining")).to_have_text(viewport.js("%(n)s left", n=4))
    if viewport.phone:
        page.keyboard.press("Escape")  # the shelf's sheet goes back down
        expect(shelf_panel).to_be_hidden()
        page.get_by_test_id("shelf-open").click()
        expect(shelf_panel).to_be_visible()
        page.get_by_test_id("sheet-backdrop").click(position={"x": 20, "y": 20})
        expect(shelf_panel).to_be_hidden()
    screenshot(page, f"room-flash-{viewport.id}")


def test_report_a_comment(pages: Pages, viewport: Viewport, live_room, viewer):
    spammer = factories.UserFactory.create(username="spammer", display_name="Cheap Deals")
    text = "WIN FREE PHONES at spam.example"
    comment = room_services.comment_create(room=live_room, user=spammer, text=text, role="viewer")
    page = pages.open(f"/rooms/{live_room.pk}/", user=viewer, phone=viewport.phone, locale=viewport.locale)

    row = page.get_by_test_id("comments").locator(f"[data-id='{comment.pk}']")
    expect(row).to_contain_text("WIN FREE PHONES")
    report = row.get_by_test_id("report")
    if viewport.phone:
        expect(report).to_be_hidden()  # over the video, a comment's menu waits for a tap
        row.locator(".text").click()
    expect(report).to_have_text(viewport.js("Report"))
    report.click()
    row.get_by_role("button", name=viewport.js("Spam or ads")).click()
    expect(row.get_by_test_id("reported")).to_have_text(viewport.js("Reported. Thank you."))
    assert Report.objects.filter(comment=comment, reporter=viewer, reason="spam").exists()


def test_a_keyword_comment_enters_the_giveaway_and_the_page_says_so(
    pages: Pages, viewport: Viewport, live_room, viewer
):
    room_services.giveaway_create(room=live_room, title="Free tea", winners=1, duration_s=600, keyword="tea")
    page = pages.open(f"/rooms/{live_room.pk}/", user=viewer, phone=viewport.phone, locale=viewport.locale)

    card = page.get_by_test_id("giveaway")
    expect(card).to_contain_text("Free tea")
    expect(card).to_be_in_viewport()
    page.get_by_test_id("comment-input").fill("Tea")
    page.get_by_test_id("comment-send").click()
    expect(card.get_by_test_id("giveaway-entered")).to_have_text(viewport.js("You are in the draw."))
    expect(card.get_by_test_id("giveaway-enter")).to_have_count(0)

    # Someone else comes in: the comment stream says so, as the apps do.
    neighbour = factories.UserFactory.create(username="neighbour", display_name="Wu Lan")
    pages.open(f"/rooms/{live_room.pk}/", user=neighbour, phone=viewport.phone, locale=viewport.locale)
    joined = page.get_by_test_id("comments").get_by_test_id("moment").filter(has_text="Wu Lan")
    # One presence report names everyone who came in its second: the viewer too, when the
    # page, the comment and the entry took less than that ("Viewer Li、Wu Lan 来了").
    alone = "👋 " + viewport.js("%(name)s joined", name="Wu Lan")
    together = "👋 " + viewport.js("%(names)s joined", names="Viewer Li" + viewport.js(", ") + "Wu Lan")
    expect(joined).to_have_text(re.compile(f"^({re.escape(alone)}|{re.escape(together)})$"), timeout=15_000)
