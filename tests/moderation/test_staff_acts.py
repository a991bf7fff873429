"""Staff's moderation is staff's to undo (audit item 15): a host or room moderator may not
lift or shorten a staff mute, lift a staff ban, or remove a comment staff wrote."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from rooms.models import Ban, Comment, Mute
from tests.helpers import assert_error

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff_mute(live_room, troll, staff) -> Mute:
    return Mute.objects.create(room=live_room, user=troll, until=timezone.now() + timedelta(days=7), created_by=staff)


@pytest.fixture
def staff_ban(live_room, troll, staff) -> Ban:
    return Ban.objects.create(room=live_room, user=troll, created_by=staff, reason="spam ring")


@pytest.mark.parametrize(("who", "status"), [("host", 403), ("moderator", 403), ("staff", 204)])
def test_only_staff_lift_a_staff_mute(client_for, persona, live_room, troll, staff_mute, who, status):
    response = client_for(persona(who)).delete(f"/api/v1/rooms/{live_room.pk}/mutes/{troll.pk}/")
    assert response.status_code == status
    assert Mute.objects.filter(pk=staff_mute.pk).exists() == (status != 204)


@pytest.mark.parametrize("who", ["host", "moderator"])
def test_a_staff_mute_cannot_be_shortened_by_muting_again(client_for, persona, live_room, troll, staff_mute, who):
    body = {"user": troll.pk, "duration_s": 1}
    response = client_for(persona(who)).post(f"/api/v1/rooms/{live_room.pk}/mutes/", body, format="json")
    assert_error(response, 403, "permission_denied")
    staff_mute.refresh_from_db()
    assert staff_mute.until > timezone.now() + timedelta(days=6)


@pytest.mark.parametrize(("who", "status"), [("host", 403), ("moderator", 403), ("staff", 204)])
def test_only_staff_lift_a_staff_ban(client_for, persona, live_room, troll, staff_ban, who, status):
    response = client_for(persona(who)).delete(f"/api/v1/rooms/{live_room.pk}/bans/{troll.pk}/")
    assert response.status_code == status
    assert Ban.objects.filter(pk=staff_ban.pk).exists() == (status != 204)


@pytest.mark.parametrize(("who", "status"), [("host", 403), ("moderator", 403), ("staff", 204)])
def test_only_staff_remove_a_comment_staff_wrote(client_for, persona, live_room, staff, who, status):
    comment = Comment.objects.create(room=live_room, user=staff, text="Please keep the chat kind.")
    response = client_for(persona(who)).delete(f"/api/v1/comments/{comment.pk}/")
    assert response.status_code == status
    comment.refresh_from_db()
    assert (comment.deleted_at is not None) == (status == 204)


def test_a_hosts_own_mute_is_still_the_hosts_to_lift(client_for, host, live_room, troll):
    Mute.objects.create(room=live_room, user=troll, until=timezone.now() + timedelta(hours=1), created_by=host)
    assert client_for(host).delete(f"/api/v1/rooms/{live_room.pk}/mutes/{troll.pk}/").status_code == 204
