"""The web client in a real browser (Debian's Chromium through Playwright) against the
real stack: uvicorn, the room WebSocket over Redis, PostgreSQL, localstripe and a Celery
worker. Each test is a story a person lives through on the pages."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from playwright.sync_api import expect

from liveshop.models import User
from orders.models import Order, StripeEvent
from rooms import services as room_services
from rooms.models import Comment, Host, Room, RoomItem
from tests import factories
from tests.web.conftest import Pages, screenshot

pytestmark = [pytest.mark.django_db(transaction=True)]

SHIPPING = {"name": "Li Ming", "phone": "13800000000", "address": "8 Jiefangbei Rd", "district": "Yuzhong"}


@pytest.fixture
def shelf(live_room: Room) -> list[RoomItem]:
    """Tea (featured, live price ¥58.00 of ¥68.00) and dried tofu (¥15.00) on the shelf."""
    shop = factories.ShopFactory.create(owner=live_room.host.user, name="Xiannv Mountain Farm")
    tea = factories.SkuFactory.create(
        product=factories.ProductFactory.create(shop=shop, title="Xiannv Black Tea"),
        name="250 g tin",
        price=6800,
        stock=50,
    )
    tofu = factories.SkuFactory.create(
        product=factories.ProductFactory.create(shop=shop, title="Yangjiao Dried Tofu", category="tofu"),
        name="5 pieces",
        price=1500,
        stock=40,
    )
    items = [
        factories.RoomItemFactory.create(room=live_room, sku=tea, live_price=5800, position=1),
        factories.RoomItemFactory.create(room=live_room, sku=tofu, position=2),
    ]
    Room.objects.filter(pk=live_room.pk).update(featured_item=items[0])
    return items


def card_element(page: Any, number: str) -> None:
    """Type a card into Stripe.js's card element (the stand-in's: plain inputs), key by key
    as a person does (the number field groups the digits as they come)."""
    card = page.get_by_test_id("card-element")
    for field, typed in (("number", number), ("expiry", "1234"), ("cvc", "123")):
        card.locator(f"input[data-field={field}]").fill("")
        card.locator(f"input[data-field={field}]").press_sequentially(typed)


def test_two_viewers_see_each_others_comments_likes_and_count(pages: Pages, live_room, shelf, viewer):
    neighbour = factories.UserFactory.create(username="neighbour", display_name="Neighbour Wu")
    path = f"/rooms/{live_room.pk}/"
    li = pages.open(path, user=viewer)
    wu = pages.open(path, user=neighbour)
    # Wu types at once, before the socket may be open: the comment waits for it.
    wu.get_by_test_id("comment-input").fill("多少钱一斤?")
    wu.get_by_test_id("comment-send").click()

    expect(li.get_by_test_id("viewers-now")).to_have_text("2")
    expect(li.get_by_test_id("room-status")).to_have_text("Live")
    expect(li.get_by_test_id("featured")).to_contain_text("Xiannv Black Tea")
    expect(li.get_by_test_id("featured")).to_contain_text("¥58.00")
    comment = li.get_by_test_id("comments").locator(".comment", has_text="多少钱一斤?")
    expect(comment).to_be_visible()
    expect(comment.locator(".author")).to_have_text("Neighbour Wu")
    expect(wu.get_by_test_id("comment-input")).to_have_value("")
    assert Comment.objects.filter(room=live_room, user=neighbour, text="多少钱一斤?").count() == 1

    for _ in range(3):
        wu.get_by_test_id("like-button").click()
    expect(wu.locator(".float-heart").first).to_be_attached()  # the visible effect, at once
    expect(li.get_by_test_id("like-count")).to_have_text("3")

    # Someone not signed in reads along but cannot write; the count rises for them too.
    anonymous = pages.open(path)
    expect(anonymous.get_by_test_id("comments")).to_contain_text("多少钱一斤?")
    expect(anonymous.get_by_test_id("comment-input")).to_be_hidden()
    expect(anonymous.get_by_test_id("like-button")).to_be_disabled()
    expect(li.get_by_test_id("viewers-now")).to_have_text("3")
    # The gift catalog opens from the dock (a phone's sheet); no giveaway is open, so its
    # panel stays out of sight.
    expect(li.get_by_test_id("gift-panel")).to_be_hidden()
    li.get_by_test_id("gifts-open").click()
    expect(li.get_by_test_id("gift-panel")).to_be_visible()
    expect(li.get_by_test_id("giveaway-panel")).to_be_hidden()


def test_host_runs_the_show_and_a_viewer_buys_end_to_end(pages: Pages, live_room, shelf, host, viewer):
    Room.objects.filter(pk=live_room.pk).update(status=Room.Status.SCHEDULED)
    tofu = shelf[1]
    watcher = factories.UserFactory.create(username="watcher", display_name="王芳", district="Nanan")
    studio = pages.open(f"/studio/rooms/{live_room.pk}/", user=host, phone=False)
    buyer = pages.open(f"/rooms/{live_room.pk}/", user=viewer)
    other = pages.open(f"/rooms/{live_room.pk}/", user=watcher, locale="zh-CN")

    # The host goes live: every page hears room.status.
    expect(buyer.get_by_test_id("room-status")).to_have_text("Coming up")
    studio.get_by_test_id("start-show").click()
    expect(buyer.get_by_test_id("room-status")).to_have_text("Live")
    expect(other.get_by_test_id("room-status")).to_have_text("直播中")
    expect(studio.get_by_test_id("end-show")).to_be_visible()

    # ... features the tofu and starts a flash sale on it: 5 units at ¥9.90 for 2 minutes.
    tofu_row = studio.get_by_test_id("host-shelf").locator(f"[data-item='{tofu.pk}']")
    tofu_row.get_by_test_id("feature").click()
    expect(buyer.get_by_test_id("featured")).to_contain_text("Yangjiao Dried Tofu")
    tofu_row.get_by_test_id("flash").click()
    studio.get_by_test_id("flash-price").fill("9.90")
    studio.get_by_test_id("flash-quantity").fill("5")
    studio.get_by_test_id("flash-duration").fill("120")
    studio.get_by_test_id("flash-start").click()

    featured = buyer.get_by_test_id("featured")
    expect(featured.get_by_test_id("flash-sale")).to_contain_text("¥9.90")
    expect(featured.get_by_test_id("flash-remaining")).to_have_text("5 left")
    expect(featured.get_by_test_id("item-price")).to_have_text("¥9.90")
    countdown = featured.get_by_test_id("flash-countdown")
    expect(countdown).to_have_text(re.compile(r"^[12]:\d\d$"))
    first = countdown.inner_text()
    expect(countdown).not_to_have_text(first, timeout=3000)
    assert _seconds(countdown.inner_text()) < _seconds(first)  # it counts down

    # The buyer buys two: quantity, shipping, and a card that is declined, then a good one.
    featured.get_by_test_id("buy").click()
    sheet = buyer.get_by_test_id("checkout")
    sheet.get_by_test_id("checkout-quantity").fill("2")
    for name, value in SHIPPING.items():
        sheet.locator(f"input[name={name}]").fill(value)
    expect(sheet.get_by_test_id("checkout-total")).to_have_text("¥19.80")
    card_element(buyer, "4000 0000 0000 0341")
    sheet.get_by_test_id("checkout-pay").click()
    expect(sheet.get_by_test_id("checkout-error")).to_have_text("The card was declined. Try another card.")
    order = Order.objects.get(buyer=viewer)
    assert order.status == Order.Status.PENDING_PAYMENT
    expect(other.get_by_test_id("featured").get_by_test_id("flash-remaining")).to_have_text("剩 3 件")

    card_element(buyer, "4242 4242 4242 4242")  # as the page prints it, spaces and all
    sheet.get_by_test_id("checkout-pay").click()
    status = sheet.get_by_test_id("checkout-status")
    expect(status).to_have_attribute("data-order-status", "paid", timeout=30_000)
    expect(status).to_contain_text(order.number)

    # Paid only through Stripe's signed webhook, settled by the worker; one order, not two.
    order.refresh_from_db()
    assert order.status == Order.Status.PAID
    assert (order.total, order.items.get().quantity, order.items.get().flash_sale_id is not None) == (1980, 2, True)
    assert Order.objects.filter(buyer=viewer).count() == 1
    assert StripeEvent.objects.filter(type="payment_intent.succeeded").count() == 1

    # The other viewer's ticker (in Chinese) shows the sale, without the buyer's name.
    ticker = other.get_by_test_id("ticker")
    expect(ticker).to_contain_text("来自渝中的 V***i 买了 Yangjiao Dried Tofu ×2")  # noqa: RUF001
    bought = other.get_by_test_id("comments").locator(".moment-order")
    expect(bought).to_contain_text("V***i 买了 Yangjiao Dried Tofu")
    buyer.get_by_test_id("checkout-pay").click()  # "Done" closes the sheet
    expect(sheet).to_be_hidden()
    other.get_by_test_id("comment-input").fill("还有豆腐干吗?")
    other.get_by_test_id("comment-send").click()
    buyer.get_by_test_id("comment-input").fill("Tea looks great")
    buyer.get_by_test_id("comment-send").click()
    expect(studio.get_by_test_id("comments")).to_contain_text("还有豆腐干吗?")
    expect(studio.get_by_test_id("comments")).to_contain_text("Tea looks great")
    expect(studio.get_by_test_id("comments").locator(".comment").first.locator("details.menu")).to_be_attached()
    expect(studio.get_by_test_id("viewers-now")).to_have_text("3")
    # The host answers from the console; viewers see the answer marked as the host's.
    studio.get_by_test_id("comment-input").fill("Fresh from the press this morning!")
    studio.get_by_test_id("comment-send").click()
    answer = other.get_by_test_id("comments").locator(".comment.role-host")
    expect(answer).to_contain_text("Fresh from the press this morning!")
    expect(answer.locator(".role")).to_have_text("主播")
    for _ in range(4):
        other.get_by_test_id("like-button").click()
    expect(studio.get_by_test_id("like-count")).to_have_text("4")
    screenshot(other, "viewer-page")
    screenshot(studio, "host-console")

    # The host ends the show; the viewers' pages say so and stop reconnecting.
    studio.once("dialog", lambda dialog: dialog.accept())
    studio.get_by_test_id("end-show").click()
    expect(buyer.get_by_test_id("room-status")).to_have_text("Ended")
    expect(buyer.get_by_test_id("connection")).to_have_text("The show has ended. Thank you for watching!")
    assert Room.objects.get(pk=live_room.pk).status == Room.Status.ENDED

    # Someone arriving afterwards sees the ended show once, and the page does not knock again.
    sockets: list[str] = []
    late = pages.open(
        f"/rooms/{live_room.pk}/", before=lambda page: page.on("websocket", lambda ws: sockets.append(ws.url))
    )
    expect(late.get_by_test_id("connection")).to_have_text("The show has ended. Thank you for watching!")
    expect(late.get_by_test_id("poster")).to_contain_text("The show has ended.")
    late.wait_for_timeout(1500)
    assert len(sockets) == 1


def _seconds(text: str) -> int:
    minutes, seconds = text.split(":")
    return int(minutes) * 60 + int(seconds)


def test_a_dropped_socket_reconnects_with_since_and_misses_nothing(pages: Pages, live_room, shelf, viewer):
    author = factories.UserFactory.create(username="author", display_name="Farmer Fan")
    sockets: list[dict[str, Any]] = []
    refuse = {"on": False}

    def route(ws: Any) -> None:
        if refuse["on"]:
            ws.close(code=4000, reason="network down")  # as if the network were still down
            return
        frames: list[str] = []
        server = ws.connect_to_server()

        def to_page(message: str) -> None:
            frames.append(message)
            ws.send(message)

        server.on_message(to_page)
        ws.on_message(lambda message: server.send(message))
        sockets.append({"url": ws.url, "route": ws, "server": server, "frames": frames})

    page = pages.open(
        f"/rooms/{live_room.pk}/",
        user=viewer,
        before=lambda p: p.route_web_socket(re.compile(r"/ws/rooms/"), route),
    )
    connection = page.get_by_test_id("connection")
    expect(page.get_by_test_id("shelf")).to_contain_text("Yangjiao Dried Tofu")
    assert len(sockets) == 1
    assert "since=" not in sockets[0]["url"]
    seq_before = _last_seq(sockets[0]["frames"])

    # The network drops. While the page is cut off, a comment is made in the room.
    refuse["on"] = True
    sockets[0]["route"].close(code=4000, reason="network down")
    sockets[0]["server"].close()
    expect(connection).to_contain_text("Connection lost. Reconnecting")
    room = Room.objects.get(pk=live_room.pk)
    room_services.comment_create(room=room, user=author, text="Picked this morning", role="viewer")
    refuse["on"] = False

    # The page comes back with ?since=<the last seq it saw>, and the server replays the
    # missed comment (not a fresh snapshot).
    expect(page.get_by_test_id("comments")).to_contain_text("Picked this morning", timeout=20_000)
    expect(connection).to_be_hidden()
    assert len(sockets) == 2
    assert sockets[1]["url"].endswith(f"?since={seq_before}")
    first_frame = json.loads(sockets[1]["frames"][0])
    replayed = first_frame.get("events", [first_frame])
    assert all(event["type"] != "room.snapshot" for event in replayed)
    assert "comment.new" in [event["type"] for event in replayed]
    assert page.get_by_test_id("comments").locator(".comment", has_text="Picked this morning").count() == 1

    # And the reconnected socket works both ways.
    page.get_by_test_id("comment-input").fill("Back again")
    page.get_by_test_id("comment-send").click()
    expect(page.get_by_test_id("comments")).to_contain_text("Back again")


def _last_seq(frames: list[str]) -> int:
    seqs = [
        event["seq"]
        for frame in frames
        for event in json.loads(frame).get("events", [json.loads(frame)])
        if isinstance(event.get("seq"), int)
    ]
    return max(seqs)


def test_register_sign_in_and_the_browsers_language(pages: Pages, live_room, shelf, other_host):
    cadre_host = Host.objects.get(user=other_host)
    upcoming = factories.RoomFactory.create(host=cadre_host, title="Jiangbei specialties tonight")

    # A Chinese browser registers: the page speaks Chinese and signs the new account in.
    page = pages.open("/register/?next=/", locale="zh-CN")
    expect(page.locator("h1")).to_have_text("创建账号")
    form = page.get_by_test_id("register-form")
    form.locator("input[name=username]").fill("xiaomei")
    form.locator("input[name=password]").fill("short")
    form.locator("button[type=submit]").click()
    expect(form.locator(".error")).to_contain_text("密码长度太短")  # the validators, in Chinese
    form.locator("input[name=password]").fill("tea-from-wulong-2026")
    form.locator("input[name=display_name]").fill("小美")
    form.locator("input[name=district]").fill("Jiangbei")
    form.locator("button[type=submit]").click()
    expect(page.get_by_test_id("signed-in-as")).to_have_text("小美")
    assert User.objects.get(username="xiaomei").district == "Jiangbei"

    # The front page: live now and coming up, each by the host's district.
    live = page.get_by_test_id("live-rooms").locator("[data-district='Wulong']")
    expect(live).to_contain_text(live_room.title)
    expect(live).to_contain_text("人在看")
    soon = page.get_by_test_id("upcoming-rooms").locator("[data-district='Jiangbei']")
    expect(soon).to_contain_text(upcoming.title)
    page.get_by_role("link", name=re.compile(re.escape(live_room.title))).click()
    expect(page.get_by_test_id("room-status")).to_have_text("直播中")
    expect(page.locator("#featured h2")).to_have_text("讲解中")

    # Out, and in again through the login form; an English browser gets English.
    page.get_by_role("button", name="退出").click()
    expect(page.get_by_role("link", name="登录")).to_be_visible()
    english = pages.open(f"/login/?next=/rooms/{live_room.pk}/")
    english.locator("input[name=username]").fill("xiaomei")
    english.locator("input[name=password]").fill("wrong")
    english.get_by_test_id("login-form").locator("button[type=submit]").click()
    expect(english.get_by_test_id("login-form").locator(".error")).to_have_text("Wrong username or password.")
    english.locator("input[name=password]").fill("tea-from-wulong-2026")
    english.get_by_test_id("login-form").locator("button[type=submit]").click()
    expect(english.get_by_test_id("signed-in-as")).to_have_text("小美")
    expect(english.locator("#featured h2")).to_have_text("Now explaining")
    expect(english.get_by_test_id("featured").get_by_test_id("buy")).to_have_text("Buy")


def test_the_verify_page_runs_and_says_when_there_is_no_such_giveaway(pages: Pages):
    page = pages.open("/giveaways/999999/verify/", locale="zh-CN")
    expect(page.locator("h1")).to_have_text("验证抽奖")
    expect(page.locator("#verify-error")).to_have_text("未找到。")


def test_the_card_form_reads_like_a_card_form_in_chinese(pages: Pages, live_room, shelf, viewer):
    page = pages.open(f"/rooms/{live_room.pk}/", user=viewer, locale="zh-CN")
    page.get_by_test_id("featured").get_by_test_id("buy").click()
    sheet = page.get_by_test_id("checkout")
    card = sheet.get_by_test_id("card-element")
    expect(card.locator("input[data-field=number]")).to_have_attribute("placeholder", "卡号")
    expect(card.locator("input[data-field=expiry]")).to_have_attribute("placeholder", "月 / 年")
    expect(card).not_to_contain_text("localstripe")
    card.locator("input[data-field=number]").press_sequentially("4242424242424242")
    expect(card.locator("input[data-field=number]")).to_have_value("4242 4242 4242 4242")
    for name, value in SHIPPING.items():
        sheet.locator(f"input[name={name}]").fill(value)
    sheet.get_by_test_id("checkout-pay").click()  # no expiry typed: no order placed
    expect(sheet.get_by_test_id("checkout-error")).to_have_text("请填写完整的卡号、有效期和安全码。")
    assert not Order.objects.filter(buyer=viewer).exists()
