"""The seller's and the host's money in the browser (/money/): balances, the statement
and its CSV, payouts, and a host cashing out gift coins. Chromium against the real stack."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from orders.models import Order
from orders.services.orders import order_deliver, order_ship
from payouts.services.balances import orders_release_due
from payouts.services.payouts import payouts_build
from rooms.models import Room
from tests import factories
from tests.coins import gift, grant
from tests.payouts.money import offer_item, settled_order
from tests.web.conftest import Pages, screenshot
from tests.web.words import DESKTOP_EN, PHONE_ZH

pytestmark = [pytest.mark.django_db(transaction=True)]


def test_the_farmer_reads_its_money_and_the_cadre_cashes_out(
    pages: Pages, live_room, shop, sku, host, other_host, viewer
):
    shelf = factories.RoomItemFactory.create(room=live_room, sku=sku, live_price=5800)
    cadre_room = factories.RoomFactory.create(host=other_host.host, status=Room.Status.LIVE)
    old = settled_order(viewer, shelf, 2)  # 11,600: delivered long ago, paid out
    settled_order(viewer, offer_item(cadre_room, sku, commission_bps=1000), 1)  # 6,800: pending
    order_ship(order=old)
    order_deliver(order_id=old.pk)
    Order.objects.filter(pk=old.pk).update(delivered_at=timezone.now() - timedelta(days=30))
    assert orders_release_due() == 1
    assert len(payouts_build()) == 1
    grant(viewer, 1000)
    from orders.services.gifts import gift_send

    gift_send(room=cadre_room, sender=viewer, gift=gift(), quantity=5)

    farm = pages.open("/money/", user=host, phone=True, locale=PHONE_ZH.locale)
    section = farm.locator("[data-testid=payee][data-kind=shop]")  # the farmer hosts too
    expect(section.get_by_test_id("balance-pending")).to_have_text("¥57.80")  # 6,800 less 5 % and 10 %
    expect(section.get_by_test_id("balance-in-payout")).to_have_text("¥110.20")  # 11,600 less 5 %
    # Two sales and their fees, the commission on the cadre's, the payout set aside.
    expect(section.get_by_test_id("statement-line")).to_have_count(6)
    expect(section.get_by_test_id("statement-closing")).to_have_text("¥57.80")
    expect(section.get_by_test_id("payout")).to_contain_text(PHONE_ZH.js("waiting for approval"))
    assert "format=csv" in (section.get_by_test_id("statement-csv").get_attribute("href") or "")
    screenshot(farm, "money-zh")
    # Connecting a Stripe account: Stripe's onboarding (the stand-in's page) sends the
    # farmer back here, and payouts then go to the account.
    section.get_by_test_id("connect-stripe").click()
    farm.wait_for_url("**/money/")
    shop_section = farm.locator("[data-testid=payee][data-kind=shop]")
    expect(shop_section.get_by_test_id("payout-account")).to_have_text(
        PHONE_ZH.js("Payouts go to your Stripe account.")
    )
    expect(shop_section.get_by_test_id("connect-stripe")).to_be_hidden()

    cadre = pages.open("/money/", user=other_host, phone=False, locale=DESKTOP_EN.locale)
    host_section = cadre.get_by_test_id("payee")
    expect(host_section.get_by_test_id("balance-pending")).to_have_text("¥6.80")
    form = host_section.get_by_test_id("cash-out")
    form.locator("[name=coins]").fill("100")
    form.get_by_role("button").click()
    expect(form.get_by_role("status")).to_have_text(
        DESKTOP_EN.js("%(coins)s coins cashed out for %(amount)s.", coins=100, amount="¥10.00")
    )
    expect(host_section.get_by_test_id("balance-available")).to_have_text("¥10.00")
    expect(host_section.get_by_test_id("statement-line")).to_have_count(2)  # the commission, the cash-out
