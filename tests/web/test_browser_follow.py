"""Follow a host from the room page; when the host goes live the follower's bell counts
one (pushed over the user's own socket by the Celery worker's fan-out), the bell lists it,
a Web Push subscription made from the bell receives it, and the home page's Following
list shows the show. On a phone in Chinese and on a desktop in English.

Chromium's own push service is Google's, out of reach here: the page's
PushManager.subscribe answers with an endpoint on the test's local push service and keys
the test made, as a browser's subscription would carry. Everything after that is real:
the page posts the subscription, the worker encrypts and signs the push, and the test
decrypts what arrives as the browser would.
"""

from __future__ import annotations

import json
from typing import Any

import http_ece  # type: ignore[import-untyped]
import pytest
from playwright.sync_api import expect

from notifications.models import PushSubscription
from rooms import services as room_services
from rooms.models import Follow
from tests.push_support import PushService, browser_keys, push_service_running, subscription
from tests.servers import wait_until
from tests.web.conftest import Pages, screenshot
from tests.web.words import BOTH, Viewport

pytestmark = [pytest.mark.django_db(transaction=True)]

STUB_PUSH_MANAGER = """
PushManager.prototype.getSubscription = async () => null;
PushManager.prototype.subscribe = async function (options) {
  const key = new Uint8Array(options.applicationServerKey);
  window.__applicationServerKey = btoa(String.fromCharCode(...key))
    .replace(/\\+/g, '-').replace(/\\//g, '_').replace(/=+$/, '');
  const made = %s;
  return {endpoint: made.endpoint, toJSON: () => made};
};
"""


@pytest.mark.parametrize("viewport", BOTH, ids=lambda viewport: viewport.id)
def test_follow_then_the_bell_rings_and_the_push_arrives(pages: Pages, viewport: Viewport, room, host_profile, viewer):
    keys = browser_keys()
    with push_service_running() as push_service:
        made = subscription(f"{push_service}/push/{viewport.id}", keys)

        def prepare(page: Any) -> None:
            page.context.grant_permissions(["notifications"])
            page.add_init_script(STUB_PUSH_MANAGER % json.dumps(made))

        page = pages.open(
            f"/rooms/{room.pk}/", user=viewer, phone=viewport.phone, locale=viewport.locale, before=prepare
        )
        follow = page.get_by_test_id("follow")
        expect(follow).to_have_text(viewport.js("+ Follow"))
        follow.click()
        expect(follow).to_have_text(viewport.js("Following"))
        assert Follow.objects.filter(user=viewer, host=host_profile).exists()
        expect(page.get_by_test_id("bell-count")).to_be_hidden()

        # Alerts on this device, from the bell.
        page.get_by_test_id("bell").click()
        page.get_by_test_id("push-enable").click()
        expect(page.get_by_test_id("bell-panel")).to_contain_text(viewport.js("Alerts are on for this browser."))
        assert page.evaluate("window.__applicationServerKey") == pages.stack.vapid_public
        wait_until(lambda: PushSubscription.objects.filter(user=viewer).exists(), timeout=15, what="the subscription")
        page.keyboard.press("Escape")
        expect(page.get_by_test_id("bell-panel")).to_be_hidden()

        room_services.room_start(room=room)  # the fan-out runs on the stack's worker

        count = page.get_by_test_id("bell-count")
        expect(count).to_have_text("1", timeout=30_000)
        page.get_by_test_id("bell").click()
        notice = page.get_by_test_id("bell-panel").get_by_test_id("notification")
        said = viewport.js("%(host)s is live: %(title)s", host="Farmer Chen", title=room.title)
        expect(notice).to_contain_text(said)
        expect(notice.locator("a")).to_have_attribute("href", f"/rooms/{room.pk}/")
        expect(count).to_be_hidden()  # opening the bell read it
        screenshot(page, f"bell-{viewport.id}")
        page.keyboard.press("Escape")
        expect(page.get_by_test_id("bell-panel")).to_be_hidden()

        # The push reached the push service, encrypted for this browser's keys and signed.
        wait_until(lambda: PushService.received, timeout=30, what="the push")
        request = PushService.received[0]
        assert request["path"] == f"/push/{viewport.id}"
        assert request["headers"]["authorization"].startswith("vapid t=")
        private, auth = keys
        payload = json.loads(
            http_ece.decrypt(request["body"], private_key=private, auth_secret=auth, version="aes128gcm")
        )
        assert (payload["kind"], payload["url"]) == ("host.live", f"/rooms/{room.pk}/")
        # In the language of the page that subscribed.
        assert payload["title"] == viewport.page("%(host)s is live", host="Farmer Chen")
        assert payload["body"] == room.title

    home = pages.open("/", user=viewer, phone=viewport.phone, locale=viewport.locale)
    expect(home.get_by_test_id("following")).to_contain_text(room.title)

    # Unfollowing from the room works the same way back.
    follow.click()
    expect(follow).to_have_text(viewport.js("+ Follow"))
    assert not Follow.objects.filter(user=viewer, host=host_profile).exists()
