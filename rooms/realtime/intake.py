"""Comment intake: a comment sent over a room socket, judged, written and announced.

A show's peaks bring hundreds of comments a second to one process, so a comment costs
no database read, one Redis round trip, and a share of one batched insert:

1. Judged on the event loop, from memory (rooms/services/live.py: `comment_judge`): the
   text; the room's `CommentRules` (its status, slow mode, new-account protection, the
   open giveaways' keywords), kept on the hub's room and read again after a
   `room.status` or `giveaway.*` event, a control message saying the settings changed,
   or RULES_MAX_AGE_S; the socket's user: a banned user's sockets are closed and
   refused, a mute lives on the socket (`Connection.muted_until`, kept current by the
   mute control messages); banned words as of at most a second ago.
2. Limits: the user's pace, the address's and slow mode, all or nothing in one Redis
   round trip (`Backend.alimits_take`).
3. Queued for the loop's `CommentIntake`, which writes what is queued in one multi-row
   insert on a worker thread (one thread hop per batch, not per comment), with the
   giveaway entries of keyword comments in the same transaction. A batch starts
   COMMENT_BATCH_MS after the first comment waits, or as soon as the one before it has
   committed: under load batches grow instead of queueing up behind each other.
4. After the commit, each author's `comment.ack` is queued on the loop before the
   `comment.new` events are published (in one round trip, in id order): an author sees
   the ack before the comment, as with a single write.

A comment is acknowledged only after its row committed: a process that dies first loses
only comments that were never acknowledged, which their clients send again. Comments of
a socket that closes before its batch (a ban, a disconnect) are not written.
"""

from __future__ import annotations

import asyncio
import logging
import time
import weakref
from dataclasses import dataclass
from typing import Any

from channels.db import database_sync_to_async
from django.conf import settings
from django.db import InterfaceError, OperationalError

from liveshop.errors import NotFound, ServiceError, ServiceUnavailable, database_outage
from rooms import banned_words, payloads
from rooms.broadcast import room_publish_many
from rooms.models import Comment
from rooms.realtime import events as ev
from rooms.realtime.backend import get_backend
from rooms.realtime.hub import Connection, HubRoom
from rooms.services.live import (
    CommentRules,
    NewComment,
    comment_clean,
    comment_enters_giveaway,
    comment_judge,
    comment_limits,
    comment_refused,
    comment_rules_load,
    comments_write,
)

logger = logging.getLogger(__name__)

# Rules older than this are read again even if nothing said they changed (a control
# message lost while the process reconnected to Redis).
RULES_MAX_AGE_S = 5.0
BATCH_MAX = 500
# Comments waiting for their batch: past this the process is behind (the database is
# slow) and further comments are refused with `unavailable` until it catches up.
QUEUE_MAX = 5000


def error_frame(error: ServiceError, nonce: Any = None) -> str:
    data = error.as_dict()
    if nonce is not None:
        data["nonce"] = nonce
    return ev.dumps({"type": "error", "data": data})


@dataclass(frozen=True, slots=True)
class Waiting:
    comment: NewComment
    conn: Connection
    nonce: Any


class CommentIntake:
    """The comments of one event loop's room sockets (see the module's docstring)."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.batch_s = settings.COMMENT_BATCH_MS / 1000
        self.queue: list[Waiting] = []
        self.writing = False
        self.handle: asyncio.Handle | None = None

    async def submit(self, room: HubRoom, conn: Connection, text: str, nonce: Any, client_ip: str | None) -> None:
        """Judge the comment and queue it: its author hears `comment.ack` once it is
        written, or an `error`. Raises the ServiceError that refuses it."""
        assert conn.user_id is not None
        text = comment_clean(text)
        rules = await self._rules(room)
        words = (
            banned_words.recent_matcher()
            or await database_sync_to_async(banned_words.matcher, thread_sensitive=False)()
        )
        role = conn.role  # as it is now: a moderator appointed or removed meanwhile counts
        comment_judge(
            rules, text=text, role=role, account_since=conn.account_since, muted_until=conn.muted_until, words=words
        )
        buckets, hold = comment_limits(rules, role=role, user_id=conn.user_id, client_ip=client_ip)
        if buckets or hold:
            comment_refused(await get_backend().alimits_take(room.room_id, buckets, hold), buckets, rules)
        if len(self.queue) >= QUEUE_MAX:
            raise ServiceUnavailable("Too many comments at once; send it again in a moment.")
        comment = NewComment(
            room_id=room.room_id,
            user_id=conn.user_id,
            name=conn.name,
            role=role,
            text=text,
            enters_giveaway=comment_enters_giveaway(rules, text),
        )
        self.queue.append(Waiting(comment, conn, nonce))
        if not self.writing and self.handle is None:
            self.handle = self.loop.call_later(self.batch_s, self._start)

    async def _rules(self, room: HubRoom) -> CommentRules:
        rules: CommentRules | None = room.comment_rules
        if rules is not None and time.monotonic() - rules.loaded_at < RULES_MAX_AGE_S:
            return rules
        loading: asyncio.Future[CommentRules] | None = room.comment_rules_loading
        if loading is None:
            # One read per room however many comments wait for it.
            loading = room.comment_rules_loading = asyncio.ensure_future(
                database_sync_to_async(comment_rules_load, thread_sensitive=False)(room.room_id)
            )
            loading.add_done_callback(lambda done: _rules_loaded(room, done))
        return await asyncio.shield(loading)

    # --- writing --------------------------------------------------------------------------

    def _start(self) -> None:
        self.handle = None
        batch = [w for w in self.queue[:BATCH_MAX] if not (w.conn.closing or w.conn.lost)]
        del self.queue[:BATCH_MAX]
        if not batch:
            if self.queue:
                self.handle = self.loop.call_soon(self._start)
            return
        self.writing = True
        self.loop.create_task(self._write(batch), name="liveshop-comment-batch")

    async def _write(self, batch: list[Waiting]) -> None:
        try:
            await database_sync_to_async(self._write_batch, thread_sensitive=False)(batch)
        except (OperationalError, InterfaceError) as exc:
            self._refuse(batch, database_outage(exc) or ServiceError())
        except Exception:
            logger.exception("writing %d comments failed", len(batch))
            self._refuse(batch, ServiceError())
        finally:
            self.writing = False
            if self.queue and self.handle is None:
                self.handle = self.loop.call_soon(self._start)

    def _write_batch(self, batch: list[Waiting]) -> None:
        """On a worker thread: write, answer the authors, announce."""
        written = comments_write([w.comment for w in batch])
        # Queued on the loop now, before the publish: each ack precedes its comment.new.
        self.loop.call_soon_threadsafe(self._answer, batch, written)
        events = [
            (w.comment.room_id, ev.COMMENT_NEW, payloads.comment_payload(row, role=w.comment.role, name=w.comment.name))
            for w, row in zip(batch, written, strict=True)
            if row is not None
        ]
        try:
            room_publish_many(events)
        except Exception:
            # Written and acknowledged: sockets that missed them see them in their next
            # snapshot, as with any event whose publish failed after its commit.
            logger.exception("%d comments written but not announced", len(events))

    def _answer(self, batch: list[Waiting], written: list[Comment | None]) -> None:
        for waiting, row in zip(batch, written, strict=True):
            if row is None:
                waiting.conn.push_text(error_frame(NotFound("The room or your account is gone."), waiting.nonce))
            else:
                ack = {"type": "comment.ack", "data": {"nonce": waiting.nonce, "id": row.pk}}
                waiting.conn.push_text(ev.dumps(ack))

    def _refuse(self, batch: list[Waiting], error: ServiceError) -> None:
        for waiting in batch:  # not written, not acknowledged: the clients send them again
            waiting.conn.push_text(error_frame(error, waiting.nonce))


def _rules_loaded(room: HubRoom, done: asyncio.Future[CommentRules]) -> None:
    if room.comment_rules_loading is not done:
        return  # forgotten while it loaded: the next comment reads them again
    room.comment_rules_loading = None
    if not done.cancelled() and done.exception() is None:
        room.comment_rules = done.result()


_intakes: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, CommentIntake] = weakref.WeakKeyDictionary()


def get_intake() -> CommentIntake:
    """This event loop's comment intake."""
    loop = asyncio.get_running_loop()
    intake = _intakes.get(loop)
    if intake is None:
        intake = _intakes[loop] = CommentIntake(loop)
    return intake
