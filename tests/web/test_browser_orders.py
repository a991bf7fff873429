"""My orders in the browser: the list, an order's page following it as it changes, paying
later with the card as the page prints it, the seller shipping it, asking for a refund."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from playwright.sync_api import expect

from orders.models import Order
from orders.services.orders import order_ship
from orders.stripe_limiter import stripe_write_slot
from rooms.models import Room, RoomItem
from tests import factories
from tests.web.conftest import Pages, screenshot
from tests.web.test_browser import SHIPPING, card_element
from tests.web.words import BOTH, Viewport

pytestmark = [pytest.mark.django_db(transaction=True)]


@pytest.fixture
def tofu(live_room: Room) -> RoomItem:
    shop = factories.ShopFactory.create(owner=live_room.host.user, name="Xiannv Mountain Farm")
    sku = factories.SkuFactory.create(
        product=factories.ProductFactory.create(shop=shop, title="羊角豆腐干", title_en="Yangjiao Dried Tofu"),
        name="5片装", name_en="5 pieces", price=1500,
    )  # fmt: skip
    return factories.RoomItemFactory.create(room=live_room, sku=sku, position=1)


def place_order(page: Any, room: Room, item: RoomItem) -> dict[str, Any]:
    """POST /api/v1/orders/ from the page, as its checkout does (session and CSRF token)."""
    status, body = page.evaluate(
        """async ([room, item, shipping]) => {
          const answer = await fetch('/api/v1/orders/', {method: 'POST', credentials: 'same-origin', headers: {
            'Content-Type': 'application/json', 'Idempotency-Key': crypto.randomUUID(),
            'X-CSRFToken': document.querySelector('meta[name=csrf-token]').content},
            body: JSON.stringify({room, items: [{item, quantity: 2}], shipping})});
          return [answer.status, await answer.json()];
        }""",
        [room.pk, item.pk, SHIPPING],
    )
    assert status == 201, body
    return dict(body)


@pytest.mark.parametrize("viewport", BOTH, ids=lambda viewport: viewport.id)
def test_my_orders_pay_later_follow_the_shipping_and_ask_for_a_refund(
    pages: Pages, viewport: Viewport, live_room, tofu, viewer
):
    page = pages.open("/orders/", user=viewer, phone=viewport.phone, locale=viewport.locale)
    expect(page.locator("#orders-empty")).to_be_visible()
    placed = place_order(page, live_room, tofu)

    page.reload()
    card = page.get_by_test_id("orders").locator(f"[data-order='{placed['id']}']")
    waiting = viewport.js("Waiting for payment")
    expect(card.get_by_test_id("order-status")).to_have_text(waiting)
    expect(card).to_contain_text("羊角豆腐干 / 5片装 \u00d72")  # the order keeps the seller's words
    expect(card).to_contain_text("¥30.00")
    card.locator("a").click()

    expect(page.get_by_test_id("order-number")).to_have_text(placed["number"])
    status = page.get_by_test_id("order-status")
    expect(status).to_have_text(waiting)
    card_element(page, "4242 4242 4242 4242")
    page.get_by_test_id("order-pay").click()
    expect(status).to_have_text(viewport.js("Paid"), timeout=30_000)  # the webhook, the worker, the page's refresh

    # The seller ships it: the page follows without a reload.
    order_ship(order=Order.objects.get(pk=placed["id"]), tracking="SF1234567890")
    expect(status).to_have_text(viewport.js("Shipped"), timeout=15_000)
    expect(page.get_by_test_id("bell-count")).to_have_text("2")  # paid, shipped: the buyer's own socket
    expect(page.get_by_test_id("order-tracking")).to_contain_text("SF1234567890")

    page.get_by_test_id("refund-form").locator("textarea").fill("Two packs arrived torn open.")
    page.get_by_test_id("refund-ask").click()
    expect(page.get_by_test_id("refund-claim")).to_contain_text("Two packs arrived torn open.")
    expect(page.get_by_test_id("refund-form")).to_be_hidden()
    assert Order.objects.get(pk=placed["id"]).refund_claim.reason == "Two packs arrived torn open."
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    screenshot(page, f"order-page-{viewport.id}")


def test_someone_elses_order_page_is_404_and_orders_need_a_sign_in(pages: Pages, live_room, tofu, viewer):
    page = pages.open("/orders/", user=viewer)
    placed = place_order(page, live_room, tofu)
    other = pages.open(f"/orders/{placed['id']}/", user=factories.UserFactory.create())
    expect(other.locator("body")).to_contain_text("not yours to see")
    anonymous = pages.open("/orders/")
    assert "/login/" in anonymous.url


def test_in_a_burst_the_checkout_waits_for_its_preparing_payment_then_pays(
    pages: Pages, live_room, tofu, viewer, settings
):
    # Other buyers took Stripe's next writes (the limiter every process shares, at the
    # server's 25 a second): this order's PaymentIntent is made by the worker seconds later.
    settings.STRIPE_WRITE_RATE = 25
    page = pages.open(f"/rooms/{live_room.pk}/", user=viewer, phone=False)
    page.get_by_test_id("shelf").locator(f"[data-item='{tofu.pk}']").get_by_test_id("buy").click()
    sheet = page.get_by_test_id("checkout")
    for name, value in SHIPPING.items():
        sheet.locator(f"input[name={name}]").fill(value)
    card_element(page, "4242 4242 4242 4242")
    assert max(stripe_write_slot() for _ in range(150)) >= 4  # the next 4 s of writes are taken
    sheet.get_by_test_id("checkout-pay").click()
    expect(sheet.get_by_test_id("checkout-status")).to_contain_text("preparing the payment")
    expect(sheet.get_by_test_id("checkout-status")).to_have_attribute("data-order-status", "paid", timeout=60_000)
    order = Order.objects.get(buyer=viewer)
    assert order.status == Order.Status.PAID
    assert order.payment.created_at > order.created_at + timedelta(seconds=1)  # made later, by the worker
