"""`Idempotency-Key` for the API's money-moving POSTs, shared by every app.

Usage in a DRF view (after authentication):

    def post(self, request):
        return idempotent(request, lambda call: self.create(request, call))

    def create(self, request, call: IdempotentCall) -> Response:
        order = call.resumed(Order) or order_create(..., on_created=call.attach)
        ...

The contract: a retry with the same key and the same body gets the first response
again, byte for byte, and nothing is done twice; the same key with another body (or on
another endpoint) is `422 idempotency_key_reused`; keys are per user and kept at least
`IDEMPOTENCY_KEY_TTL_S`. Like Stripe's, only an answer that did something (2xx) is kept:
a refusal (4xx) changed nothing, so its key may be retried, with the same body or a
corrected one.

A key is claimed (a unique row per user and key) before the request runs, with a lease.
A second request with the key while the first runs gets `409 conflict` with
`Retry-After` at once: a request never waits for another, and two concurrent retries
create one thing. What a request created is attached to the record in the creating
transaction, so a retry after a crash, or after a provider outage answered 503,
resumes with it (once the lease has run out, or at once after a 503) instead of
creating it again.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, TypeVar

from django.conf import settings
from django.db import IntegrityError, InterfaceError, OperationalError, models, transaction
from django.db.models import Q
from django.http import HttpResponse
from django.utils import timezone
from rest_framework.exceptions import APIException
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response

from liveshop.errors import Conflict, IdempotencyKeyReused, Invalid, ServiceError
from liveshop.models import IdempotencyRecord
from liveshop.permissions import authenticated_user

logger = logging.getLogger(__name__)

HEADER = "Idempotency-Key"
MAX_KEY_LENGTH = 255

M = TypeVar("M", bound=models.Model)


class IdempotencyInProgress(Conflict):
    default_detail = "A request with this Idempotency-Key is still in progress; retry shortly."

    def headers(self) -> dict[str, str]:
        return {"Retry-After": "1"}


@dataclass
class IdempotentCall:
    """What the handler of an idempotent request may ask about its key."""

    record: IdempotencyRecord | None
    key: str | None

    def resumed(self, model: type[M]) -> M | None:
        """The object an earlier attempt with this key created, if it got that far."""
        record = self.record
        if record is None or record.resource_id is None or record.resource_type != model._meta.label:
            return None
        return model._default_manager.filter(pk=record.resource_id).first()

    def attach(self, obj: models.Model) -> None:
        """Record what this request created. Call inside the transaction that creates it."""
        if self.record is None:
            return
        IdempotencyRecord.objects.filter(pk=self.record.pk).update(resource_type=obj._meta.label, resource_id=obj.pk)
        self.record.resource_type, self.record.resource_id = obj._meta.label, obj.pk


def request_hash(*, scope: str, data: Any) -> str:
    """The body's fingerprint: its JSON with keys sorted, so key order does not matter."""
    canonical = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return hashlib.sha256(f"{scope}\n{canonical}".encode()).hexdigest()


def _render(response: Response) -> HttpResponse:
    """The bytes a client gets, identical for the first answer and every replay."""
    content = JSONRenderer().render(response.data) if response.data is not None else b""
    rendered = HttpResponse(content, status=response.status_code, content_type="application/json")
    for name, value in response.items():
        if name.lower() != "content-type":
            rendered[name] = value
    return rendered


def _replay(record: IdempotencyRecord) -> HttpResponse:
    assert record.response_status is not None
    response = HttpResponse(
        bytes(record.response_body or b""),
        status=record.response_status,
        content_type=record.response_content_type or "application/json",
    )
    response["Idempotent-Replayed"] = "true"
    return response


def _validated_key(request: Request) -> str | None:
    key = request.headers.get(HEADER)
    if key is None:
        return None
    if not key or len(key) > MAX_KEY_LENGTH or not key.isascii() or not key.isprintable():
        raise Invalid(
            f"The {HEADER} header must be 1 to {MAX_KEY_LENGTH} printable ASCII characters.",
            fields={HEADER: ["Not a valid key."]},
        )
    return key


def _claim(*, user_id: int, key: str, scope: str, fingerprint: str) -> tuple[IdempotencyRecord, bool]:
    """Claim the key for this request. Returns (record, is_replay)."""
    now = timezone.now()
    lease = now + timedelta(seconds=settings.IDEMPOTENCY_LEASE_S)
    for _ in range(3):
        try:
            with transaction.atomic():
                record = IdempotencyRecord.objects.create(
                    user_id=user_id, key=key, scope=scope, request_hash=fingerprint, locked_until=lease
                )
            return record, False
        except IntegrityError:
            pass
        existing = IdempotencyRecord.objects.filter(user_id=user_id, key=key).first()
        if existing is None:
            continue  # refused and deleted in between: claim it afresh
        if existing.scope != scope or existing.request_hash != fingerprint:
            raise IdempotencyKeyReused()
        if existing.response_status is not None:
            return existing, True
        # Unfinished: take it over only if its lease ran out (the request died).
        taken = (
            IdempotencyRecord.objects.filter(pk=existing.pk, response_status__isnull=True)
            .filter(Q(locked_until__isnull=True) | Q(locked_until__lt=now))
            .update(locked_until=lease)
        )
        if taken != 1:
            raise IdempotencyInProgress()
        existing.locked_until = lease
        return existing, False
    raise IdempotencyInProgress()


def _is_refusal(exc: Exception) -> bool:
    """A 4xx: the request was refused and changed nothing."""
    if isinstance(exc, ServiceError):
        return exc.status < 500
    return isinstance(exc, APIException) and exc.status_code < 500


def idempotent(request: Request, handler: Callable[[IdempotentCall], Response]) -> HttpResponse:
    """Run `handler` at most once per (user, Idempotency-Key) and replay its answer.

    Without the header the handler simply runs. The request must be authenticated.
    """
    key = _validated_key(request)
    if key is None:
        return _render(handler(IdempotentCall(record=None, key=None)))

    user = authenticated_user(request)
    scope = f"{request.method} {request.path}"
    record, is_replay = _claim(
        user_id=user.pk, key=key, scope=scope, fingerprint=request_hash(scope=scope, data=request.data)
    )
    if is_replay:
        return _replay(record)

    call = IdempotentCall(record=record, key=key)
    try:
        rendered = _render(handler(call))
        if 200 <= rendered.status_code < 300:
            IdempotencyRecord.objects.filter(pk=record.pk).update(
                response_status=rendered.status_code,
                response_body=rendered.content,
                response_content_type=rendered["Content-Type"],
                completed_at=timezone.now(),
                locked_until=None,
            )
        else:
            IdempotencyRecord.objects.filter(pk=record.pk).delete()
    except Exception as exc:
        _release(record_id=record.pk, refused=_is_refusal(exc))
        raise
    return rendered


def _release(*, record_id: int, refused: bool) -> None:
    """Give up the key of a request that failed: forget it after a refusal (4xx), else
    keep what was created and drop the lease so that a retry resumes at once.

    When the failure was the database connection (a 503: PostgreSQL restarted, the
    backend was terminated), that connection is dead; the release then runs on a fresh
    one from the pool. If that fails too, the lease runs out by itself after
    IDEMPOTENCY_LEASE_S.
    """
    records = IdempotencyRecord.objects.filter(pk=record_id)
    for attempt in range(2):
        try:
            if refused:
                records.delete()
            else:
                records.update(locked_until=None)
            return
        except (OperationalError, InterfaceError):
            if attempt or transaction.get_connection().in_atomic_block:
                logger.warning("Idempotency-Key record %s keeps its lease: the database is unavailable", record_id)
                return
            transaction.get_connection().close()


def idempotency_records_purge(*, older_than_s: int | None = None) -> int:
    """Forget keys older than the retention (the contract keeps them at least 24 hours)."""
    age = settings.IDEMPOTENCY_KEY_TTL_S if older_than_s is None else older_than_s
    deleted, _ = IdempotencyRecord.objects.filter(created_at__lt=timezone.now() - timedelta(seconds=age)).delete()
    return deleted
