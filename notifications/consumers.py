"""/ws/me/: the signed-in user's own socket. On connect it says how many notifications are
unread (`notifications.unread {unread, latest}`), then sends each new one as it is made
(`notification {id, kind, data, created_at, read}`). The session cookie (pages) or a
`?ticket=` from POST /api/v1/notifications/ws-ticket/ (apps) says who it is; anonymous
sockets are closed with 4401, a foreign Origin with 4403."""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import Any
from urllib.parse import parse_qs

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer

from liveshop.sockets import origin_allowed, session_user
from notifications import selectors, services
from notifications.live import SOCKET_QUEUE, UserFeed, user_feed

CLOSE_UNAUTHORIZED = 4401
CLOSE_FORBIDDEN = 4403


def _authenticate(scope: dict[str, Any], ticket: str | None) -> int | None:
    if ticket is not None:
        return services.socket_ticket_redeem(ticket)
    user = session_user(scope)
    return user.pk if user is not None and user.is_active else None


class UserConsumer(AsyncWebsocketConsumer):
    user_id: int | None = None
    feed: UserFeed | None = None
    queue: asyncio.Queue[str]
    pump: asyncio.Task[None] | None = None

    async def connect(self) -> None:
        await self.accept()  # then close with a code: a refusal before accepting has none
        if not origin_allowed(self.scope):
            await self.close(CLOSE_FORBIDDEN)
            return
        params = parse_qs(self.scope.get("query_string", b"").decode("latin-1"))
        ticket = params["ticket"][0] if "ticket" in params else None
        self.user_id = await database_sync_to_async(_authenticate, thread_sensitive=False)(self.scope, ticket)
        if self.user_id is None:
            await self.close(CLOSE_UNAUTHORIZED)
            return
        self.queue = asyncio.Queue(maxsize=SOCKET_QUEUE)
        # Subscribed before the count is read: nothing made in between is missed (the
        # client skips what `latest` already counts).
        self.feed = user_feed()
        await self.feed.add(self.user_id, self.queue)
        unread, latest = await database_sync_to_async(selectors.notifications_unread, thread_sensitive=False)(
            user_id=self.user_id
        )
        await self.send(json.dumps({"type": "notifications.unread", "data": {"unread": unread, "latest": latest}}))
        self.pump = asyncio.create_task(self._pump())

    async def _pump(self) -> None:
        while True:
            await self.send(await self.queue.get())

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        if text_data and '"ping"' in text_data:
            await self.send('{"type":"pong"}')

    async def disconnect(self, code: int) -> None:
        if self.pump is not None:
            self.pump.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.pump
        if self.feed is not None and self.user_id is not None:
            await self.feed.remove(self.user_id, self.queue)
