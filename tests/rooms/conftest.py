"""Fixtures for the real-time tests: a fresh backend per test, WebSocket clients."""

from __future__ import annotations

import collections
import json
from collections.abc import AsyncIterator, Iterator
from typing import Any
from urllib.parse import unquote, urlparse

import pytest
from asgiref.testing import ApplicationCommunicator

from rooms.realtime import hub as hub_module
from rooms.realtime.backend import reset_backend


@pytest.fixture(autouse=True)
def _fresh_backend() -> Iterator[None]:
    # Settings overrides (tick, backend) must reach a backend built for this test.
    reset_backend()
    yield
    reset_backend()


@pytest.fixture
async def hub_stopper() -> AsyncIterator[None]:
    """Stop this test's event-loop hub (subscriber and heartbeat) at the end."""
    yield
    await hub_module.stop_hub()


def application() -> Any:
    from liveshop.asgi import application

    return application


class Socket:
    """An in-process WebSocket client of the ASGI app that speaks the room protocol's JSON.

    Channels' WebsocketCommunicator does the same, but importing `channels.testing`
    requires Daphne (and Twisted), which liveshop does not use: this is its few lines on
    asgiref's ApplicationCommunicator.
    """

    def __init__(self, path: str, headers: list[tuple[bytes, bytes]] | None = None, scheme: str = "ws") -> None:
        parsed = urlparse(path)
        scope = {
            "type": "websocket",
            "scheme": scheme,
            "path": unquote(parsed.path),
            "query_string": parsed.query.encode(),
            "headers": headers or [],
            "subprotocols": [],
            "client": ("127.0.0.1", 50000),
        }
        self.communicator = ApplicationCommunicator(application(), scope)
        self.close_code: int | None = None
        self.buffer: collections.deque[dict[str, Any]] = collections.deque()

    async def connect(self) -> Socket:
        await self.communicator.send_input({"type": "websocket.connect"})
        accepted = await self.communicator.receive_output(5)
        assert accepted["type"] == "websocket.accept", accepted
        return self

    async def receive(self, timeout: float = 3) -> dict[str, Any]:
        output = await self.communicator.receive_output(timeout)
        if output["type"] == "websocket.close":
            self.close_code = output.get("code", 1000)
            return {"type": "<closed>", "code": self.close_code}
        return json.loads(output["text"])

    async def next_event(self, timeout: float = 3) -> dict[str, Any]:
        """The next event, batches opened (a close shows as a "<closed>" event)."""
        if not self.buffer:
            frame = await self.receive(timeout)
            self.buffer.extend(frame.get("events", [frame]))
        return self.buffer.popleft()

    async def receive_type(self, event_type: str, timeout: float = 3) -> dict[str, Any]:
        """Skip events until one of `event_type`."""
        while True:
            event = await self.next_event(timeout)
            if event["type"] == event_type:
                return event
            if event["type"] == "<closed>":
                raise AssertionError(f"closed ({self.close_code}) before {event_type}")

    async def events(self, timeout: float = 0.5) -> list[dict[str, Any]]:
        """Every event that arrives until `timeout` passes without one."""
        collected: list[dict[str, Any]] = []
        while True:
            try:
                event = await self.next_event(timeout)
            except TimeoutError:
                return collected
            collected.append(event)
            if event["type"] == "<closed>":
                return collected

    async def send(self, frame: dict[str, Any] | str) -> None:
        text = frame if isinstance(frame, str) else json.dumps(frame)
        await self.communicator.send_input({"type": "websocket.receive", "text": text})

    async def closed_with(self, timeout: float = 3) -> int:
        while True:
            event = await self.next_event(timeout)
            if event["type"] == "<closed>":
                return event["code"]

    async def disconnect(self) -> None:
        await self.communicator.send_input({"type": "websocket.disconnect", "code": 1000})
        await self.communicator.wait(1)


@pytest.fixture
def ws(hub_stopper: None) -> Any:
    opened: list[Socket] = []

    async def open_socket(path: str, headers: list[tuple[bytes, bytes]] | None = None, scheme: str = "ws") -> Socket:
        socket = Socket(path, headers, scheme)
        opened.append(socket)
        return await socket.connect()

    return open_socket
