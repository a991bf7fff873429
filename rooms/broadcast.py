"""How room events reach sockets: the interface the order path publishes through.

The real-time branch replaces this module with the real implementation (seq from a
Redis INCR, the replay stream, the per-process fanout); the two functions keep these
signatures. Until then `room_publish` only logs the event.
"""

from __future__ import annotations

import logging
from typing import Any

from django.db import transaction

logger = logging.getLogger(__name__)


def room_publish(room_id: int, event_type: str, data: dict[str, Any]) -> int:
    """Publish a room event now and return its `seq`.

    Placeholder until the real-time branch lands: logs the event and returns 0.
    """
    logger.info("room %s event %s: %s", room_id, event_type, data)
    return 0


def room_event_on_commit(room_id: int, event_type: str, data: dict[str, Any]) -> None:
    """Publish a room event once the current transaction commits (never for a rollback)."""
    transaction.on_commit(lambda: room_publish(room_id, event_type, data))
