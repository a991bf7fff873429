"""The benchmark's WebSocket clients: thousands of sockets in one process, cheap per frame.

Run by bench/fanout.py as a separate process (pinned to another core than the server):

    python bench/ws_client.py --url ws://127.0.0.1:PORT/ws/rooms/ID/ --sockets 5000 [--tickets FILE]

It speaks just enough RFC 6455 for the job on a raw asyncio Protocol: the upgrade, text,
close and ping frames, and permessage-deflate when asked. Every socket counts the frames
and events it receives (events are counted by their `"seq":` keys, comments by their
type, without decoding the JSON); a few "probe" sockets decode every frame and record
each event's latency from its `ts` (set when it was published) and its seq.

Commands arrive on stdin, one per line, and each answers one JSON line on stdout:
`reset`, `report`, `freeze K` (the last K sockets stop reading), `likes PER_S SECONDS`
(the ticketed sockets send like.send), `quit`.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import datetime as dt
import json
import os
import random
import resource
import struct
import sys
import time
import zlib
from typing import Any
from urllib.parse import urlparse

SEQ = b'"seq":'
COMMENT = b'"type":"comment.new"'
PROBES = 50


class Client(asyncio.Protocol):
    def __init__(self, path: str, host: str, *, probe: bool, deflate: bool, ticket: str | None) -> None:
        self.path = path + (f"?ticket={ticket}" if ticket else "")
        self.host = host
        self.probe = probe
        self.want_deflate = deflate
        self.ticketed = ticket is not None
        self.transport: asyncio.Transport | None = None
        self.opened = asyncio.get_running_loop().create_future()
        self.handshake = b""
        self.buffer = bytearray()
        self.inflater: Any = None
        self.frames = 0
        self.events = 0
        self.comments = 0
        self.latencies: list[tuple[float, float]] = []  # (received at, latency ms), probes only
        self.seqs: list[int] = []
        self.types: list[str] = []
        self.closed_code: int | None = None
        self.frozen = False
        self.first_frame = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: Any) -> None:
        # uvloop's transports are not asyncio.Transport instances, but have its methods.
        self.transport = transport
        key = base64.b64encode(os.urandom(16)).decode()
        extensions = (
            "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n" if self.want_deflate else ""
        )
        request = (
            f"GET {self.path} HTTP/1.1\r\nHost: {self.host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n{extensions}\r\n"
        )
        transport.write(request.encode())

    def data_received(self, data: bytes) -> None:
        if not self.opened.done():
            self.handshake += data
            head, sep, rest = self.handshake.partition(b"\r\n\r\n")
            if not sep:
                return
            if not head.startswith(b"HTTP/1.1 101"):
                self.opened.set_exception(ConnectionError(head.split(b"\r\n")[0].decode()))
                return
            if b"permessage-deflate" in head.lower():
                self.inflater = zlib.decompressobj(-zlib.MAX_WBITS)
            self.opened.set_result(None)
            data = rest
        buffer = self.buffer
        buffer += data
        offset = 0
        size = len(buffer)
        while size - offset >= 2:
            first, second = buffer[offset], buffer[offset + 1]
            length = second & 0x7F
            start = offset + 2
            if length == 126:
                if size - offset < 4:
                    break
                length = int.from_bytes(buffer[offset + 2 : offset + 4], "big")
                start = offset + 4
            elif length == 127:
                if size - offset < 10:
                    break
                length = int.from_bytes(buffer[offset + 2 : offset + 10], "big")
                start = offset + 10
            end = start + length
            if end > size:
                break
            opcode = first & 0x0F
            if (opcode == 1 or opcode == 0) and not self.probe and not first & 0x40:
                # The common case, counted in place: no copy, no decoding.
                self.frames += 1
                self.events += buffer.count(SEQ, start, end)
                self.comments += buffer.count(COMMENT, start, end)
                if not self.first_frame.done():
                    self.first_frame.set_result(None)
            elif opcode == 1 or opcode == 0:
                payload = bytes(buffer[start:end])
                if first & 0x40 and self.inflater is not None:
                    payload = self.inflater.decompress(payload + b"\x00\x00\xff\xff")
                self.on_text(payload)
            elif opcode == 8:
                self.closed_code = int.from_bytes(buffer[start : start + 2], "big") if length >= 2 else 1005
            elif opcode == 9:
                self.send_frame(0xA, bytes(buffer[start:end]))
            offset = end
        if offset:
            del buffer[:offset]

    def on_text(self, payload: bytes) -> None:
        if not self.first_frame.done():
            self.first_frame.set_result(None)
        self.frames += 1
        self.events += payload.count(SEQ)
        self.comments += payload.count(COMMENT)
        if self.probe:
            now = time.time()
            frame = json.loads(payload)
            for event in frame.get("events", [frame]):
                if "seq" in event and "ts" in event:
                    published = dt.datetime.fromisoformat(event["ts"].replace("Z", "+00:00")).timestamp()
                    self.latencies.append((now, (now - published) * 1000))
                    self.seqs.append(event["seq"])
                    self.types.append(event["type"])

    def send_frame(self, opcode: int, payload: bytes) -> None:
        if self.transport is None or self.transport.is_closing():
            return
        mask = os.urandom(4)
        header = bytes([0x80 | opcode])
        n = len(payload)
        if n < 126:
            header += bytes([0x80 | n])
        elif n < 65536:
            header += bytes([0x80 | 126]) + struct.pack("!H", n)
        else:
            header += bytes([0x80 | 127]) + struct.pack("!Q", n)
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        self.transport.write(header + mask + masked)

    def send_text(self, text: str) -> None:
        self.send_frame(0x1, text.encode())

    def freeze(self) -> None:
        self.frozen = True
        if self.transport is not None:
            self.transport.pause_reading()

    def connection_lost(self, exc: Exception | None) -> None:
        if self.closed_code is None:
            self.closed_code = 1006
        if not self.opened.done():
            self.opened.set_exception(ConnectionError("lost before the handshake"))

    def reset(self) -> None:
        self.frames = self.events = self.comments = 0
        self.latencies.clear()
        self.seqs.clear()
        self.types.clear()


async def open_clients(url: str, count: int, *, deflate: bool, tickets: list[str], snapshot: bool) -> list[Client]:
    parsed = urlparse(url)
    host, port = parsed.hostname or "127.0.0.1", parsed.port or 80
    loop = asyncio.get_running_loop()
    clients: list[Client] = []
    gate = asyncio.Semaphore(200)  # a connect storm, but one the backlog can take

    async def open_one(index: int) -> None:
        async with gate:
            ticket = tickets[index] if index < len(tickets) else None
            # Probes spread over the connection order, so they sit all along the
            # server's send loop, not at its start.
            stride = max(1, (count - len(tickets)) // PROBES)
            probe = index >= len(tickets) and (index - len(tickets)) % stride == 0
            for attempt in range(5):
                try:
                    _, client = await loop.create_connection(
                        lambda: Client(parsed.path, parsed.netloc, probe=probe, deflate=deflate, ticket=ticket),
                        host,
                        port,
                    )
                    await asyncio.wait_for(client.opened, 20)
                    if snapshot:  # opened means joined once the snapshot is in
                        await asyncio.wait_for(client.first_frame, 30)
                    clients.append(client)
                    return
                except (OSError, TimeoutError, ConnectionError):
                    await asyncio.sleep(0.2 * (attempt + 1))
            raise ConnectionError(f"socket {index} could not connect")

    await asyncio.gather(*(open_one(i) for i in range(count)))
    clients.sort(key=lambda c: (not c.ticketed, not c.probe))
    return clients


def report(clients: list[Client]) -> dict[str, Any]:
    return {
        "frames": [c.frames for c in clients],
        "events": [c.events for c in clients],
        "comments": [c.comments for c in clients],
        "frozen": [c.frozen for c in clients],
        "closed": [c.closed_code for c in clients],
        "probes": [
            {"latencies": c.latencies, "seqs": c.seqs, "types": c.types} for c in clients if c.probe and not c.frozen
        ],
    }


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", required=True)
    parser.add_argument("--sockets", type=int, required=True)
    parser.add_argument("--tickets", default="")
    parser.add_argument("--deflate", action="store_true")
    parser.add_argument("--snapshot", action="store_true", help="the server sends a first frame on connect")
    args = parser.parse_args()
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))

    tickets = [t for t in args.tickets.split(",") if t]
    started = time.monotonic()
    clients = await open_clients(args.url, args.sockets, deflate=args.deflate, tickets=tickets, snapshot=args.snapshot)
    print(json.dumps({"connected": len(clients), "seconds": round(time.monotonic() - started, 2)}), flush=True)

    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    likers: asyncio.Task[None] | None = None
    while line := (await reader.readline()).decode().strip():
        command, *rest = line.split()
        if command == "reset":
            for client in clients:
                client.reset()
            print(json.dumps({"ok": True}), flush=True)
        elif command == "report":
            print(json.dumps(report(clients)), flush=True)
        elif command == "freeze":
            for client in clients[len(clients) - int(rest[0]) :]:
                client.freeze()
            print(json.dumps({"ok": True}), flush=True)
        elif command == "likes":
            per_s, seconds = float(rest[0]), float(rest[1])
            ticketed = [c for c in clients if c.ticketed]

            async def like(per_s: float = per_s, seconds: float = seconds, ticketed: list[Client] = ticketed) -> None:
                end = time.monotonic() + seconds
                while time.monotonic() < end:
                    random.choice(ticketed).send_text('{"type":"like.send","count":1}')
                    await asyncio.sleep(1 / per_s)

            likers = loop.create_task(like())
            print(json.dumps({"ok": True}), flush=True)
        elif command == "quit":
            break
    if likers is not None:
        likers.cancel()
    for client in clients:
        if client.transport is not None:
            client.transport.abort()


if __name__ == "__main__":
    import uvloop

    uvloop.run(main())
