"""Notifications pushed to the user's open sockets (/ws/me/), on every web process.

With Redis, a notification is PUBLISHed on its user's channel (`<prefix>:user:<id>`), and
each web process holds one pub/sub connection subscribed to the channels of the users
with a socket open on it. Without Redis (the embedded default of `make run`), the web
process reads the notification table's new rows once a second: the rows are the truth
either way, the channel only saves the wait.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import weakref
from collections.abc import Sequence
from typing import Any

from channels.db import database_sync_to_async

from liveshop.redis_client import REDIS_UNAVAILABLE, redis_async, redis_key, redis_sync

logger = logging.getLogger(__name__)

DB_TAIL_S = 1.0
# Frames waiting for one slow socket; past this it misses some (the bell's count and
# the list come back right from the API on the next open).
SOCKET_QUEUE = 100


def user_channel(user_id: int) -> str:
    return redis_key("user", user_id)


def frame(notification: dict[str, Any]) -> str:
    return json.dumps({"type": "notification", "data": notification}, separators=(",", ":"))


def publish(notifications: Sequence[dict[str, Any]]) -> None:
    """Push stored notifications (as the API shows them, with their `user`) to their
    users' open sockets. Without Redis there is nothing to do: the tail reads the rows."""
    client = redis_sync()
    if client is None or not notifications:
        return
    try:
        with client.pipeline(transaction=False) as pipe:
            for notification in notifications:
                pipe.publish(user_channel(notification["user"]), frame(notification))
            pipe.execute()
    except REDIS_UNAVAILABLE as exc:
        # Stored already: the user sees them on the next open of the bell.
        logger.warning("notifications: not pushed, Redis unavailable: %s", exc)


class UserFeed:
    """This process's open /ws/me/ sockets, by user, and the one reader that feeds them."""

    def __init__(self) -> None:
        self.sockets: dict[int, set[asyncio.Queue[str]]] = {}
        self._pubsub: Any = None
        self._task: asyncio.Task[None] | None = None
        self._last_id = 0

    async def add(self, user_id: int, queue: asyncio.Queue[str]) -> None:
        first = user_id not in self.sockets
        self.sockets.setdefault(user_id, set()).add(queue)
        await self._start()
        if first and self._pubsub is not None:
            await self._pubsub.subscribe(user_channel(user_id))

    async def remove(self, user_id: int, queue: asyncio.Queue[str]) -> None:
        queues = self.sockets.get(user_id)
        if queues is None:
            return
        queues.discard(queue)
        if not queues:
            del self.sockets[user_id]
            if self._pubsub is not None:
                with contextlib.suppress(*REDIS_UNAVAILABLE):
                    await self._pubsub.unsubscribe(user_channel(user_id))

    def deliver(self, user_id: int, text: str) -> None:
        for queue in self.sockets.get(user_id, ()):
            with contextlib.suppress(asyncio.QueueFull):
                queue.put_nowait(text)

    async def _start(self) -> None:
        if self._task is not None:
            return
        client = redis_async()
        if client is not None:
            self._pubsub = client.pubsub(ignore_subscribe_messages=True)
            self._task = asyncio.create_task(self._read_redis())
        else:
            self._last_id = await database_sync_to_async(_latest_id)()
            self._task = asyncio.create_task(self._tail_database())

    async def _read_redis(self) -> None:
        while True:
            if not self._pubsub.subscribed:
                await asyncio.sleep(0.1)
                continue
            try:
                message = await self._pubsub.get_message(timeout=1.0)
            except REDIS_UNAVAILABLE as exc:
                logger.warning("notifications: Redis unavailable, retrying: %s", exc)
                await asyncio.sleep(1)
                continue
            if message is None or message.get("type") != "message":
                continue
            channel = message["channel"].decode() if isinstance(message["channel"], bytes) else message["channel"]
            data = message["data"].decode() if isinstance(message["data"], bytes) else message["data"]
            self.deliver(int(channel.rsplit(":", 1)[1]), data)

    async def _tail_database(self) -> None:
        while True:
            await asyncio.sleep(DB_TAIL_S)
            if not self.sockets:
                continue
            try:
                rows = await database_sync_to_async(_rows_after)(self._last_id)
            except Exception:
                logger.exception("notifications: reading new rows failed")
                continue
            for row in rows:
                self._last_id = max(self._last_id, row["id"])
                self.deliver(row["user"], frame(row))


def _latest_id() -> int:
    from notifications.models import Notification

    return Notification.objects.order_by("-id").values_list("id", flat=True).first() or 0


def _rows_after(last_id: int) -> list[dict[str, Any]]:
    from notifications.models import Notification
    from notifications.selectors import notification_payload

    return [notification_payload(n) for n in Notification.objects.filter(pk__gt=last_id).order_by("pk")[:5000]]


_feeds: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, UserFeed] = weakref.WeakKeyDictionary()


def user_feed() -> UserFeed:
    """The feed of the running event loop (one per server process)."""
    loop = asyncio.get_running_loop()
    feed = _feeds.get(loop)
    if feed is None:
        feed = _feeds[loop] = UserFeed()
    return feed
