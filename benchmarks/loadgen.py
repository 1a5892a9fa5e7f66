"""A small HTTP/1.1 load generator for loopback benchmarks, run as its own process:

    python -m benchmarks.loadgen --url http://127.0.0.1:PORT/path --header "Authorization: Bearer …"
        --connections 32 --requests 20000 [--duration 30]

Keep-alive connections over raw asyncio streams (no HTTP client library in the way), each
sending one request at a time; prints one JSON line: requests, seconds, requests/s,
latency percentiles (ms) and status counts. Bounded by --requests and --duration."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections import Counter
from urllib.parse import urlsplit


def _request_bytes(url: str, headers: list[str]) -> tuple[str, int, bytes]:
    parts = urlsplit(url)
    host = parts.hostname or "127.0.0.1"
    port = parts.port or 80
    path = parts.path + (f"?{parts.query}" if parts.query else "")
    lines = [f"GET {path} HTTP/1.1", f"Host: {host}:{port}", *headers, "", ""]
    return host, port, "\r\n".join(lines).encode()


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


async def _worker(
    host: str,
    port: int,
    request: bytes,
    *,
    budget: list[int],
    deadline: float,
    latencies: list[float],
    statuses: Counter,
) -> None:
    reader, writer = await asyncio.open_connection(host, port)
    try:
        while budget[0] > 0 and time.perf_counter() < deadline:
            budget[0] -= 1
            started = time.perf_counter()
            writer.write(request)
            status = await _read_response(reader)
            latencies.append(time.perf_counter() - started)
            statuses[status] += 1
    finally:
        writer.close()


def _percentile(sorted_values: list[float], q: float) -> float:
    if not sorted_values:
        return 0.0
    index = min(len(sorted_values) - 1, int(q * len(sorted_values)))
    return sorted_values[index]


async def run(url: str, headers: list[str], connections: int, requests: int, duration: float) -> dict:
    host, port, request = _request_bytes(url, headers)
    latencies: list[float] = []
    statuses: Counter = Counter()
    budget = [requests]
    started = time.perf_counter()
    deadline = started + duration
    await asyncio.gather(
        *(
            _worker(
                host, port, request, budget=budget, deadline=deadline, latencies=latencies, statuses=statuses
            )
            for _ in range(connections)
        )
    )
    elapsed = time.perf_counter() - started
    ordered = sorted(latencies)
    return {
        "requests": len(latencies),
        "seconds": elapsed,
        "rps": len(latencies) / elapsed if elapsed else 0.0,
        "p50_ms": _percentile(ordered, 0.50) * 1000,
        "p90_ms": _percentile(ordered, 0.90) * 1000,
        "p99_ms": _percentile(ordered, 0.99) * 1000,
        "max_ms": (ordered[-1] if ordered else 0.0) * 1000,
        "statuses": {str(k): v for k, v in sorted(statuses.items())},
    }


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--url", required=True)
    parser.add_argument("--header", action="append", default=[])
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--requests", type=int, default=20_000)
    parser.add_argument("--duration", type=float, default=60.0)
    args = parser.parse_args()
    result = asyncio.run(run(args.url, args.header, args.connections, args.requests, args.duration))
    sys.stdout.write(json.dumps(result) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
