"""Web Push: a browser's subscription is kept only for a real push service's endpoint, and a
notification is pushed to it encrypted (RFC 8291) and signed (VAPID), here to a local push
service that records what it gets; the test decrypts it as the browser would."""

from __future__ import annotations

import base64
import json
import os
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from io import StringIO
from typing import Any

import http_ece  # type: ignore[import-untyped]
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from django.core.management import call_command

from liveshop.celery import app as celery_app
from notifications import push, services
from notifications.models import Notification, PushSubscription
from tests.helpers import assert_error

pytestmark = pytest.mark.django_db


def b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def point(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.public_key().public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)


class PushService(BaseHTTPRequestHandler):
    received: list[dict[str, Any]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        headers = {k.lower(): v for k, v in self.headers.items()}
        self.received.append({"path": self.path, "headers": headers, "body": body})
        self.send_response(410 if self.path.endswith("/gone") else 201)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def push_service(settings: Any) -> Iterator[str]:
    vapid = ec.generate_private_key(ec.SECP256R1())
    settings.VAPID_PUBLIC_KEY = b64url(point(vapid))
    settings.VAPID_PRIVATE_KEY = b64url(
        vapid.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    settings.WEB_PUSH_ALLOWED_HOSTS = ["127.0.0.1"]
    settings.WEB_PUSH_ALLOW_HTTP = True
    PushService.received = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), PushService)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


@pytest.fixture
def browser_keys() -> tuple[ec.EllipticCurvePrivateKey, bytes]:
    return ec.generate_private_key(ec.SECP256R1()), os.urandom(16)


def subscription(endpoint: str, keys: tuple[ec.EllipticCurvePrivateKey, bytes]) -> dict[str, Any]:
    private, auth = keys
    return {"endpoint": endpoint, "keys": {"p256dh": b64url(point(private)), "auth": b64url(auth)}}


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
