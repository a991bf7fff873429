"""The contract's error shape for whatever goes wrong at the HTTP level."""

from __future__ import annotations

import pytest
import redis
from django.db import InterfaceError, OperationalError, ProgrammingError

from liveshop import api
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


@pytest.mark.parametrize(
    "error",
    [
        OperationalError("terminating connection due to administrator command"),
        InterfaceError("connection already closed"),
        redis.ConnectionError("Connection refused."),
        redis.TimeoutError("Timeout reading from socket"),
    ],
)
def test_a_lost_database_or_redis_is_503_with_retry_after(client_for, viewer, monkeypatch, error):
    client = client_for(viewer)

    def fail(*args, **kwargs):
        raise error

    monkeypatch.setattr(api.MeView, "get", fail)
    response = client.get("/api/v1/me/")
    body = assert_error(response, 503, "unavailable")
    assert body["retry_after"] == int(response["Retry-After"]) >= 1


@pytest.mark.urls("tests.liveshop.failing_urls")
def test_a_lost_database_outside_the_api_views_is_503_too(client):
    """A failure that reaches Django's 500 handler (a middleware, a plain view, a page)."""
    client.raise_request_exception = False
    api_response = client.get("/api/v1/fail/")
    assert_error(api_response, 503, "unavailable")
    assert int(api_response["Retry-After"]) >= 1
    page_response = client.get("/fail/")
    assert page_response.status_code == 503
    assert int(page_response["Retry-After"]) >= 1


@pytest.mark.urls("tests.liveshop.failing_urls")
def test_a_lost_redis_outside_the_api_views_is_503_too(client):
    client.raise_request_exception = False
    assert_error(client.get("/api/v1/fail-redis/"), 503, "unavailable")
    page_response = client.get("/fail-redis/")
    assert page_response.status_code == 503
    assert int(page_response["Retry-After"]) >= 1


def test_other_database_errors_stay_server_errors(client_for, viewer, monkeypatch):
    """A bug (bad SQL, a constraint the code forgot) is not an outage to retry."""
    client = client_for(viewer)
    client.raise_request_exception = False

    def fail(*args, **kwargs):
        raise ProgrammingError("column does not exist")

    monkeypatch.setattr(api.MeView, "get", fail)
    assert_error(client.get("/api/v1/me/"), 500, "server_error")
