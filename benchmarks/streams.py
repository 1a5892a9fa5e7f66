"""Live-stream fan-out: how many vehicle-events a second one gateway process delivers over
server-sent events while every vehicle's signals change once a second.

The chain is real (an operator staked and active, a Stream product, member vehicles, a
consumer's subscription); the gateway is uvicorn in its own process on the embedded SQLite
database with the signal feed on a private redis-server; a writer process stores a new
observation of every vehicle's signals once a second through `store_many` (so pushes flow);
the consumer (benchmarks/loadgen.py `sse`) is a fourth process.

    python -m benchmarks.streams write --vehicles 1,2,3 --duration 60   (the writer; DATABASE_URL
        and SIGNALS_FEED_URL from the environment)
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from benchmarks.framework import BenchContext, Table
from benchmarks.gateway import SIGNALS, GatewayProcess, loadgen
from devkit.devnet import stop_process
from devkit.market_world import MarketWorld
from devkit.stack import RedisServer
from workers.config import PROJECT_ROOT, get_settings, use_settings
from workers.db import Database, upgrade
from workers.protocol import Kind
from workers.runtime import Runtime
from workers.signals.store import SignalValue, store_many

VEHICLES = 200
#: (streams, vehicles each) per row, all at a 1 s refresh.
ROWS = ((10, 50), (40, 50), (100, 50), (100, 200))
SECONDS = 12.0


def _observations(now_ms: int, tick: int) -> list[SignalValue]:
    return [
        SignalValue(name, value + tick % 7 if name == "Vehicle.Speed" else value, None, now_ms, "oem:1")
        for name, value in SIGNALS.items()
    ]


def write(vehicles: list[int], duration: float) -> dict[str, Any]:
    """Stores every vehicle's signals once a second (one transaction, one `store_many`) until
    `duration` passes or SIGTERM."""
    stopping: list[int] = []
    signal.signal(signal.SIGTERM, lambda number, _frame: stopping.append(number))
    database = Database(get_settings().database_url)
    started = time.monotonic()
    batches = late = 0
    try:
        while not stopping and time.monotonic() - started < duration:
            with database.session() as session:
                now_ms = int(time.time() * 1000)
                store_many(session, [(v, _observations(now_ms, batches)) for v in vehicles])
            batches += 1
            pause = started + batches - time.monotonic()
            late += pause < 0
            time.sleep(max(0.0, pause))
    finally:
        database.dispose()
    return {"batches": batches, "late": late, "seconds": time.monotonic() - started}


def _timestamps_advance(url: str, token: str, frames: int = 3) -> bool:
    """Do a stream's frames of one vehicle carry newer observations tick after tick (the
    writer's pushes reach it)?"""
    stamps: list[str] = []
    with (
        httpx.Client(timeout=30) as http,
        http.stream("GET", url, headers={"Authorization": f"Bearer {token}"}) as answer,
    ):
        for line in answer.iter_lines():
            if line.startswith("data:") and '"signals"' in line:
                stamps.append(json.loads(line.split(":", 1)[1])["signals"][0]["timestamp"])
                if len(stamps) == frames:
                    break
    return len(set(stamps)) == frames


def _setup_chain(world: MarketWorld) -> dict[str, Any]:
    stream = world.create_product(Kind.STREAM, refresh=1, tag="bench-stream")
    owners = world.owner_keys
    vehicles = []
    for i in range(VEHICLES):
        owner = owners[i % len(owners)]
        vehicle = world.mint(owner)
        world.join(owner, stream, vehicle)
        vehicles.append(vehicle)
    subscription = world.subscribe(world.consumer_keys[0], stream, VEHICLES)
    return {"stream": stream, "vehicles": vehicles, "subscription": subscription}


def _metric(server: GatewayProcess, name: str) -> float:
    """A counter or gauge the gateway exports on /metrics."""
    for line in httpx.get(f"{server.url}/metrics", timeout=10).text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    raise KeyError(name)


def _measure(table: Table, server: GatewayProcess, token: str, order: int) -> None:
    """One row per (streams, vehicles), then whether frames carry the writer's news and how
    it reached them (pushed, or read from the store)."""
    auth = f"Authorization: Bearer {token}"
    pushed, read = (
        _metric(server, "gateway_stream_pushed_total"),
        _metric(server, "gateway_stream_store_reads_total"),
    )
    for streams, vehicles in ROWS:
        url = f"{server.url}/v1/orders/{order}/stream?refresh=1&vehicles={vehicles}"
        cpu_before, started = server.cpu_seconds(), time.monotonic()
        result = loadgen(
            "sse", "--url", url, "--header", auth, "--streams", str(streams), "--duration", str(SECONDS),
        )  # fmt: skip
        cpu = 100 * (server.cpu_seconds() - cpu_before) / (time.monotonic() - started)
        if result["open"] != streams:
            table.notes.append(f"{streams} x {vehicles}: {result['open']} streams opened")
        expected = streams * vehicles
        rate = result["events_per_s"]
        table.add(streams, vehicles, expected, rate, 100 * rate / expected, cpu)
    one = f"{server.url}/v1/orders/{order}/stream?refresh=1&vehicles=1"
    table.notes.append(
        "each frame carries the writer's newest observation (a vehicle's timestamps advance "
        f"tick after tick): {'yes' if _timestamps_advance(one, token) else 'NO'}"
    )
    pushed = _metric(server, "gateway_stream_pushed_total") - pushed
    read = _metric(server, "gateway_stream_store_reads_total") - read
    up = _metric(server, "gateway_stream_feed_up") == 1
    table.notes.append(
        f"over the rows the gateway's stream hub took {pushed:,.0f} vehicles' observations from the feed "
        f"and read {read:,.0f} vehicles from the store (when a stream first carries one: streams opening "
        "at once may each read it); "
        f"feed subscribed at the end: {'yes' if up else 'NO'}"
    )


def run(ctx: BenchContext) -> list[Table]:
    world = MarketWorld(ctx.w3, ctx.manifest).setup()
    chain = _setup_chain(world)
    table = Table(
        "Streams: live SSE fan-out, pushed (refresh 1 s, every vehicle's signals written once a second)",
        [
            "streams",
            "vehicles each",
            "expected events/s",
            "delivered events/s",
            "delivered %",
            "server CPU %",
        ],
    )
    rpc_url = ctx.w3.provider.endpoint_uri  # type: ignore[attr-defined]
    before = get_settings()
    with tempfile.TemporaryDirectory(prefix="bench-streams-") as tmp:
        directory = Path(tmp)
        manifest_file = directory / "local.json"
        ctx.manifest.write(manifest_file)
        db_url = f"sqlite:///{directory / 'gateway.db'}"
        feed = RedisServer(directory)
        writer: subprocess.Popen[str] | None = None
        server: GatewayProcess | None = None
        try:
            settings = before.model_copy(
                update={
                    "rpc_url": rpc_url,
                    "deployment_file": manifest_file,
                    "confirmations": 0,
                    "database_url": db_url,
                    "signals_feed_url": feed.url,
                }
            )
            use_settings(settings)  # the writes below publish on this run's feed
            upgrade(db_url)
            runtime = Runtime(settings)
            try:
                indexed = runtime.indexer.sync().events
            finally:
                runtime.close()
            env = {
                "RPC_URL": rpc_url,
                "DEPLOYMENT_FILE": str(manifest_file),
                "DATABASE_URL": db_url,
                "SIGNALS_FEED_URL": feed.url,
                "ACCESS_CACHE_TTL": "0.5",
                "STREAM_MAX_PER_TOKEN": "1000",
                # the chain does not move while streams are measured: the indexer's one health
                # report must not age into `index_stale`
                "INDEX_MAX_SECONDS_BEHIND": "86400",
            }
            total = SECONDS * len(ROWS) + 60
            writer = subprocess.Popen(
                [
                    sys.executable, "-m", "benchmarks.streams", "write", "--duration", str(total),
                    "--vehicles", ",".join(str(v) for v in chain["vehicles"]),
                ],
                cwd=PROJECT_ROOT,
                env={**os.environ, "PYTHONPATH": str(PROJECT_ROOT), **env},
                stdout=subprocess.PIPE,
                stderr=open(directory / "writer.log", "w"),  # noqa: SIM115
                text=True,
            )  # fmt: skip
            time.sleep(1.5)  # the first batch is in: every vehicle has signals
            server = GatewayProcess(env, 1, directory / "gateway-streams.log")
            token = server.sign_in(world.consumer_keys[0])
            _measure(table, server, token, chain["subscription"])
        finally:
            if server is not None:
                server.stop()
            if writer is not None:
                stop_process(writer)  # type: ignore[arg-type]
                written = json.loads(writer.communicate()[0].strip().splitlines()[-1])
                table.notes.append(
                    f"writer: {written['batches']} batches of {VEHICLES} vehicles "
                    f"in {written['seconds']:.0f} s, "
                    f"{written['late']} of them later than their second"
                )
            feed.stop()
            use_settings(before)
    table.notes += [
        f"{VEHICLES} member vehicles, one Stream subscription of {VEHICLES}; projections written by the "
        f"indexer following the chain ({indexed:,} events applied)",
        f"a writer process stores {len(SIGNALS)} signals of every vehicle once a second (one store_many); "
        "each commit is published on the signal feed (redis pub/sub) to the gateway's stream hub",
        "one uvicorn process on SQLite; consumer: benchmarks/loadgen.py sse, its own process, loopback; "
        f"{SECONDS:g} s per row, counted over each stream's whole 1 s ticks after the first 2 s; "
        "server CPU % of one core over the row",
        "goal: 100 streams x 200 vehicles delivered >= 95 % (>= 20,000 vehicle-events/s) on this 2-core "
        "machine, load generator and writer included",
    ]
    return [table]


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("mode", choices=("write",))
    parser.add_argument("--vehicles", required=True)
    parser.add_argument("--duration", type=float, default=60.0)
    args = parser.parse_args()
    report = write([int(v) for v in args.vehicles.split(",")], args.duration)
    sys.stdout.write(json.dumps(report) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
