"""REST around the room socket: the ws-ticket and comment history endpoints, and the live
`viewers_now` in the room representation."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from rooms import services
from rooms.models import Ban, Comment, Room, RoomModerator
from rooms.realtime.backend import get_backend
from tests import factories
from tests.helpers import assert_error

pytestmark = pytest.mark.django_db


# --- ws-ticket ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("who", "status"),
    [("anonymous", 401), ("viewer", 201), ("host", 201), ("other_host", 201), ("staff", 201)],
)
def test_ws_ticket_matrix(client_for, persona, room, who, status):
    user = persona(who)
    response = client_for(user).post(f"/api/v1/rooms/{room.pk}/ws-ticket/")
    assert response.status_code == status, response.content
    if status == 201:
        body = response.json()
        assert set(body) == {"ticket", "expires_at"}
        expires_at = dt.datetime.fromisoformat(body["expires_at"])
        assert 55 <= (expires_at - timezone.now()).total_seconds() <= 60
        assert services.ws_ticket_redeem(ticket=body["ticket"], room_id=room.pk) == user.pk
        assert services.ws_ticket_redeem(ticket=body["ticket"], room_id=room.pk) is None  # single use
    else:
        assert_error(response, 401, "not_authenticated")


@pytest.mark.parametrize(("who", "status"), [("viewer", 404), ("other_host", 404), ("host", 201), ("staff", 201)])
def test_ws_ticket_for_a_suspended_room(client_for, persona, room, who, status):
    room.status = Room.Status.SUSPENDED
    room.save()
    assert client_for(persona(who)).post(f"/api/v1/rooms/{room.pk}/ws-ticket/").status_code == status


def test_ws_ticket_unknown_room_and_banned_user(client_for, viewer, room):
    assert_error(client_for(viewer).post("/api/v1/rooms/999999/ws-ticket/"), 404, "not_found")
    Ban.objects.create(room=room, user=viewer)
    assert_error(client_for(viewer).post(f"/api/v1/rooms/{room.pk}/ws-ticket/"), 403, "banned")


def test_ticket_redeem_rejects_junk(room):
    assert services.ws_ticket_redeem(ticket="", room_id=room.pk) is None
    assert services.ws_ticket_redeem(ticket="x" * 500, room_id=room.pk) is None


# --- Comment history ------------------------------------------------------------------------------


@pytest.fixture
def comments(live_room, viewer, host):
    made = [Comment.objects.create(room=live_room, user=viewer, text=f"viewer {i}") for i in range(5)]
    made.append(Comment.objects.create(room=live_room, user=host, text="host speaking"))
    made.append(Comment.objects.create(room=live_room, user=viewer, text="removed", deleted_at=timezone.now()))
    return made


@pytest.mark.parametrize("who", ["anonymous", "viewer", "host", "other_host", "staff"])
def test_comment_history_matrix(client_for, persona, live_room, comments, who):
    body = client_for(persona(who)).get(f"/api/v1/rooms/{live_room.pk}/comments/").json()
    assert [c["text"] for c in body["results"]] == ["host speaking", *[f"viewer {i}" for i in range(4, -1, -1)]]
    assert body["results"][0]["user"]["role"] == "host"
    assert body["next"] is None
    assert body["previous"] is None


@pytest.mark.parametrize(("who", "status"), [("anonymous", 404), ("viewer", 404), ("host", 200), ("staff", 200)])
def test_comment_history_of_a_suspended_room(client_for, persona, live_room, comments, who, status):
    live_room.status = Room.Status.SUSPENDED
    live_room.save()
    assert client_for(persona(who)).get(f"/api/v1/rooms/{live_room.pk}/comments/").status_code == status


def test_comment_history_cursor(client, live_room, comments, viewer):
    RoomModerator.objects.create(room=live_room, user=viewer)
    first = client.get(f"/api/v1/rooms/{live_room.pk}/comments/?page_size=4").json()
    assert [c["id"] for c in first["results"]] == [c.pk for c in reversed(comments[2:6])]
    assert first["results"][1]["user"] == {"id": viewer.pk, "display_name": "Viewer Li", "role": "moderator"}
    assert first["next"].endswith(f"?before={comments[2].pk}&page_size=4")
    second = client.get(first["next"]).json()
    assert [c["id"] for c in second["results"]] == [comments[1].pk, comments[0].pk]
    assert second["next"] is None
    older = client.get(f"/api/v1/rooms/{live_room.pk}/comments/?before={comments[1].pk}").json()
    assert [c["id"] for c in older["results"]] == [comments[0].pk]


@pytest.mark.parametrize("query", ["before=abc", "before=0", "page_size=0", "page_size=101", "before=-5"])
def test_comment_history_bad_query(client, live_room, query):
    assert_error(client.get(f"/api/v1/rooms/{live_room.pk}/comments/?{query}"), 400, "invalid")


def test_comment_history_unknown_room(client, db):
    assert_error(client.get("/api/v1/rooms/999999/comments/"), 404, "not_found")


# --- viewers_now ------------------------------------------------------------------------------------


async def report(room_id: int, process: str, count: int) -> None:
    await get_backend().apresence(process, {room_id: count}, 5)


def test_viewers_now_in_room_list_and_detail(client, live_room, other_host):
    from asgiref.sync import async_to_sync

    quiet = factories.RoomFactory.create(host=other_host.host, status=Room.Status.LIVE)
    async_to_sync(report)(live_room.pk, "web-a", 7)
    async_to_sync(report)(live_room.pk, "web-b", 5)
    assert client.get(f"/api/v1/rooms/{live_room.pk}/").json()["viewers_now"] == 12
    listed = {r["id"]: r["viewers_now"] for r in client.get("/api/v1/rooms/").json()["results"]}
    assert listed == {live_room.pk: 12, quiet.pk: 0}
