"""A small load generator for loopback benchmarks, run as its own process.

    python -m benchmarks.loadgen get --url "http://127.0.0.1:PORT/v1/products/1/vehicles/{v}/signals/latest"
        --vehicles 100 --header "Authorization: Bearer …" --connections 32 --requests 20000 [--duration 30]
    python -m benchmarks.loadgen sse --url "http://127.0.0.1:PORT/v1/orders/1/stream?refresh=1"
        --header "Authorization: Bearer …" --streams 20 --duration 10

`get`: keep-alive HTTP/1.1 connections over raw asyncio streams (no client library in the
way), one request in flight per connection; `{v}` in the URL cycles through 1..--vehicles.
`sse`: opens --streams server-sent-event streams and counts `signals` events a second over
whole --period ticks.
Both print one JSON line and stop by themselves (bounded by count and time)."""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import sys
import time
from collections import Counter
from itertools import count
from typing import Any
from urllib.parse import urlsplit


def _target(url: str) -> tuple[str, int, str]:
    parts = urlsplit(url)
    path = parts.path + (f"?{parts.query}" if parts.query else "")
    return parts.hostname or "127.0.0.1", parts.port or 80, path


def _request(host: str, port: int, path: str, headers: list[str]) -> bytes:
    lines = [f"GET {path} HTTP/1.1", f"Host: {host}:{port}", *headers, "", ""]
    return "\r\n".join(lines).encode()


async def _read_response(reader: asyncio.StreamReader) -> int:
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    length = 0
    for line in head.split(b"\r\n")[1:]:
        if line[:15].lower() == b"content-length:":
            length = int(line[15:])
            break
    if length:
        await reader.readexactly(length)
    return status


class GetRun:
    def __init__(self, requests: list[bytes], budget: int, deadline: float) -> None:
        self.requests = requests
        self.budget = budget
        self.deadline = deadline
        self.latencies: list[float] = []
        self.statuses: Counter[int] = Counter()
        self.turn = count()

    async def worker(self, host: str, port: int) -> None:
        reader, writer = await asyncio.open_connection(host, port)
        try:
            while self.budget > 0 and time.perf_counter() < self.deadline:
                self.budget -= 1
                request = self.requests[next(self.turn) % len(self.requests)]
                started = time.perf_counter()
                writer.write(request)
                status = await _read_response(reader)
                self.latencies.append(time.perf_counter() - started)
                self.statuses[status] += 1
        finally:
            writer.close()


def _percentile(ordered: list[float], q: float) -> float:
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else 0.0


async def run_get(args: argparse.Namespace) -> dict[str, Any]:
    host, port, path = _target(args.url)
    paths = [path.replace("{v}", str(v)) for v in range(1, args.vehicles + 1)] if "{v}" in path else [path]
    run = GetRun([_request(host, port, p, args.header) for p in paths], args.requests, 0.0)
    started = time.perf_counter()
    run.deadline = started + args.duration
    await asyncio.gather(*(run.worker(host, port) for _ in range(args.connections)))
    elapsed = time.perf_counter() - started
    ordered = sorted(run.latencies)
    return {
        "requests": len(ordered),
        "seconds": elapsed,
        "rps": len(ordered) / elapsed if elapsed else 0.0,
        "p50_ms": _percentile(ordered, 0.50) * 1000,
        "p90_ms": _percentile(ordered, 0.90) * 1000,
        "p99_ms": _percentile(ordered, 0.99) * 1000,
        "max_ms": (ordered[-1] if ordered else 0.0) * 1000,
        "statuses": {str(k): v for k, v in sorted(run.statuses.items())},
    }


#: What starts every counted event on the wire.
SIGNALS_EVENT = b"event: signals"


async def _stream(host: str, port: int, request: bytes, until: float, tally: dict[str, Any]) -> None:
    """Reads one stream in chunks, counting `signals` events as they arrive (per chunk: at
    20,000 events a second, parsing line by line would measure this process, not the server)."""
    reader, writer = await asyncio.open_connection(host, port)
    try:
        writer.write(request)
        head = await reader.readuntil(b"\r\n\r\n")
        if int(head[9:12]) != 200:
            tally["refused"] += 1
            return
        tally["open"] += 1
        carry = b""  # a chunk's tail: a marker may straddle two chunks
        arrivals: list[tuple[float, int]] = []
        tally["arrivals"].append(arrivals)
        while time.perf_counter() < until:
            try:
                chunk = await asyncio.wait_for(
                    reader.read(1 << 18), timeout=max(0.01, until - time.perf_counter())
                )
            except TimeoutError:
                break
            if not chunk:
                break
            data = carry + chunk
            found = data.count(SIGNALS_EVENT)
            carry = data[-(len(SIGNALS_EVENT) - 1) :]
            if found:
                tally["events"] += found
                arrivals.append((time.perf_counter(), found))
    finally:
        writer.close()


def _steady_rate(arrivals: list[tuple[float, int]], warm: float, until: float, period: float) -> float:
    """A stream's events a second over whole periods after `warm` seconds: the window opens and
    closes half a period off the stream's ticks (its first arrival + k periods), so a tick's
    jitter never puts one more or one fewer tick into it."""
    if not arrivals:
        return 0.0
    start = arrivals[0][0] + (math.ceil(warm / period) - 0.5) * period
    periods = math.floor((until - start) / period)
    if periods <= 0:
        return 0.0
    end = start + periods * period
    return sum(found for t, found in arrivals if start <= t < end) / (periods * period)


async def run_sse(args: argparse.Namespace) -> dict[str, Any]:
    host, port, path = _target(args.url)
    request = _request(host, port, path, [*args.header, "Accept: text/event-stream"])
    tally: dict[str, Any] = {"open": 0, "refused": 0, "events": 0, "arrivals": []}
    started = time.perf_counter()
    until = started + args.duration
    await asyncio.gather(*(_stream(host, port, request, until, tally) for _ in range(args.streams)))
    rate = sum(
        _steady_rate(arrivals, min(2.0, args.duration / 4), until, args.period)
        for arrivals in tally["arrivals"]
    )
    return {
        "streams": args.streams,
        "open": tally["open"],
        "refused": tally["refused"],
        "events": tally["events"],
        "seconds": time.perf_counter() - started,
        "events_per_s": rate,
    }


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("mode", choices=("get", "sse"))
    parser.add_argument("--url", required=True)
    parser.add_argument("--header", action="append", default=[])
    parser.add_argument("--vehicles", type=int, default=1)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--requests", type=int, default=20_000)
    parser.add_argument("--streams", type=int, default=10)
    parser.add_argument("--period", type=float, default=1.0, help="sse: the streams' refresh (seconds)")
    parser.add_argument("--duration", type=float, default=60.0)
    args = parser.parse_args()
    runner = run_get if args.mode == "get" else run_sse
    sys.stdout.write(json.dumps(asyncio.run(runner(args))) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
