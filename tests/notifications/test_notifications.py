"""Notifications: stored once per user and event, listed and counted by the API, pushed to
the user's own socket (/ws/me/) as they are made, and made by what users care about: a
followed host going live (in batches), their order paid, shipped, refunded, a giveaway won."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from channels.db import database_sync_to_async
from django.db import transaction

from liveshop.celery import app as celery_app
from notifications import live, services, tasks
from notifications.models import Notification
from rooms import services as room_services
from rooms.models import Follow, Room
from tests import factories
from tests.helpers import assert_error
from tests.rooms.conftest import Socket

pytestmark = pytest.mark.django_db


@pytest.fixture
def pushed(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    sent: list[dict[str, Any]] = []
    monkeypatch.setattr(live, "publish", lambda notifications: sent.extend(notifications))
    return sent


def test_one_notification_per_user_and_key_pushed_at_commit(viewer, django_capture_on_commit_callbacks, pushed):
    other = factories.UserFactory.create()
    data = {"order": {"id": 7, "number": "LS1"}}
    with django_capture_on_commit_callbacks(execute=True):
        assert services.notify(user_ids=[viewer.pk, other.pk, viewer.pk], kind="order.paid", data=data, key="k") == 2
        assert pushed == []  # not before the commit
    with django_capture_on_commit_callbacks(execute=True):
        assert services.notify(user_ids=[viewer.pk], kind="order.paid", data=data, key="k") == 0  # redelivered
    assert Notification.objects.count() == 2
    assert sorted(p["user"] for p in pushed) == sorted([viewer.pk, other.pk])
    assert pushed[0]["data"] == data
    assert pushed[0]["kind"] == "order.paid"
    assert pushed[0]["read"] is False
    with pytest.raises(ValueError, match="unknown notification kind"):
        services.notify(user_ids=[viewer.pk], kind="spam", data={}, key="x")


def test_a_rolled_back_notification_is_neither_stored_nor_pushed(viewer, pushed):
    def order_transaction_that_fails() -> None:
        with transaction.atomic():
            services.notify(user_ids=[viewer.pk], kind="order.paid", data={}, key="k")
            raise RuntimeError("the order's transaction fails")

    with pytest.raises(RuntimeError):
        order_transaction_that_fails()
    assert not Notification.objects.exists()
    assert pushed == []


def test_the_bell_lists_counts_and_marks_read_only_your_own(client_for, viewer, pushed):
    other = factories.UserFactory.create()
    for key in ("a", "b", "c"):
        services.notify(user_ids=[viewer.pk], kind="order.shipped", data={"order": {"id": 1}}, key=key)
    services.notify(user_ids=[other.pk], kind="order.shipped", data={}, key="a")
    client = client_for(viewer)
    listed = client.get("/api/v1/notifications/").json()["results"]
    assert [n["kind"] for n in listed] == ["order.shipped"] * 3
    assert listed[0]["id"] > listed[1]["id"]  # newest first
    assert set(listed[0]) == {"id", "kind", "data", "created_at", "read"}
    assert client.get("/api/v1/notifications/unread/").json() == {"unread": 3}
    assert client.post("/api/v1/notifications/read/", {"upto": listed[1]["id"]}, format="json").json() == {"unread": 1}
    assert client.post("/api/v1/notifications/read/", {}, format="json").json() == {"unread": 0}
    assert client_for(other).get("/api/v1/notifications/unread/").json() == {"unread": 1}
    assert_error(client.post("/api/v1/notifications/read/", {"upto": "x"}, format="json"), 400, "invalid")
    for path in ("/api/v1/notifications/", "/api/v1/notifications/unread/"):
        assert_error(client_for(None).get(path), 401, "not_authenticated")
    assert_error(client_for(None).post("/api/v1/notifications/read/"), 401, "not_authenticated")


# --- What makes them ---------------------------------------------------------------------------


@pytest.fixture
def followers(host_profile) -> list[Any]:
    users = [factories.UserFactory.create() for _ in range(7)]
    for user in users:
        Follow.objects.create(user=user, host=host_profile)
    return users


@pytest.fixture
def eager_tasks() -> Iterator[None]:
    """The fan-out's tasks run here, at once."""
    previous = celery_app.conf.task_always_eager
    celery_app.conf.task_always_eager = True
    yield
    celery_app.conf.task_always_eager = previous


def test_going_live_tells_every_follower_in_batches(
    room, followers, monkeypatch, django_capture_on_commit_callbacks, pushed, eager_tasks
):
    monkeypatch.setattr(tasks, "FANOUT_BATCH", 3)
    batches: list[tuple[int, int]] = []
    original = tasks.triggers.host_live_batch

    def counted(**kwargs: Any) -> tuple[int, int | None]:
        batches.append((kwargs["after_follow_id"], kwargs["size"]))
        return original(**kwargs)

    monkeypatch.setattr(tasks.triggers, "host_live_batch", counted)
    with django_capture_on_commit_callbacks(execute=True):
        room_services.room_start(room=room)
    told = Notification.objects.filter(kind="host.live")
    assert sorted(told.values_list("user_id", flat=True)) == sorted(u.pk for u in followers)
    assert len(batches) == 3  # 3 + 3 + 1
    assert told[0].data == {
        "host": {"id": room.host_id, "display_name": room.host.user.public_name},
        "room": {"id": room.pk, "title": room.title, "title_en": ""},
    }
    # A batch delivered twice tells nobody twice.
    tasks.host_live_fanout_task.run(room.pk, 0)
    assert told.count() == 7


def test_a_show_ended_before_the_fanout_tells_nobody_more(room, followers, pushed):
    Room.objects.filter(pk=room.pk).update(status=Room.Status.ENDED)
    assert tasks.host_live_fanout_task.run(room.pk, 0) == {"told": 0, "next": None}


# --- The user's socket ---------------------------------------------------------------------------


def session_cookie(user) -> list[tuple[bytes, bytes]]:
    from django.conf import settings
    from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
    from django.contrib.sessions.backends.db import SessionStore

    session = SessionStore()
    session[SESSION_KEY] = str(user.pk)
    session[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
    session[HASH_SESSION_KEY] = user.get_session_auth_hash()
    session.create()
    return [(b"cookie", f"{settings.SESSION_COOKIE_NAME}={session.session_key}".encode())]


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("redis", [True, False], ids=["redis", "database-tail"])
async def test_the_users_socket_counts_then_hears_each_new_one(viewer, settings, redis, realtime_prefix):
    if not redis:
        settings.REDIS_URL = ""  # the embedded default: the web process tails the table
    await database_sync_to_async(services.notify)(user_ids=[viewer.pk], kind="order.paid", data={}, key="old")
    headers = await database_sync_to_async(session_cookie)(viewer)
    socket = await Socket("/ws/me/", headers).connect()
    hello = await socket.receive()
    assert hello["type"] == "notifications.unread"
    assert hello["data"]["unread"] == 1
    other = await database_sync_to_async(factories.UserFactory.create)()
    await database_sync_to_async(services.notify)(user_ids=[other.pk], kind="order.paid", data={}, key="x")
    await database_sync_to_async(services.notify)(
        user_ids=[viewer.pk], kind="order.shipped", data={"order": {"id": 3}}, key="new"
    )
    pushed = await socket.receive(timeout=5)
    assert pushed["type"] == "notification"
    assert (pushed["data"]["kind"], pushed["data"]["data"]) == ("order.shipped", {"order": {"id": 3}})
    assert pushed["data"]["id"] > hello["data"]["latest"]
    await socket.disconnect()


@pytest.mark.django_db(transaction=True)
async def test_the_users_socket_refuses_anonymous_and_foreign_origins(viewer):
    assert (await (await Socket("/ws/me/").connect()).receive())["code"] == 4401
    headers = await database_sync_to_async(session_cookie)(viewer)
    foreign = [*headers, (b"origin", b"http://evil.example"), (b"host", b"127.0.0.1:8000")]
    assert (await (await Socket("/ws/me/", foreign).connect()).receive())["code"] == 4403
    ticket, _ = await database_sync_to_async(services.socket_ticket_issue)(user_id=viewer.pk)
    with_ticket = await Socket(f"/ws/me/?ticket={ticket}").connect()
    assert (await with_ticket.receive())["type"] == "notifications.unread"
    await with_ticket.disconnect()
    used = await Socket(f"/ws/me/?ticket={ticket}").connect()  # single use
    assert (await used.receive())["code"] == 4401
