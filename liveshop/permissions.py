"""Who may do what: small predicates shared by the apps' APIs.

They read the user's host profile through its reverse relation (`user.host`), so that
`catalog` can ask "is this a verified host?" without importing `rooms`.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import AnonymousUser
from rest_framework.request import Request

from liveshop.errors import NotAuthenticated
from liveshop.models import User


def is_staff(user: User | AnonymousUser | Any) -> bool:
    return bool(user and user.is_authenticated and user.is_staff)


def host_of(user: User | AnonymousUser | Any) -> Any | None:
    """The user's `rooms.Host` profile, or None."""
    if not (user and user.is_authenticated):
        return None
    # The reverse one-to-one raises RelatedObjectDoesNotExist, an AttributeError, when
    # the user has no host profile.
    return getattr(user, "host", None)


def authenticated_user(request: Request) -> User:
    """The request's user, for views whose permissions already require authentication."""
    user = request.user
    if not isinstance(user, User):
        raise NotAuthenticated()
    return user


def is_verified_host(user: User | AnonymousUser | Any) -> bool:
    host = host_of(user)
    return bool(host is not None and host.verified)
