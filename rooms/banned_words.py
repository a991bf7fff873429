"""The banned-word check on comments: one Aho-Corasick pass over the text for all words.

Each process keeps the automaton built from the `BannedWord` table and checks that the
table has not changed since (count, last id and last edit time in one indexed query):
before every call of `banned_word_in`, and at most once a second for the comments of
the room sockets (`recent_matcher`, see RECHECK_S).
"""

from __future__ import annotations

import re
import threading
import time
import unicodedata
from typing import Any

import ahocorasick
from django.db import transaction
from django.db.models import Count, Max
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver

from rooms.models import BannedWord

_WHITESPACE = re.compile(r"\s+")


def normalize(text: str) -> str:
    """Fold the ways of writing the same word: full-width forms and compatibility
    characters (NFKC), case, invisible format characters, runs of white space."""
    folded = unicodedata.normalize("NFKC", text).casefold()
    visible = "".join(ch for ch in folded if unicodedata.category(ch) != "Cf")
    return _WHITESPACE.sub(" ", visible).strip()


class BannedWordMatcher:
    def __init__(self, words: list[str]) -> None:
        self._automaton: Any = None
        normalized = {normalize(word) for word in words} - {""}
        if normalized:
            automaton = ahocorasick.Automaton()
            for word in normalized:
                automaton.add_word(word, word)
            automaton.make_automaton()
            self._automaton = automaton

    def find(self, text: str) -> str | None:
        """The first banned word in `text`, or None."""
        if self._automaton is None:
            return None
        for _end, word in self._automaton.iter(normalize(text)):
            return str(word)
        return None


_lock = threading.Lock()
_cached: tuple[tuple[Any, ...], BannedWordMatcher] | None = None
_checked_at = -1e9

# The comment intake (rooms/realtime/intake.py) judges comments on the event loop, where
# it cannot query: it takes the matcher as of the last check when that was less than
# RECHECK_S ago, and checks again on a thread otherwise. A change saved in this process
# (admin, API) drops the cache at once; another process's applies within RECHECK_S.
RECHECK_S = 1.0


def matcher() -> BannedWordMatcher:
    """The matcher for the table as it is now (one indexed query, a rebuild if it changed)."""
    global _cached, _checked_at
    state = BannedWord.objects.aggregate(count=Count("id"), last_id=Max("id"), edited=Max("updated_at"))
    signature = (state["count"], state["last_id"], state["edited"])
    cached = _cached
    if cached is None or cached[0] != signature:
        with _lock:
            cached = _cached
            if cached is None or cached[0] != signature:
                words = list(BannedWord.objects.values_list("word", flat=True))
                cached = _cached = (signature, BannedWordMatcher(words))
    _checked_at = time.monotonic()
    return cached[1]


def recent_matcher() -> BannedWordMatcher | None:
    """The matcher as of a check less than RECHECK_S ago, or None (call `matcher`)."""
    cached = _cached
    if cached is None or time.monotonic() - _checked_at > RECHECK_S:
        return None
    return cached[1]


def banned_word_in(text: str) -> str | None:
    return matcher().find(text)


@receiver([post_save, post_delete], sender=BannedWord, dispatch_uid="banned-words-changed")
def _changed(**_kwargs: Any) -> None:
    transaction.on_commit(_forget)


def _forget() -> None:
    global _checked_at
    _checked_at = -1e9
