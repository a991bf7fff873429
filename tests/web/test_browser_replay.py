"""Replays in the browser: an ended show's replay plays, its comments appear as the video
reaches them (and follow the seek bar), a chapter jumps to its product, an order from the
replay is placed and paid at the shelf's price, `?t=` starts at a moment, the home page
lists it, and a product's page plays the clip of its farmer explaining it.

The replay is built by the real path (streams.replays.replay_build: ffmpeg remuxes a
recording as nginx-rtmp writes it) into the media directory the stack's server serves."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.test import override_settings
from django.utils import timezone
from playwright.sync_api import expect

from orders.models import Order
from rooms import services as room_services
from rooms.models import Comment, Room, RoomItem
from streams import replays
from streams.models import FeaturedMoment, ProductClip, Replay
from tests import factories
from tests.streams.replay_support import needs_ffmpeg, recorded
from tests.web.conftest import Pages, Stack, screenshot
from tests.web.test_browser import SHIPPING, card_element
from tests.web.words import BOTH, DESKTOP_EN, Viewport

pytestmark = [pytest.mark.django_db(transaction=True)]

SHOW_S = 40
# (offset in the show, text); the one removed by a moderator never shows.
SAID = [(2, "how much is the tea?"), (12, "is the tofu spicy?"), (14, "REMOVED spam"), (25, "two packs please")]


@pytest.fixture
def shelf(live_room: Room) -> list[RoomItem]:
    """Tea (live price ¥58.00 of ¥68.00) and dried tofu (¥15.00), named as a Chongqing seller writes."""
    shop = factories.ShopFactory.create(owner=live_room.host.user, name="Xiannv Mountain Farm")
    tea = factories.SkuFactory.create(
        product=factories.ProductFactory.create(shop=shop, title="仙女红茶", title_en="Xiannv Black Tea"),
        name="250克罐装", name_en="250 g tin", price=6800, stock=50,
    )  # fmt: skip
    tofu = factories.SkuFactory.create(
        product=factories.ProductFactory.create(shop=shop, title="羊角豆腐干", title_en="Yangjiao Dried Tofu"),
        name="5片装", name_en="5 pieces", price=1500, stock=40,
    )  # fmt: skip
    return [
        factories.RoomItemFactory.create(room=live_room, sku=tea, live_price=5800, position=1),
        factories.RoomItemFactory.create(room=live_room, sku=tofu, position=2),
    ]


@pytest.fixture
def show(stack: Stack, live_room: Room, shelf: list[RoomItem], viewer: Any, tmp_path: Path) -> Iterator[Room]:
    """A 40 s show: the tea explained from the start, the tofu from 20 s; comments at known
    moments; ended, and its replay built into the stack's media directory."""
    needs_ffmpeg()
    tea, tofu = shelf
    start = timezone.now() - timedelta(minutes=5)
    at = lambda seconds: start + timedelta(seconds=seconds)  # noqa: E731
    FeaturedMoment.objects.create(room=live_room, item=tea, at=at(-5))
    FeaturedMoment.objects.create(room=live_room, item=tofu, at=at(20))
    for offset, text in SAID:
        comment = Comment.objects.create(room=live_room, user=viewer, text=text)
        Comment.objects.filter(pk=comment.pk).update(
            created_at=at(offset), deleted_at=at(offset + 1) if text.startswith("REMOVED") else None
        )
    room_services.room_end(room=live_room)  # no recordings dir here: nothing is enqueued
    recordings = tmp_path / "recordings"
    recordings.mkdir()
    with override_settings(MEDIA_ROOT=stack.logs / "media", INGEST_RECORDINGS_DIR=str(recordings)):
        recorded(live_room, recordings, seconds=SHOW_S, ended_at=at(SHOW_S), size="320x180")
        replay = Replay.objects.create(room=live_room)
        assert replays.replay_build(room_id=live_room.pk, version=replay.version) == "ready"
        yield Room.objects.get(pk=live_room.pk)


def video_time(page: Any) -> float:
    return float(page.get_by_test_id("video").evaluate("(video) => video.currentTime"))


def wait_playing_past(page: Any, seconds: float) -> None:
    page.wait_for_function(
        "([s]) => { const v = document.querySelector('#video'); return !v.paused && v.currentTime > s; }",
        arg=[seconds],
        timeout=30_000,
    )


def test_the_replay_plays_with_its_comments_chapters_and_shelf_and_sells(pages: Pages, show: Room, shelf, viewer):
    tea = shelf[0]
    page = pages.open(f"/rooms/{show.pk}/replay/", user=viewer, phone=DESKTOP_EN.phone, locale=DESKTOP_EN.locale)
    video = page.get_by_test_id("video")
    expect(video).to_have_attribute("data-state", "playing", timeout=30_000)
    expect(page.get_by_test_id("room-status")).to_have_text("Replay")
    chapters = page.get_by_test_id("chapter")
    expect(chapters).to_have_count(2)
    expect(chapters.nth(0)).to_contain_text("0:00")
    expect(chapters.nth(1)).to_contain_text("0:20")
    expect(chapters.nth(0)).to_have_class("chapter now")
    expect(page.get_by_test_id("featured")).to_contain_text("Xiannv Black Tea")

    # The first comment appears when the video reaches its moment, not before.
    comments = page.get_by_test_id("comments")
    expect(comments).to_contain_text("how much is the tea?", timeout=30_000)
    assert 1.5 <= video_time(page) < 12
    expect(comments).not_to_contain_text("is the tofu spicy?")

    # A chapter jumps to its product: the video goes there, the card follows.
    chapters.nth(1).click()
    wait_playing_past(page, 20)
    assert video_time(page) == pytest.approx(20, abs=1.5)
    expect(chapters.nth(1)).to_have_class("chapter now")
    expect(page.get_by_test_id("featured")).to_contain_text("Yangjiao Dried Tofu")
    expect(comments).to_contain_text("is the tofu spicy?")  # 12 s: already said by then
    expect(comments).not_to_contain_text("two packs please")
    expect(comments).to_contain_text("two packs please", timeout=30_000)  # said at 25 s
    expect(comments).not_to_contain_text("REMOVED")

    # Back with the seek bar: what was said later goes away again.
    video.evaluate("(video) => { video.currentTime = 5; }")
    expect(comments).not_to_contain_text("is the tofu spicy?")
    expect(comments).to_contain_text("how much is the tea?")
    expect(chapters.nth(0)).to_have_class("chapter now")

    # Buying from the replay: the shelf's price (the tea's live price), paid with the card.
    tea_card = page.get_by_test_id("shelf").locator(f"[data-item='{tea.pk}']")
    expect(tea_card.get_by_test_id("item-price")).to_have_text("¥58.00")
    tea_card.get_by_test_id("buy").click()
    sheet = page.get_by_test_id("checkout")
    for name, value in SHIPPING.items():
        sheet.locator(f"input[name={name}]").fill(value)
    expect(sheet.get_by_test_id("checkout-total")).to_have_text("¥58.00")
    card_element(page, "4242 4242 4242 4242")
    sheet.get_by_test_id("checkout-pay").click()
    expect(sheet.get_by_test_id("checkout-status")).to_have_attribute("data-order-status", "paid", timeout=30_000)
    order = Order.objects.get(buyer=viewer)
    assert (order.status, order.room_id, order.total) == (Order.Status.PAID, show.pk, 5800)


@pytest.mark.parametrize("viewport", BOTH, ids=lambda viewport: viewport.id)
def test_a_link_to_a_moment_the_home_page_and_the_product_clip(pages: Pages, viewport: Viewport, show: Room, shelf):
    tofu = shelf[1]
    # The home page lists the show under "Replays"; its card opens the replay.
    home = pages.open("/", phone=viewport.phone, locale=viewport.locale)
    replays_section = home.get_by_test_id("replays")
    expect(replays_section).to_contain_text(viewport.js("Replay · %(duration)s", duration="0:40"))
    replays_section.locator(f"[data-room='{show.pk}'] a").first.click()
    expect(home).to_have_url(f"{pages.stack.web}/rooms/{show.pk}/replay/")
    expect(home.get_by_test_id("video")).to_have_attribute("data-state", "playing", timeout=30_000)
    expect(home.get_by_test_id("room-status")).to_have_text(viewport.page("Replay"))
    screenshot(home, f"replay-{viewport.id}")

    # The live page of the ended show points to its replay.
    live = pages.open(f"/rooms/{show.pk}/", phone=viewport.phone, locale=viewport.locale)
    expect(live.get_by_test_id("watch-replay")).to_be_visible()

    # The product's page plays the clip of the farmer explaining it; its link opens the
    # replay at that moment.
    clip = ProductClip.objects.get(product=tofu.sku.product)
    product = pages.open(f"/products/{tofu.sku.product_id}/", phone=viewport.phone, locale=viewport.locale)
    expect(product.get_by_test_id("product-title")).to_have_text(
        "羊角豆腐干" if viewport.chinese else "Yangjiao Dried Tofu"
    )
    clip_video = product.get_by_test_id("clip-video")
    clip_video.evaluate("(video) => video.play()")
    product.wait_for_function(
        "() => document.querySelector('[data-testid=clip-video]').currentTime > 0.5", timeout=30_000
    )
    product.get_by_test_id("clip-replay").click()
    expect(product).to_have_url(f"{pages.stack.web}/rooms/{show.pk}/replay/?t={int(clip.at_s)}")
    wait_playing_past(product, clip.at_s - 0.5)
    assert video_time(product) == pytest.approx(clip.at_s + 0.5, abs=2)
