"""A show's cover image, and product photos where rooms show products (shelf, snapshot)."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.conf import settings
from PIL import Image

from catalog.models import ProductPhoto
from rooms import payloads
from rooms.models import Room
from tests.photos import image_bytes, upload

pytestmark = pytest.mark.django_db


def media_path(url: str) -> Path:
    return Path(settings.MEDIA_ROOT) / url.removeprefix(settings.MEDIA_URL)


def post_cover(client, room, data: bytes):
    return client.post(f"/api/v1/rooms/{room.pk}/cover/", {"image": upload(data)}, format="multipart")


def test_a_room_has_no_cover_at_first(client_for, room):
    assert client_for(None).get(f"/api/v1/rooms/{room.pk}/").json()["cover"] is None


def test_the_host_sets_a_16_9_cover_and_everyone_sees_it(client_for, host, room):
    response = post_cover(client_for(host), room, image_bytes("JPEG", (2000, 2000)))

    assert response.status_code == 200, response.content
    cover = response.json()["cover"]
    assert set(cover) == {"url", "thumb_url"}
    with Image.open(media_path(cover["url"])) as large:
        assert large.size == (1280, 720)
    with Image.open(media_path(cover["thumb_url"])) as thumb:
        assert thumb.size == (480, 270)
    assert client_for(None).get(f"/api/v1/rooms/{room.pk}/").json()["cover"] == cover
    listed = client_for(None).get("/api/v1/rooms/").json()["results"]
    assert listed[0]["cover"] == cover


def test_a_new_cover_replaces_the_old_one_and_deletes_its_files(
    client_for, host, room, django_capture_on_commit_callbacks
):
    client = client_for(host)
    first = post_cover(client, room, image_bytes("PNG", (800, 450))).json()["cover"]

    with django_capture_on_commit_callbacks(execute=True):
        second = post_cover(client, room, image_bytes("WEBP", (1600, 900))).json()["cover"]

    assert second["url"] != first["url"]
    assert not media_path(first["url"]).exists()
    assert not media_path(first["thumb_url"]).exists()
    assert media_path(second["url"]).exists()
    with django_capture_on_commit_callbacks(execute=True):
        assert client.delete(f"/api/v1/rooms/{room.pk}/cover/").status_code == 204
    assert not media_path(second["url"]).exists()
    assert Room.objects.get(pk=room.pk).cover.name == ""


def test_a_bad_cover_is_400_and_keeps_the_old_one(client_for, host, room):
    client = client_for(host)
    cover = post_cover(client, room, image_bytes()).json()["cover"]

    response = post_cover(client, room, b"<svg xmlns='http://www.w3.org/2000/svg'></svg>")

    assert response.status_code == 400
    assert response.json()["fields"] == {"image": ["Upload a JPEG, PNG or WebP image."]}
    assert client.get(f"/api/v1/rooms/{room.pk}/").json()["cover"] == cover
    assert media_path(cover["url"]).exists()


def test_shelf_items_and_the_snapshot_carry_the_products_photos(client_for, host, room, item):
    photo = client_for(host).post(
        f"/api/v1/products/{item.sku.product_id}/photos/", {"image": upload(image_bytes())}, format="multipart"
    )
    assert photo.status_code == 201
    image = {k: photo.json()[k] for k in ("url", "thumb_url", "width", "height")}
    room.featured_item = item
    room.save(update_fields=["featured_item"])

    shelf = client_for(None).get(f"/api/v1/rooms/{room.pk}/items/").json()
    detail = client_for(None).get(f"/api/v1/rooms/{room.pk}/").json()
    snapshot = payloads.snapshot_shared(Room.objects.get(pk=room.pk))

    assert shelf[0]["product"]["image"] == image
    assert shelf[0]["product"]["photos"][0]["id"] == photo.json()["id"]
    assert detail["featured_item"]["product"]["image"] == image
    assert snapshot["items"][0]["product"]["image"] == image
    assert snapshot["featured_item"]["product"]["image"] == image
    assert snapshot["room"]["cover"] is None


def test_the_shelf_reads_photos_in_one_query(client_for, room, item, django_assert_num_queries):
    ProductPhoto.objects.create(
        product=item.sku.product, position=1, original="o", large="l", thumb="t", width=4, height=3
    )
    with django_assert_num_queries(4):  # the room, items (with sku, product, offer), flash sales, photos
        shelf = client_for(None).get(f"/api/v1/rooms/{room.pk}/items/").json()
    assert shelf[0]["product"]["image"]["thumb_url"] == "/media/t"
