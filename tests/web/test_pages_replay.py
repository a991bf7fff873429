"""The replay page and the product page as Django serves them: who may open them, and
where a show not over yet sends its viewers."""

from __future__ import annotations

from typing import Any

import pytest

from rooms.models import Room
from tests.web.test_pages import page_config, signed_in

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("who", ["anonymous", "viewer", "host", "other_host", "staff"])
def test_an_ended_shows_replay_page_opens_to_everyone(persona: Any, room: Room, who: str):
    Room.objects.filter(pk=room.pk).update(status=Room.Status.ENDED)
    response = signed_in(persona(who)).get(f"/rooms/{room.pk}/replay/")
    assert response.status_code == 200
    assert room.title in response.content.decode()
    config = page_config(response)
    assert config["room"] == room.pk
    assert set(config["stripe"]) == {"publishable_key", "js_url"}  # it sells: the checkout needs them


@pytest.mark.parametrize("status", [Room.Status.SCHEDULED, Room.Status.LIVE])
def test_a_show_not_over_yet_sends_the_replay_page_to_its_live_page(client: Any, room: Room, status: str):
    Room.objects.filter(pk=room.pk).update(status=status)
    response = client.get(f"/rooms/{room.pk}/replay/")
    assert (response.status_code, response["Location"]) == (302, f"/rooms/{room.pk}/")


@pytest.mark.parametrize(("who", "code"), [("anonymous", 404), ("viewer", 404), ("host", 302), ("staff", 302)])
def test_a_suspended_show_is_its_hosts_and_staffs_only(persona: Any, room: Room, who: str, code: int):
    Room.objects.filter(pk=room.pk).update(status=Room.Status.SUSPENDED)
    assert signed_in(persona(who)).get(f"/rooms/{room.pk}/replay/").status_code == code
    assert signed_in(persona(who)).get("/rooms/999999/replay/").status_code == 404


@pytest.mark.parametrize(("who", "code"), [("anonymous", 404), ("viewer", 404), ("host", 200), ("staff", 200)])
def test_a_product_page_opens_to_everyone_while_on_sale(persona: Any, sku: Any, who: str, code: int):
    client = signed_in(persona(who))
    assert client.get(f"/products/{sku.product_id}/").status_code == 200
    assert page_config(client.get(f"/products/{sku.product_id}/"))["product"] == sku.product_id
    sku.product.is_active = False
    sku.product.save(update_fields=["is_active"])
    assert client.get(f"/products/{sku.product_id}/").status_code == code  # withdrawn: its shop's and staff's
    assert client.get("/products/999999/").status_code == 404
