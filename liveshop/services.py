"""Writes for accounts: registration and API tokens.

API tokens are django-rest-knox's: the database keeps a hash of each (never the token),
each login makes a token of its own (one per device), and each expires API_TOKEN_TTL_S
after it was made. The token itself is shown once, to the client that logged in.
"""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.contrib.auth.password_validation import validate_password
from django.contrib.auth.validators import UnicodeUsernameValidator
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext
from knox.models import AuthToken

from liveshop.auth import token_cache_forget, token_cache_forget_digests, token_cache_set
from liveshop.errors import Invalid
from liveshop.models import User

# What a username may be, for every way an account is made (the API, the web page):
# letters, digits and @.+-_, which is also what keeps it out of harm in pages and logs.
username_validator = UnicodeUsernameValidator()


def user_register(*, username: str, password: str, display_name: str = "", district: str = "") -> User:
    """Create an account, or raise Invalid naming the field at fault."""
    try:
        username_validator(username)
    except DjangoValidationError as exc:
        raise Invalid("The username is not valid.", fields={"username": list(exc.messages)}) from None
    candidate = User(username=username, display_name=display_name or username, district=district)
    try:
        validate_password(password, user=candidate)
    except DjangoValidationError as exc:
        raise Invalid("The password is too weak.", fields={"password": list(exc.messages)}) from None
    candidate.set_password(password)
    try:
        with transaction.atomic():
            candidate.save()
    except IntegrityError:
        taken = gettext("That username is taken.")
        raise Invalid(taken, fields={"username": [taken]}) from None
    return candidate


def user_token_create(*, user: User) -> str:
    """A new API token for `user` (a login on one more device); returns the token itself,
    which nothing keeps: only its hash is stored."""
    now = timezone.now()
    # The user's tokens that have expired go now: rows only the user's logins add.
    AuthToken.objects.filter(user=user, expiry__lt=now).delete()
    token, key = AuthToken.objects.create(user=user, expiry=timedelta(seconds=settings.API_TOKEN_TTL_S))
    token_cache_set(key=key, user_id=user.pk, expiry=token.expiry)
    return key


def user_token_revoke(*, token: AuthToken, key: str) -> None:
    """Revoke one token (`key` is the token itself, as the client presented it)."""
    # The row first: an authentication racing with this one cannot then put the token
    # back into Redis after it was dropped there (it would find no row).
    AuthToken.objects.filter(digest=token.digest).delete()
    token_cache_forget(key=key)


def user_tokens_revoke_all(*, user: User) -> int:
    """Revoke every API token of `user` (every device); returns how many there were."""
    digests = list(AuthToken.objects.filter(user=user).values_list("digest", flat=True))
    AuthToken.objects.filter(digest__in=digests).delete()
    token_cache_forget_digests(digests=digests)
    return len(digests)
