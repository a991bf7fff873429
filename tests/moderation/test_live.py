"""Moderation as the room's sockets live it, through the ASGI app in-process (real Redis,
PostgreSQL, the consumer and the hub): mutes, bans, removed comments, banned words added
while the room runs, new-account protection."""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Any

import pytest
from channels.db import database_sync_to_async as sync_to_async
from django.utils import timezone

from liveshop.models import User
from rooms import services
from rooms.broadcast import room_user_close
from rooms.models import Comment, Room, RoomModerator
from tests import factories

pytestmark = pytest.mark.django_db(transaction=True)


@sync_to_async
def ticket_for(user: User, room: Room) -> str:
    return services.ws_ticket_issue(user=user, room=room)[0]


async def open_as(ws: Any, user: User | None, room: Room) -> Any:
    path = f"/ws/rooms/{room.pk}/"
    if user is not None:
        path += f"?ticket={await ticket_for(user, room)}"
    socket = await ws(path)
    assert (await socket.next_event())["type"] == "room.snapshot"
    return socket


@sync_to_async
def api(user: User, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
    from rest_framework.test import APIClient

    client = APIClient()
    client.force_authenticate(user)
    return getattr(client, method)(path, body, format="json")


async def comment(socket: Any, text: str, nonce: str) -> dict[str, Any]:
    """Send a comment; the ack or the error that answers it."""
    await socket.send({"type": "comment.send", "text": text, "nonce": nonce})
    while True:
        event = await socket.next_event()
        if event["type"] in ("comment.ack", "error") and event["data"].get("nonce") == nonce:
            return event


async def test_mute_reaches_the_socket_and_silences_until_lifted(ws, live_room, moderator, troll):
    socket = await open_as(ws, troll, live_room)

    response = await api(
        moderator,
        "post",
        f"/api/v1/rooms/{live_room.pk}/mutes/",
        {"user": troll.pk, "duration_s": 300, "reason": "flood"},
    )
    assert response.status_code == 201
    muted = await socket.receive_type("moderation.muted")
    assert "seq" not in muted  # a private frame, not a room event
    until = dt.datetime.fromisoformat(response.json()["until"])
    # Times on the socket have milliseconds, as the snapshot's `muted_until`.
    until_ms = until.replace(microsecond=until.microsecond // 1000 * 1000)
    assert muted["data"] == {"room": live_room.pk, "until": muted["data"]["until"], "reason": "flood"}
    assert dt.datetime.fromisoformat(muted["data"]["until"]) == until_ms
    refused = await comment(socket, "hello?", "a")
    assert refused["type"] == "error"
    assert refused["data"]["code"] == "muted"

    assert (await api(moderator, "delete", f"/api/v1/rooms/{live_room.pk}/mutes/{troll.pk}/")).status_code == 204
    assert (await socket.receive_type("moderation.unmuted"))["data"] == {"room": live_room.pk}
    assert (await comment(socket, "sorry", "b"))["type"] == "comment.ack"


async def test_ban_closes_only_the_banned_users_sockets_and_they_cannot_reopen(ws, live_room, host, troll, viewer):
    spare_ticket = await ticket_for(troll, live_room)  # issued before the ban
    first = await open_as(ws, troll, live_room)
    second = await open_as(ws, troll, live_room)
    bystander = await open_as(ws, viewer, live_room)

    response = await api(host, "post", f"/api/v1/rooms/{live_room.pk}/bans/", {"user": troll.pk, "reason": "abuse"})
    assert response.status_code == 201

    assert await first.closed_with() == 4403
    assert await second.closed_with() == 4403
    again = await ws(f"/ws/rooms/{live_room.pk}/?ticket={spare_ticket}")
    assert await again.closed_with() == 4403
    assert (await api(troll, "post", f"/api/v1/rooms/{live_room.pk}/ws-ticket/")).status_code == 403
    await bystander.send({"type": "ping"})
    assert await bystander.receive_type("pong") == {"type": "pong"}


async def test_a_join_under_way_when_the_ban_lands_is_refused(ws, live_room, viewer, troll):
    """A socket admitted before the ban committed but joining after its close went by (no
    Ban row is read here at all): the process remembers the close and refuses the join."""
    await open_as(ws, viewer, live_room)  # this process's hub is up and listening
    await sync_to_async(room_user_close)(live_room.pk, troll.pk)
    await asyncio.sleep(0.3)
    late = await ws(f"/ws/rooms/{live_room.pk}/?ticket={await ticket_for(troll, live_room)}")
    assert await late.closed_with() == 4403


async def test_removed_comment_leaves_every_screen(ws, live_room, moderator, troll):
    author = await open_as(ws, troll, live_room)
    watcher = await open_as(ws, None, live_room)
    ack = await comment(author, "fake tea, do not buy", "n")
    comment_id = ack["data"]["id"]
    assert (await watcher.receive_type("comment.new"))["data"]["id"] == comment_id

    assert (await api(moderator, "delete", f"/api/v1/comments/{comment_id}/")).status_code == 204
    deleted = await watcher.receive_type("comment.deleted")
    assert deleted["data"] == {"id": comment_id}
    assert isinstance(deleted["seq"], int)  # a room event: replayed to those who missed it

    newcomer = await ws(f"/ws/rooms/{live_room.pk}/")
    snapshot = await newcomer.next_event()
    assert snapshot["data"]["recent_comments"] == []


async def test_banned_word_added_blocks_the_next_comment_at_once(ws, live_room, staff, viewer):
    socket = await open_as(ws, viewer, live_room)
    assert (await comment(socket, "is this tea counterfeit?", "1"))["type"] == "comment.ack"

    response = await api(staff, "post", "/api/v1/moderation/banned-words/", {"word": "Counterfeit"})
    assert response.status_code == 201
    blocked = await comment(socket, "COUNTERFEIT tea!", "2")
    assert blocked["data"]["code"] == "comment_blocked"

    await api(staff, "delete", f"/api/v1/moderation/banned-words/{response.json()['id']}/")
    assert (await comment(socket, "counterfeit again", "3"))["type"] == "comment.ack"
    assert await sync_to_async(Comment.objects.count)() == 2


@sync_to_async
def user_aged(seconds: int, **fields: Any) -> User:
    user = factories.UserFactory.create(**fields)
    User.objects.filter(pk=user.pk).update(date_joined=timezone.now() - dt.timedelta(seconds=seconds))
    user.refresh_from_db()
    return user


async def test_new_account_protection(ws, live_room, host):
    response = await api(host, "patch", f"/api/v1/rooms/{live_room.pk}/", {"comment_min_account_age_s": 600})
    assert response.status_code == 200
    newcomer = await user_aged(60)
    veteran = await user_aged(601)
    new_moderator = await user_aged(0)
    await sync_to_async(RoomModerator.objects.create)(room=live_room, user=new_moderator)

    refused = await comment(await open_as(ws, newcomer, live_room), "first!", "n")
    assert refused["data"]["code"] == "account_too_new"
    assert "10 minutes" in refused["data"]["detail"]
    allowed_at = dt.datetime.fromisoformat(refused["data"]["allowed_at"])
    assert allowed_at == newcomer.date_joined + dt.timedelta(seconds=600)
    for user in (veteran, new_moderator, host):
        assert (await comment(await open_as(ws, user, live_room), "hello", "h"))["type"] == "comment.ack"

    await api(host, "patch", f"/api/v1/rooms/{live_room.pk}/", {"comment_min_account_age_s": 0})
    assert (await comment(await open_as(ws, newcomer, live_room), "now?", "m"))["type"] == "comment.ack"
