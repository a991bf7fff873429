"""Helpers for declaring the API's error responses in the OpenAPI schema."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiResponse

from liveshop.errors import ErrorSerializer

_DESCRIPTIONS = {
    400: "invalid: the request failed validation (`fields` names the culprits)",
    401: "not_authenticated",
    402: "insufficient_coins",
    403: "permission_denied (or a more specific code)",
    404: "not_found",
    409: "conflict (or a more specific code)",
    422: "idempotency_key_reused",
    429: "rate_limited, with Retry-After",
    503: "unavailable",
}


def errors(*statuses: int) -> dict[int, OpenApiResponse]:
    """`responses={200: X, **errors(400, 404)}` documents the error shape for each status."""
    return {code: OpenApiResponse(ErrorSerializer, description=_DESCRIPTIONS.get(code, "")) for code in statuses}
