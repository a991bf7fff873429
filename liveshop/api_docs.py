"""The OpenAPI schema's shared pieces: error responses, the Idempotency-Key header, and
the project's AutoSchema (what drf-spectacular cannot infer from the code by itself)."""

from __future__ import annotations

from typing import Any

from drf_spectacular.openapi import AutoSchema as SpectacularAutoSchema
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse

from liveshop.errors import ErrorSerializer
from liveshop.idempotency import HEADER as IDEMPOTENCY_HEADER
from liveshop.idempotency import MAX_KEY_LENGTH
from liveshop.ratelimit import ActionThrottle

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


def idempotency_key_parameter(description: str) -> OpenApiParameter:
    """The optional `Idempotency-Key` header, with the form liveshop.idempotency accepts:
    1 to 255 printable ASCII characters (no space at either end: HTTP would strip it)."""
    return OpenApiParameter(
        IDEMPOTENCY_HEADER,
        {
            "type": "string",
            "minLength": 1,
            "maxLength": MAX_KEY_LENGTH,
            "pattern": r"^[\x21-\x7e]([\x20-\x7e]*[\x21-\x7e])?$",
        },
        OpenApiParameter.HEADER,
        description=description,
    )


class AutoSchema(SpectacularAutoSchema):
    """drf-spectacular's AutoSchema, plus what every view shares but cannot declare alone."""

    def _get_response_bodies(self, direction: Any = "response") -> dict[str, Any]:
        bodies: dict[str, Any] = super()._get_response_bodies(direction)
        # A paginated list answers 404 for a page past the last (DRF's PageNumberPagination).
        if self.method == "GET" and self._is_list_view() and self._get_paginator() is not None:
            bodies.setdefault("404", self._error("not_found: no such `page`", "404", direction))
        # Any request body past DATA_UPLOAD_MAX_MEMORY_SIZE (liveshop.errors' handler).
        if self.method in ("POST", "PUT", "PATCH"):
            bodies.setdefault("413", self._error("payload_too_large", "413", direction))
        # The per-user and per-IP limits of liveshop.ratelimit (its throttles limit POSTs).
        if self.method == "POST" and any(
            isinstance(throttle, ActionThrottle) for throttle in self.view.get_throttles()
        ):
            bodies.setdefault("429", self._error(_DESCRIPTIONS[429], "429", direction))
        # Any operation, while PostgreSQL or Redis cannot be reached (liveshop.errors).
        bodies.setdefault("503", self._error("unavailable, with Retry-After", "503", direction))
        return bodies

    def _error(self, description: str, code: str, direction: Any) -> Any:
        return self._get_response_for_code(
            OpenApiResponse(ErrorSerializer, description=description), code, direction=direction
        )
