from __future__ import annotations

import pytest

from rooms.models import Follow, Host
from tests import factories
from tests.helpers import assert_error

pytestmark = pytest.mark.django_db


def test_become_a_host_unverified(client_for, viewer):
    response = client_for(viewer).post(
        "/api/v1/hosts/", {"kind": "farmer", "district": "Wulong", "bio": "Tea since 1998."}, format="json"
    )
    assert response.status_code == 201
    host = Host.objects.get(user=viewer)
    assert response.json() == {
        "id": host.pk,
        "user": {"id": viewer.pk, "display_name": "Viewer Li"},
        "kind": "farmer",
        "district": "Wulong",
        "bio": "Tea since 1998.",
        "verified": False,
        "followers": 0,
        "following": None,
        "created_at": response.json()["created_at"],
    }


def test_cannot_verify_yourself_by_posting_verified(client_for, viewer):
    client_for(viewer).post(
        "/api/v1/hosts/", {"kind": "cadre", "district": "Jiangbei", "verified": True}, format="json"
    )
    assert Host.objects.get(user=viewer).verified is False


def test_second_host_profile_is_conflict(client_for, host):
    response = client_for(host).post("/api/v1/hosts/", {"kind": "cadre", "district": "Jiangbei"}, format="json")
    assert_error(response, 409, "conflict")
    assert Host.objects.filter(user=host).count() == 1


def test_host_create_anonymous_is_401(client_for):
    response = client_for(None).post("/api/v1/hosts/", {"kind": "farmer", "district": "Wulong"}, format="json")
    assert_error(response, 401, "not_authenticated")
    assert not Host.objects.exists()


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"kind": "farmer"},
        {"kind": "wizard", "district": "Wulong"},
        {"kind": "farmer", "district": ""},
        {"kind": "farmer", "district": "x" * 10_000},
        {"kind": "farmer", "district": "Wulong", "bio": "b" * 10_000},
        {"kind": ["farmer"], "district": "Wulong"},
        {"kind": "farmer", "district": {"name": "Wulong"}},
    ],
)
def test_host_create_bad_input(client_for, viewer, body):
    assert_error(client_for(viewer).post("/api/v1/hosts/", body, format="json"), 400, "invalid")
    assert not Host.objects.exists()


@pytest.mark.parametrize("who", ["anonymous", "viewer", "unverified_host", "host", "other_host", "staff"])
def test_host_profile_is_public(client_for, persona, who, host_profile):
    response = client_for(persona(who)).get(f"/api/v1/hosts/{host_profile.pk}/")
    assert response.status_code == 200
    assert response.json()["user"] == {"id": host_profile.user_id, "display_name": "Farmer Chen"}


@pytest.mark.parametrize(
    ("who", "status"),
    [("anonymous", 401), ("viewer", 403), ("unverified_host", 403), ("host", 403), ("other_host", 403), ("staff", 200)],
)
def test_verify_matrix(client_for, persona, who, status):
    target = factories.HostFactory.create(verified=False)
    response = client_for(persona(who)).post(f"/api/v1/hosts/{target.pk}/verify/")
    assert response.status_code == status
    target.refresh_from_db()
    assert target.verified is (status == 200)
    if status == 200:
        assert response.json()["verified"] is True
        assert target.verified_at is not None


def test_verify_twice_keeps_first_time(client_for, staff):
    target = factories.HostFactory.create(verified=False)
    client_for(staff).post(f"/api/v1/hosts/{target.pk}/verify/")
    target.refresh_from_db()
    first = target.verified_at
    assert client_for(staff).post(f"/api/v1/hosts/{target.pk}/verify/").status_code == 200
    target.refresh_from_db()
    assert target.verified_at == first


def test_verify_unknown_host_is_404(client_for, staff):
    assert_error(client_for(staff).post("/api/v1/hosts/999999/verify/"), 404, "not_found")


def test_follow_and_unfollow_are_idempotent(client_for, viewer, host_profile):
    client = client_for(viewer)
    url = f"/api/v1/hosts/{host_profile.pk}/follow/"
    assert client.post(url).status_code == 204
    assert client.post(url).status_code == 204
    assert client.get(f"/api/v1/hosts/{host_profile.pk}/").json()["followers"] == 1
    assert Follow.objects.filter(user=viewer, host=host_profile).count() == 1

    assert client.delete(url).status_code == 204
    assert client.delete(url).status_code == 204
    assert client.get(f"/api/v1/hosts/{host_profile.pk}/").json()["followers"] == 0
    assert not Follow.objects.exists()


def test_host_detail_says_whether_you_follow_and_rooms_filter_by_it(client_for, viewer, host_profile, room):
    client = client_for(viewer)
    other_room = factories.RoomFactory.create()  # another host's
    assert client.get(f"/api/v1/hosts/{host_profile.pk}/").json()["following"] is False
    assert client_for(None).get(f"/api/v1/hosts/{host_profile.pk}/").json()["following"] is None
    assert client.get("/api/v1/rooms/?following=true").json()["results"] == []
    client.post(f"/api/v1/hosts/{host_profile.pk}/follow/")
    assert client.get(f"/api/v1/hosts/{host_profile.pk}/").json()["following"] is True
    assert [r["id"] for r in client.get("/api/v1/rooms/?following=true").json()["results"]] == [room.pk]
    assert {r["id"] for r in client.get("/api/v1/rooms/?following=false").json()["results"]} == {room.pk, other_room.pk}
    assert client_for(None).get("/api/v1/rooms/?following=true").json()["results"] == []


def test_follow_yourself_is_invalid(client_for, host, host_profile):
    assert_error(client_for(host).post(f"/api/v1/hosts/{host_profile.pk}/follow/"), 400, "invalid")


def test_follow_anonymous_is_401_and_unknown_is_404(client_for, viewer, host_profile):
    assert_error(client_for(None).post(f"/api/v1/hosts/{host_profile.pk}/follow/"), 401, "not_authenticated")
    assert_error(client_for(viewer).post("/api/v1/hosts/999999/follow/"), 404, "not_found")
