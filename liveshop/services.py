"""Writes for accounts."""

from __future__ import annotations

from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import IntegrityError, transaction
from rest_framework.authtoken.models import Token

from liveshop.auth import token_cache_forget, token_cache_set
from liveshop.errors import Invalid
from liveshop.models import User


def user_register(*, username: str, password: str, display_name: str = "", district: str = "") -> User:
    """Create an account and its API token, or raise Invalid naming the field at fault."""
    candidate = User(username=username, display_name=display_name or username, district=district)
    try:
        validate_password(password, user=candidate)
    except DjangoValidationError as exc:
        raise Invalid("The password is too weak.", fields={"password": list(exc.messages)}) from None
    candidate.set_password(password)
    try:
        with transaction.atomic():
            candidate.save()
            Token.objects.create(user=candidate)
    except IntegrityError:
        raise Invalid("That username is taken.", fields={"username": ["That username is taken."]}) from None
    return candidate


def user_token(*, user: User) -> str:
    token, _ = Token.objects.get_or_create(user=user)
    token_cache_set(key=token.key, user_id=user.pk)
    return token.key


def user_token_revoke(*, user: User) -> None:
    for key in Token.objects.filter(user=user).values_list("key", flat=True):
        token_cache_forget(key=key)
    Token.objects.filter(user=user).delete()
