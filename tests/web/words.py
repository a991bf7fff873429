"""What a page says in the language a test opens it in: the msgid itself for English, the
committed Chinese catalog's translation for Chinese (djangojs for what the scripts write,
django for the templates), so that a journey's test runs in both languages and fails on
a missing translation as a Chinese reader would."""

from __future__ import annotations

import gettext
from dataclasses import dataclass
from functools import cache

from tests.servers import BASE_DIR

LOCALE_DIR = BASE_DIR / "liveshop" / "locale"


@cache
def _catalog(domain: str) -> gettext.NullTranslations:
    return gettext.translation(domain, LOCALE_DIR, languages=["zh_Hans"])


@dataclass(frozen=True)
class Viewport:
    """A person's device and language: a phone in Chinese or a desktop in English."""

    phone: bool
    locale: str

    @property
    def id(self) -> str:
        return f"{'phone' if self.phone else 'desktop'}-{self.locale}"

    @property
    def chinese(self) -> bool:
        return self.locale.startswith("zh")

    def js(self, msgid: str, **values: object) -> str:
        """A script's words (djangojs), with Python's %(name)s values filled in."""
        return self._say("djangojs", msgid, values)

    def page(self, msgid: str, **values: object) -> str:
        """A template's words (django)."""
        return self._say("django", msgid, values)

    def _say(self, domain: str, msgid: str, values: dict[str, object]) -> str:
        text = _catalog(domain).gettext(msgid) if self.chinese else msgid
        assert not self.chinese or text != msgid, f"no Chinese for {msgid!r} in {domain}"
        return text % values if values else text


PHONE_ZH = Viewport(phone=True, locale="zh-CN")
DESKTOP_EN = Viewport(phone=False, locale="en-US")
BOTH = [PHONE_ZH, DESKTOP_EN]
