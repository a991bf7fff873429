"""The room WebSocket through the ASGI app in-process: snapshot, client frames, auth,
close codes, replay. Real Redis (the backend of the test settings) and PostgreSQL."""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Any

import pytest
from channels.db import database_sync_to_async as sync_to_async
from django.utils import timezone

from rooms import services
from rooms.broadcast import room_publish, room_user_close, room_user_send
from rooms.models import Ban, BannedWord, Comment, Mute, Room, RoomModerator
from tests import factories

pytestmark = pytest.mark.django_db(transaction=True)


@sync_to_async
def ticket_for(user: Any, room: Room) -> str:
    return services.ws_ticket_issue(user=user, room=room)[0]


async def open_as(ws, user, room, **params) -> Any:
    query = "&".join(f"{k}={v}" for k, v in params.items())
    if user is not None:
        ticket = await ticket_for(user, room)
        query = f"ticket={ticket}&{query}" if query else f"ticket={ticket}"
    return await ws(f"/ws/rooms/{room.pk}/" + (f"?{query}" if query else ""))


async def snapshot_of(socket) -> dict[str, Any]:
    frame = await socket.next_event()
    assert frame["type"] == "room.snapshot", frame
    return frame


def comments_in(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [e for e in events if e["type"] == "comment.new"]


async def events_until(socket, done, timeout: float = 30) -> list[dict[str, Any]]:
    """The socket's events until `done(events so far)`: a condition, not a quiet period."""
    got: list[dict[str, Any]] = []
    deadline = asyncio.get_running_loop().time() + timeout
    while not done(got):
        got.append(await socket.next_event(max(0.1, deadline - asyncio.get_running_loop().time())))
    return got


# --- The snapshot ------------------------------------------------------------------------------


async def test_snapshot_shape_for_anonymous(ws, live_room, item, viewer):
    await sync_to_async(services.room_item_feature)(item=item)
    comments = [
        await sync_to_async(Comment.objects.create)(room=live_room, user=viewer, text=f"c{i}") for i in range(55)
    ]
    seq = await sync_to_async(room_publish)(live_room.pk, "like.total", {"likes": 3})

    frame = await snapshot_of(await ws(f"/ws/rooms/{live_room.pk}/"))

    assert frame["seq"] == seq
    assert frame["ts"].endswith("Z")
    data = frame["data"]
    assert set(data) == {
        "room",
        "featured_item",
        "items",
        "flash_sales",
        "giveaways",
        "red_envelopes",
        "viewers",
        "likes",
        "recent_comments",
        "you",
    }
    assert data["room"]["id"] == live_room.pk
    assert data["room"]["status"] == "live"
    assert "stream_key" not in data["room"]
    assert data["featured_item"]["id"] == item.pk
    assert [i["id"] for i in data["items"]] == [item.pk]
    assert data["flash_sales"] == []
    assert data["giveaways"] == []
    assert set(data["viewers"]) == {"now", "peak", "views"}
    assert data["viewers"]["views"] == 1
    # The last 50, oldest first, in comment.new's shape.
    assert [c["id"] for c in data["recent_comments"]] == [c.pk for c in comments[5:]]
    assert data["recent_comments"][0] == {
        "id": comments[5].pk,
        "user": {"id": viewer.pk, "display_name": "Viewer Li", "role": "viewer"},
        "text": "c5",
        "ts": data["recent_comments"][0]["ts"],
    }
    assert data["you"] == {"user_id": None, "role": "anonymous", "muted_until": None}


@pytest.mark.parametrize(("who", "role"), [("viewer", "viewer"), ("host", "host"), ("staff", "moderator")])
async def test_snapshot_role(ws, live_room, persona, who, role):
    user = await sync_to_async(persona)(who)
    frame = await snapshot_of(await open_as(ws, user, live_room))
    assert frame["data"]["you"] == {"user_id": user.pk, "role": role, "muted_until": None}


async def test_snapshot_role_of_a_room_moderator_and_mute(ws, live_room, viewer):
    await sync_to_async(RoomModerator.objects.create)(room=live_room, user=viewer)
    until = timezone.now() + dt.timedelta(minutes=5)
    await sync_to_async(Mute.objects.create)(room=live_room, user=viewer, until=until)
    you = (await snapshot_of(await open_as(ws, viewer, live_room)))["data"]["you"]
    assert you["role"] == "moderator"
    assert you["muted_until"] == until.isoformat(timespec="milliseconds").replace("+00:00", "Z")


async def test_session_cookie_authenticates(ws, live_room, viewer, client):
    await sync_to_async(client.force_login)(viewer)
    cookie = f"sessionid={client.cookies['sessionid'].value}".encode()
    socket = await ws(f"/ws/rooms/{live_room.pk}/", headers=[(b"cookie", cookie)])
    assert (await snapshot_of(socket))["data"]["you"]["user_id"] == viewer.pk


# --- Auth and close codes ------------------------------------------------------------------------


async def test_bad_ticket_is_refused_4401(ws, live_room):
    socket = await ws(f"/ws/rooms/{live_room.pk}/?ticket=not-a-ticket")
    assert await socket.closed_with() == 4401


async def test_ticket_is_single_use(ws, live_room, viewer):
    ticket = await ticket_for(viewer, live_room)
    first = await ws(f"/ws/rooms/{live_room.pk}/?ticket={ticket}")
    assert (await snapshot_of(first))["data"]["you"]["user_id"] == viewer.pk
    second = await ws(f"/ws/rooms/{live_room.pk}/?ticket={ticket}")
    assert await second.closed_with() == 4401


async def test_expired_ticket_is_refused(ws, live_room, viewer, monkeypatch):
    ticket = await ticket_for(viewer, live_room)
    later = timezone.now() + dt.timedelta(seconds=61)
    monkeypatch.setattr(services.live.timezone, "now", lambda: later)
    socket = await ws(f"/ws/rooms/{live_room.pk}/?ticket={ticket}")
    assert await socket.closed_with() == 4401


async def test_ticket_for_another_room_is_refused(ws, live_room, viewer, other_host):
    other_room = await sync_to_async(factories.RoomFactory.create)(host=other_host.host, status=Room.Status.LIVE)
    ticket = await ticket_for(viewer, other_room)
    socket = await ws(f"/ws/rooms/{live_room.pk}/?ticket={ticket}")
    assert await socket.closed_with() == 4401


async def test_unknown_room_is_refused_4404(ws, db):
    assert await (await ws("/ws/rooms/999999/")).closed_with() == 4404
    assert await (await ws("/ws/elsewhere/")).closed_with() == 4404


@pytest.mark.parametrize(("who", "allowed"), [("anonymous", False), ("viewer", False), ("host", True), ("staff", True)])
async def test_suspended_room_only_for_host_and_staff(ws, room, persona, who, allowed):
    room.status = Room.Status.SUSPENDED
    await sync_to_async(room.save)()
    user = await sync_to_async(persona)(who)
    socket = await open_as(ws, user, room)
    if allowed:
        await snapshot_of(socket)
        assert await socket.closed_with() == 1000  # a suspended show: the snapshot, then goodbye
    else:
        assert await socket.closed_with() == 4404


async def test_banned_user_is_refused_4403(ws, live_room, viewer):
    await sync_to_async(Ban.objects.create)(room=live_room, user=viewer)
    # The ticket endpoint refuses a banned user too; the socket checks again.
    ticket = "t"
    await sync_to_async(services.live.cache.set)(
        services.WS_TICKET_PREFIX + ticket, f"{viewer.pk}:{live_room.pk}:{timezone.now().timestamp() + 60}"
    )
    socket = await ws(f"/ws/rooms/{live_room.pk}/?ticket={ticket}")
    assert await socket.closed_with() == 4403


@pytest.mark.parametrize(
    ("origin", "host", "scheme", "allowed"),
    [
        (None, None, "ws", True),  # apps and scripts
        (b"http://localhost:8000", b"localhost:8000", "ws", True),
        (b"https://127.0.0.1", b"127.0.0.1", "wss", True),
        (b"https://shop.example.com", b"127.0.0.1:8000", "ws", True),  # CSRF_TRUSTED_ORIGINS
        # The audit: same host name, another port (another site), with the viewer's cookie.
        (b"http://127.0.0.1:9999", b"127.0.0.1:8000", "ws", False),
        (b"http://localhost:8000", b"localhost:8000", "wss", False),  # another scheme
        (b"http://evil.example", b"evil.example", "ws", False),  # not an allowed host
        (b"https://evil.example", b"127.0.0.1:8000", "ws", False),
        (b"http://127.0.0.1:8000", None, "ws", False),  # no Host to compare with
        (b"null", b"127.0.0.1:8000", "ws", False),
    ],
)
async def test_origin_check(ws, live_room, settings, origin, host, scheme, allowed):
    settings.CSRF_TRUSTED_ORIGINS = ["https://shop.example.com"]
    headers = [(b"origin", origin)] if origin is not None else []
    headers += [(b"host", host)] if host is not None else []
    socket = await ws(f"/ws/rooms/{live_room.pk}/", headers=headers, scheme=scheme)
    if allowed:
        await snapshot_of(socket)
    else:
        assert await socket.closed_with() == 4403


# --- Client frames -------------------------------------------------------------------------------


async def test_ping_pong(ws, live_room):
    socket = await ws(f"/ws/rooms/{live_room.pk}/")
    await snapshot_of(socket)
    await socket.send({"type": "ping"})
    assert await socket.next_event() == {"type": "pong"}


@pytest.mark.parametrize(
    "frame",
    ["not json", "[1, 2]", '{"type": 3}', '{"type": "dance"}', '{"no": "type"}'],
)
async def test_bad_frames_get_an_invalid_error(ws, live_room, frame):
    socket = await ws(f"/ws/rooms/{live_room.pk}/")
    await snapshot_of(socket)
    await socket.send(frame)
    reply = await socket.next_event()
    assert reply["type"] == "error"
    assert reply["data"]["code"] == "invalid"
    assert "seq" not in reply


async def test_comment_ack_then_comment_new(ws, live_room, viewer, host):
    viewer_socket = await open_as(ws, viewer, live_room)
    host_socket = await open_as(ws, host, live_room)
    await snapshot_of(viewer_socket)
    await snapshot_of(host_socket)

    await viewer_socket.send({"type": "comment.send", "text": "  Is the tea organic?  ", "nonce": "n-1"})

    ack = await viewer_socket.next_event()
    comment = await sync_to_async(Comment.objects.get)()
    assert ack == {"type": "comment.ack", "data": {"nonce": "n-1", "id": comment.pk}}
    assert comment.text == "Is the tea organic?"
    new = await viewer_socket.receive_type("comment.new")
    assert new["data"] == {
        "id": comment.pk,
        "user": {"id": viewer.pk, "display_name": "Viewer Li", "role": "viewer"},
        "text": "Is the tea organic?",
        "ts": new["data"]["ts"],
    }
    assert isinstance(new["seq"], int)
    assert (await host_socket.receive_type("comment.new"))["seq"] == new["seq"]


async def expect_error(socket, frame: dict[str, Any], code: str) -> dict[str, Any]:
    await socket.send(frame)
    reply = await socket.receive_type("error")
    assert reply["data"]["code"] == code, reply
    assert reply["data"]["detail"]
    return reply["data"]


@pytest.mark.parametrize(
    ("text", "code"),
    [("", "invalid"), ("   ", "invalid"), ("x" * 201, "invalid"), (42, "invalid")],
)
async def test_comment_validation(ws, live_room, viewer, text, code):
    socket = await open_as(ws, viewer, live_room)
    await snapshot_of(socket)
    data = await expect_error(socket, {"type": "comment.send", "text": text, "nonce": "n"}, code)
    assert data["nonce"] == "n"
    assert not await sync_to_async(Comment.objects.exists)()


async def test_comment_of_200_characters_is_fine(ws, live_room, viewer):
    socket = await open_as(ws, viewer, live_room)
    await snapshot_of(socket)
    await socket.send({"type": "comment.send", "text": "茶" * 200, "nonce": 1})
    assert (await socket.receive_type("comment.ack"))["data"]["nonce"] == 1


async def test_anonymous_cannot_comment_or_like(ws, live_room):
    socket = await ws(f"/ws/rooms/{live_room.pk}/")
    await snapshot_of(socket)
    await expect_error(socket, {"type": "comment.send", "text": "hi", "nonce": "a"}, "not_authenticated")
    await expect_error(socket, {"type": "like.send", "count": 1}, "not_authenticated")


async def test_comment_in_a_room_not_live(ws, room, viewer):
    socket = await open_as(ws, viewer, room)
    await snapshot_of(socket)
    await expect_error(socket, {"type": "comment.send", "text": "hi", "nonce": "a"}, "room_not_live")
    await expect_error(socket, {"type": "like.send", "count": 1}, "room_not_live")


async def test_muted_user_cannot_comment(ws, live_room, viewer):
    socket = await open_as(ws, viewer, live_room)
    await snapshot_of(socket)
    host_user = await sync_to_async(lambda: live_room.host.user)()
    # The socket keeps the mute (the intake judges from memory): the mute's control
    # message reaches it, after the frame that tells the user.
    await sync_to_async(services.room_mute)(actor=host_user, room=live_room, user=viewer, duration_s=60)
    await socket.receive_type("moderation.muted")
    await expect_error(socket, {"type": "comment.send", "text": "hi", "nonce": "a"}, "muted")
    await sync_to_async(services.room_unmute)(actor=host_user, room=live_room, user=viewer)
    await socket.receive_type("moderation.unmuted")
    await socket.send({"type": "comment.send", "text": "hi again", "nonce": "b"})
    assert (await socket.receive_type("comment.ack"))["data"]["nonce"] == "b"


async def test_a_mute_made_before_the_socket_opened_counts(ws, live_room, viewer):
    await sync_to_async(Mute.objects.create)(
        room=live_room, user=viewer, until=timezone.now() + dt.timedelta(minutes=1)
    )
    socket = await open_as(ws, viewer, live_room)
    await snapshot_of(socket)
    await expect_error(socket, {"type": "comment.send", "text": "hi", "nonce": "a"}, "muted")


async def test_banned_word_blocks_at_once(ws, live_room, viewer):
    socket = await open_as(ws, viewer, live_room)
    await snapshot_of(socket)
    await socket.send({"type": "comment.send", "text": "Cheap fake tea here", "nonce": "ok"})
    await socket.receive_type("comment.ack")
    word = await sync_to_async(BannedWord.objects.create)(word="FAKE TEA")
    await expect_error(
        socket,
        {"type": "comment.send", "text": "\uff43heap \uff46\uff41\uff4b\uff45  tea", "nonce": "x"},
        "comment_blocked",
    )
    await sync_to_async(word.delete)()
    await socket.send({"type": "comment.send", "text": "fake tea is back", "nonce": "ok2"})
    await socket.receive_type("comment.ack")
    assert await sync_to_async(Comment.objects.count)() == 2


async def test_comment_rate_limit_burst_then_sustained(ws, live_room, viewer, settings):
    settings.COMMENT_BURST = 3
    settings.COMMENT_RATE_PER_MIN = 6
    socket = await open_as(ws, viewer, live_room)
    await snapshot_of(socket)
    for i in range(3):
        await socket.send({"type": "comment.send", "text": f"c{i}", "nonce": i})
        await socket.receive_type("comment.ack")
    data = await expect_error(socket, {"type": "comment.send", "text": "c3", "nonce": 3}, "rate_limited")
    assert data["nonce"] == 3
    assert 1 <= data["retry_after"] <= 10
    assert await sync_to_async(Comment.objects.count)() == 3


async def test_slow_mode_applies_to_viewers_not_the_host(ws, live_room, viewer, host):
    live_room.slow_mode_s = 30
    await sync_to_async(live_room.save)()
    viewer_socket = await open_as(ws, viewer, live_room)
    host_socket = await open_as(ws, host, live_room)
    await snapshot_of(viewer_socket)
    await snapshot_of(host_socket)
    await viewer_socket.send({"type": "comment.send", "text": "one", "nonce": 1})
    await viewer_socket.receive_type("comment.ack")
    data = await expect_error(viewer_socket, {"type": "comment.send", "text": "two", "nonce": 2}, "rate_limited")
    assert 25 <= data["retry_after"] <= 30
    for i in range(8):  # neither slow mode nor the burst limit holds the host back
        await host_socket.send({"type": "comment.send", "text": f"host {i}", "nonce": i})
        await host_socket.receive_type("comment.ack")


@pytest.mark.parametrize("count", [0, 51, -1, "5", 2.5, True, None])
async def test_like_count_validation(ws, live_room, viewer, count):
    socket = await open_as(ws, viewer, live_room)
    await snapshot_of(socket)
    await expect_error(socket, {"type": "like.send", "count": count}, "invalid")


async def test_likes_are_totalled_and_throttled(ws, live_room, viewer):
    socket = await open_as(ws, viewer, live_room)
    await snapshot_of(socket)
    for _ in range(5):
        await socket.send({"type": "like.send", "count": 10})
    totals: list[int] = []
    while not totals or totals[-1] < 50:
        totals.append((await socket.receive_type("like.total", timeout=3))["data"]["likes"])
    assert totals[-1] == 50
    assert len(totals) <= 3  # a few a second, not one per like frame
    assert (await snapshot_of(await ws(f"/ws/rooms/{live_room.pk}/")))["data"]["likes"] == 50


# --- Who joined: `viewers.joined` ------------------------------------------------------------------


async def test_viewers_names_a_signed_in_joiner_once_never_anonymous_sockets_or_the_host(
    ws, live_room, viewer, host, client
):
    watcher = await ws(f"/ws/rooms/{live_room.pk}/")
    await snapshot_of(watcher)
    await snapshot_of(await open_as(ws, host, live_room))  # by ticket
    await snapshot_of(await ws(f"/ws/rooms/{live_room.pk}/"))
    await sync_to_async(client.force_login)(viewer)  # by the session cookie
    cookie = f"sessionid={client.cookies['sessionid'].value}".encode()
    await snapshot_of(await ws(f"/ws/rooms/{live_room.pk}/", headers=[(b"cookie", cookie)]))

    seen: list[dict[str, Any]] = []
    while not any("joined" in data for data in seen):
        seen.append((await watcher.receive_type("viewers", timeout=10))["data"])
    assert seen[-1]["joined"] == [{"id": viewer.pk, "display_name": "Viewer Li"}]
    assert "joined_more" not in seen[-1]
    assert seen[-1]["now"] == 4

    # Named once: the `viewers` that counts one more anonymous socket names nobody.
    await snapshot_of(await ws(f"/ws/rooms/{live_room.pk}/"))
    while True:
        data = (await watcher.receive_type("viewers", timeout=10))["data"]
        assert not {"joined", "joined_more"} & set(data)
        if data["now"] == 5:
            break


# --- Events from REST actions -----------------------------------------------------------------------


async def test_shelf_events(ws, live_room, item, sku, client_for, host):
    socket = await ws(f"/ws/rooms/{live_room.pk}/")
    await snapshot_of(socket)
    client = await sync_to_async(client_for)(host)

    await sync_to_async(client.post)(f"/api/v1/rooms/{live_room.pk}/items/{item.pk}/feature/")
    featured = await socket.receive_type("item.featured")
    assert featured["data"]["item"]["id"] == item.pk
    assert featured["data"]["item"]["product"]["title"] == "Xiannv Black Tea"

    other_sku = await sync_to_async(factories.SkuFactory.create)(product=sku.product, name="1 kg")
    response = await sync_to_async(client.post)(
        f"/api/v1/rooms/{live_room.pk}/items/", {"sku": other_sku.pk, "live_price": 9900}, format="json"
    )
    added = await socket.receive_type("items.updated")
    assert [i["id"] for i in added["data"]["items"]] == [item.pk, response.json()["id"]]

    await sync_to_async(client.delete)(f"/api/v1/rooms/{live_room.pk}/items/{item.pk}/")
    removed = await socket.receive_type("items.updated")
    assert [i["id"] for i in removed["data"]["items"]] == [response.json()["id"]]
    assert (await socket.receive_type("item.featured"))["data"] == {"item": None}


@pytest.mark.parametrize("action", ["end", "suspend"])
async def test_room_end_or_suspend_sends_status_then_closes(ws, live_room, viewer, host, staff, client_for, action):
    sockets = [await ws(f"/ws/rooms/{live_room.pk}/"), await open_as(ws, viewer, live_room)]
    for socket in sockets:
        await snapshot_of(socket)
    client = await sync_to_async(client_for)(host if action == "end" else staff)
    response = await sync_to_async(client.post)(
        f"/api/v1/rooms/{live_room.pk}/{action}/", {"reason": "test"}, format="json"
    )
    assert response.status_code == 200
    status = "ended" if action == "end" else "suspended"
    for socket in sockets:
        assert (await socket.receive_type("room.status"))["data"] == {"status": status}
        assert await socket.closed_with() == 1000


async def test_room_start_sends_status(ws, room, client_for, host):
    socket = await ws(f"/ws/rooms/{room.pk}/")
    await snapshot_of(socket)
    client = await sync_to_async(client_for)(host)
    await sync_to_async(client.post)(f"/api/v1/rooms/{room.pk}/start/")
    assert (await socket.receive_type("room.status"))["data"] == {"status": "live"}


# --- The per-user control path -------------------------------------------------------------------


async def test_user_close_and_private_frame_reach_only_that_user(ws, live_room, viewer, other_host):
    target = await open_as(ws, viewer, live_room)
    bystander = await open_as(ws, other_host, live_room)
    await snapshot_of(target)
    await snapshot_of(bystander)

    await sync_to_async(room_user_send)(
        live_room.pk, viewer.pk, {"type": "moderation.muted", "data": {"until": "2030-01-01T00:00:00Z"}}
    )
    assert await target.next_event() == {"type": "moderation.muted", "data": {"until": "2030-01-01T00:00:00Z"}}

    await sync_to_async(room_user_close)(live_room.pk, viewer.pk)
    assert await target.closed_with() == 4403
    await bystander.send({"type": "ping"})
    assert await bystander.receive_type("pong") == {"type": "pong"}


# --- Replay -------------------------------------------------------------------------------------------


async def test_since_replays_missed_events(ws, live_room):
    socket = await ws(f"/ws/rooms/{live_room.pk}/")
    seen = (await snapshot_of(socket))["seq"]
    await socket.disconnect()
    published = [
        await sync_to_async(room_publish)(live_room.pk, "order.placed", {"buyer": f"b{i}", "quantity": i})
        for i in range(3)
    ]
    await sync_to_async(room_publish)(live_room.pk, "like.total", {"likes": 1})
    last = await sync_to_async(room_publish)(live_room.pk, "like.total", {"likes": 2})

    again = await ws(f"/ws/rooms/{live_room.pk}/?since={seen}")
    events = await again.events()
    assert events[0]["type"] != "room.snapshot"
    # Every event after `since`; of the counters only the latest value.
    assert [e["seq"] for e in events] == [*published, last]
    assert [e["data"] for e in events][-1] == {"likes": 2}


async def test_since_now_replays_nothing_then_live(ws, live_room):
    current = await sync_to_async(room_publish)(live_room.pk, "order.placed", {"n": 1})
    socket = await ws(f"/ws/rooms/{live_room.pk}/?since={current}")
    seq = await sync_to_async(room_publish)(live_room.pk, "order.placed", {"n": 2})
    assert (await socket.next_event())["seq"] == seq


@pytest.mark.parametrize("since", ["trimmed", "future", "junk"])
async def test_since_too_old_or_bad_gives_fresh_snapshot(ws, live_room, settings, since):
    settings.ROOM_REPLAY_MIN_EVENTS = 5
    settings.ROOM_REPLAY_MIN_AGE_S = 1
    for i in range(400):  # far past the history's trimming granularity (whole stream nodes)
        await sync_to_async(room_publish)(live_room.pk, "order.placed", {"n": i})
    if since == "trimmed":
        # Age is tracked in one-second buckets: a mark in a later bucket, then one more
        # event once that bucket is past the minimum age, and the 400 go.
        for n in ("marker", "trigger"):
            await asyncio.sleep(1.1)
            await sync_to_async(room_publish)(live_room.pk, "order.placed", {"n": n})
    value = {"trimmed": "1", "future": "100000", "junk": "abc"}[since]
    socket = await ws(f"/ws/rooms/{live_room.pk}/?since={value}")
    frame = await snapshot_of(socket)
    assert frame["seq"] == (402 if since == "trimmed" else 400)


# --- Thinning and coalescing, through the socket ------------------------------------------------------


async def test_comment_flood_viewers_get_bounded_frames_author_gets_ack_nothing_else_lost(
    ws, live_room, viewer, host, settings
):
    settings.ROOM_VIEWER_COMMENTS_PER_S = 5
    commenters = await sync_to_async(lambda: [factories.UserFactory.create() for _ in range(60)])()
    watcher = await ws(f"/ws/rooms/{live_room.pk}/")
    author = await open_as(ws, viewer, live_room)
    host_socket = await open_as(ws, host, live_room)
    for socket in (watcher, author, host_socket):
        await snapshot_of(socket)

    def flood() -> list[int]:
        orders = []
        for i, user in enumerate(commenters):
            services.comment_create(room=live_room, user=user, text=f"flood {i}", role="viewer")
            if i % 10 == 0:
                orders.append(room_publish(live_room.pk, "order.placed", {"n": i}))
        return orders

    loop = asyncio.get_running_loop()
    started = loop.time()
    flooding = asyncio.ensure_future(sync_to_async(flood)())
    await author.send({"type": "comment.send", "text": "mine, in the flood", "nonce": "me"})
    orders = await flooding

    # Each socket is read until what it must get has come (no waiting on silences: a
    # loaded machine may pause longer than any quiet period), within a generous deadline.
    frames = []
    watched: list[dict[str, Any]] = []
    while not {e["seq"] for e in watched if e["type"] == "order.placed"} >= set(orders):
        frames.append(await watcher.receive(timeout=30))
        assert frames[-1]["type"] != "<closed>", frames[-1]
        watched += frames[-1].get("events", [frames[-1]])
    elapsed = loop.time() - started
    host_events = await events_until(host_socket, lambda got: len(comments_in(got)) >= 61)
    author_events = await events_until(
        author,
        lambda got: (
            any(e["type"] == "comment.ack" for e in got)
            and any(e["data"].get("text") == "mine, in the flood" for e in comments_in(got))
        ),
    )

    # Viewers: every order; the comments sampled; a frame per tick at most.
    assert {e["seq"] for e in watched if e["type"] == "order.placed"} == set(orders)
    watched_comments = [e for e in watched if e["type"] == "comment.new"]
    assert len(watched_comments) <= 5 + 5 * (elapsed + 0.7)  # the burst, then 5 a second
    assert len(frames) <= (elapsed + 1) / 0.1 + 2
    # The host sees every comment.
    assert len(comments_in(host_events)) == 61
    # The author: the ack first, and its own comment whatever the sampling.
    ack_index = next(i for i, e in enumerate(author_events) if e["type"] == "comment.ack")
    own = next(
        i
        for i, e in enumerate(author_events)
        if e["type"] == "comment.new" and e["data"]["text"] == "mine, in the flood"
    )
    assert ack_index < own
    assert author_events[ack_index]["data"]["id"] == author_events[own]["data"]["id"]
