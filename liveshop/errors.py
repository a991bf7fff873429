"""Service errors and the one place that turns them into the contract's error shape.

Services raise `ServiceError` subclasses; they know nothing of HTTP. The API answers
every failure as `{"code": "<snake_case>", "detail": "<text>"}` (plus `fields` for
validation errors) through `api_exception_handler`, and the WebSocket consumer turns the
same exceptions into `error` frames with `ServiceError.as_dict()`.
"""

from __future__ import annotations

import logging
import sys
from datetime import UTC, datetime
from typing import Any

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import RequestDataTooBig
from django.db import InterfaceError, OperationalError
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.views import defaults
from rest_framework import exceptions as drf_exceptions
from rest_framework import serializers, status
from rest_framework.response import Response

from liveshop.redis_client import REDIS_RETRY_AFTER_S, REDIS_UNAVAILABLE

logger = logging.getLogger(__name__)


class ServiceError(Exception):
    """A business rule refused the operation. Subclasses fix `code` and `status`."""

    code: str = "invalid"
    status: int = status.HTTP_400_BAD_REQUEST
    default_detail: str = "The request is not valid."

    def __init__(self, detail: str | None = None, *, fields: dict[str, list[str]] | None = None) -> None:
        self.detail = detail or self.default_detail
        self.fields = fields
        super().__init__(self.detail)

    def as_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {"code": self.code, "detail": self.detail}
        if self.fields:
            body["fields"] = self.fields
        return body

    def headers(self) -> dict[str, str]:
        return {}


class Invalid(ServiceError):
    pass


class NotAuthenticated(ServiceError):
    code = "not_authenticated"
    status = status.HTTP_401_UNAUTHORIZED
    default_detail = "Authentication credentials were not provided or are not valid."


class PermissionDenied(ServiceError):
    code = "permission_denied"
    status = status.HTTP_403_FORBIDDEN
    default_detail = "You do not have permission to do this."


class NotFound(ServiceError):
    code = "not_found"
    status = status.HTTP_404_NOT_FOUND
    default_detail = "Not found."


class Conflict(ServiceError):
    code = "conflict"
    status = status.HTTP_409_CONFLICT
    default_detail = "The operation conflicts with the current state."


class OutOfStock(ServiceError):
    code = "out_of_stock"
    status = status.HTTP_409_CONFLICT
    default_detail = "Not enough units in stock."


class FlashSoldOut(ServiceError):
    code = "flash_sold_out"
    status = status.HTTP_409_CONFLICT
    default_detail = "The flash sale is sold out."


class LimitExceeded(ServiceError):
    code = "limit_exceeded"
    status = status.HTTP_409_CONFLICT
    default_detail = "The per-buyer limit of this flash sale is reached."


class RedEnvelopeEmpty(ServiceError):
    code = "red_envelope_empty"
    status = status.HTTP_409_CONFLICT
    default_detail = "Every share of this red envelope has been grabbed."


class InsufficientCoins(ServiceError):
    code = "insufficient_coins"
    status = status.HTTP_402_PAYMENT_REQUIRED
    default_detail = "Not enough coins in the wallet."


class Muted(ServiceError):
    code = "muted"
    status = status.HTTP_403_FORBIDDEN
    default_detail = "You are muted in this room."


class Banned(ServiceError):
    code = "banned"
    status = status.HTTP_403_FORBIDDEN
    default_detail = "You are banned from this room."


class CommentBlocked(ServiceError):
    code = "comment_blocked"
    status = status.HTTP_400_BAD_REQUEST
    default_detail = "The comment contains a blocked word."


class AccountTooNew(ServiceError):
    """The room's new-account protection: the account may comment from `allowed_at`."""

    code = "account_too_new"
    status = status.HTTP_403_FORBIDDEN
    default_detail = "Your account is too new to comment in this room yet."

    def __init__(self, detail: str | None = None, *, allowed_at: datetime) -> None:
        super().__init__(detail)
        self.allowed_at = allowed_at

    def as_dict(self) -> dict[str, Any]:
        return {**super().as_dict(), "allowed_at": self.allowed_at.astimezone(UTC).isoformat().replace("+00:00", "Z")}


class RoomNotLive(ServiceError):
    code = "room_not_live"
    status = status.HTTP_409_CONFLICT
    default_detail = "The room is not live."


class IdempotencyKeyReused(ServiceError):
    code = "idempotency_key_reused"
    status = status.HTTP_422_UNPROCESSABLE_ENTITY
    default_detail = "This Idempotency-Key was used with a different request body."


class RetryLater(ServiceError):
    """A refusal the client should try again after `retry_after` seconds: the number is in
    the body and in the `Retry-After` header."""

    default_retry_after = 1

    def __init__(self, detail: str | None = None, *, retry_after: int | None = None) -> None:
        super().__init__(detail)
        self.retry_after = max(1, int(self.default_retry_after if retry_after is None else retry_after))

    def as_dict(self) -> dict[str, Any]:
        return {**super().as_dict(), "retry_after": self.retry_after}

    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after)}


class RateLimited(RetryLater):
    code = "rate_limited"
    status = status.HTTP_429_TOO_MANY_REQUESTS
    default_detail = "Too many requests; slow down."


class ServiceUnavailable(RetryLater):
    """Something the request needs (the database, Redis, Stripe) is out of reach for now: retry."""

    code = "unavailable"
    status = status.HTTP_503_SERVICE_UNAVAILABLE
    default_detail = "The service is temporarily unavailable; try again shortly."
    default_retry_after = 2


class PayloadTooLarge(ServiceError):
    code = "payload_too_large"
    status = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_detail = "The request body is too large."


# Seconds a client is asked to wait after a database failure: a pool replaces dead
# connections at once, and a restarted PostgreSQL takes a few seconds.
DATABASE_RETRY_AFTER_S = 2


def database_outage(exc: BaseException) -> ServiceUnavailable | None:
    """The 503 for a database failure that a retry may not meet, else None.

    OperationalError covers a connection that died (a terminated backend, PostgreSQL
    restarting), a pool with no connection to give in time (psycopg_pool's PoolTimeout),
    and transient refusals (deadlock, serialization failure, SQLite's "database is
    locked"); InterfaceError a connection already closed. Neither is a bug of the
    request, and a transaction cut short by one was rolled back by the server, so the
    client may retry (with the same Idempotency-Key where it sent one).
    """
    if not isinstance(exc, (OperationalError, InterfaceError)):
        return None
    logger.warning("database unavailable: %s: %s", type(exc).__name__, str(exc).strip()[:200])
    return ServiceUnavailable("The database is unavailable; try again shortly.", retry_after=DATABASE_RETRY_AFTER_S)


def redis_outage(exc: BaseException) -> ServiceUnavailable | None:
    """The 503 for Redis down or restarting (a refused connect, a dropped connection, a
    pool with nothing to give), else None: try again shortly, never a 500."""
    if not isinstance(exc, REDIS_UNAVAILABLE):
        return None
    logger.warning("Redis unavailable: %s: %s", type(exc).__name__, str(exc).strip()[:200])
    return ServiceUnavailable("Redis is unavailable; try again shortly.", retry_after=REDIS_RETRY_AFTER_S)


# DRF's own exceptions, by class, to the contract's codes. Anything not listed keeps
# DRF's default code (e.g. `method_not_allowed`, `unsupported_media_type`).
_DRF_CODES: dict[type[drf_exceptions.APIException], str] = {
    drf_exceptions.ValidationError: "invalid",
    drf_exceptions.ParseError: "invalid",
    drf_exceptions.NotAuthenticated: "not_authenticated",
    drf_exceptions.AuthenticationFailed: "not_authenticated",
    drf_exceptions.PermissionDenied: "permission_denied",
    drf_exceptions.NotFound: "not_found",
    drf_exceptions.Throttled: "rate_limited",
}


def _flatten(detail: Any, prefix: str = "") -> dict[str, list[str]]:
    """Turn DRF's nested error detail into {"a.0.b": ["message"]}."""
    if isinstance(detail, dict):
        out: dict[str, list[str]] = {}
        for key, value in detail.items():
            out.update(_flatten(value, f"{prefix}.{key}" if prefix else str(key)))
        return out
    if isinstance(detail, list):
        if all(not isinstance(item, (dict, list)) for item in detail):
            return {prefix or "non_field_errors": [str(item) for item in detail]}
        out = {}
        for index, value in enumerate(detail):
            if value:
                out.update(_flatten(value, f"{prefix}.{index}" if prefix else str(index)))
        return out
    return {prefix or "non_field_errors": [str(detail)]}


def _validation_body(exc: drf_exceptions.ValidationError) -> dict[str, Any]:
    fields = _flatten(exc.detail)
    general = fields.pop("non_field_errors", None)
    if general:
        detail = " ".join(general)
    elif fields:
        first_field, messages = next(iter(fields.items()))
        detail = f"{first_field}: {messages[0]}"
    else:
        detail = "The request is not valid."
    body: dict[str, Any] = {"code": "invalid", "detail": detail}
    if fields:
        body["fields"] = fields
    return body


def api_exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """DRF's EXCEPTION_HANDLER: every API error leaves in the contract's shape."""
    if isinstance(exc, RequestDataTooBig):
        exc = PayloadTooLarge()
    elif (outage := database_outage(exc)) is not None or (outage := redis_outage(exc)) is not None:
        exc = outage
    if isinstance(exc, ServiceError):
        return Response(exc.as_dict(), status=exc.status, headers=exc.headers())
    if isinstance(exc, Http404):
        exc = drf_exceptions.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = drf_exceptions.PermissionDenied()
    if not isinstance(exc, drf_exceptions.APIException):
        return None  # a real bug: Django's 500 handler takes it

    headers: dict[str, str] = {}
    if auth_header := getattr(exc, "auth_header", None):
        headers["WWW-Authenticate"] = auth_header
    if wait := getattr(exc, "wait", None):
        headers["Retry-After"] = str(max(1, int(wait)))

    if isinstance(exc, drf_exceptions.ValidationError):
        body = _validation_body(exc)
    else:
        code = next((c for cls, c in _DRF_CODES.items() if isinstance(exc, cls)), None)
        if code is None:
            codes = exc.get_codes()
            code = codes if isinstance(codes, str) else "error"
        detail = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
        body = {"code": code, "detail": str(detail)}
    return Response(body, status=exc.status_code, headers=headers)


class ErrorSerializer(serializers.Serializer[Any]):
    """The error shape, for the OpenAPI schema."""

    code = serializers.CharField()
    detail = serializers.CharField()
    # DRF's metaclass pops declared fields off the class, so this does not shadow
    # Serializer.fields at run time; mypy cannot know that.
    fields = serializers.DictField(  # type: ignore[assignment]
        child=serializers.ListField(child=serializers.CharField()), required=False
    )


# Django's own error views (handler400/403/404/500 in urls.py): JSON in the contract's
# shape under /api/, Django's pages elsewhere (the admin, the web client).


def _wants_json(request: HttpRequest) -> bool:
    return request.path.startswith("/api/")


def error_400(request: HttpRequest, exception: Exception) -> HttpResponse:
    if _wants_json(request):
        return JsonResponse({"code": "invalid", "detail": "Bad request."}, status=400)
    return defaults.bad_request(request, exception)


def error_403(request: HttpRequest, exception: Exception) -> HttpResponse:
    if _wants_json(request):
        return JsonResponse({"code": "permission_denied", "detail": "Forbidden."}, status=403)
    return defaults.permission_denied(request, exception)


def error_404(request: HttpRequest, exception: Exception) -> HttpResponse:
    if _wants_json(request):
        return JsonResponse({"code": "not_found", "detail": "Not found."}, status=404)
    return defaults.page_not_found(request, exception)


def error_500(request: HttpRequest) -> HttpResponse:
    # Django calls this while handling the exception: a database or Redis failure outside
    # the API's views (a middleware, a web page) is a 503 to retry as well.
    failure = sys.exc_info()[1] or Exception()
    outage = database_outage(failure) or redis_outage(failure)
    if outage is not None:
        if _wants_json(request):
            response: HttpResponse = JsonResponse(outage.as_dict(), status=outage.status)
        else:
            response = HttpResponse(outage.detail, status=outage.status, content_type="text/plain; charset=utf-8")
        for name, value in outage.headers().items():
            response[name] = value
        return response
    if _wants_json(request):
        return JsonResponse({"code": "server_error", "detail": "Internal server error."}, status=500)
    return defaults.server_error(request)
