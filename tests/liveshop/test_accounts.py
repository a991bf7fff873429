from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone
from knox.crypto import hash_token
from knox.models import AuthToken
from rest_framework.test import APIClient

from liveshop.auth import token_cache_key
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
    token = body.pop("token")
    assert body == {"id": user.pk, "username": "xiaomei", "display_name": "Xiao Mei", "district": "Wulong"}
    assert list(AuthToken.objects.filter(user=user).values_list("digest", flat=True)) == [hash_token(token)]
    me = client_for(None)
    me.credentials(HTTP_AUTHORIZATION=f"Token {token}")
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
    assert list(response.json()) == ["token"]
    me = APIClient(HTTP_AUTHORIZATION=f"Token {response.json()['token']}")
    assert me.get("/api/v1/me/").json()["username"] == "viewer"


def test_token_wrong_password_is_invalid(client_for, viewer):
    response = client_for(None).post("/api/v1/auth/token/", {"username": "viewer", "password": "wrong"}, format="json")
    assert_error(response, 400, "invalid")
    assert not AuthToken.objects.exists()


def test_token_revoke(client_for, viewer):
    client = client_for(viewer)
    assert client.delete("/api/v1/auth/token/").status_code == 204
    assert_error(client.get("/api/v1/me/"), 401, "not_authenticated")


# --- API tokens: hashed, per device, expiring, revocable (audit 16) ----------------------------


def login(username: str = "viewer", password: str = "correct horse battery") -> str:
    response = APIClient().post("/api/v1/auth/token/", {"username": username, "password": password}, format="json")
    assert response.status_code == 200, response.content
    return str(response.json()["token"])


def as_token(token: str) -> APIClient:
    return APIClient(HTTP_AUTHORIZATION=f"Token {token}")


def test_tokens_are_stored_hashed_never_in_plain_text(viewer):
    token = login()
    row = AuthToken.objects.get(user=viewer)
    assert row.digest == hash_token(token)
    stored = [str(value) for value in AuthToken.objects.values_list("digest", "token_key").get()]
    assert all(token not in value for value in stored)
    assert len(row.token_key) < len(token)  # only a prefix, for the lookup


def test_each_login_is_a_device_of_its_own(viewer):
    phone, laptop = login(), login()
    assert phone != laptop
    assert AuthToken.objects.filter(user=viewer).count() == 2
    assert as_token(phone).post("/api/v1/auth/logout/").status_code == 204
    assert_error(as_token(phone).get("/api/v1/me/"), 401, "not_authenticated")
    assert as_token(laptop).get("/api/v1/me/").json()["username"] == "viewer"


def test_a_token_expires_after_api_token_ttl(settings, viewer):
    settings.API_TOKEN_TTL_S = 3600
    token = login()
    row = AuthToken.objects.get(user=viewer)
    assert row.expiry is not None
    assert abs((row.expiry - row.created).total_seconds() - 3600) < 5
    assert as_token(token).get("/api/v1/me/").status_code == 200
    AuthToken.objects.filter(pk=row.pk).update(expiry=timezone.now() - timedelta(seconds=1))
    assert_error(as_token(token).get("/api/v1/me/"), 401, "not_authenticated")
    assert not AuthToken.objects.filter(user=viewer).exists()  # purged on the way


def test_logout_all_revokes_every_device_of_that_user_only(viewer, staff):
    devices = [login(), login(), login()]
    staffs = login("staff")
    assert as_token(devices[0]).post("/api/v1/auth/logout-all/").status_code == 204
    for token in devices:
        assert_error(as_token(token).get("/api/v1/me/"), 401, "not_authenticated")
    assert not AuthToken.objects.filter(user=viewer).exists()
    assert as_token(staffs).get("/api/v1/me/").json()["username"] == "staff"


def test_logout_needs_a_token(client, viewer):
    assert_error(APIClient().post("/api/v1/auth/logout/"), 401, "not_authenticated")
    client.force_login(viewer)  # a session has no token to revoke
    assert_error(client.post("/api/v1/auth/logout/"), 401, "not_authenticated")


def test_the_redis_mirror_lives_no_longer_than_the_token(settings, viewer):
    from liveshop import auth
    from liveshop.redis_client import redis_sync

    client = redis_sync()
    if client is None:
        pytest.skip("the mirror needs REDIS_URL")
    settings.API_TOKEN_TTL_S = 120
    token = login()
    assert client.get(token_cache_key(token)) == str(viewer.pk).encode()
    assert 0 < client.ttl(token_cache_key(token)) <= 120
    auth._written.clear()
    assert as_token(token).get("/api/v1/me/").status_code == 200
    assert 0 < client.ttl(token_cache_key(token)) <= 120
    assert as_token(token).post("/api/v1/auth/logout/").status_code == 204
    assert client.get(token_cache_key(token)) is None


def test_logout_all_drops_every_token_from_the_redis_mirror(viewer):
    from liveshop.redis_client import redis_sync

    client = redis_sync()
    if client is None:
        pytest.skip("the mirror needs REDIS_URL")
    devices = [login(), login()]
    assert all(client.get(token_cache_key(token)) for token in devices)
    assert as_token(devices[1]).post("/api/v1/auth/logout-all/").status_code == 204
    assert [client.get(token_cache_key(token)) for token in devices] == [None, None]


@pytest.mark.parametrize(
    "header",
    [
        "Token 9944b09199c62bcf9418ad846dd0e4bbdfc6ee4b",  # an old DRF token: log in again
        "Token " + "g" * 64,
        "Token abc\x00def",
        "Token caf\xe9",
    ],
)
def test_old_and_malformed_tokens_are_401(header):
    response = APIClient(HTTP_AUTHORIZATION=header).get("/api/v1/rooms/")
    assert_error(response, 401, "not_authenticated")


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


# --- Bad input that once gave a 500 (audit 11a) ----------------------------------------------


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/api/v1/auth/token/", '{"username": "vic\\ud800tim", "password": "wrong-password"}'),
        ("/api/v1/auth/token/", '{"username": "viewer", "password": "pass\\udfffword"}'),
        ("/api/v1/auth/register/", '{"username": "vic\\ud800tim", "password": "tea-fields-2026"}'),
        ("/api/v1/auth/register/", '{"username": "newbie", "password": "tea-\\ud800-fields-2026"}'),
        ("/api/v1/auth/register/", '{"username": "newbie", "password": "tea-fields-2026", "display_name": "\\ud800"}'),
        ("/api/v1/auth/register/", '{"username": "newbie", "password": "tea-fields-2026", "district": "\\udc00"}'),
    ],
)
def test_lone_surrogates_are_invalid_not_a_500(client_for, viewer, path, body):
    users_before = User.objects.count()
    response = client_for(None).post(path, body, content_type="application/json")
    assert_error(response, 400, "invalid")
    assert User.objects.count() == users_before


def test_me_patch_lone_surrogate_is_invalid(client_for, viewer):
    response = client_for(viewer).patch("/api/v1/me/", '{"display_name": "\\ud800"}', content_type="application/json")
    assert_error(response, 400, "invalid")
    viewer.refresh_from_db()
    assert viewer.display_name == "Viewer Li"


def test_admin_login_with_an_undecodable_username_is_no_500(client):
    # A form body cannot carry a lone surrogate: its bytes decode with replacement.
    response = client.post(
        "/admin/login/", "username=vic%ED%A0%80tim&password=x", content_type="application/x-www-form-urlencoded"
    )
    assert response.status_code == 200
    assert "_auth_user_id" not in client.session


# --- The web sign-up page validates usernames as the API does (audit 13) ----------------------


@pytest.mark.parametrize("username", ["<img src=x onerror=alert(1)>", "has space", "semi;colon"])
def test_web_register_refuses_what_the_api_refuses(client, username):
    api = APIClient().post(
        "/api/v1/auth/register/", {"username": username, "password": "tea-fields-2026"}, format="json"
    )
    assert_error(api, 400, "invalid")
    response = client.post("/register/", {"username": username, "password": "tea-fields-2026"})
    assert response.status_code == 200
    assert response.context["form"].errors["username"] == [
        "Enter a valid username. This value may contain only letters, numbers, and @/./+/-/_ characters."
    ]
    assert not User.objects.filter(username=username).exists()
    assert "_auth_user_id" not in client.session
