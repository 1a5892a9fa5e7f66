"""Every serving endpoint at data-union scale: p50/p99 of each with 100 member vehicles, then
again once the same PostgreSQL database holds 100,000 vehicles and 10,000,000 signal-history
rows, and whether each p99 stays within 2x (issue #17's goal).

The chain is real for the first 100 vehicles (an operator staked and active; an Api, a Stream
and a Dataset product they all joined; a consumer's orders of each), indexed by the indexer
into a fresh PostgreSQL database. The other 99,900 vehicles are projection rows written in SQL
the way the indexer writes them (vehicles, memberships of the three products, profiles), with
their latest signals and 100 history observations each. The gateway is uvicorn in its own
process; requests are sent one at a time from this process over loopback (latency, not
throughput: benchmarks/gateway.py measures that).
"""

from __future__ import annotations

import logging
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import text

from benchmarks.framework import BenchContext, Table
from benchmarks.gateway import GatewayProcess
from devkit.databases import postgres_database, postgres_unavailable
from devkit.market_world import MarketWorld
from devkit.stack import RedisServer
from workers.config import Settings, get_settings
from workers.db import Database, upgrade
from workers.protocol import Kind
from workers.protocol.permissions import HISTORY, LIVE, LOCATION, TELEMETRY
from workers.runtime import Runtime
from workers.signals.storage import maintain

SMALL = 100
LARGE = 100_000
#: Synthetic vehicle ids start here (the chain's are 1..SMALL).
SYNTHETIC_FROM = 1_000_001
#: Signal names every vehicle reports, and observations of each name a vehicle has in history.
NAMES = (
    "Vehicle.Speed",
    "Vehicle.TraveledDistance",
    "Vehicle.Powertrain.TractionBattery.StateOfCharge.Current",
    "Vehicle.CurrentLocation.Latitude",
    "Vehicle.CurrentLocation.Longitude",
)
TICKS = 20
TICK_MS = 3_000
REQUESTS = 300
#: Seconds an endpoint is measured at most (a slow one gets fewer requests, said in the table).
BUDGET_SECONDS = 20.0
REQUEST_TIMEOUT = 30.0
#: As many as requests: p99 is the 297th of 300 samples (of 40 it was the slowest one).
STREAM_OPENINGS = REQUESTS
WARMUP = 20
SYNTHETIC_OWNER = "0x" + "5a" * 20
PERMISSIONS = TELEMETRY | LOCATION | LIVE | HISTORY

log = logging.getLogger(__name__)
VEHICLE_SERIES = "generate_series(CAST(:first AS bigint), CAST(:last AS bigint)) AS v"


@dataclass
class World:
    api: int
    stream: int
    dataset: int
    vehicles: list[int]
    api_order: int
    stream_order: int
    dataset_order: int
    consumer: str
    owner: str
    owner_vehicle: int


def _setup_chain(world: MarketWorld) -> World:
    api = world.create_product(Kind.API, price=10**9, permissions=PERMISSIONS, tag="scale-api")
    stream = world.create_product(Kind.STREAM, refresh=1, tag="scale-stream")
    dataset = world.create_product(Kind.DATASET, min_cohort=3, tag="scale-dataset")
    owners = world.owner_keys
    vehicles = []
    for i in range(SMALL):
        owner = owners[i % len(owners)]
        vehicle = world.mint(owner)
        for product in (api, stream, dataset):
            world.join(owner, product, vehicle)
        vehicles.append(vehicle)
    consumer = world.consumer_keys[0]
    return World(
        api=api,
        stream=stream,
        dataset=dataset,
        vehicles=vehicles,
        api_order=world.buy_credits(consumer, api, 10_000_000),
        stream_order=world.subscribe(consumer, stream, SMALL),
        dataset_order=world.purchase_dataset(consumer, dataset),
        consumer=consumer,
        owner=owners[0],
        owner_vehicle=vehicles[0],
    )


def _load_signals(database: Database, first: int, last: int, end_ms: int) -> None:
    """Vehicles first..last: the latest of every name, and TICKS observations of each in history
    (one every TICK_MS up to `end_ms`), generated in SQL."""
    names = "ARRAY[" + ",".join(f"'{n}'" for n in NAMES) + "]"
    with database.engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO signals (vehicle_id, name, value, number, unit, timestamp_ms, source) "
                f"SELECT v, ({names})[k], (v % 97 + t)::text, v % 97 + t, NULL, "
                "CAST(:end AS bigint) - (CAST(:ticks AS bigint) - 1 - t) * CAST(:tick AS bigint), 'oem:1' "
                "FROM " + VEHICLE_SERIES + ", generate_series(1, CAST(:names AS int)) AS k, "
                "generate_series(0, CAST(:ticks AS bigint) - 1) AS t"
            ),
            {
                "end": end_ms,
                "ticks": TICKS,
                "tick": TICK_MS,
                "first": first,
                "last": last,
                "names": len(NAMES),
            },
        )
        conn.execute(
            text(
                "INSERT INTO signals_latest (vehicle_id, name, value, number, unit, timestamp_ms, source) "
                f"SELECT v, ({names})[k], (v % 97)::text, v % 97, NULL, CAST(:end AS bigint), 'oem:1' "
                "FROM " + VEHICLE_SERIES + ", generate_series(1, CAST(:names AS int)) AS k"
            ),
            {"end": end_ms, "first": first, "last": last, "names": len(NAMES)},
        )


def _grow(database: Database, world: World, end_ms: int) -> None:
    """LARGE - SMALL synthetic vehicles as the indexer would have projected them: minted to one
    owner at block 1, members of the three products, with profiles and signals."""
    first, last = SYNTHETIC_FROM, SYNTHETIC_FROM + LARGE - SMALL - 1
    with database.engine.begin() as conn:
        args = {"first": first, "last": last, "owner": SYNTHETIC_OWNER}
        conn.execute(
            text(
                "INSERT INTO vehicles (vehicle_id, owner, generation, tenure_started_at, burned, "
                "minted_block, block_number) "
                "SELECT v, :owner, 1, 0, false, 1, 1 FROM " + VEHICLE_SERIES
            ),
            args,
        )
        for product in (world.api, world.stream, world.dataset):
            version = conn.execute(
                text("SELECT coalesce(max(version), 1) FROM product_terms WHERE product_id = :p"),
                {"p": product},
            ).scalar()
            conn.execute(
                text(
                    "INSERT INTO memberships (product_id, vehicle_id, owner, version, generation, "
                    "joined_at, block_number) "
                    "SELECT :product, v, :owner, :version, 1, 0, 1 FROM " + VEHICLE_SERIES
                ),
                {**args, "product": product, "version": version},
            )
        conn.execute(
            text(
                "INSERT INTO vehicle_profiles (vehicle_id, make, model, powertrain, region, updated_ms) "
                "SELECT v, (ARRAY['Tesla','Kia','Ford','BMW'])[(v % 4 + 1)::int], 'M', 'BEV', 'EU', 0 "
                "FROM " + VEHICLE_SERIES
            ),
            args,
        )
    _load_signals(database, first, last, end_ms)


def _analyze(database: Database) -> None:
    with database.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("VACUUM ANALYZE"))


def _count(database: Database, table: str) -> int:
    with database.engine.connect() as conn:
        return int(conn.execute(text(f"SELECT count(*) FROM {table}")).scalar() or 0)


@dataclass
class Endpoint:
    name: str
    #: (method, path, json body) for the n-th request.
    request: Callable[[int], tuple[str, str, Any]]
    token: str
    times: int = REQUESTS


def _percentiles(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    return statistics.median(ordered), ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))]


def _timed(
    what: str, warmup: int, times: int, attempt: Callable[[int], int]
) -> tuple[list[float], dict[int, int]]:
    """Milliseconds of `attempt(n)` (which answers an HTTP status) for `times` attempts after
    `warmup` untimed ones, within BUDGET_SECONDS; an attempt that times out ends the run
    (status 0)."""
    statuses: dict[int, int] = {}
    samples: list[float] = []
    deadline = time.monotonic() + BUDGET_SECONDS
    for n in range(-warmup, times):
        if time.monotonic() > deadline and samples:
            break
        began = time.perf_counter()
        try:
            status = attempt(n)
        except httpx.TimeoutException:
            status = 0
        elapsed = (time.perf_counter() - began) * 1000
        if n >= 0 or status == 0:
            samples.append(elapsed)
            statuses[status] = statuses.get(status, 0) + 1
        if status == 0:
            break
    log.info("%s: %d timed, statuses %s", what, len(samples), statuses)
    return samples, statuses


def _time_requests(client: httpx.Client, endpoint: Endpoint) -> tuple[list[float], dict[int, int]]:
    """Up to `endpoint.times` requests after the warm-up."""

    def request(n: int) -> int:
        method, path, body = endpoint.request(n)
        headers = {"Authorization": f"Bearer {endpoint.token}"}
        return client.request(method, path, json=body, headers=headers).status_code

    return _timed(endpoint.name, WARMUP, endpoint.times, request)


def _time_first_frames(client: httpx.Client, path: str, token: str) -> tuple[list[float], dict[int, int]]:
    """Milliseconds from opening the stream to its first `signals` event, opening by opening."""

    def open_stream(_n: int) -> int:
        with client.stream("GET", path, headers={"Authorization": f"Bearer {token}"}) as answer:
            if answer.status_code == 200:
                next(line for line in answer.iter_lines() if line.startswith("event: signals"))
            return answer.status_code

    return _timed("stream first frame", 2, STREAM_OPENINGS, open_stream)


def _endpoints(world: World, members: list[int], consumer: str, owner: str, end_ms: int) -> list[Endpoint]:
    """Every serving endpoint; member-keyed ones cycle over `members` (spread over the union)."""

    def member(n: int) -> int:
        return members[(n * 7919) % len(members)]

    since, until = (end_ms - TICKS * TICK_MS // 2) / 1000, end_ms / 1000
    api = f"/v1/products/{world.api}/vehicles"
    return [
        Endpoint(
            "signals/latest (metered)", lambda n: ("GET", f"{api}/{member(n)}/signals/latest", None), consumer
        ),
        Endpoint(
            "signals history, 30 s of 5 signals (metered)",
            lambda n: ("GET", f"{api}/{member(n)}/signals?from={since}&to={until}", None),
            consumer,
        ),
        Endpoint("catalog: products", lambda n: ("GET", "/v1/products", None), consumer),
        Endpoint("catalog: one product", lambda n: ("GET", f"/v1/products/{world.api}", None), consumer),
        Endpoint("catalog: demand", lambda n: ("GET", "/v1/demand", None), consumer),
        Endpoint("order view", lambda n: ("GET", f"/v1/orders/{world.api_order}", None), consumer),
        Endpoint("owner: vehicles list", lambda n: ("GET", "/v1/vehicles", None), owner),
        Endpoint(
            "owner: consents of a vehicle",
            lambda n: ("GET", f"/v1/vehicles/{world.owner_vehicle}/consents", None),
            owner,
        ),
        Endpoint(
            "owner: privacy zones",
            lambda n: ("GET", f"/v1/vehicles/{world.owner_vehicle}/zones", None),
            owner,
        ),
        Endpoint(
            "member claims",
            lambda n: ("GET", f"/v1/members/{MarketWorld.address(world.owner).lower()}/claims", None),
            owner,
        ),
        Endpoint(
            "dataset submit (cohort of all members)",
            lambda n: (
                "POST",
                f"/v1/orders/{world.dataset_order}/dataset",
                {"metric": NAMES[0], "product_id": world.dataset},
            ),
            consumer,
            times=REQUESTS // 3,
        ),
    ]


def _measure(server: GatewayProcess, world: World, members: list[int], end_ms: int) -> dict[str, Any]:
    consumer, owner = server.sign_in(world.consumer), server.sign_in(world.owner)
    results: dict[str, Any] = {}
    with httpx.Client(base_url=server.url, timeout=REQUEST_TIMEOUT) as client:
        for endpoint in _endpoints(world, members, consumer, owner, end_ms):
            cpu = server.cpu_seconds()
            samples, statuses = _time_requests(client, endpoint)
            results[endpoint.name] = (samples, statuses, server.cpu_seconds() - cpu)
        cpu = server.cpu_seconds()
        samples, statuses = _time_first_frames(
            client, f"/v1/orders/{world.stream_order}/stream?refresh=1&vehicles={SMALL}", consumer
        )
        results[f"stream first frame ({SMALL} vehicles)"] = (samples, statuses, server.cpu_seconds() - cpu)
    return results


def _serve(
    env: dict[str, str], log: Path, measure: Callable[[GatewayProcess], dict[str, Any]]
) -> dict[str, Any]:
    server = GatewayProcess(env, 1, log)
    try:
        return measure(server)
    finally:
        server.stop()


def _row(table: Table, name: str, small: Any, large: Any) -> None:
    (s_samples, s_status, s_cpu), (l_samples, l_status, l_cpu) = small, large
    s50, s99 = _percentiles(s_samples)
    l50, l99 = _percentiles(l_samples)
    for label, statuses in ((f"@{SMALL:,}", s_status), (f"@{LARGE:,}", l_status)):
        bad = {k: v for k, v in statuses.items() if k >= 300 or k == 0}
        if bad:
            table.notes.append(f"{name} {label}: statuses {bad} (0: no answer in {REQUEST_TIMEOUT:g} s)")
    table.add(
        name, f"{len(s_samples)} / {len(l_samples)}", s50, s99, l50, l99, f"{l99 / s99:.2f}x", l99 <= 2 * s99,
        s_cpu * 1000 / len(s_samples), l_cpu * 1000 / len(l_samples),
        f"{(l_cpu / len(l_samples)) / (s_cpu / len(s_samples)):.2f}x" if s_cpu else "n/a",
    )  # fmt: skip


def run(ctx: BenchContext) -> list[Table]:
    table = Table(
        f"Scale: every serving endpoint at {SMALL:,} and at {LARGE:,} member vehicles (PostgreSQL)",
        [
            "endpoint", "requests", f"p50 ms @{SMALL:,}", f"p99 ms @{SMALL:,}",
            f"p50 ms @{LARGE:,}", f"p99 ms @{LARGE:,}", "p99 ratio", "within 2x",
            f"server CPU ms/req @{SMALL:,}", f"@{LARGE:,}", "CPU ratio",
        ],
    )  # fmt: skip
    reason = postgres_unavailable()
    if reason:
        table.notes.append(f"skipped: {reason}")
        return [table]
    world = _setup_chain(MarketWorld(ctx.w3, ctx.manifest).setup())
    rpc_url = ctx.w3.provider.endpoint_uri  # type: ignore[attr-defined]
    with tempfile.TemporaryDirectory(prefix="bench-scale-") as tmp, postgres_database() as db_url:
        directory = Path(tmp)
        manifest_file = directory / "local.json"
        ctx.manifest.write(manifest_file)
        feed = RedisServer(directory)
        try:
            settings = get_settings().model_copy(
                update={
                    "rpc_url": rpc_url, "deployment_file": manifest_file, "confirmations": 0,
                    "database_url": db_url, "signals_retention_days": 0,
                }
            )  # fmt: skip
            env = {
                "RPC_URL": rpc_url,
                "DEPLOYMENT_FILE": str(manifest_file),
                "DATABASE_URL": db_url,
                "BROKER_URL": feed.url,
                "RATE_LIMIT_PER_SECOND": "1000000",
                "RATE_LIMIT_BURST": "1000000",
                "DATASET_EPSILON_PER_ORDER": "1000000",
                "INDEX_MAX_SECONDS_BEHIND": "86400",
            }
            small, large, loaded = _phases(settings, env, world, directory)
        finally:
            feed.stop()
    for name in small:
        _row(table, name, small[name], large[name])
    table.notes += [
        f"the same database twice: {SMALL} member vehicles indexed from the chain, then "
        f"{LARGE - SMALL:,} more written as the indexer projects them ({loaded})",
        f"member-keyed endpoints spread over all members; {REQUESTS} requests each "
        f"({REQUESTS // 3} dataset submits), one at a time after {WARMUP} warm-up (stream openings: 2), "
        "from the bench process over loopback; one gateway process; p99 is the sample at rank "
        "0.99 n (of 100 dataset submits, the slowest)",
        f"load average at the end: {os.getloadavg()[0]:.2f} (2 cores shared); server CPU ms/req does not "
        "depend on the machine's other load, p99 does (one request in 100 waiting for a core): on a "
        "shared machine the CPU ratio is the figure that says what the union's size costs",
        "goal: every endpoint's p99 at 100,000 vehicles within 2x its p99 at 100",
    ]
    return [table]


def _phases(
    settings: Settings, env: dict[str, str], world: World, directory: Path
) -> tuple[dict[str, Any], dict[str, Any], str]:
    url = settings.database_url
    upgrade(url)
    runtime = Runtime(settings)
    try:
        runtime.indexer.sync()
    finally:
        runtime.close()
    database = Database(url)
    try:
        with database.session() as session:
            maintain(session, settings, now_ms=int(time.time() * 1000))
        end_ms = int(time.time() * 1000)
        _load_signals(database, min(world.vehicles), max(world.vehicles), end_ms)
        _analyze(database)
        small = _serve(
            env, directory / "gateway-small.log", lambda s: _measure(s, world, world.vehicles, end_ms)
        )
        began = time.perf_counter()
        _grow(database, world, end_ms)
        grown = time.perf_counter() - began
        began = time.perf_counter()
        _analyze(database)
        analyzed = time.perf_counter() - began
        history, members = _count(database, "signals"), _count(database, "memberships")
        everyone = world.vehicles + list(range(SYNTHETIC_FROM, SYNTHETIC_FROM + LARGE - SMALL))
        large = _serve(env, directory / "gateway-large.log", lambda s: _measure(s, world, everyone, end_ms))
    finally:
        database.dispose()
    loaded = (
        f"{history:,} history rows, {members:,} memberships; loaded in SQL in {grown:.0f} s, "
        f"VACUUM ANALYZE {analyzed:.0f} s"
    )
    return small, large, loaded
