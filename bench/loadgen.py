"""A small, fast HTTP/1.1 load generator for the benchmarks (asyncio, keep-alive).

Each of `concurrency` connections sends its share of the requests one after the other
and times each from the first byte written to the last byte read. A hand-rolled client
because the usual ones (aiohttp, httpx) spend more CPU per request than the servers
measured here, on a machine whose two cores the servers share with the client.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Request:
    path: str
    body: bytes
    headers: dict[str, str]
    method: str = "POST"


@dataclass
class Result:
    status: int
    body: bytes
    latency_s: float
    done_at: float = 0.0  # time.perf_counter() when its answer was read


@dataclass
class Run:
    results: list[Result] = field(default_factory=list)
    started_at: float = 0.0  # time.perf_counter() at the first request
    elapsed_s: float = 0.0
    errors: int = 0  # connection-level failures

    def codes(self) -> dict[str, int]:
        """Responses by status and error code: {"201": 500, "409 flash_sold_out": 9500}."""
        counts: dict[str, int] = {}
        for result in self.results:
            label = str(result.status)
            if result.status >= 400:
                try:
                    label += " " + json.loads(result.body).get("code", "?")
                except ValueError:
                    label += " ?"
            counts[label] = counts.get(label, 0) + 1
        if self.errors:
            counts["connection errors"] = self.errors
        return dict(sorted(counts.items()))

    def percentile_ms(self, p: float) -> float:
        latencies = sorted(r.latency_s for r in self.results)
        if not latencies:
            return 0.0
        return latencies[min(len(latencies) - 1, int(p / 100 * len(latencies)))] * 1000

    @property
    def rps(self) -> float:
        return len(self.results) / self.elapsed_s if self.elapsed_s else 0.0


def _encode(host: str, port: int, request: Request) -> bytes:
    head = [f"{request.method} {request.path} HTTP/1.1", f"Host: {host}:{port}", f"Content-Length: {len(request.body)}"]
    head += [f"{name}: {value}" for name, value in request.headers.items()]
    return ("\r\n".join(head) + "\r\n\r\n").encode() + request.body


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    status = int(lines[0].split(b" ", 2)[1])
    length = 0
    chunked = False
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        name = name.strip().lower()
        if name == b"content-length":
            length = int(value.strip())
        elif name == b"transfer-encoding" and b"chunked" in value.lower():
            chunked = True
    if chunked:
        body = b""
        while True:
            size = int((await reader.readuntil(b"\r\n")).strip(), 16)
            chunk = await reader.readexactly(size + 2)
            if size == 0:
                break
            body += chunk[:-2]
        return status, body
    return status, await reader.readexactly(length)


async def _connection(
    host: str, port: int, queue: asyncio.Queue[Request | None], run: Run, progress: Callable[[int], None]
) -> None:
    """Send the queue's requests one after the other until it gives None."""
    reader, writer = await asyncio.open_connection(host, port)
    try:
        while (request := await queue.get()) is not None:
            payload = _encode(host, port, request)
            started = time.perf_counter()
            try:
                writer.write(payload)
                status, body = await _read_response(reader)
            except (ConnectionError, asyncio.IncompleteReadError):
                run.errors += 1
                writer.close()
                reader, writer = await asyncio.open_connection(host, port)
                continue
            done_at = time.perf_counter()
            run.results.append(Result(status, body, done_at - started, done_at))
            progress(1)
    finally:
        writer.close()


def _progress(label: str, total: int) -> Callable[[int], None]:
    done = 0
    next_report = time.monotonic() + 1

    def progress(count: int) -> None:
        nonlocal done, next_report
        done += count
        if time.monotonic() >= next_report:
            next_report = time.monotonic() + 1
            print(f"  {label} {done}/{total} requests", flush=True)

    return progress


async def burst(host: str, port: int, requests: Sequence[Request], *, concurrency: int, label: str = "") -> Run:
    """Send all requests over `concurrency` keep-alive connections, as fast as they are answered."""
    run = Run()
    shares: list[asyncio.Queue[Request | None]] = [asyncio.Queue() for _ in range(min(concurrency, len(requests)))]
    for index, request in enumerate(requests):
        shares[index % len(shares)].put_nowait(request)
    for share in shares:
        share.put_nowait(None)
    progress = _progress(label, len(requests))
    run.started_at = time.perf_counter()
    await asyncio.gather(*(_connection(host, port, share, run, progress) for share in shares))
    run.elapsed_s = time.perf_counter() - run.started_at
    return run


async def paced(
    host: str, port: int, requests: Sequence[Request], *, per_s: float, concurrency: int, run: Run, label: str = ""
) -> Run:
    """Send request i at i / per_s seconds from the start (open loop), each on the first of
    `concurrency` keep-alive connections that is free; `run` fills as answers come."""
    queue: asyncio.Queue[Request | None] = asyncio.Queue()
    progress = _progress(label, len(requests))
    run.started_at = time.perf_counter()
    connections = [asyncio.create_task(_connection(host, port, queue, run, progress)) for _ in range(concurrency)]
    for index, request in enumerate(requests):
        delay = run.started_at + index / per_s - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        queue.put_nowait(request)
    for _ in connections:
        queue.put_nowait(None)
    await asyncio.gather(*connections)
    run.elapsed_s = time.perf_counter() - run.started_at
    return run


def median_ms(call: Callable[[], object], times: int = 30, digits: int = 3) -> float:
    """The median of `times` calls of `call`, in milliseconds."""
    samples = []
    for _ in range(times):
        started = time.perf_counter()
        call()
        samples.append((time.perf_counter() - started) * 1000)
    return round(statistics.median(samples), digits)


def summary(run: Run) -> dict[str, Any]:
    return {
        "requests": len(run.results),
        "seconds": round(run.elapsed_s, 3),
        "rps": round(run.rps, 1),
        "p50_ms": round(run.percentile_ms(50), 2),
        "p99_ms": round(run.percentile_ms(99), 2),
        "max_ms": round(run.percentile_ms(100), 2),
        "codes": run.codes(),
    }
