from __future__ import annotations

import pytest
from django.core.management import call_command

pytestmark = pytest.mark.django_db


def test_schema_generates_without_warnings(tmp_path):
    out = tmp_path / "schema.yml"
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(out))
    text = out.read_text()
    for path in ("/api/v1/rooms/{id}/items/", "/api/v1/products/", "/api/v1/auth/register/"):
        assert path in text


def test_schema_and_swagger_are_served_without_the_internet(client):
    assert client.get("/api/schema/").status_code == 200
    page = client.get("/api/docs/").content.decode()
    assert "swagger-ui" in page
    assert "cdn.jsdelivr.net" not in page
    assert "unpkg.com" not in page
