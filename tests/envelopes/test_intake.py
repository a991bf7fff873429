"""The grab intake (envelopes/intake.py) answers only the grabs Django would certainly
answer `red_envelope_empty`, with Django's bytes; everything else reaches Django."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from envelopes import services
from envelopes.intake import GrabIntake
from liveshop.auth import token_cache_set
from liveshop.redis_client import redis_sync
from rooms.models import Follow
from tests import factories
from tests.coins import grant

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _needs_redis(monkeypatch) -> None:
    if redis_sync() is None:
        pytest.skip("needs Redis")
    monkeypatch.setattr("rooms.broadcast.room_publish", lambda *args: 0)
    services._facts.clear()


def call(envelope_id: int, token: str | None) -> tuple[bool, int, bytes]:
    """(reached Django, status, body) of a grab through the intake."""
    reached: list[bool] = []
    sent: list[dict[str, Any]] = []

    async def django(scope: Any, receive: Any, send: Any) -> None:
        reached.append(True)

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    headers = [(b"authorization", f"Token {token}".encode())] if token else []
    scope = {"type": "http", "method": "POST", "path": f"/api/v1/red-envelopes/{envelope_id}/grab/", "headers": headers}
    asyncio.run(GrabIntake(django)(scope, receive, send))
    if reached:
        return True, 0, b""
    return False, sent[0]["status"], sent[1]["body"]


def known_token(user: Any) -> str:
    token = factories.api_token(user)
    token_cache_set(key=token, user_id=user.pk)  # as every login and authenticated request does
    return token


def test_only_certain_refusals_are_answered_before_django(client_for, host, viewer, live_room):
    grant(host, 1000)
    envelope = services.red_envelope_drop(room=live_room, sender=host, coins=10, shares=1)
    late = factories.UserFactory.create()
    late_token = known_token(late)
    assert call(envelope.pk, late_token)[0]  # a share is left: Django hands it out
    viewer_token = known_token(viewer)
    assert client_for(viewer).post(f"/api/v1/red-envelopes/{envelope.pk}/grab/").status_code == 201

    reached, status, body = call(envelope.pk, late_token)
    assert (reached, status) == (False, 409)
    django_says = client_for(late).post(f"/api/v1/red-envelopes/{envelope.pk}/grab/")
    assert (django_says.status_code, django_says.content) == (409, body)  # the same bytes

    assert call(envelope.pk, viewer_token)[0]  # the winner asking again gets its share from Django
    assert call(envelope.pk, known_token(host))[0]  # the sender: Django's 403
    assert call(envelope.pk, "a-token-nobody-was-given")[0]  # unknown: Django's 401
    assert call(envelope.pk, None)[0]  # no token (a session): Django
    assert call(999_999, late_token)[0]  # no such envelope: Django's 404

    fans_only = services.red_envelope_drop(room=live_room, sender=host, coins=10, shares=1, followers_only=True)
    fan = factories.UserFactory.create()
    Follow.objects.create(user=fan, host=live_room.host)
    assert client_for(fan).post(f"/api/v1/red-envelopes/{fans_only.pk}/grab/").status_code == 201
    assert call(fans_only.pk, late_token)[0]  # not a follower: Django's 403, not "empty"

    later = services.red_envelope_drop(room=live_room, sender=host, coins=10, shares=1, opens_in_s=60)
    assert call(later.pk, late_token)[0]  # not open yet: Django's 409 conflict
