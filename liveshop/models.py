from __future__ import annotations

from django.contrib.auth.models import AbstractUser
from django.db import models


class User(AbstractUser):
    """A liveshop account: viewer, host, moderator or staff are roles of the same user."""

    display_name = models.CharField(max_length=64, blank=True)
    # A Chongqing district or county ("Wulong", "Jiangbei"); reports group by it.
    district = models.CharField(max_length=64, blank=True)

    def __str__(self) -> str:
        return self.public_name

    @property
    def public_name(self) -> str:
        return self.display_name or self.username
