"""Browser stories of giveaways (entered by comment, drawn, verified) and moderation (a mute)."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from rooms.models import Room, RoomItem
from tests import factories
from tests.web.conftest import Pages

pytestmark = [pytest.mark.django_db(transaction=True)]


@pytest.fixture
def shelf(live_room: Room) -> list[RoomItem]:
    shop = factories.ShopFactory.create(owner=live_room.host.user, name="Xiannv Mountain Farm")
    tea = factories.SkuFactory.create(
        product=factories.ProductFactory.create(shop=shop, title="Xiannv Black Tea"), name="250 g tin", stock=50
    )
    return [factories.RoomItemFactory.create(room=live_room, sku=tea, position=1)]


def test_giveaway_by_comment_keyword_winners_on_both_pages_and_verified(pages: Pages, live_room, shelf, host):
    ana = factories.UserFactory.create(username="ana", display_name="Ana Liu")
    bo = factories.UserFactory.create(username="bo", display_name="Bo Chen")
    studio = pages.open(f"/studio/rooms/{live_room.pk}/", user=host, phone=False)
    viewers = [pages.open(f"/rooms/{live_room.pk}/", user=user) for user in (ana, bo)]

    form = studio.get_by_test_id("giveaway-form")
    form.locator("input[name=title]").fill("Two tins of tea")
    form.locator("input[name=winners]").fill("2")
    form.locator("input[name=duration_s]").fill("6")
    form.locator("input[name=keyword]").fill("tea")
    form.locator("select[name=prize_sku]").select_option(str(shelf[0].sku_id))
    studio.get_by_test_id("giveaway-start").click()

    for page in viewers:
        card = page.get_by_test_id("giveaway")
        expect(card).to_contain_text("Two tins of tea")
        expect(card.get_by_test_id("giveaway-countdown")).to_have_text(re.compile(r"^0:0\d$"))
        # The moment shows in the comment stream too, as live-shopping apps do.
        expect(page.get_by_test_id("comments").locator(".moment-giveaway")).to_contain_text(
            "Giveaway “Two tins of tea”: comment “tea” to enter."
        )
        page.get_by_test_id("comment-input").fill("TEA ")  # the keyword, trimmed, any case
        page.get_by_test_id("comment-send").click()
        # The comment entered them, and the page says so (the Enter button goes).
        expect(card.get_by_test_id("giveaway-entered")).to_be_visible()
        expect(card.get_by_test_id("giveaway-enter")).to_have_count(0)

    # Beat's sweeper draws at closes_at; both pages hear giveaway.drawn.
    for page in viewers:
        winners = page.get_by_test_id("giveaway-winners")
        expect(winners).to_contain_text("Ana Liu", timeout=30_000)
        expect(winners).to_contain_text("Bo Chen")
        expect(page.get_by_test_id("giveaway-claim")).to_be_visible()  # each of them won a tin

    with viewers[0].context.expect_page() as opened:
        viewers[0].get_by_test_id("giveaway-verify").click()
    verify = opened.value
    expect(verify.get_by_test_id("commitment-check")).to_have_attribute("data-ok", "true")
    expect(verify.get_by_test_id("winners-check")).to_have_attribute("data-ok", "true")
    expect(verify.get_by_test_id("entrants")).to_have_text("2")
    assert verify.get_by_test_id("seed-hash").inner_text() == verify.get_by_test_id("commitment").inner_text()

    # A giveaway without a prize: its winner is congratulated, with no claim form to fail.
    form.locator("input[name=title]").fill("A surprise from the host")
    form.locator("input[name=winners]").fill("1")
    form.locator("input[name=keyword]").fill("")
    form.locator("select[name=prize_sku]").select_option("")
    studio.get_by_test_id("giveaway-start").click()
    surprise = viewers[1].get_by_test_id("giveaway").filter(has_text="A surprise from the host")
    surprise.get_by_test_id("giveaway-enter").click()
    expect(surprise.get_by_test_id("giveaway-entered")).to_be_visible()
    expect(surprise.get_by_test_id("giveaway-won")).to_have_text("You won! Congratulations.", timeout=30_000)
    expect(surprise.get_by_test_id("giveaway-claim")).to_have_count(0)


def test_muted_viewer_sees_the_muted_message_and_the_room_never_sees_the_comment(pages: Pages, live_room, host):
    loud = factories.UserFactory.create(username="loud", display_name="Loud Lu")
    studio = pages.open(f"/studio/rooms/{live_room.pk}/", user=host, phone=False)
    viewer = pages.open(f"/rooms/{live_room.pk}/", user=loud)

    viewer.get_by_test_id("comment-input").fill("BUY MY STUFF")
    viewer.get_by_test_id("comment-send").click()
    comment = studio.get_by_test_id("comments").locator(".comment", has_text="BUY MY STUFF")
    comment.locator("details.menu summary").click()
    comment.get_by_test_id("mute-user").click()
    expect(studio.get_by_test_id("moderation-status")).to_have_text("Loud Lu is muted for 5 minutes.")

    viewer.get_by_test_id("comment-input").fill("still here")
    viewer.get_by_test_id("comment-send").click()
    expect(viewer.get_by_test_id("comment-error")).to_contain_text("You are muted in this room")
    expect(viewer.get_by_test_id("comment-input")).to_have_value("still here")  # the words are given back
    studio.wait_for_timeout(500)
    expect(studio.get_by_test_id("comments")).not_to_contain_text("still here")
