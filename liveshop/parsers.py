"""Request body parsing shared by every endpoint."""

from __future__ import annotations

from typing import Any

from rest_framework import parsers
from rest_framework.exceptions import ParseError


class JSONParser(parsers.JSONParser):
    """DRF's JSON parser, answering JSON nested too deep as any other malformed body.

    Python's decoder raises RecursionError (not a ValueError) a little under a thousand
    levels deep, which DRF lets through as a 500: `[` five thousand times was enough.
    """

    def parse(self, stream: Any, media_type: str | None = None, parser_context: Any = None) -> Any:
        try:
            return super().parse(stream, media_type, parser_context)
        except RecursionError:
            raise ParseError("JSON parse error - nested too deep.") from None
