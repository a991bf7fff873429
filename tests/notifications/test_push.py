"""Web Push: a browser's subscription is kept only for a real push service's endpoint, and a
notification is pushed to it encrypted (RFC 8291) and signed (VAPID), here to a local push
service that records what it gets; the test decrypts it as the browser would."""

from __future__ import annotations

import json
from collections.abc import Iterator
from io import StringIO
from typing import Any

import http_ece  # type: ignore[import-untyped]
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from django.core.management import call_command

from liveshop.celery import app as celery_app
from notifications import push, services
from notifications.models import Notification, PushSubscription
from tests.helpers import assert_error
from tests.push_support import (
    PushService,
    b64url,
    browser_keys,
    push_service_running,
    subscription,
    vapid_pair,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def push_service(settings: Any) -> Iterator[str]:
    settings.VAPID_PUBLIC_KEY, settings.VAPID_PRIVATE_KEY = vapid_pair()
    settings.WEB_PUSH_ALLOWED_HOSTS = ["127.0.0.1"]
    settings.WEB_PUSH_ALLOW_HTTP = True
    with push_service_running() as url:
        yield url


@pytest.fixture(name="browser_keys")
def browser_keys_fixture() -> tuple[ec.EllipticCurvePrivateKey, bytes]:
    return browser_keys()


def test_a_notification_reaches_the_browsers_push_service_encrypted_and_signed(
    client_for, viewer, push_service, browser_keys, django_capture_on_commit_callbacks, settings
):
    client = client_for(viewer)
    assert client.get("/api/v1/notifications/push/").json() == {"vapid_public_key": settings.VAPID_PUBLIC_KEY}
    body = {**subscription(f"{push_service}/push/abc", browser_keys), "language": "zh-hans"}
    assert client.post("/api/v1/notifications/push/subscriptions/", body, format="json").status_code == 201
    assert client.post("/api/v1/notifications/push/subscriptions/", body, format="json").status_code == 200
    gone = subscription(f"{push_service}/push/gone", browser_keys)
    client.post("/api/v1/notifications/push/subscriptions/", gone, format="json")

    previous = celery_app.conf.task_always_eager
    celery_app.conf.task_always_eager = True
    try:
        with django_capture_on_commit_callbacks(execute=True):
            services.notify(
                user_ids=[viewer.pk], kind="order.shipped", data={"order": {"id": 9, "number": "LS9"}}, key="k"
            )
    finally:
        celery_app.conf.task_always_eager = previous

    delivered = {r["path"]: r for r in PushService.received}
    assert set(delivered) == {"/push/abc", "/push/gone"}
    request = delivered["/push/abc"]
    assert request["headers"]["authorization"].startswith("vapid t=")  # signed with the VAPID key
    assert request["headers"]["content-encoding"] == "aes128gcm"
    assert int(request["headers"]["ttl"]) > 0
    private, auth = browser_keys
    payload = json.loads(http_ece.decrypt(request["body"], private_key=private, auth_secret=auth, version="aes128gcm"))
    assert (payload["kind"], payload["data"]) == ("order.shipped", {"order": {"id": 9, "number": "LS9"}})
    # What the service worker shows, in the subscribing page's language.
    assert (payload["title"], payload["body"], payload["url"]) == ("liveshop", "订单 LS9 已发货。", "/orders/9/")
    # The push service said the other one is gone: it is forgotten.
    assert list(PushSubscription.objects.values_list("endpoint", flat=True)) == [f"{push_service}/push/abc"]


@pytest.mark.parametrize(
    "endpoint",
    ["https://evil.example/push", "http://169.254.169.254/latest/meta-data", "ftp://127.0.0.1/x", "not a url"],
)
def test_only_a_push_services_endpoint_is_kept(client_for, viewer, push_service, browser_keys, settings, endpoint):
    response = client_for(viewer).post(
        "/api/v1/notifications/push/subscriptions/", subscription(endpoint, browser_keys), format="json"
    )
    assert_error(response, 400, "invalid")
    assert not PushSubscription.objects.exists()


def test_keys_must_be_keys_and_push_must_be_configured(client_for, viewer, push_service, browser_keys, settings):
    client = client_for(viewer)
    body = subscription(f"{push_service}/push/abc", browser_keys)
    for keys in (
        {"p256dh": "not-base64!", "auth": "x"},
        {"p256dh": b64url(b"\x04" + b"1" * 10), "auth": b64url(b"a" * 16)},
    ):
        assert_error(
            client.post("/api/v1/notifications/push/subscriptions/", {**body, "keys": keys}, format="json"),
            400,
            "invalid",
        )
    assert_error(
        client_for(None).post("/api/v1/notifications/push/subscriptions/", body, format="json"),
        401,
        "not_authenticated",
    )
    settings.VAPID_PRIVATE_KEY = ""
    assert client.get("/api/v1/notifications/push/").json() == {"vapid_public_key": None}
    assert_error(client.post("/api/v1/notifications/push/subscriptions/", body, format="json"), 409, "conflict")
    assert (
        client.delete(
            "/api/v1/notifications/push/subscriptions/", {"endpoint": body["endpoint"]}, format="json"
        ).status_code
        == 204
    )


def test_vapid_keys_prints_a_pair_that_signs(settings, viewer, push_service, browser_keys):
    out = StringIO()
    call_command("vapid_keys", stdout=out)
    pairs = dict(line.split("=", 1) for line in out.getvalue().split())
    settings.VAPID_PUBLIC_KEY, settings.VAPID_PRIVATE_KEY = pairs["VAPID_PUBLIC_KEY"], pairs["VAPID_PRIVATE_KEY"]
    push.push_subscription_save(
        user=viewer, **{"endpoint": f"{push_service}/push/k", **subscription("", browser_keys)["keys"]}
    )
    services.notify(user_ids=[viewer.pk], kind="order.paid", data={"order": {"id": 1, "number": "LS1"}}, key="v")
    assert push.push_send(notification_ids=list(Notification.objects.values_list("id", flat=True))) == {
        "sent": 1,
        "gone": 0,
        "failed": 0,
    }
