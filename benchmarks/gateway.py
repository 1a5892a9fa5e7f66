"""Gateway throughput: the metered `signals/latest` with the full access check and an atomic
credit on every call, loaded from a second process over loopback (the live-stream fan-out is
benchmarks/streams.py).

The chain is real (an operator staked and active on Staking, an Api product, member vehicles,
a consumer's order); the gateway is uvicorn in its own process(es) on the embedded SQLite
database, then on PostgreSQL with one and with two processes (sharing their rate limits
through Redis and their metrics in multiprocess mode); the load generator
(benchmarks/loadgen.py) is a third process. Statements per call are read from the gateway's
own `gateway_db_statements_total`.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from eth_account import Account
from eth_account.messages import encode_defunct
from sqlalchemy import func, select

from benchmarks.framework import BenchContext, Table, cpu_seconds
from devkit.databases import postgres_database, postgres_unavailable
from devkit.devnet import free_port, stop_process, wait_ready
from devkit.market_world import MarketWorld
from workers.config import PROJECT_ROOT, Settings, get_settings
from workers.db import Database, upgrade
from workers.db.gateway import ApiCredit
from workers.db.settlement import UsageCounter
from workers.protocol import Kind
from workers.runtime import Runtime
from workers.signals.store import SignalValue, store_signals

VEHICLES = 100
CREDITS = 10_000_000
WARMUP = 2_000
REQUESTS = 30_000
SECONDS = 30.0
CONNECTIONS = (8, 16, 32)
REDIS_URL = "redis://127.0.0.1:6379/3"
SIGNALS = {
    "Vehicle.Speed": 50.0,
    "Vehicle.TraveledDistance": 12_345.6,
    "Vehicle.Powertrain.TractionBattery.StateOfCharge.Current": 80.0,
    "Vehicle.Powertrain.TractionBattery.StateOfHealth": 96.5,
    "Vehicle.CurrentLocation.Latitude": 48.137,
    "Vehicle.CurrentLocation.Longitude": 11.575,
}


class GatewayProcess:
    """`uvicorn --factory workers.gateway.app:create_app` with `workers` processes."""

    def __init__(self, env: dict[str, str], workers: int, log: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        command = [
            sys.executable, "-m", "uvicorn", "--factory", "workers.gateway.app:create_app",
            "--host", "127.0.0.1", "--port", str(self.port), "--workers", str(workers),
            "--log-level", "warning", "--no-access-log", "--backlog", "4096",
        ]  # fmt: skip
        self.process = subprocess.Popen(
            command,
            cwd=PROJECT_ROOT,
            env={**os.environ, "PYTHONPATH": str(PROJECT_ROOT), **env},
            stdout=open(log, "w"),  # noqa: SIM115
            stderr=subprocess.STDOUT,
        )
        wait_ready(
            self.process,
            lambda: httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200,
            f"the gateway on {self.url}",
            timeout=60,
            log=log,
        )

    def cpu_seconds(self) -> float:
        """CPU time (user + system) of the server and its worker processes so far."""
        return cpu_seconds(self.process.pid)

    def statements(self) -> float:
        """SQL statements the gateway sent so far (all processes: multiprocess metrics)."""
        text = httpx.get(f"{self.url}/metrics", timeout=5).text
        found = re.search(r"^gateway_db_statements_total (\S+)$", text, re.MULTILINE)
        return 0.0 if found is None else float(found[1])

    def sign_in(self, key: str) -> str:
        address = Account.from_key(key).address
        message = httpx.post(f"{self.url}/auth/nonce", json={"address": address}).json()["message"]
        signature = Account.sign_message(encode_defunct(text=message), key).signature.hex()
        answer = httpx.post(
            f"{self.url}/auth/verify",
            json={"message": message, "signature": "0x" + signature.removeprefix("0x")},
        )
        answer.raise_for_status()
        return answer.json()["token"]

    def stop(self) -> None:
        stop_process(self.process, grace=20)


def loadgen(*args: str) -> dict[str, Any]:
    result = subprocess.run(
        [sys.executable, "-m", "benchmarks.loadgen", *args],
        cwd=PROJECT_ROOT,
        env={**os.environ, "PYTHONPATH": str(PROJECT_ROOT)},
        capture_output=True,
        text=True,
        check=True,
        timeout=600,
    )
    return json.loads(result.stdout.strip().splitlines()[-1])


def _setup_chain(world: MarketWorld) -> dict[str, Any]:
    api = world.create_product(Kind.API, price=10**9, tag="bench-api")
    owners = world.owner_keys
    vehicles = []
    for i in range(VEHICLES):
        owner = owners[i % len(owners)]
        vehicle = world.mint(owner)
        world.join(owner, api, vehicle)
        vehicles.append((vehicle, world.address(owner).lower()))
    consumer = world.consumer_keys[0]
    credits = world.buy_credits(consumer, api, CREDITS)
    return {
        "api": api,
        "vehicles": vehicles,
        "credits": credits,
    }


def _index(settings: Settings, chain: dict[str, Any]) -> int:
    """The indexer follows the chain into the gateway's database (0 confirmations); the OEM
    side's stored signals for every vehicle. Returns the events applied."""
    runtime = Runtime(settings)
    try:
        report = runtime.indexer.sync()
        now_ms = int(time.time() * 1000)
        with runtime.database.session() as session:
            for vehicle, _owner in chain["vehicles"]:
                store_signals(
                    session, vehicle, [SignalValue(n, v, None, now_ms, "oem:1") for n, v in SIGNALS.items()]
                )
    finally:
        runtime.close()
    return int(report.events)


def _credits_spent(db_url: str, order: int) -> tuple[int, int]:
    db = Database(db_url)
    try:
        with db.session(read_only=True) as session:
            row = session.execute(
                select(ApiCredit.total, ApiCredit.remaining).where(ApiCredit.order_id == order)
            ).first()
            usage = session.scalar(
                select(func.coalesce(func.sum(UsageCounter.units), 0)).where(UsageCounter.order_id == order)
            )
    finally:
        db.dispose()
    spent = 0 if row is None else int(row[0]) - int(row[1])
    return spent, int(usage)


@dataclass
class Setup:
    """What every measured server shares."""

    directory: Path
    chain: dict[str, Any]
    consumer: str
    env: dict[str, str]


def _measure_metered(table: Table, setup: Setup, database: str, db_url: str, workers: int) -> None:
    """Warm-up, then one row per connection count, on a fresh server."""
    env = {**setup.env, "DATABASE_URL": db_url}
    if workers > 1:
        metrics_dir = setup.directory / f"metrics-{database}-{workers}"
        metrics_dir.mkdir()
        env |= {"GATEWAY_REDIS_URL": REDIS_URL, "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir)}
    server = GatewayProcess(env, workers, setup.directory / f"gateway-{database}-{workers}.log")
    url = f"/v1/products/{setup.chain['api']}/vehicles/{{v}}/signals/latest"
    try:
        auth = f"Authorization: Bearer {server.sign_in(setup.consumer)}"
        base = ["--url", server.url + url, "--vehicles", str(VEHICLES), "--header", auth]
        spent_before, _ = _credits_spent(db_url, setup.chain["credits"])
        served = 0
        warm = loadgen("get", *base, "--connections", "8", "--requests", str(WARMUP), "--duration", "30")
        served += warm["statuses"].get("200", 0)
        for connections in CONNECTIONS:
            cpu_before, statements_before = server.cpu_seconds(), server.statements()
            result = loadgen(
                "get", *base, "--connections", str(connections),
                "--requests", str(REQUESTS), "--duration", str(SECONDS),
            )  # fmt: skip
            cpu = (server.cpu_seconds() - cpu_before) * 1000 / max(1, result["requests"])
            statements = (server.statements() - statements_before) / max(1, result["requests"])
            ok = result["statuses"].get("200", 0)
            if ok != result["requests"]:
                table.notes.append(f"{database}, {connections} connections: statuses {result['statuses']}")
            served += ok
            spent, usage = _credits_spent(db_url, setup.chain["credits"])
            table.add(
                database, workers, connections, result["requests"], result["rps"], result["p50_ms"],
                result["p90_ms"], result["p99_ms"], cpu, statements, result["requests"] - ok,
                spent - spent_before == served and usage == spent,
            )  # fmt: skip
    finally:
        server.stop()


def _prepare(db_url: str, base: Settings, chain: dict[str, Any]) -> int:
    upgrade(db_url)
    return _index(base.model_copy(update={"database_url": db_url}), chain)


def run(ctx: BenchContext) -> list[Table]:
    world = MarketWorld(ctx.w3, ctx.manifest).setup()
    chain = _setup_chain(world)
    metered = Table(
        "Gateway: metered signals/latest (access rule memoised per block + atomic credit fused with "
        "the usage counter + the read)",
        [
            "database", "uvicorn workers", "connections", "requests", "req/s", "p50 ms", "p90 ms", "p99 ms",
            "server CPU ms/req", "statements/call", "non-200", "credits spent = 200s",
        ],
    )  # fmt: skip
    rpc_url = ctx.w3.provider.endpoint_uri  # type: ignore[attr-defined]
    with tempfile.TemporaryDirectory(prefix="bench-gateway-") as tmp:
        directory = Path(tmp)
        manifest_file = directory / "local.json"
        ctx.manifest.write(manifest_file)
        base = get_settings().model_copy(
            update={"rpc_url": rpc_url, "deployment_file": manifest_file, "confirmations": 0}
        )
        env = {
            "RPC_URL": rpc_url,
            "DEPLOYMENT_FILE": str(manifest_file),
            "RATE_LIMIT_PER_SECOND": "1000000",
            "RATE_LIMIT_BURST": "1000000",
            "ACCESS_CACHE_TTL": "0.5",
            # no indexer ticks while the gateway is measured (the chain does not move either):
            # its one health report must not age into `index_stale`
            "INDEX_MAX_SECONDS_BEHIND": "86400",
        }
        setup = Setup(directory, chain, world.consumer_keys[0], env)
        sqlite = f"sqlite:///{directory / 'gateway.db'}"
        indexed = _prepare(sqlite, base, chain)
        _measure_metered(metered, setup, "SQLite", sqlite, 1)
        if postgres_unavailable() is None:
            with postgres_database() as postgres:
                _prepare(postgres, base, chain)
                _measure_metered(metered, setup, "PostgreSQL", postgres, 1)
                _measure_metered(metered, setup, "PostgreSQL", postgres, 2)
        else:
            metered.notes.append(f"PostgreSQL rows skipped: {postgres_unavailable()}")
    metered.notes += [
        f"{VEHICLES} member vehicles cycled per request; one Api order of {CREDITS:,} credits; "
        "the operator's activity is Staking.isActive at the indexer's block (cached per block)",
        f"projections written by the indexer following the chain ({indexed:,} events applied)",
        "load: benchmarks/loadgen.py in its own process on loopback "
        "(keep-alive, one request in flight per connection)",
        "goal: >= 2,500 req/s on SQLite, >= 1,500 req/s with p99 < 20 ms on PostgreSQL, on this 2-core "
        "machine (load generator included); server CPU ms/req (the gateway's processes, not the "
        "database's) does not depend on what else the machine runs: 1000 / it bounds req/s per core",
        "statements/call: SQL statements the gateway sent per request (gateway_db_statements_total, "
        "BEGIN and COMMIT included): PostgreSQL 2 (the credit and usage counter in one CTE, the read), "
        "SQLite 5 (the read; BEGIN IMMEDIATE, UPDATE … RETURNING, usage upsert, COMMIT)",
        "SQLite serialises writers on one file lock: one gateway process per SQLite database "
        "(GATEWAY_WORKERS=1); PostgreSQL with 2 processes shares rate limits through Redis "
        f"({REDIS_URL}) and sums metrics in multiprocess mode",
    ]
    return [metered]
