"""Who may write product photos and room covers: every new write endpoint, every persona.

Like tests/orders/test_authorization_matrix.py (whose JSON bodies do not fit uploads): the
product belongs to `host`'s shop, the room is `host`'s; `rival` is a verified host with a
shop of its own; `other_host` a verified host with none; `moderator` moderates the room.
A refusal changes nothing: no row, no file.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from django.conf import settings

from catalog.models import ProductPhoto
from rooms.models import Room, RoomModerator
from tests import factories
from tests.photos import image_bytes, upload

pytestmark = pytest.mark.django_db

PERSONAS = ("anonymous", "viewer", "rival", "host", "other_host", "moderator", "staff")


@dataclass(frozen=True)
class Case:
    method: str
    path: str
    allowed: dict[str, int]
    state: Callable[[SimpleNamespace], Any]
    multipart: bool = False
    json: Callable[[SimpleNamespace], dict[str, Any]] | None = None


def _photos(world: SimpleNamespace) -> Any:
    return list(ProductPhoto.objects.filter(product=world.product).values_list("pk", "position"))


def _cover(world: SimpleNamespace) -> Any:
    return Room.objects.filter(pk=world.room.pk).values_list("cover", "cover_thumb").get()


CASES: dict[str, Case] = {
    "photo.add": Case("POST", "/api/v1/products/{product.pk}/photos/", {"host": 201}, _photos, multipart=True),
    "photo.delete": Case(
        "DELETE", "/api/v1/products/{product.pk}/photos/{photo.pk}/", {"host": 204, "staff": 204}, _photos
    ),
    "photo.order": Case(
        "POST",
        "/api/v1/products/{product.pk}/photos/order/",
        {"host": 200},
        _photos,
        json=lambda w: {"photos": [w.photo.pk, w.photo2.pk][::-1]},
    ),
    "room.cover": Case("POST", "/api/v1/rooms/{room.pk}/cover/", {"host": 200}, _cover, multipart=True),
    "room.cover_delete": Case("DELETE", "/api/v1/rooms/{room.pk}/cover/", {"host": 204, "staff": 204}, _cover),
}


@pytest.fixture
def world(host, host_profile, shop, sku, live_room, viewer, other_host, staff) -> SimpleNamespace:
    rival = factories.UserFactory.create(username="rival")
    factories.HostFactory.create(user=rival, district="Fengjie")
    factories.SkuFactory.create(product__shop__owner=rival)
    moderator = factories.UserFactory.create(username="moderator")
    RoomModerator.objects.create(room=live_room, user=moderator)
    photo, photo2 = (
        ProductPhoto.objects.create(
            product=sku.product, position=n, original=f"o{n}", large=f"l{n}", thumb=f"t{n}", width=1, height=1
        )
        for n in (1, 2)
    )
    Room.objects.filter(pk=live_room.pk).update(cover="rooms/x-1280.webp", cover_thumb="rooms/x-480.webp")
    users = {"viewer": viewer, "rival": rival, "host": host, "other_host": other_host, "moderator": moderator}
    return SimpleNamespace(
        users=users | {"staff": staff}, product=sku.product, photo=photo, photo2=photo2, room=live_room
    )


def _files() -> list[Path]:
    return [path for path in Path(settings.MEDIA_ROOT).rglob("*") if path.is_file()]


@pytest.mark.parametrize("persona", PERSONAS)
@pytest.mark.parametrize("name", list(CASES))
def test_photo_authorization_matrix(client_for, world, name, persona):
    case = CASES[name]
    user = world.users.get(persona)
    expected = 401 if user is None else case.allowed.get(persona, 403)
    before, files_before = case.state(world), _files()
    client = client_for(user)
    path = case.path.format(**vars(world))

    if case.multipart:
        response = client.post(path, {"image": upload(image_bytes("JPEG", (320, 240)))}, format="multipart")
    elif case.json is not None:
        response = client.post(path, case.json(world), format="json")
    else:
        response = client.generic(case.method, path)

    assert response.status_code == expected, (name, persona, response.content[:300])
    if expected >= 400:
        assert set(response.json()) >= {"code", "detail"}
        assert case.state(world) == before, f"{name}: a refused {persona} changed something"
        assert _files() == files_before
