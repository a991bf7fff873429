"""The web pages as Django serves them (no browser): who may open what, what each page is
handed, registration, and the language rules (pages follow the browser; the API does not)."""

from __future__ import annotations

import json
import threading
from typing import Any

import pytest
from django.db import connections
from django.test import Client
from django.utils import translation

from liveshop.models import User
from rooms.models import Room
from tests import factories

pytestmark = pytest.mark.django_db


def page_config(response: Any) -> dict[str, Any]:
    html = response.content.decode()
    start = html.index('<script id="page-config" type="application/json">') + len(
        '<script id="page-config" type="application/json">'
    )
    return json.loads(html[start : html.index("</script>", start)])


def signed_in(user: User | None) -> Client:
    client = Client()
    if user is not None:
        client.force_login(user)
    return client


@pytest.mark.parametrize("who", ["anonymous", "viewer", "host", "other_host", "staff"])
def test_home_and_viewer_page_open_to_everyone(persona, room, who):
    client = signed_in(persona(who))
    assert client.get("/").status_code == 200
    response = client.get(f"/rooms/{room.pk}/")
    assert response.status_code == 200
    assert room.title in response.content.decode()
    config = page_config(response)
    assert config["room"] == room.pk
    user = persona(who)
    assert config["user"] == ({"id": user.pk, "display_name": user.public_name} if user else None)


def test_viewer_page_is_handed_stripe_js_and_the_publishable_key(client, room, settings):
    settings.STRIPE_PUBLISHABLE_KEY = "pk_test_abc"
    settings.STRIPE_JS_URL = "http://127.0.0.1:8420/js.stripe.com/v3/"
    config = page_config(client.get(f"/rooms/{room.pk}/"))
    assert config["stripe"] == {"publishable_key": "pk_test_abc", "js_url": "http://127.0.0.1:8420/js.stripe.com/v3/"}
    assert config["login_url"] == f"/login/?next=/rooms/{room.pk}/"


def test_stripe_js_defaults_to_stripes_own():
    from django.conf import settings

    assert settings.STRIPE_JS_URL == "https://js.stripe.com/v3/"


def test_pages_carry_the_csrf_token_for_the_apis_session_writes(client, room):
    response = client.get(f"/rooms/{room.pk}/")
    assert '<meta name="csrf-token" content="' in response.content.decode()
    assert "csrftoken" in response.cookies


@pytest.mark.parametrize(("who", "status"), [("viewer", 404), ("other_host", 404), ("staff", 404), ("host", 200)])
def test_studio_is_the_hosts_alone(persona, room, who, status):
    response = signed_in(persona(who)).get(f"/studio/rooms/{room.pk}/")
    assert response.status_code == status


def test_studio_sends_the_anonymous_to_sign_in(client, room):
    response = client.get(f"/studio/rooms/{room.pk}/")
    assert response.status_code == 302
    assert response["Location"] == f"/login/?next=/studio/rooms/{room.pk}/"


def test_unknown_and_suspended_rooms_are_not_found(client, host, room):
    assert client.get("/rooms/999999/").status_code == 404
    Room.objects.filter(pk=room.pk).update(status=Room.Status.SUSPENDED)
    response = client.get(f"/rooms/{room.pk}/")
    assert response.status_code == 404
    assert "Not found" in response.content.decode()  # the site's page, not the API's JSON
    assert signed_in(host).get(f"/rooms/{room.pk}/").status_code == 200  # its host still sees it


def test_giveaway_verification_page_is_public(client):
    response = client.get("/giveaways/42/verify/")
    assert response.status_code == 200
    assert page_config(response)["giveaway"] == 42


def test_register_creates_the_account_signs_in_and_goes_on(client):
    response = client.post(
        "/register/",
        {
            "username": "xiaomei",
            "password": "tea-from-wulong-2026",
            "display_name": "小美",
            "district": "Jiangbei",
            "next": "/rooms/7/",
        },
    )
    assert response.status_code == 302
    assert response["Location"] == "/rooms/7/"
    user = User.objects.get(username="xiaomei")
    assert (user.display_name, user.district) == ("小美", "Jiangbei")
    assert user.check_password("tea-from-wulong-2026")
    assert page_config(client.get("/"))["user"] == {"id": user.pk, "display_name": "小美"}


@pytest.mark.parametrize(
    ("data", "field", "message"),
    [
        ({"username": "viewer", "password": "tea-from-wulong-2026"}, "username", "That username is taken."),
        ({"username": "new", "password": "12345678"}, "password", "This password is entirely numeric."),
        ({"username": "", "password": "tea-from-wulong-2026"}, "username", "This field is required."),
    ],
)
def test_register_refusals_name_the_field_and_create_nothing(client, viewer, data, field, message):
    before = User.objects.count()
    response = client.post("/register/", data)
    assert response.status_code == 200
    assert message in response.context["form"].errors[field]
    assert User.objects.count() == before
    assert "_auth_user_id" not in client.session


def test_register_never_redirects_off_site(client):
    response = client.post(
        "/register/", {"username": "someone", "password": "tea-from-wulong-2026", "next": "https://evil.example/"}
    )
    assert response["Location"] == "/"


def test_login_and_logout_through_the_pages(client, settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    user = factories.UserFactory.create(username="chen")
    response = client.post("/login/", {"username": "chen", "password": "wrong", "next": "/rooms/1/"})
    assert response.status_code == 200
    assert "Wrong username or password." in response.content.decode()
    response = client.post("/login/", {"username": "chen", "password": "correct horse battery", "next": "/rooms/1/"})
    assert response["Location"] == "/rooms/1/"
    assert client.session["_auth_user_id"] == str(user.pk)
    response = client.post("/logout/")
    assert response["Location"] == "/"
    assert "_auth_user_id" not in client.session


def test_pages_follow_the_browsers_language(client, room):
    chinese = client.get(f"/rooms/{room.pk}/", HTTP_ACCEPT_LANGUAGE="zh-CN,zh;q=0.9,en;q=0.5")
    assert chinese["Content-Language"] == "zh-hans"
    html = chinese.content.decode()
    assert '<html lang="zh-hans">' in html
    assert "讲解中" in html
    assert "直播货架" in html
    english = client.get(f"/rooms/{room.pk}/", HTTP_ACCEPT_LANGUAGE="en-US,en;q=0.8")
    assert "Now explaining" in english.content.decode()
    catalog = client.get("/jsi18n/", HTTP_ACCEPT_LANGUAGE="zh-CN").content.decode()
    assert "\\u79d2\\u6740" in catalog or "秒杀" in catalog  # "Flash sale" for the scripts


def test_the_language_switch_sticks(client):
    response = client.post("/i18n/setlang/", {"language": "zh-hans", "next": "/"})
    assert response.status_code == 302
    assert "正在直播" in client.get("/", HTTP_ACCEPT_LANGUAGE="en").content.decode()


def test_the_api_keeps_its_own_words_whatever_the_browser_speaks(client_for, viewer):
    response = client_for(viewer).post("/api/v1/orders/", {}, format="json", HTTP_ACCEPT_LANGUAGE="zh-CN")
    assert response.status_code == 400
    assert response.json()["fields"]["items"] == ["This field is required."]
    assert "Content-Language" not in response


@pytest.mark.django_db(transaction=True)
def test_a_pages_language_does_not_leak_into_the_next_api_answer_on_the_thread(client, client_for, viewer, room):
    # Web requests run on a pool of threads: a Chinese page served on this thread before
    # must leave the API's next answer on it in English.
    errors: list[str] = []

    def run() -> None:
        try:
            page = client.get(f"/rooms/{room.pk}/", HTTP_ACCEPT_LANGUAGE="zh-CN")
            assert page["Content-Language"] == "zh-hans"
            assert translation.get_language() == "en"  # nothing left active on the thread
            response = client_for(viewer).post("/api/v1/orders/", {}, format="json")
            assert response.json()["fields"]["items"] == ["This field is required."], response.json()
        except Exception as exc:  # noqa: BLE001 - reported to the test's thread below
            errors.append(repr(exc))
        finally:
            translation.deactivate()
            connections.close_all()

    thread = threading.Thread(target=run)
    thread.start()
    thread.join(30)
    assert errors == []


def test_not_found_pages_are_html_and_api_ones_json(client):
    page = client.get("/no-such-page/")
    assert page.status_code == 404
    assert page["Content-Type"].startswith("text/html")
    api = client.get("/api/v1/no-such-thing/")
    assert api.status_code == 404
    assert api.json()["code"] == "not_found"
