"""A red envelope in the browser: the host drops it from the studio (its wallet shown),
viewers see it count down over the video, open it, and see who got what. Chromium
against the real stack (uvicorn, Celery, Redis, PostgreSQL)."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from envelopes.models import RedEnvelope
from orders.services.wallet import wallet_coins
from rooms.models import Room
from tests import factories
from tests.coins import assert_ledger_balanced, grant
from tests.web.conftest import Pages, screenshot
from tests.web.words import DESKTOP_EN, PHONE_ZH

pytestmark = [pytest.mark.django_db(transaction=True)]


def test_the_host_drops_a_red_envelope_and_viewers_grab_it(pages: Pages, live_room: Room, host, viewer):
    grant(host, 500)
    other = factories.UserFactory.create(username="neighbour", display_name="Wu Lan")
    late = factories.UserFactory.create(username="late", display_name="Late Zhang")
    grant(late, 1)

    # Two viewers watch, on a phone in Chinese and on a desktop in English.
    phone = pages.open(f"/rooms/{live_room.pk}/", user=viewer, phone=True, locale=PHONE_ZH.locale)
    desktop = pages.open(f"/rooms/{live_room.pk}/", user=other, phone=False, locale=DESKTOP_EN.locale)
    latecomer = pages.open(f"/rooms/{live_room.pk}/", user=late, phone=False, locale=DESKTOP_EN.locale)
    for page in (phone, desktop, latecomer):
        expect(page.get_by_test_id("comment-input")).to_be_visible()

    studio = pages.open(f"/studio/rooms/{live_room.pk}/", user=host, phone=False)
    expect(studio.get_by_test_id("red-envelope-wallet")).to_have_text("500")
    form = studio.get_by_test_id("red-envelope-form")
    form.locator("[name=coins]").fill("200")
    form.locator("[name=shares]").fill("2")
    form.locator("[name=opens_in_s]").fill("5")
    studio.get_by_test_id("red-envelope-drop").click()
    expect(studio.get_by_test_id("red-envelope-wallet")).to_have_text("300")
    expect(studio.get_by_test_id("red-envelope-left")).to_have_text("2 of 2 shares left", timeout=10_000)

    # The envelope arrives on the viewers' pages with its countdown, then opens.
    for page, viewport in ((phone, PHONE_ZH), (desktop, DESKTOP_EN)):
        envelope = page.get_by_test_id("red-envelope")
        expect(envelope).to_contain_text(viewport.js("%(coins)s coins in %(shares)s shares", coins=200, shares=2))
        # Counting down to its opening, or (on a slow machine) open already.
        countdown = page.get_by_test_id("red-envelope-countdown")
        expect(countdown.or_(page.get_by_test_id("red-envelope-open"))).to_be_visible()
    phone.get_by_test_id("red-envelope-open").click(timeout=10_000)
    won = phone.get_by_test_id("red-envelope-won")
    expect(won).to_have_text(re.compile(r"^抢到 \d+ 金币！$"))
    mine = int(re.findall(r"\d+", won.inner_text())[0])
    screenshot(phone, "red-envelope-zh")
    desktop.get_by_test_id("red-envelope-open").click()
    expect(desktop.get_by_test_id("red-envelope-won")).to_have_text(re.compile(r"^You got \d+ coins!$"))
    assert wallet_coins(user_id=viewer.pk) == mine
    assert wallet_coins(user_id=viewer.pk) + wallet_coins(user_id=other.pk) == 200

    # Empty (red_envelope.empty reached the latecomer's page): all gone, and who got what.
    expect(latecomer.get_by_test_id("red-envelope-gone")).to_have_text("All gone.")
    expect(latecomer.get_by_test_id("red-envelope-open")).to_have_count(0)
    latecomer.get_by_test_id("red-envelope-who").click()
    grabs = latecomer.get_by_test_id("red-envelope-grabs")
    expect(grabs).to_contain_text(f"Viewer Li: {mine} coins")
    expect(grabs).to_contain_text(f"Wu Lan: {200 - mine} coins")
    assert RedEnvelope.objects.get().status == "empty"
    assert wallet_coins(user_id=host.pk) == 300
    assert_ledger_balanced()
