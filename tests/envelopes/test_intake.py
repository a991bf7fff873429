"""The grab intake (envelopes/intake.py) answers only the grabs Django would certainly
answer `red_envelope_empty`, with Django's bytes; everything else reaches Django."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from envelopes import services
from envelopes.intake import GrabIntake
from envelopes.models import RedEnvelopeShare
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


def test_the_gate_runs_before_django_and_only_the_winners_reach_it(client_for, host, viewer, live_room):
    grant(host, 1000)
    envelope = services.red_envelope_drop(room=live_room, sender=host, coins=10, shares=1)
    winner, loser = factories.UserFactory.create(), factories.UserFactory.create()
    winner_token, loser_token = known_token(winner), known_token(loser)

    assert call(envelope.pk, winner_token)[0]  # the share is handed out here, claimed by Django:
    assert client_for(winner).post(f"/api/v1/red-envelopes/{envelope.pk}/grab/").json() == {
        "coins": 10
    }  # (the same index, found in the gate)
    reached, status, body = call(envelope.pk, loser_token)
    assert (reached, status) == (False, 409)
    django_says = client_for(loser).post(f"/api/v1/red-envelopes/{envelope.pk}/grab/")
    assert (django_says.status_code, django_says.content) == (409, body)  # the same bytes

    assert call(envelope.pk, winner_token)[0]  # the winner asking again gets its share from Django
    assert call(envelope.pk, known_token(host))[0]  # the sender: Django's 403
    assert call(envelope.pk, "a-token-nobody-was-given")[0]  # unknown: Django's 401
    assert call(envelope.pk, None)[0]  # no token (a session): Django
    assert call(999_999, loser_token)[0]  # no such envelope: Django's 404

    fans_only = services.red_envelope_drop(room=live_room, sender=host, coins=10, shares=1, followers_only=True)
    fan = factories.UserFactory.create()
    Follow.objects.create(user=fan, host=live_room.host)
    assert client_for(fan).post(f"/api/v1/red-envelopes/{fans_only.pk}/grab/").status_code == 201
    assert call(fans_only.pk, loser_token)[0]  # not a follower: Django's 403, not "empty"

    later = services.red_envelope_drop(room=live_room, sender=host, coins=10, shares=1, opens_in_s=60)
    assert call(later.pk, loser_token)[0]  # not open yet: Django's 409 conflict
    assert client_for(viewer).post(f"/api/v1/red-envelopes/{later.pk}/grab/").status_code == 409
    assert RedEnvelopeShare.objects.filter(envelope=later, user__isnull=False).count() == 0
