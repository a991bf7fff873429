"""Uploads served from MEDIA_ROOT under MEDIA_URL (liveshop/media.py): only images, only
from inside MEDIA_ROOT; and the HTTP layer's larger body limit for the upload paths."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from django.conf import settings
from django.test import Client

from liveshop.images import UPLOAD_PATHS
from liveshop.wsgi_threads import WsgiInThreads


@pytest.fixture
def stored() -> Path:
    folder = Path(settings.MEDIA_ROOT) / "products" / "7"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "abc-360.webp"
    path.write_bytes(b"RIFF....WEBPVP8 fake")
    (folder / "notes.html").write_text("<script>alert(1)</script>")
    (folder / ".hidden.jpg").write_bytes(b"x")
    return path


def test_a_stored_image_is_served_with_its_type_and_long_caching(stored):
    response = Client().get("/media/products/7/abc-360.webp")

    assert response.status_code == 200
    assert response.getvalue() == stored.read_bytes()
    assert response["Content-Type"] == "image/webp"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert "immutable" in response["Cache-Control"]
    not_modified = Client().get("/media/products/7/abc-360.webp", HTTP_IF_MODIFIED_SINCE=response["Last-Modified"])
    assert not_modified.status_code == 304


@pytest.mark.parametrize(
    "path",
    [
        "/media/products/7/notes.html",
        "/media/products/7/.hidden.jpg",
        "/media/products/7/missing.jpg",
        "/media/products/7/",
        "/media/../liveshop/settings.py",
        "/media/%2e%2e/%2e%2e/etc/passwd.jpg",
        "/media/..%2f..%2fetc/hosts.png",
        "/media//etc/hostname.jpg",
    ],
)
def test_nothing_but_stored_images_comes_out(stored, path):
    assert Client().get(path).status_code == 404


def test_a_symlink_out_of_media_root_is_not_followed(stored, tmp_path):
    secret = tmp_path / "secret.jpg"
    secret.write_bytes(b"secret")
    link = stored.parent / "link.jpg"
    if link.exists() or link.is_symlink():
        link.unlink()
    os.symlink(secret, link)

    assert Client().get("/media/products/7/link.jpg").status_code == 404


def test_writes_are_not_allowed():
    assert Client().post("/media/products/7/abc-360.webp").status_code == 405


def test_upload_paths_get_the_image_body_limit_and_nothing_else():
    app = WsgiInThreads(
        lambda environ, start: [], threads=1, max_body=100, upload_paths=UPLOAD_PATHS, upload_max_body=10_000
    )

    def limit(method: str, path: str) -> int | None:
        return app._max_body({"type": "http", "method": method, "path": path})

    assert limit("POST", "/api/v1/products/12/photos/") == 10_000
    assert limit("POST", "/api/v1/rooms/3/cover/") == 10_000
    assert limit("PATCH", "/api/v1/products/12/photos/") == 100
    assert limit("POST", "/api/v1/products/12/photos/order/") == 100
    assert limit("POST", "/api/v1/orders/") == 100
    assert limit("POST", "/api/v1/products/12/photos/x/../../../orders/") == 100
