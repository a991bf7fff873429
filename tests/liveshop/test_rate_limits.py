"""Per-user and per-IP rate limits on login, register, order creation and comments.

The limits are on here (tests/conftest.py turns them off for the rest of the suite) with
small rates, and every test counts against its own made-up addresses and usernames:
the buckets live in the test Redis and outlive a test.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

import pytest
from rest_framework.test import APIClient

from liveshop.errors import RateLimited
from liveshop.ratelimit import client_network, rate_limit_take
from orders.models import Order
from tests import factories
from tests.helpers import assert_error

pytestmark = pytest.mark.django_db

SHIPPING = {"name": "Li Ming", "phone": "+86 138 0000 0000", "address": "8 Jiefangbei Rd", "district": "Yuzhong"}


@pytest.fixture(autouse=True)
def _limits_on(settings: Any) -> None:
    settings.RATE_LIMITS = True


def an_ip() -> str:
    """An address no other test uses (TEST-NET-3 and a random host)."""
    value = uuid.uuid4().int
    return f"203.0.{value % 250}.{(value >> 8) % 250 + 1}"


def a_name() -> str:
    return f"u{uuid.uuid4().hex[:12]}"


def assert_rate_limited(response: Any) -> int:
    body = assert_error(response, 429, "rate_limited")
    retry_after = int(response["Retry-After"])
    assert retry_after >= 1
    assert body["retry_after"] == retry_after
    return retry_after


def login(ip: str, username: str, password: str = "wrong-password") -> Any:
    return APIClient(REMOTE_ADDR=ip).post(
        "/api/v1/auth/token/", {"username": username, "password": password}, format="json"
    )


def test_login_is_limited_per_username_tried(settings):
    settings.RATE_LIMIT_LOGIN_USER = (2, 3)
    victim = a_name()
    for _ in range(3):  # from three addresses: the username's bucket is what empties
        assert_error(login(an_ip(), victim), 400, "invalid")
    retry_after = assert_rate_limited(login(an_ip(), victim))
    assert retry_after <= 30  # 2 a minute: one every 30 s
    # Another username is not affected.
    assert_error(login(an_ip(), a_name()), 400, "invalid")


def test_login_is_limited_per_ip_across_usernames(settings):
    settings.RATE_LIMIT_LOGIN_IP = (60, 4)
    office = an_ip()
    for _ in range(4):
        assert_error(login(office, a_name()), 400, "invalid")
    assert_rate_limited(login(office, a_name()))
    # The next office down the road still logs in.
    assert_error(login(an_ip(), a_name()), 400, "invalid")


def test_a_limited_login_does_not_check_the_password(settings):
    settings.RATE_LIMIT_LOGIN_USER = (1, 1)
    user = factories.UserFactory.create(username=a_name())
    user.set_password("right-password-123")
    user.save()
    ip = an_ip()
    assert login(ip, user.username, "right-password-123").status_code == 200
    assert_rate_limited(login(ip, user.username, "right-password-123"))


def test_register_is_limited_per_ip(settings):
    settings.RATE_LIMIT_REGISTER_IP = (60, 3)
    office = an_ip()

    def register(ip: str) -> Any:
        return APIClient(REMOTE_ADDR=ip).post(
            "/api/v1/auth/register/", {"username": a_name(), "password": "tea-from-wulong-42"}, format="json"
        )

    for _ in range(3):
        assert register(office).status_code == 201
    assert_rate_limited(register(office))
    assert register(an_ip()).status_code == 201


def test_the_limit_resets_after_the_wait(settings):
    settings.RATE_LIMIT_LOGIN_IP = (60, 2)  # one a second after the burst
    ip = an_ip()
    for _ in range(2):
        assert_error(login(ip, a_name()), 400, "invalid")
    assert_rate_limited(login(ip, a_name()))
    deadline = time.monotonic() + 20
    while (response := login(ip, a_name())).status_code == 429:
        assert time.monotonic() < deadline, "the bucket never refilled"
        time.sleep(0.2)
    assert_error(response, 400, "invalid")


def test_web_sign_in_and_sign_up_pages_share_the_limits(client, settings):
    settings.RATE_LIMIT_LOGIN_USER = (1, 1)
    settings.RATE_LIMIT_REGISTER_IP = (1, 1)
    victim = a_name()
    ip = an_ip()
    assert client.post("/login/", {"username": victim, "password": "x"}, REMOTE_ADDR=ip).status_code == 200
    response = client.post("/login/", {"username": victim, "password": "x"}, REMOTE_ADDR=an_ip())
    assert response.status_code == 429
    assert int(response["Retry-After"]) >= 1
    form = {"username": a_name(), "password": "tea-from-wulong-42"}
    assert client.post("/register/", form, REMOTE_ADDR=ip).status_code == 302  # signed up, signed in
    client.logout()
    assert client.post("/register/", {**form, "username": a_name()}, REMOTE_ADDR=ip).status_code == 429


def _order(client: APIClient, item: Any, key: str) -> Any:
    return client.post(
        "/api/v1/orders/",
        {"items": [{"sku": item.sku_id, "quantity": 1}], "shipping": SHIPPING},
        format="json",
        HTTP_IDEMPOTENCY_KEY=key,
    )


def _client(user: Any, ip: str) -> APIClient:
    client = APIClient(REMOTE_ADDR=ip)
    client.force_authenticate(user)
    return client


def test_orders_are_limited_per_user(settings, item):
    # Stripe is not configured here: every admitted order answers 503 `unavailable`
    # after its checks, which is all this test needs (a 429 comes before anything).
    settings.RATE_LIMIT_ORDER_USER = (60, 3)
    buyer = factories.UserFactory.create()
    for n in range(3):
        assert _order(_client(buyer, an_ip()), item, f"k{n}").status_code != 429
    assert_rate_limited(_order(_client(buyer, an_ip()), item, "k3"))
    other = factories.UserFactory.create()
    assert _order(_client(other, an_ip()), item, "k0").status_code != 429


def test_orders_are_limited_per_ip_across_buyers(settings, item):
    settings.RATE_LIMIT_ORDER_IP = (60, 4)
    office = an_ip()
    for n in range(4):
        assert _order(_client(factories.UserFactory.create(), office), item, f"k{n}").status_code != 429
    refused_buyer = factories.UserFactory.create()
    orders_before = Order.objects.count()
    assert_rate_limited(_order(_client(refused_buyer, office), item, "k4"))
    assert Order.objects.count() == orders_before  # refused before anything was held
    assert _order(_client(refused_buyer, an_ip()), item, "k4").status_code != 429


def test_listing_orders_is_not_limited(settings, viewer):
    settings.RATE_LIMIT_ORDER_USER = (1, 1)
    client = _client(viewer, an_ip())
    for _ in range(5):
        assert client.get("/api/v1/orders/").status_code == 200


def test_limits_off_let_everything_through(settings):
    settings.RATE_LIMITS = False
    settings.RATE_LIMIT_LOGIN_IP = (1, 1)
    ip = an_ip()
    for _ in range(5):
        assert_error(login(ip, a_name()), 400, "invalid")


def test_comments_are_limited_per_ip(settings, live_room):
    from rooms import services

    settings.RATE_LIMIT_COMMENT_IP = (60, 3)
    office = an_ip()
    authors = [factories.UserFactory.create() for _ in range(4)]
    for author in authors[:3]:
        services.comment_create(room=live_room, user=author, text="Hello", role="viewer", client_ip=office)
    with pytest.raises(RateLimited):
        services.comment_create(room=live_room, user=authors[3], text="Hello", role="viewer", client_ip=office)
    services.comment_create(room=live_room, user=authors[3], text="Hello", role="viewer", client_ip=an_ip())
    # The host is never limited.
    host = live_room.host.user
    services.comment_create(room=live_room, user=host, text="Welcome", role="host", client_ip=office)


def test_ipv6_counts_per_64():
    assert client_network("2001:db8:1:2:aaaa::1") == client_network("2001:db8:1:2:bbbb::9") == "2001:db8:1:2::/64"
    assert client_network("2001:db8:1:3::1") == "2001:db8:1:3::/64"
    assert client_network("198.51.100.7") == "198.51.100.7"
    assert client_network("") is None
    assert client_network("not an address") is None


def test_redis_down_lets_requests_through(settings, monkeypatch):
    import redis

    from rooms.realtime import backend

    class Down:
        def rate_limit(self, *args: Any, **kwargs: Any) -> float:
            raise redis.ConnectionError("Connection refused")

    monkeypatch.setattr(backend, "get_backend", lambda: Down())
    settings.RATE_LIMIT_LOGIN_IP = (1, 1)
    rate_limit_take(action="login", user="someone", ip=an_ip())  # no exception


def test_admin_login_has_the_api_logins_limits(client, settings):
    # The audit: 14 wrong passwords on /admin/login/, then the right one got in.
    settings.RATE_LIMIT_LOGIN_USER_IP = (1, 3)
    admin_user = factories.UserFactory.create(username=a_name(), is_staff=True, is_superuser=True)
    admin_user.set_password("right-password-123")
    admin_user.save()
    ip = an_ip()
    for _ in range(3):
        response = client.post("/admin/login/", {"username": admin_user.username, "password": "wrong"}, REMOTE_ADDR=ip)
        assert response.status_code == 200  # the form again, with its error
    response = client.post(
        "/admin/login/", {"username": admin_user.username, "password": "right-password-123"}, REMOTE_ADDR=ip
    )
    assert response.status_code == 429
    assert int(response["Retry-After"]) >= 1
    assert "_auth_user_id" not in client.session


def test_wrong_passwords_from_one_address_do_not_lock_the_owner_out(settings):
    # The audit: ten wrong passwords a minute for a username locked its real owner out.
    settings.RATE_LIMIT_LOGIN_USER_IP = (2, 3)
    settings.RATE_LIMIT_LOGIN_USER = (10, 20)
    owner = factories.UserFactory.create(username=a_name())
    owner.set_password("right-password-123")
    owner.save()
    attacker = an_ip()
    for _ in range(3):
        assert_error(login(attacker, owner.username), 400, "invalid")
    assert_rate_limited(login(attacker, owner.username))
    assert_rate_limited(login(attacker, owner.username, "right-password-123"))
    # The owner, from home, still signs in.
    assert login(an_ip(), owner.username, "right-password-123").status_code == 200


def test_a_distributed_guess_is_stopped_by_the_softer_per_username_limit(settings):
    settings.RATE_LIMIT_LOGIN_USER_IP = (2, 3)
    settings.RATE_LIMIT_LOGIN_USER = (2, 5)
    victim = a_name()
    for _ in range(5):  # each from a new address: no (username, address) bucket empties
        assert_error(login(an_ip(), victim), 400, "invalid")
    retry_after = assert_rate_limited(login(an_ip(), victim))
    assert retry_after <= 30


def test_lone_surrogate_username_is_keyed_safely_by_the_limiter(settings):
    # The audit: "\ud800" in the username blew up building the limiter's Redis key (500).
    settings.RATE_LIMIT_LOGIN_USER_IP = (1, 1)
    ip = an_ip()
    body = '{"username": "vic\\ud800tim", "password": "wrong-password"}'
    client = APIClient(REMOTE_ADDR=ip)
    assert_error(client.post("/api/v1/auth/token/", body, content_type="application/json"), 400, "invalid")
    # The second try is counted against the same bucket: the key is stable.
    assert_rate_limited(client.post("/api/v1/auth/token/", body, content_type="application/json"))
