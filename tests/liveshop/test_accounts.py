from __future__ import annotations

import pytest
from rest_framework.authtoken.models import Token

from liveshop.models import User
from tests.helpers import assert_error

pytestmark = pytest.mark.django_db


def test_register_returns_a_working_token(client_for):
    response = client_for(None).post(
        "/api/v1/auth/register/",
        {"username": "xiaomei", "password": "tea-fields-2026", "display_name": "Xiao Mei", "district": "Wulong"},
        format="json",
    )

    assert response.status_code == 201
    body = response.json()
    user = User.objects.get(username="xiaomei")
    assert body == {
        "id": user.pk,
        "username": "xiaomei",
        "display_name": "Xiao Mei",
        "district": "Wulong",
        "token": Token.objects.get(user=user).key,
    }
    me = client_for(None)
    me.credentials(HTTP_AUTHORIZATION=f"Token {body['token']}")
    assert me.get("/api/v1/me/").json()["username"] == "xiaomei"


def test_register_defaults_display_name_to_username(client_for):
    response = client_for(None).post(
        "/api/v1/auth/register/", {"username": "laowang", "password": "tea-fields-2026"}, format="json"
    )
    assert response.status_code == 201
    assert response.json()["display_name"] == "laowang"


def test_register_taken_username_is_invalid_and_writes_nothing(client_for, viewer):
    response = client_for(None).post(
        "/api/v1/auth/register/", {"username": "viewer", "password": "tea-fields-2026"}, format="json"
    )
    body = assert_error(response, 400, "invalid")
    assert "username" in body["fields"]
    assert User.objects.filter(username="viewer").count() == 1


def test_register_weak_password_is_invalid(client_for):
    response = client_for(None).post(
        "/api/v1/auth/register/", {"username": "weakling", "password": "123"}, format="json"
    )
    body = assert_error(response, 400, "invalid")
    assert "password" in body["fields"]
    assert not User.objects.filter(username="weakling").exists()


def test_token_login(client_for, viewer):
    response = client_for(None).post(
        "/api/v1/auth/token/", {"username": "viewer", "password": "correct horse battery"}, format="json"
    )
    assert response.status_code == 200
    assert response.json() == {"token": Token.objects.get(user=viewer).key}


def test_token_wrong_password_is_invalid(client_for, viewer):
    response = client_for(None).post("/api/v1/auth/token/", {"username": "viewer", "password": "wrong"}, format="json")
    assert_error(response, 400, "invalid")


def test_token_revoke(client_for, viewer):
    client = client_for(viewer)
    assert client.delete("/api/v1/auth/token/").status_code == 204
    assert_error(client.get("/api/v1/me/"), 401, "not_authenticated")


def test_me_shows_host_profile(client_for, host, host_profile):
    body = client_for(host).get("/api/v1/me/").json()
    assert body == {
        "id": host.pk,
        "username": "farmer",
        "display_name": "Farmer Chen",
        "district": "Wulong",
        "is_staff": False,
        "host": {"id": host_profile.pk, "kind": "farmer", "verified": True},
    }


def test_me_without_host_profile(client_for, viewer):
    assert client_for(viewer).get("/api/v1/me/").json()["host"] is None


def test_me_patch_changes_only_own_profile(client_for, viewer):
    response = client_for(viewer).patch(
        "/api/v1/me/", {"display_name": "Li the Tea Lover", "is_staff": True, "username": "root"}, format="json"
    )
    assert response.status_code == 200
    viewer.refresh_from_db()
    assert viewer.display_name == "Li the Tea Lover"
    assert viewer.is_staff is False
    assert viewer.username == "viewer"


def test_me_anonymous_is_401(client_for):
    assert_error(client_for(None).get("/api/v1/me/"), 401, "not_authenticated")


def test_bad_token_is_401(client_for):
    client = client_for(None)
    client.credentials(HTTP_AUTHORIZATION="Token not-a-real-token")
    assert_error(client.get("/api/v1/rooms/"), 401, "not_authenticated")


def test_session_auth_works_for_the_web_page(client, viewer):
    client.force_login(viewer)
    assert client.get("/api/v1/me/").json()["username"] == "viewer"


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"username": "ok"},
        {"password": "tea-fields-2026"},
        {"username": "", "password": "tea-fields-2026"},
        {"username": "u" * 10_000, "password": "tea-fields-2026"},
        {"username": "has space", "password": "tea-fields-2026"},
        {"username": "ok", "password": "p" * 10_000},
        {"username": "ok", "password": "tea-fields-2026", "display_name": "d" * 10_000},
        {"username": ["x"], "password": "tea-fields-2026"},
    ],
)
def test_register_bad_input_writes_nothing(client_for, body):
    assert_error(client_for(None).post("/api/v1/auth/register/", body, format="json"), 400, "invalid")
    assert not User.objects.exists()


@pytest.mark.parametrize("body", [{}, {"username": "viewer"}, {"password": "x"}, {"username": 1, "password": []}])
def test_token_bad_input(client_for, viewer, body):
    assert_error(client_for(None).post("/api/v1/auth/token/", body, format="json"), 400, "invalid")


@pytest.mark.parametrize("body", [{"display_name": "d" * 10_000}, {"district": ["Wulong"]}])
def test_me_patch_bad_input(client_for, viewer, body):
    assert_error(client_for(viewer).patch("/api/v1/me/", body, format="json"), 400, "invalid")
    viewer.refresh_from_db()
    assert viewer.display_name == "Viewer Li"
