"""Follow a host from the room page; when the host goes live the follower's bell counts
one (pushed over the user's own socket by the Celery worker's fan-out), the bell lists it,
and the home page's Following list shows the show. In Chinese, on a phone."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from rooms import services as room_services
from rooms.models import Follow
from tests.web.conftest import Pages, screenshot

pytestmark = [pytest.mark.django_db(transaction=True)]


def test_follow_then_the_bell_rings_when_the_host_goes_live(pages: Pages, room, host_profile, viewer):
    page = pages.open(f"/rooms/{room.pk}/", user=viewer, locale="zh-CN")
    follow = page.get_by_test_id("follow")
    expect(follow).to_have_text("+ 关注")
    follow.click()
    expect(follow).to_have_text("已关注")
    assert Follow.objects.filter(user=viewer, host=host_profile).exists()
    expect(page.get_by_test_id("bell-count")).to_be_hidden()

    room_services.room_start(room=room)  # the fan-out runs on the stack's worker

    count = page.get_by_test_id("bell-count")
    expect(count).to_have_text("1", timeout=30_000)
    page.get_by_test_id("bell").click()
    notice = page.get_by_test_id("bell-panel").get_by_test_id("notification")
    expect(notice).to_contain_text(f"Farmer Chen 开播了：{room.title}")
    expect(notice.locator("a")).to_have_attribute("href", f"/rooms/{room.pk}/")
    expect(count).to_be_hidden()  # opening the bell read it
    screenshot(page, "bell")
    page.keyboard.press("Escape")
    expect(page.get_by_test_id("bell-panel")).to_be_hidden()

    home = pages.open("/", user=viewer, locale="zh-CN")
    expect(home.get_by_test_id("following")).to_contain_text(room.title)

    # Unfollowing from the room works the same way back.
    follow.click()
    expect(follow).to_have_text("+ 关注")
    assert not Follow.objects.filter(user=viewer, host=host_profile).exists()
