"""The contract's error shape for whatever goes wrong at the HTTP level."""

from __future__ import annotations

import pytest

from tests.helpers import assert_error

pytestmark = pytest.mark.django_db


def test_unknown_api_path_is_json_404(client):
    assert_error(client.get("/api/v1/nothing-here/"), 404, "not_found")


def test_unknown_object_is_404(client_for, viewer):
    assert_error(client_for(viewer).get("/api/v1/rooms/999999/"), 404, "not_found")


def test_wrong_method_is_405_in_shape(client_for, viewer):
    assert_error(client_for(viewer).put("/api/v1/me/", {}, format="json"), 405, "method_not_allowed")


def test_non_json_body_is_invalid(client_for, viewer):
    response = client_for(viewer).post("/api/v1/hosts/", "{not json", content_type="application/json")
    assert_error(response, 400, "invalid")


def test_form_body_is_unsupported_media_type(client_for, viewer):
    response = client_for(viewer).post("/api/v1/hosts/", {"kind": "farmer"})  # multipart
    assert_error(response, 415, "unsupported_media_type")


def test_oversized_body_is_refused(client_for, viewer):
    response = client_for(viewer).post(
        "/api/v1/hosts/", '{"bio": "' + "x" * 400_000 + '"}', content_type="application/json"
    )
    assert_error(response, 413, "payload_too_large")


def test_validation_error_names_fields(client_for, viewer):
    response = client_for(viewer).post("/api/v1/hosts/", {"kind": "astronaut"}, format="json")
    body = assert_error(response, 400, "invalid")
    assert set(body["fields"]) == {"kind", "district"}
