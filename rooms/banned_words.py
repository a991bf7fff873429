"""The banned-word check on comments: one Aho-Corasick pass over the text for all words.

Each process keeps the automaton built from the `BannedWord` table and checks, before
every comment, that the table has not changed since (count, last id and last edit time
in one indexed query): an added, edited or deleted word applies to the next comment on
every process, with no cache to invalidate by hand.
"""

from __future__ import annotations

import re
import threading
import unicodedata
from typing import Any

import ahocorasick
from django.db.models import Count, Max

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


def banned_word_in(text: str) -> str | None:
    global _cached
    state = BannedWord.objects.aggregate(count=Count("id"), last_id=Max("id"), edited=Max("updated_at"))
    signature = (state["count"], state["last_id"], state["edited"])
    cached = _cached
    if cached is None or cached[0] != signature:
        with _lock:
            cached = _cached
            if cached is None or cached[0] != signature:
                words = list(BannedWord.objects.values_list("word", flat=True))
                cached = _cached = (signature, BannedWordMatcher(words))
    return cached[1].find(text)
