"""Room events as text: encoded once where they are published, never re-encoded after.

A frame is the JSON the client receives: `{"type", "seq", "ts", "data"}`. The fanout
also needs a few facts about an event without decoding it (its type, who wrote a
comment, whether it closes the room), so every event travels with a one-line *header*:
`"<seq> <type> <author id> <flags>"`. The header never reaches a client.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from django.core.serializers.json import DjangoJSONEncoder

COMMENT_NEW = "comment.new"
ROOM_STATUS = "room.status"
VIEWERS = "viewers"
LIKE_TOTAL = "like.total"

# Flags in the header.
FLAG_PRIVILEGED = "p"  # a comment by the host or a moderator: never thinned
FLAG_CLOSES = "c"  # deliver, then close the room's sockets (room ended or suspended)
NO_FLAGS = "-"

# Events whose latest value replaces every earlier one: a replay keeps only the last.
SUPERSEDING_TYPES = frozenset({VIEWERS, LIKE_TOTAL})


@dataclass(frozen=True, slots=True)
class Event:
    """One room event as the fanout moves it: the frame text plus its header facts."""

    seq: int
    type: str
    author: int  # the commenter's user id for comments, else 0
    flags: str
    frame: str

    @property
    def privileged(self) -> bool:
        return FLAG_PRIVILEGED in self.flags

    @property
    def closes_room(self) -> bool:
        return FLAG_CLOSES in self.flags

    @property
    def is_comment(self) -> bool:
        return self.type == COMMENT_NEW


@dataclass(frozen=True, slots=True)
class EncodedEvent:
    """An event waiting for its `seq`: the frame is `prefix + str(seq) + suffix`.

    The seq is only known inside the atomic publish (a Redis script or a database
    transaction), so the JSON is split around it and joined there.
    """

    type: str
    header: str  # "<type> <author> <flags>", without the seq
    prefix: str
    suffix: str

    def frame(self, seq: int) -> str:
        return f"{self.prefix}{seq}{self.suffix}"

    def event(self, seq: int) -> Event:
        return parse_header(f"{seq} {self.header}", self.frame(seq))


def dumps(data: Any) -> str:
    """Compact JSON. ASCII-only on purpose: the ASGI server encodes a text frame to UTF-8
    once per socket, and pure-ASCII text encodes as a plain copy."""
    return json.dumps(data, separators=(",", ":"), cls=DjangoJSONEncoder)


def iso_now() -> str:
    return iso(dt.datetime.now(dt.UTC))


def iso(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def encode_event(
    event_type: str, data: dict[str, Any], *, author: int = 0, flags: str = NO_FLAGS, ts: str | None = None
) -> EncodedEvent:
    if not event_type or " " in event_type:
        raise ValueError(f"bad event type {event_type!r}")
    return EncodedEvent(
        type=event_type,
        header=f"{event_type} {int(author)} {flags or NO_FLAGS}",
        prefix=f'{{"type":{dumps(event_type)},"seq":',
        suffix=f',"ts":"{ts or iso_now()}","data":{dumps(data)}}}',
    )


def parse_header(header: str, frame: str) -> Event:
    seq, event_type, author, flags = header.split(" ", 3)
    return Event(seq=int(seq), type=event_type, author=int(author), flags=flags, frame=frame)


def parse_message(message: bytes | str) -> Event:
    """Decode a published message: the header line, a newline, then the frame."""
    text = message.decode() if isinstance(message, bytes) else message
    header, _, frame = text.partition("\n")
    return parse_header(header, frame)


def message_text(event: Event) -> str:
    return f"{event.seq} {event.type} {event.author} {event.flags}\n{event.frame}"


def batch_frame(events: Sequence[Event]) -> str:
    """One frame for several events, built by joining their frames: no JSON encoding."""
    if len(events) == 1:
        return events[0].frame
    return '{"type":"batch","events":[' + ",".join(e.frame for e in events) + "]}"


def compact_for_replay(events: Iterable[Event], *, full: bool, max_comments: int) -> list[Event]:
    """What a reconnecting client needs of the events it missed, in seq order.

    Counter events (`viewers`, `like.total`) carry absolute values, so only the latest of
    each is kept. Viewers (not `full`) get at most the last `max_comments` comments, as
    live they would have had a thinned stream; hosts and moderators get every comment.
    Every other event is kept.
    """
    events = list(events)
    last_of_type: dict[str, int] = {}
    for index, event in enumerate(events):
        if event.type in SUPERSEDING_TYPES:
            last_of_type[event.type] = index
    comment_indexes = [i for i, e in enumerate(events) if e.is_comment and not (full or e.privileged)]
    dropped_comments = set(comment_indexes[: max(0, len(comment_indexes) - max_comments)])
    return [
        event
        for index, event in enumerate(events)
        if index not in dropped_comments and (event.type not in SUPERSEDING_TYPES or last_of_type[event.type] == index)
    ]


def chunked_frames(events: Sequence[Event], size: int = 200) -> list[str]:
    return [batch_frame(events[i : i + size]) for i in range(0, len(events), size)]
