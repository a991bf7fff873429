"""Product photos: upload (checked, cleaned, resized), the API's shapes, refusals, deletion."""

from __future__ import annotations

import io
from pathlib import Path
from typing import cast

import pytest
from django.conf import settings
from PIL import Image

from catalog.models import Product, ProductPhoto
from liveshop import images
from tests import factories
from tests.photos import GPS_IFD, image_bytes, png_header_only, upload

pytestmark = pytest.mark.django_db


def photos_url(product: Product) -> str:
    return f"/api/v1/products/{product.pk}/photos/"


def stored_files(product: Product) -> list[Path]:
    folder = Path(settings.MEDIA_ROOT) / "products" / str(product.pk)
    return sorted(path for path in folder.rglob("*") if path.is_file()) if folder.exists() else []


def media_path(url: str) -> Path:
    assert url.startswith(settings.MEDIA_URL), url
    return Path(settings.MEDIA_ROOT) / url.removeprefix(settings.MEDIA_URL)


@pytest.fixture
def product(sku) -> Product:
    return sku.product


def post_photo(client, product, data: bytes, *, name: str = "IMG_0001.jpg", field: str = "image"):
    return client.post(photos_url(product), {field: upload(data, name)}, format="multipart")


def test_the_owner_uploads_a_photo_stored_in_three_sizes_under_a_random_name(client_for, host, product):
    response = post_photo(client_for(host), product, image_bytes("JPEG", (3000, 2000)))

    assert response.status_code == 201, response.content
    body = response.json()
    photo = ProductPhoto.objects.get(product=product)
    assert body == {
        "id": photo.pk,
        "url": f"/media/{photo.large.name}",
        "thumb_url": f"/media/{photo.thumb.name}",
        "original_url": f"/media/{photo.original.name}",
        "width": 2048,
        "height": 1365,
        "position": 1,
    }
    assert len(stored_files(product)) == 3
    assert "IMG_0001" not in "".join(photo.file_names)
    assert all(name.startswith(f"products/{product.pk}/") for name in photo.file_names)
    with Image.open(media_path(body["original_url"])) as original:
        assert (original.format, original.size) == ("JPEG", (2048, 1365))
    with Image.open(media_path(body["url"])) as large:
        assert (large.format, large.size) == ("WEBP", (1080, 720))
    with Image.open(media_path(body["thumb_url"])) as thumb:
        assert (thumb.format, thumb.size) == ("WEBP", (360, 240))


def test_a_small_photo_is_not_enlarged(client_for, host, product):
    body = post_photo(client_for(host), product, image_bytes("PNG", (300, 200))).json()

    assert (body["width"], body["height"]) == (300, 200)
    with Image.open(media_path(body["thumb_url"])) as thumb:
        assert thumb.size == (300, 200)


def test_exif_orientation_is_applied_and_metadata_with_the_gps_position_is_dropped(client_for, host, product):
    # Orientation 6: the camera was turned; the pixels are stored sideways.
    data = image_bytes("JPEG", (800, 600), orientation=6, gps=True)
    with Image.open(io.BytesIO(data)) as sent:
        assert sent.getexif().get_ifd(GPS_IFD)  # the upload does carry a position

    body = post_photo(client_for(host), product, data).json()

    assert (body["width"], body["height"]) == (600, 800)
    for url in (body["original_url"], body["url"], body["thumb_url"]):
        raw = media_path(url).read_bytes()
        with Image.open(io.BytesIO(raw)) as stored:
            assert not stored.getexif(), url
            assert "exif" not in stored.info, url
            assert "xmp" not in stored.info, url
        assert b"CameraMaker" not in raw
    with Image.open(media_path(body["original_url"])) as stored:
        rgb = stored.convert("RGB")
        pixel = rgb.getpixel
        # The red half was on the left before turning: now it is on top.
        red, green, _ = cast(tuple[int, int, int], pixel((300, 100)))
        assert red > 150
        assert green < 100
        assert cast(tuple[int, int, int], pixel((300, 700))) > (240, 240, 240)


@pytest.mark.parametrize(
    ("fmt", "mode"), [("PNG", "RGBA"), ("WEBP", "RGB"), ("WEBP", "RGBA"), ("JPEG", "RGB")], ids=str
)
def test_jpeg_png_and_webp_are_taken(client_for, host, product, fmt, mode):
    color = (20, 120, 40) if mode == "RGB" else (20, 120, 40, 255)
    response = post_photo(client_for(host), product, image_bytes(fmt, (640, 480), color, mode=mode))

    assert response.status_code == 201, response.content
    with Image.open(media_path(response.json()["original_url"])) as original:
        # Transparency lands on white in the JPEG.
        assert original.mode == "RGB"
        assert cast(tuple[int, int, int], original.convert("RGB").getpixel((600, 10))) > (240, 240, 240)


def truncated_jpeg() -> bytes:
    data = image_bytes("JPEG", (800, 600))
    return data[: len(data) // 2]


SVG = b'<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><script>alert(1)</script></svg>'
HTML = b"<!doctype html><html><body><script>alert(document.cookie)</script></body></html>"


@pytest.mark.parametrize(
    ("data", "name", "detail"),
    [
        (b"just some text, not an image", "notes.jpg", "Upload a JPEG, PNG or WebP image."),
        (SVG, "logo.jpg", "Upload a JPEG, PNG or WebP image."),
        (HTML, "page.png", "Upload a JPEG, PNG or WebP image."),
        (image_bytes("GIF", (20, 20)), "anim.gif", "Upload a JPEG, PNG or WebP image."),
        (image_bytes("BMP", (20, 20)), "old.jpg", "Upload a JPEG, PNG or WebP image."),
        (truncated_jpeg(), "half.jpg", "The image is damaged or incomplete."),
        (image_bytes("PNG", (50, 50))[:-30], "cut.png", "The image is damaged or incomplete."),
        (png_header_only(60_000, 60_000), "bomb.png", "The image is too large"),
        (png_header_only(8_000, 6_000), "big.png", "The image is too large: 8000 x 6000 pixels"),
        (png_header_only(0, 10), "empty.png", None),
    ],
    ids=["text", "svg", "html", "gif", "bmp", "truncated-jpeg", "truncated-png", "bomb", "48mp", "zero-size"],
)
def test_what_is_not_a_usable_image_is_refused_400_leaving_nothing(client_for, host, product, data, name, detail):
    response = post_photo(client_for(host), product, data, name=name)

    assert response.status_code == 400, response.content
    body = response.json()
    assert body["code"] == "invalid"
    assert set(body["fields"]) == {"image"}
    if detail:
        assert body["detail"].startswith(detail)
    assert not ProductPhoto.objects.exists()
    assert stored_files(product) == []


def test_an_image_over_the_byte_limit_is_refused_413(client_for, host, product, settings):
    data = image_bytes("PNG", (400, 400))
    settings.IMAGE_UPLOAD_MAX_BYTES = len(data) - 1

    response = post_photo(client_for(host), product, data)

    assert response.status_code == 413
    assert response.json()["code"] == "payload_too_large"
    assert not ProductPhoto.objects.exists()


def test_too_many_pixels_by_the_setting_is_refused(client_for, host, product, settings):
    settings.IMAGE_MAX_PIXELS = 100 * 100

    response = post_photo(client_for(host), product, image_bytes("JPEG", (101, 100)))

    assert response.status_code == 400
    assert "101 x 100 pixels" in response.json()["detail"]


@pytest.mark.parametrize(
    ("payload", "fmt"),
    [
        ({"photo": "wrong-field"}, "multipart"),
        ({"image": ""}, "multipart"),
        ({}, "multipart"),
    ],
    ids=["wrong-field-name", "not-a-file", "nothing"],
)
def test_a_form_without_the_image_field_is_400(client_for, host, product, payload, fmt):
    if payload.get("photo"):
        payload = {"photo": upload(image_bytes())}
    response = client_for(host).post(photos_url(product), payload, format=fmt)

    assert response.status_code == 400
    assert response.json()["code"] == "invalid"
    assert "image" in response.json()["fields"]


def test_an_empty_file_is_400(client_for, host, product):
    response = post_photo(client_for(host), product, b"")

    assert response.status_code == 400
    assert "image" in response.json()["fields"]


def test_json_instead_of_a_form_is_415(client_for, host, product):
    response = client_for(host).post(photos_url(product), {"image": "aGVsbG8="}, format="json")

    assert response.status_code == 415
    assert response.json()["code"] == "unsupported_media_type"


def test_past_the_photo_limit_is_409_limit_exceeded(client_for, host, product, settings):
    settings.PRODUCT_PHOTOS_MAX = 2
    client = client_for(host)
    assert post_photo(client, product, image_bytes()).status_code == 201
    assert post_photo(client, product, image_bytes()).status_code == 201

    response = post_photo(client, product, image_bytes())

    assert response.status_code == 409
    assert response.json()["code"] == "limit_exceeded"
    assert ProductPhoto.objects.filter(product=product).count() == 2
    assert len(stored_files(product)) == 6


def test_files_of_an_upload_whose_row_fails_are_removed(client_for, host, product, monkeypatch):
    def fail(*args, **kwargs):
        raise RuntimeError("the database went away")

    monkeypatch.setattr(ProductPhoto.objects, "create", fail)

    with pytest.raises(RuntimeError):
        post_photo(client_for(host), product, image_bytes())

    assert stored_files(product) == []


def test_a_storage_failure_midway_removes_the_sizes_already_written(product, monkeypatch):
    from django.core.files.storage import default_storage

    real_save = default_storage.save
    calls = []

    def flaky_save(name, content, *args, **kwargs):
        calls.append(name)
        if len(calls) == 2:
            raise OSError("disk full")
        return real_save(name, content, *args, **kwargs)

    monkeypatch.setattr(default_storage, "save", flaky_save)
    image = images.image_open(io.BytesIO(image_bytes()))

    with pytest.raises(OSError, match="disk full"):
        images.image_store(image, folder=f"products/{product.pk}", sizes=images.PHOTO_SIZES)

    assert stored_files(product) == []


def test_product_detail_and_list_show_photos_and_image_and_keep_image_url(client_for, host, product, viewer):
    owner = client_for(host)
    product.image_url = "https://example.com/tea.jpg"
    product.save(update_fields=["image_url"])
    first = post_photo(owner, product, image_bytes("JPEG", (900, 900))).json()
    second = post_photo(owner, product, image_bytes("PNG", (400, 300))).json()

    detail = client_for(viewer).get(f"/api/v1/products/{product.pk}/").json()
    listed = client_for(None).get("/api/v1/products/").json()["results"][0]

    for data in (detail, listed):
        assert data["image_url"] == "https://example.com/tea.jpg"
        assert [photo["id"] for photo in data["photos"]] == [first["id"], second["id"]]
        assert data["image"] == {k: first[k] for k in ("url", "thumb_url", "width", "height")}
    assert client_for(None).get(photos_url(product)).json() == [first, second]


def test_a_product_without_photos_has_image_null(client_for, product):
    data = client_for(None).get(f"/api/v1/products/{product.pk}/").json()

    assert data["photos"] == []
    assert data["image"] is None


def test_the_product_list_reads_photos_in_one_query(client_for, shop, django_assert_max_num_queries):
    for n in range(5):
        product = factories.ProductFactory.create(shop=shop)
        factories.SkuFactory.create(product=product)
        ProductPhoto.objects.create(
            product=product, position=1, original="a", large="b", thumb=f"c{n}", width=1, height=1
        )

    with django_assert_max_num_queries(4):  # count, products, skus, photos
        response = client_for(None).get("/api/v1/products/")

    assert all(row["image"] for row in response.json()["results"])


def test_delete_removes_the_row_then_the_files(client_for, host, product, django_capture_on_commit_callbacks):
    client = client_for(host)
    photo = post_photo(client, product, image_bytes()).json()

    with django_capture_on_commit_callbacks(execute=True):
        response = client.delete(f"{photos_url(product)}{photo['id']}/")

    assert response.status_code == 204
    assert not ProductPhoto.objects.exists()
    assert stored_files(product) == []
    assert client.delete(f"{photos_url(product)}{photo['id']}/").status_code == 404


def test_a_photo_of_another_product_is_404(client_for, host, product, shop):
    client = client_for(host)
    other = factories.ProductFactory.create(shop=shop)
    photo = post_photo(client, other, image_bytes()).json()

    assert client.delete(f"{photos_url(product)}{photo['id']}/").status_code == 404
    assert ProductPhoto.objects.filter(pk=photo["id"]).exists()


def test_reorder_puts_the_first_photo_on_the_cards(client_for, host, product):
    client = client_for(host)
    ids = [post_photo(client, product, image_bytes()).json()["id"] for _ in range(3)]

    response = client.post(f"{photos_url(product)}order/", {"photos": ids[::-1]}, format="json")

    assert response.status_code == 200
    assert [photo["id"] for photo in response.json()] == ids[::-1]
    assert [photo["position"] for photo in response.json()] == [1, 2, 3]
    detail = client.get(f"/api/v1/products/{product.pk}/").json()
    assert detail["image"]["url"] == response.json()[0]["url"]
    bad = client.post(f"{photos_url(product)}order/", {"photos": ids[:2]}, format="json")
    assert bad.status_code == 400
    assert bad.json()["code"] == "invalid"


def test_an_inactive_product_is_404_to_others_and_takes_photos_from_its_owner(client_for, host, product, other_host):
    Product.objects.filter(pk=product.pk).update(is_active=False)

    assert post_photo(client_for(other_host), product, image_bytes()).status_code == 404
    assert post_photo(client_for(host), product, image_bytes()).status_code == 201


def test_an_unknown_product_is_404(client_for, host):
    response = client_for(host).post("/api/v1/products/999999/photos/", {"image": upload(image_bytes())})

    assert response.status_code == 404
    assert response.json()["code"] == "not_found"
