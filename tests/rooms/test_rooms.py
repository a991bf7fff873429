from __future__ import annotations

import pytest

from rooms.models import FlashSale, Room
from tests import factories
from tests.helpers import assert_error

pytestmark = pytest.mark.django_db


# --- Creating and reading rooms ---------------------------------------------------------


@pytest.mark.parametrize(
    ("who", "status"),
    [
        ("anonymous", 401),
        ("viewer", 403),
        ("unverified_host", 403),
        ("host", 201),
        ("other_host", 201),
        ("staff", 403),
    ],
)
def test_room_create_matrix(client_for, persona, who, status):
    response = client_for(persona(who)).post(
        "/api/v1/rooms/",
        {"title": "Spring tea", "description": "Picking at dawn", "scheduled_start": "2026-12-01T10:00:00Z"},
        format="json",
    )
    assert response.status_code == status, response.json()
    if status == 201:
        body = response.json()
        room = Room.objects.get()
        assert body["status"] == "scheduled"
        assert body["stream_key"] == room.stream_key
        assert body["scheduled_start"] == "2026-12-01T10:00:00Z"
        assert body["viewers_now"] == 0
        assert body["featured_item"] is None
    else:
        assert not Room.objects.exists()


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"title": ""},
        {"title": "t" * 10_000},
        {"title": "ok", "scheduled_start": "tomorrow"},
        {"title": "ok", "description": "d" * 10_000},
        {"title": ["a list"]},
        {"title": True},
    ],
)
def test_room_create_bad_input(client_for, host, body):
    assert_error(client_for(host).post("/api/v1/rooms/", body, format="json"), 400, "invalid")
    assert not Room.objects.exists()


def test_room_detail_shape_and_stream_key_only_for_host(client_for, host, viewer, room, item):
    room.featured_item = item
    room.save()
    public = client_for(viewer).get(f"/api/v1/rooms/{room.pk}/").json()
    assert "stream_key" not in public
    assert set(public) >= {
        "id",
        "title",
        "description",
        "host",
        "status",
        "scheduled_start",
        "started_at",
        "ended_at",
        "viewers_now",
        "featured_item",
        "slow_mode_s",
        "playback_url",
    }
    assert public["host"] == {
        "id": room.host_id,
        "user": {"id": host.pk, "display_name": "Farmer Chen"},
        "kind": "farmer",
        "district": "Wulong",
        "verified": True,
    }
    assert public["featured_item"]["id"] == item.pk
    assert client_for(host).get(f"/api/v1/rooms/{room.pk}/").json()["stream_key"] == room.stream_key


def test_room_list_has_no_stream_keys_and_filters(client, room, other_host):
    cadre_room = factories.RoomFactory.create(host=other_host.host, status=Room.Status.LIVE)
    body = client.get("/api/v1/rooms/").json()
    assert body["count"] == 2
    assert all("stream_key" not in r for r in body["results"])
    assert [r["id"] for r in client.get("/api/v1/rooms/?status=live").json()["results"]] == [cadre_room.pk]
    assert [r["id"] for r in client.get("/api/v1/rooms/?district=Jiangbei").json()["results"]] == [cadre_room.pk]
    assert [r["id"] for r in client.get(f"/api/v1/rooms/?host={room.host_id}").json()["results"]] == [room.pk]
    assert_error(client.get("/api/v1/rooms/?status=paused"), 400, "invalid")


@pytest.mark.parametrize(
    ("who", "visible"),
    [("anonymous", False), ("viewer", False), ("other_host", False), ("host", True), ("staff", True)],
)
def test_suspended_room_visible_only_to_host_and_staff(client_for, persona, who, visible, room):
    room.status = Room.Status.SUSPENDED
    room.save()
    client = client_for(persona(who))
    response = client.get(f"/api/v1/rooms/{room.pk}/")
    assert response.status_code == (200 if visible else 404)
    listed = [r["id"] for r in client.get("/api/v1/rooms/").json()["results"]]
    assert (room.pk in listed) is visible


# --- Editing ----------------------------------------------------------------------------


def test_a_new_playback_url_reaches_open_pages(
    client_for, host, live_room, monkeypatch, settings, django_capture_on_commit_callbacks
):
    settings.HLS_PUBLIC_URL = ""  # no ingest server: the host's own URL
    sent = []
    monkeypatch.setattr("rooms.broadcast.room_publish", lambda room_id, kind, data: sent.append((room_id, kind, data)))
    url = "https://cdn.example/show.m3u8"
    with django_capture_on_commit_callbacks(execute=True):
        client_for(host).patch(f"/api/v1/rooms/{live_room.pk}/", {"playback_url": url}, format="json")
        client_for(host).patch(f"/api/v1/rooms/{live_room.pk}/", {"title": "Autumn tea"}, format="json")
    video = {"source": "external", "state": "off_air", "playback_url": url, "on_air_since": None}
    assert sent == [(live_room.pk, "video.updated", video)]


@pytest.mark.parametrize(
    ("who", "status"),
    [("anonymous", 401), ("viewer", 403), ("unverified_host", 403), ("host", 200), ("other_host", 403), ("staff", 403)],
)
def test_room_patch_matrix(client_for, persona, who, status, room):
    response = client_for(persona(who)).patch(
        f"/api/v1/rooms/{room.pk}/", {"title": "Autumn tea", "slow_mode_s": 5}, format="json"
    )
    assert response.status_code == status
    room.refresh_from_db()
    assert (room.title == "Autumn tea") is (status == 200)


@pytest.mark.parametrize(
    "body",
    [{"slow_mode_s": -1}, {"slow_mode_s": 10**9}, {"title": ""}, {"playback_url": "not a url"}, {"status": "live"}],
)
def test_room_patch_bad_input(client_for, host, room, body):
    response = client_for(host).patch(f"/api/v1/rooms/{room.pk}/", body, format="json")
    if "status" in body:
        # Unknown fields are ignored: the status only changes through start/end/suspend.
        assert response.status_code == 200
    else:
        assert_error(response, 400, "invalid")
    room.refresh_from_db()
    assert room.status == "scheduled"
    assert room.slow_mode_s == 0


def test_room_patch_after_end_is_conflict(client_for, host, room):
    room.status = Room.Status.ENDED
    room.save()
    assert_error(client_for(host).patch(f"/api/v1/rooms/{room.pk}/", {"title": "x"}, format="json"), 409, "conflict")


# --- Lifecycle --------------------------------------------------------------------------

TRANSITIONS = [
    # (action, from, who, expected status, expected room status after)
    ("start", "scheduled", "host", 200, "live"),
    ("start", "live", "host", 409, "live"),
    ("start", "ended", "host", 409, "ended"),
    ("start", "suspended", "host", 409, "suspended"),
    ("end", "scheduled", "host", 200, "ended"),
    ("end", "live", "host", 200, "ended"),
    ("end", "live", "staff", 200, "ended"),
    ("end", "ended", "host", 409, "ended"),
    ("end", "suspended", "staff", 409, "suspended"),
    ("suspend", "scheduled", "staff", 200, "suspended"),
    ("suspend", "live", "staff", 200, "suspended"),
    ("suspend", "ended", "staff", 200, "suspended"),
    ("suspend", "suspended", "staff", 409, "suspended"),
]


@pytest.mark.parametrize(("action", "start", "who", "status", "after"), TRANSITIONS)
def test_room_transitions(client_for, persona, room, action, start, who, status, after):
    room.status = start
    room.save()
    body = {"reason": "Selling counterfeit tea"} if action == "suspend" else None
    response = client_for(persona(who)).post(f"/api/v1/rooms/{room.pk}/{action}/", body, format="json")
    assert response.status_code == status, response.json()
    if status == 409:
        assert response.json()["code"] == "conflict"
    room.refresh_from_db()
    assert room.status == after


def test_start_and_end_set_times(client_for, host, room):
    client = client_for(host)
    started = client.post(f"/api/v1/rooms/{room.pk}/start/").json()
    assert started["status"] == "live"
    assert started["started_at"] is not None
    ended = client.post(f"/api/v1/rooms/{room.pk}/end/").json()
    assert ended["status"] == "ended"
    assert ended["ended_at"] is not None


@pytest.mark.parametrize(
    ("action", "who", "status"),
    [
        ("start", "anonymous", 401),
        ("start", "viewer", 403),
        ("start", "other_host", 403),
        ("start", "staff", 403),
        ("end", "anonymous", 401),
        ("end", "viewer", 403),
        ("end", "other_host", 403),
        ("suspend", "anonymous", 401),
        ("suspend", "viewer", 403),
        ("suspend", "host", 403),
        ("suspend", "other_host", 403),
    ],
)
def test_room_transition_refusals(client_for, persona, room, action, who, status):
    response = client_for(persona(who)).post(f"/api/v1/rooms/{room.pk}/{action}/", {"reason": "x"}, format="json")
    assert response.status_code == status
    room.refresh_from_db()
    assert room.status == "scheduled"


def test_suspend_requires_reason(client_for, staff, room):
    assert_error(client_for(staff).post(f"/api/v1/rooms/{room.pk}/suspend/", {}, format="json"), 400, "invalid")
    room.refresh_from_db()
    assert room.status == "scheduled"


def test_end_returns_flash_sale_units(client_for, host, live_room, item):
    sku = item.sku
    sku.stock = 40  # 10 of 50 units moved into the sale when it started
    sku.save()
    sale = FlashSale.objects.create(
        item=item,
        price=4900,
        quantity=10,
        remaining=6,
        starts_at=live_room.created_at,
        ends_at=live_room.created_at,
    )
    assert client_for(host).post(f"/api/v1/rooms/{live_room.pk}/end/").status_code == 200
    sale.refresh_from_db()
    sku.refresh_from_db()
    assert sale.status == "ended"
    assert sale.returned == 6
    assert sale.sold == 4
    assert sku.stock == 46
