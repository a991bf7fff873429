"""Personas of moderation: a moderator of the room, a moderator of another room, and the
user they act on (`troll`, who comments in the room). The WebSocket fixtures of the
real-time tests are imported here for this directory's live tests."""

from __future__ import annotations

from typing import Any

import pytest

from liveshop.models import User
from rooms.models import Comment, Room, RoomModerator
from tests import factories
from tests.rooms.conftest import _fresh_backend, hub_stopper, ws  # noqa: F401 - fixtures for this directory


@pytest.fixture
def moderator(room: Room) -> User:
    user = factories.UserFactory.create(username="mod", display_name="Moderator Xu")
    RoomModerator.objects.create(room=room, user=user)
    return user


@pytest.fixture
def other_moderator(other_host: User) -> User:
    """A moderator of another host's room: no power here."""
    other_room = factories.RoomFactory.create(host=other_host.host, title="Jiangbei night market")
    user = factories.UserFactory.create(username="othermod", display_name="Moderator Gao")
    RoomModerator.objects.create(room=other_room, user=user)
    return user


@pytest.fixture
def troll(db: Any) -> User:
    return factories.UserFactory.create(username="troll", display_name="Troll Ma")


@pytest.fixture
def troll_comment(live_room: Room, troll: User) -> Comment:
    return Comment.objects.create(room=live_room, user=troll, text="fake tea, do not buy")
