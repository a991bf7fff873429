"""Personas and API clients shared by every test.

The personas of STYLE.md: `viewer`, `host` (verified, owns `shop` and `room`),
`unverified_host`, `other_host` (verified, owns nothing here), `staff`, `anonymous`.
`client_for(user)` gives an API client that authenticates with a real API token of the user
(a new one each call, as a login on another device would make).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis
from django.conf import settings as django_settings
from django.db import connections
from rest_framework.test import APIClient

from catalog.models import Shop, Sku
from liveshop.models import User
from orders.services.ledger import ledger_forget
from rooms.models import Host, Room, RoomItem
from tests import factories

ClientFor = Callable[[User | None], APIClient]


@pytest.fixture(scope="session", autouse=True)
def realtime_prefix() -> Iterator[str]:
    """Redis pub/sub ignores the database index: each test session publishes room events
    under its own LIVESHOP_REDIS_PREFIX, so runs sharing a Redis never hear each other,
    and deletes its keys at the end."""
    from rooms.realtime.backend import reset_backend

    prefix = f"liveshop-test-{uuid.uuid4().hex[:10]}"
    django_settings.LIVESHOP_REDIS_PREFIX = prefix
    # The real-time path runs ORM calls on pooled threads; closing their connections after
    # each call lets the test database be dropped at the end.
    connections.databases["default"]["CONN_MAX_AGE"] = 0
    reset_backend()
    yield prefix
    reset_backend()
    if django_settings.REDIS_URL:
        client = redis.Redis.from_url(django_settings.REDIS_URL)
        for key in client.scan_iter(match=f"{prefix}*", count=1000):  # and "<prefix>-other" of the tests
            client.unlink(key)
        client.close()


@pytest.fixture(scope="session")
def shared_redis_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """REDIS_CLUSTER_URL of a Redis Cluster (three masters, three replicas) started once
    for the session, for tests that run a path on one Redis and on a cluster. Tests that
    move slots or kill nodes start their own (tests/chaos/test_redis_cluster.py)."""
    from tests.chaos.cluster_support import private_cluster

    with private_cluster(tmp_path_factory.mktemp("redis-cluster")) as cluster:
        yield cluster.url


@pytest.fixture(scope="session", autouse=True)
def media_root(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """Uploads (product photos, room covers) go to a temporary MEDIA_ROOT, never var/media.
    Servers the tests start get LIVESHOP_VAR_DIR=<tmp>, so theirs is <tmp>/media."""
    from django.test import override_settings

    root = tmp_path_factory.mktemp("media")
    with override_settings(MEDIA_ROOT=root):
        yield root


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings: Any) -> None:
    # PBKDF2's 1M iterations cost ~0.3 s a user; the tests are not about hashing.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def _no_rate_limits(settings: Any) -> None:
    # Every in-process test client comes from 127.0.0.1 and the limits' buckets outlive a
    # test, so the suite as a whole would trip the per-IP limits; their own tests
    # (tests/liveshop/test_rate_limits.py) turn them back on. Servers started by the
    # end-to-end tests run with the real limits.
    settings.RATE_LIMITS = False
    # Stripe's write limit too (orders/stripe_limiter.py): its own tests turn it back on.
    settings.STRIPE_WRITE_RATE = 0


@pytest.fixture(autouse=True)
def _forget_ledger_accounts() -> Iterator[None]:
    yield
    ledger_forget()  # transactional tests commit accounts, then the database is emptied


@pytest.fixture
def client_for() -> ClientFor:
    def make(user: User | None) -> APIClient:
        client = APIClient()
        if user is not None:
            client.credentials(HTTP_AUTHORIZATION=f"Token {factories.api_token(user)}")
        return client

    return make


@pytest.fixture
def anonymous() -> None:
    return None


@pytest.fixture
def viewer(db: Any) -> User:
    return factories.UserFactory.create(username="viewer", display_name="Viewer Li", district="Yuzhong")


@pytest.fixture
def staff(db: Any) -> User:
    return factories.UserFactory.create(username="staff", display_name="Admin Wang", is_staff=True)


@pytest.fixture
def host_profile(db: Any) -> Host:
    user = factories.UserFactory.create(username="farmer", display_name="Farmer Chen", district="Wulong")
    return factories.HostFactory.create(user=user, kind=Host.Kind.FARMER, district="Wulong", verified=True)


@pytest.fixture
def host(host_profile: Host) -> User:
    return host_profile.user


@pytest.fixture
def other_host(db: Any) -> User:
    user = factories.UserFactory.create(username="cadre", display_name="Cadre Zhou", district="Jiangbei")
    factories.HostFactory.create(user=user, kind=Host.Kind.CADRE, district="Jiangbei", verified=True)
    return user


@pytest.fixture
def unverified_host(db: Any) -> User:
    user = factories.UserFactory.create(username="newcomer", display_name="New Farmer")
    factories.HostFactory.create(user=user, district="Rongchang", verified=False)
    return user


@pytest.fixture
def shop(host: User) -> Shop:
    return factories.ShopFactory.create(owner=host, name="Wulong Hills Farm", district="Wulong")


@pytest.fixture
def sku(shop: Shop) -> Sku:
    product = factories.ProductFactory.create(shop=shop, title="Xiannv Black Tea", category="tea")
    return factories.SkuFactory.create(product=product, name="250 g tin", price=6800, stock=50)


@pytest.fixture
def room(host_profile: Host) -> Room:
    return factories.RoomFactory.create(host=host_profile, title="Spring tea from Wulong")


@pytest.fixture
def live_room(room: Room) -> Room:
    room.status = Room.Status.LIVE
    room.save(update_fields=["status"])
    return room


@pytest.fixture
def item(room: Room, sku: Sku) -> RoomItem:
    return factories.RoomItemFactory.create(room=room, sku=sku)


@pytest.fixture
def persona(request: pytest.FixtureRequest) -> Callable[[str], User | None]:
    """Look a persona up by name, for authorization matrices."""

    def get(name: str) -> User | None:
        return request.getfixturevalue(name)

    return get
