"""The ingest server's callbacks: who may publish, and what viewers hear of it."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from liveshop.models import User
from rooms.models import Room
from streams import services
from streams.models import StreamSession
from streams.selectors import stream_public_name, stream_room_id_from_name
from tests.helpers import run_concurrently
from tests.streams.conftest import SECRET

pytestmark = pytest.mark.django_db(transaction=True)

ON_PUBLISH = "/api/v1/streams/on-publish/"
ON_PUBLISH_DONE = "/api/v1/streams/on-publish-done/"


def publish(key: str, *, secret: str | None = SECRET, clientid: str = "7", **extra: str) -> Any:
    url = ON_PUBLISH if secret is None else f"{ON_PUBLISH}?secret={secret}&node=ingest-1"
    form = {
        "call": "publish",
        "app": "live",
        "name": key,
        "addr": "10.0.0.5",
        "clientid": clientid,
        "tcurl": "rtmp://x/live",
    }
    form.update(extra)
    return Client().post(url, form)


def publish_done(name: str, *, clientid: str = "7") -> Any:
    form = {"call": "publish_done", "app": "live", "name": name, "addr": "10.0.0.5", "clientid": clientid}
    return Client().post(f"{ON_PUBLISH_DONE}?secret={SECRET}&node=ingest-1", form)


def test_accept_redirects_to_public_name_and_goes_on_air(room: Room, events: list[Any]) -> None:
    answer = publish(room.stream_key)

    assert answer.status_code == 302
    name = stream_public_name(room_id=room.pk)
    assert answer["Location"] == name
    assert room.stream_key not in name
    session = StreamSession.objects.get()
    assert (session.room_id, session.stream_name, session.ingest_node, session.client_addr, session.ended_at) == (
        room.pk,
        name,
        "ingest-1",
        "10.0.0.5",
        None,
    )
    assert events == [(room.pk, "video.on_air", {"playback_url": f"http://127.0.0.1:8080/hls/{name}.m3u8"})]
    room.refresh_from_db()
    assert room.status == Room.Status.SCHEDULED  # the show does not start by itself


@pytest.mark.parametrize("secret", [None, "", "wrong"])
def test_wrong_or_missing_secret_is_refused(room: Room, events: list[Any], secret: str | None) -> None:
    assert publish(room.stream_key, secret=secret).status_code == 403
    assert not StreamSession.objects.exists()
    assert events == []


def test_unset_secret_refuses_everything(room: Room, settings: Any) -> None:
    settings.INGEST_CALLBACK_SECRET = ""
    assert publish(room.stream_key, secret="").status_code == 403


def test_unknown_key_is_refused(room: Room) -> None:
    answer = publish("not-a-key")
    assert answer.status_code == 403
    assert answer.json()["code"] == "stream_refused"
    assert not StreamSession.objects.exists()


def test_rotated_key_is_refused(room: Room, host: User) -> None:
    old = room.stream_key
    services.stream_key_rotate(room=room)
    assert publish(old).status_code == 403
    room.refresh_from_db()
    assert publish(room.stream_key).status_code == 302


@pytest.mark.parametrize("status", [Room.Status.ENDED, Room.Status.SUSPENDED])
def test_closed_room_is_refused(room: Room, status: str) -> None:
    Room.objects.filter(pk=room.pk).update(status=status)
    assert publish(room.stream_key).status_code == 403
    assert not StreamSession.objects.exists()


def test_second_publisher_is_refused(room: Room, events: list[Any]) -> None:
    assert publish(room.stream_key, clientid="1").status_code == 302
    assert publish(room.stream_key, clientid="2").status_code == 403
    assert StreamSession.objects.count() == 1
    assert [kind for _, kind, _ in events] == ["video.on_air"]


def test_publish_done_ends_the_session_once(room: Room, events: list[Any]) -> None:
    publish(room.stream_key)
    name = stream_public_name(room_id=room.pk)

    assert publish_done(name).status_code == 200
    assert publish_done(name).status_code == 200

    session = StreamSession.objects.get()
    assert session.ended_at is not None
    assert session.end_reason == "publish_done"
    assert [kind for _, kind, _ in events] == ["video.on_air", "video.off_air"]
    # The room may go on air again.
    assert publish(room.stream_key, clientid="8").status_code == 302


def test_publish_done_by_key_also_ends(room: Room, events: list[Any]) -> None:
    publish(room.stream_key)
    assert publish_done(room.stream_key).status_code == 200
    assert StreamSession.objects.get().end_reason == "publish_done"


def test_stale_done_of_another_client_ends_nothing(room: Room) -> None:
    publish(room.stream_key, clientid="1")
    assert publish_done(stream_public_name(room_id=room.pk), clientid="99").status_code == 200
    assert StreamSession.objects.get().ended_at is None


@pytest.mark.parametrize(
    "form",
    [
        {"app": "live", "name": "k"},  # no call
        {"call": "publish", "app": "live"},  # no name
        {"call": "publish", "name": "k"},  # no app
        {"call": "play", "app": "live", "name": "k"},  # another call
        {"call": "publish", "app": "live", "name": "x" * 1_000_000},  # a 1 MB name
        {"call": "publish", "app": "live", "name": "k", "addr": "a" * 10_000},
    ],
)
def test_bad_forms_are_4xx(room: Room, form: dict[str, str]) -> None:
    answer = Client().post(f"{ON_PUBLISH}?secret={SECRET}", form)
    assert 400 <= answer.status_code < 500
    assert "code" in answer.json()
    assert not StreamSession.objects.exists()


def test_json_body_is_4xx(room: Room) -> None:
    answer = Client().post(f"{ON_PUBLISH}?secret={SECRET}", {"call": "publish"}, content_type="application/json")
    assert answer.status_code == 415


def test_wrong_call_on_done_is_4xx(room: Room) -> None:
    form = {"call": "publish", "app": "live", "name": "k"}
    assert Client().post(f"{ON_PUBLISH_DONE}?secret={SECRET}", form).status_code == 400


def test_concurrent_publishes_with_one_key_one_wins(room: Room) -> None:
    key = room.stream_key

    def attempt(index: int) -> int:
        return int(publish(key, clientid=str(index)).status_code)

    codes = run_concurrently(attempt, 8)

    assert sorted(codes) == [302] + [403] * 7
    assert StreamSession.objects.filter(ended_at__isnull=True).count() == 1


def test_public_name_round_trips_and_rejects_forgeries(room: Room) -> None:
    name = stream_public_name(room_id=room.pk)
    assert stream_room_id_from_name(name) == room.pk
    assert stream_room_id_from_name(f"r{room.pk}-{'0' * 20}") is None
    assert stream_room_id_from_name("r-") is None
    assert stream_room_id_from_name("r" + "9" * 40 + "-x") is None
