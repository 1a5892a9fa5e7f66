"""A soak of the whole data plane at once, 100 simulated minutes compressed to one second each
(the products' refreshSeconds of 1 stands for a minute): devices publishing signed telemetry
over MQTT to the ingest process, the OEM schedule queueing pulls of linked cars that a Celery
worker makes against the OEM simulator, consumers' live streams and metered `signals/latest`
calls on the gateway, all on one PostgreSQL database with the signal feed on a private Redis.
Then the balance: nothing sent is lost, nothing is stored twice, every charged call is counted.

Every count is read from where it lands (payload and history rows, Celery results, the order's
credits and usage counters), never from the senders' intentions alone.
"""

from __future__ import annotations

import gc
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import func, insert, select

from benchmarks.framework import BenchContext, Table
from benchmarks.gateway import GatewayProcess, loadgen
from benchmarks.oem import oem_simulator, paired_devices, pull_workers
from benchmarks.telemetry_load import SIGNALS as DEVICE_SIGNALS
from benchmarks.telemetry_load import signed
from devkit.databases import postgres_database, postgres_unavailable
from devkit.devices import publish
from devkit.devnet import free_port, stop_process, wait_ready
from devkit.market_world import MarketWorld
from devkit.stack import RedisServer, mqtt_answers
from workers import eip712
from workers.app import create_app
from workers.config import PROJECT_ROOT, Settings, get_settings
from workers.db import Database, upgrade
from workers.db.gateway import ApiCredit
from workers.db.oem import DevicePayload, OemLink
from workers.db.settlement import UsageCounter
from workers.db.signals import StoredSignal
from workers.oem.connectors import callback_uri, connector_for
from workers.oem.links import cipher_from
from workers.oem.mqtt_ingest import end_session
from workers.oem.schedule import schedule_pulls
from workers.protocol import Kind
from workers.runtime import Runtime

MQTT_URL = "mqtt://127.0.0.1:1883"


@dataclass(frozen=True)
class Size:
    """How much runs at once; one simulated minute is one second."""

    minutes: int
    #: Devices publishing one signed payload a minute each, each paired with its own vehicle.
    devices: int
    #: Cars linked through the OEM simulator, pulled once a minute each.
    linked: int
    #: Metered signals/latest calls a minute, spread over every member vehicle.
    calls_per_minute: int
    #: Live streams of every member vehicle at the product's refresh.
    streams: int


BENCH = Size(minutes=100, devices=32, linked=32, calls_per_minute=20, streams=4)


@dataclass
class World:
    api: int
    stream: int
    devices: list[tuple[int, str]]
    device_vehicles: list[int]
    linked_vehicles: list[int]
    owner: str
    api_order: int
    stream_order: int
    consumer: str

    @property
    def vehicles(self) -> list[int]:
        return self.device_vehicles + self.linked_vehicles


@dataclass
class Balance:
    """What went in and where it landed."""

    payloads_sent: int = 0
    payloads_stored: int = 0
    device_rows: int = 0
    pulls_scheduled: int = 0
    pulls_done: int = 0
    pulls_signals: int = 0
    oem_rows: int = 0
    calls: int = 0
    calls_charged: int = 0
    calls_empty: int = 0
    calls_refused: int = 0
    credits_spent: int = 0
    usage_counted: int = 0
    streams_open: int = 0
    stream_events: int = 0
    stream_expected: int = 0
    notes: list[str] = field(default_factory=list)

    @property
    def ingest_balanced(self) -> bool:
        return self.payloads_sent == self.payloads_stored and self.device_rows == self.payloads_stored * len(
            DEVICE_SIGNALS
        )

    @property
    def pulls_balanced(self) -> bool:
        return self.pulls_scheduled == self.pulls_done and self.pulls_signals == self.oem_rows

    @property
    def calls_balanced(self) -> bool:
        return self.calls_refused == 0 and self.calls_charged == self.credits_spent == self.usage_counted


def _setup_chain(ctx: BenchContext, world: MarketWorld, size: Size) -> World:
    api = world.create_product(Kind.API, price=10**9, refresh=1, tag="soak-api")
    stream = world.create_product(Kind.STREAM, refresh=1, tag="soak-stream")
    devices = paired_devices(ctx, size.devices)  # vehicles minted to the deployer (the DAO key)
    paired = ctx.contract("AftermarketDevice").functions.vehicleOfDevice
    device_vehicles = [int(paired(device).call()) for device, _key in devices]
    linked = [world.mint(world.owner_keys[0]) for _ in range(size.linked)]
    for vehicle in device_vehicles:
        for product in (api, stream):
            world.join(world.dao_key, product, vehicle)
    for vehicle in linked:
        for product in (api, stream):
            world.join(world.owner_keys[0], product, vehicle)
    consumer = world.consumer_keys[0]
    return World(
        api=api,
        stream=stream,
        devices=devices,
        device_vehicles=device_vehicles,
        linked_vehicles=linked,
        owner=world.address(world.owner_keys[0]).lower(),
        api_order=world.buy_credits(consumer, api, 10_000_000),
        stream_order=world.subscribe(consumer, stream, size.devices + size.linked),
        consumer=consumer,
    )


def _links(settings: Settings, simulator: str, world: World) -> list[dict[str, Any]]:
    """One consented OEM link per linked vehicle, to a Smartcar-style car of the simulator."""
    cars = [c for c in httpx.get(f"{simulator}/_sim/vehicles").json() if c["oem"] == "smartcar"]
    if len(cars) < len(world.linked_vehicles):
        raise RuntimeError(
            f"the simulator has {len(cars)} Smartcar-style cars, {len(world.linked_vehicles)} needed"
        )
    cipher, now, rows = cipher_from(settings), int(time.time()), []
    for vehicle_id, car in zip(world.linked_vehicles, cars, strict=False):
        code = httpx.post(
            f"{simulator}/_sim/consent",
            json={"vin": car["vin"], "redirect_uri": callback_uri(settings, 1), "state": ""},
        ).json()["code"]
        tokens = connector_for(1, settings).exchange_code(code)
        rows.append(
            {
                "connection_id": 1, "vin_hash": "0x" + eip712.vin_hash(car["vin"]).hex(),
                "vin_ciphertext": cipher.encrypt_text(car["vin"]), "owner": world.owner,
                "vehicle_id": vehicle_id, "external_id": car["id"],
                "make": car["make"], "model": car["model"],
                "tokens_ciphertext": cipher.encrypt(tokens), "token_expires_at": int(tokens.expires_at),
                "status": "active", "next_pull_at": 0, "created_at": now, "updated_at": now,
            }
        )  # fmt: skip
    return rows


@contextmanager
def _ingest(env: dict[str, str], settings: Settings, directory: Path) -> Iterator[None]:
    log = directory / "ingest.log"
    process = subprocess.Popen(
        [sys.executable, "-m", "workers.oem.mqtt_ingest"],
        cwd=PROJECT_ROOT,
        env={**os.environ, "PYTHONPATH": str(PROJECT_ROOT), **env},
        stdout=open(log, "w"),  # noqa: SIM115
        stderr=subprocess.STDOUT,
    )
    try:
        wait_ready(
            process, lambda: "subscribed to" in log.read_text(), "the MQTT ingest", timeout=60, log=log
        )
        yield
    finally:
        stop_process(process)
        end_session(settings)


class Devices(threading.Thread):
    """Publishes every device's payload once a simulated minute (QoS 1, acknowledged)."""

    def __init__(self, ctx: BenchContext, world: World, size: Size, prefix: str) -> None:
        super().__init__(daemon=True)
        spec = {
            "chain_id": ctx.w3.eth.chain_id,
            "contract": ctx.contract("AftermarketDevice").address,
            "devices": world.devices,
            "count": size.devices * size.minutes,
            "first_sequence": 1,
        }
        self.envelopes = signed(spec)
        self.per_minute = size.devices
        self.prefix = prefix
        self.started = 0.0
        self.sent = 0

    def run(self) -> None:
        for minute, first in enumerate(range(0, len(self.envelopes), self.per_minute)):
            time.sleep(max(0.0, self.started + minute - time.monotonic()))
            part = self.envelopes[first : first + self.per_minute]
            self.sent += publish(MQTT_URL, part, f"soak-devices-{self.prefix}", prefix=self.prefix)


class Calls(threading.Thread):
    """Metered signals/latest calls, `per_minute` a simulated minute over every member vehicle."""

    def __init__(self, url: str, token: str, world: World, size: Size) -> None:
        super().__init__(daemon=True)
        self.url, self.token, self.world, self.size = url, token, world, size
        self.started = 0.0
        self.statuses: dict[str, int] = {}

    def run(self) -> None:
        vehicles, total = self.world.vehicles, self.size.calls_per_minute * self.size.minutes
        with httpx.Client(
            base_url=self.url, headers={"Authorization": f"Bearer {self.token}"}, timeout=30
        ) as http:
            for n in range(total):
                time.sleep(max(0.0, self.started + n / self.size.calls_per_minute - time.monotonic()))
                vehicle = vehicles[n % len(vehicles)]
                answer = http.get(f"/v1/products/{self.world.api}/vehicles/{vehicle}/signals/latest")
                kind = str(answer.status_code)
                if answer.status_code == 200:
                    kind = "charged" if answer.json()["signals"] else "empty"
                self.statuses[kind] = self.statuses.get(kind, 0) + 1


class Pulls:
    """The OEM schedule (oem.schedule's claim), queueing `oem.pull` on the worker."""

    def __init__(self, settings: Settings, database: Database) -> None:
        self.settings, self.database = settings, database
        self.app = create_app(settings)
        self.results: list[Any] = []

    def tick(self) -> None:
        schedule_pulls(
            self.settings,
            self.database,
            lambda v: self.results.append(
                self.app.send_task("oem.pull", kwargs={"vehicle_id": v}, queue="oem")
            ),
        )

    def outcomes(self, timeout: float) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        done = []
        for result in self.results:
            try:
                done.append(result.get(timeout=max(0.1, deadline - time.monotonic())))
            except Exception as exc:  # a lost or failed pull is what the balance shows
                done.append({"status": f"not done ({exc.__class__.__name__})", "stored": 0})
        # results hold the backend's connection: let them go while it still answers
        self.results.clear()
        gc.collect()
        self.app.close()
        return done


def _count(database: Database, statement: Any) -> int:
    with database.session(read_only=True) as session:
        return int(session.scalar(statement) or 0)


def _settle(database: Database, balance: Balance, world: World, sent: int, timeout: float) -> None:
    """Waits (bounded) for the ingest to store what was published, then reads what landed."""
    deadline = time.monotonic() + timeout
    stored = select(func.count()).select_from(DevicePayload)
    while _count(database, stored) < sent and time.monotonic() < deadline:
        time.sleep(0.1)
    time.sleep(0.5)  # anything arriving now would be a duplicate
    balance.payloads_stored = _count(database, stored)
    rows = select(func.count()).select_from(StoredSignal)
    balance.device_rows = _count(database, rows.where(StoredSignal.source.like("device:%")))
    balance.oem_rows = _count(database, rows.where(StoredSignal.source.like("oem:%")))
    credit = select(ApiCredit.total - ApiCredit.remaining).where(ApiCredit.order_id == world.api_order)
    balance.credits_spent = _count(database, credit)
    usage = select(func.coalesce(func.sum(UsageCounter.units), 0)).where(
        UsageCounter.order_id == world.api_order
    )
    balance.usage_counted = _count(database, usage)


def soak(ctx: BenchContext, size: Size, directory: Path, db_url: str) -> Balance:
    """The soak at `size` on the fresh PostgreSQL database `db_url`; its balance."""
    world = _setup_chain(ctx, MarketWorld(ctx.w3, ctx.manifest).setup(), size)
    rpc_url = ctx.w3.provider.endpoint_uri  # type: ignore[attr-defined]
    manifest_file = directory / "local.json"
    ctx.manifest.write(manifest_file)
    feed = RedisServer(directory)
    tag = f"soak-{free_port()}"
    env = {
        "RPC_URL": rpc_url, "DEPLOYMENT_FILE": str(manifest_file), "CONFIRMATIONS": "0",
        "DATABASE_URL": db_url, "BROKER_URL": feed.url, "RESULT_BACKEND": feed.url,
        "INDEX_MAX_SECONDS_BEHIND": "86400",
        "RATE_LIMIT_PER_SECOND": "1000000", "RATE_LIMIT_BURST": "1000000",
        "MQTT_URL": MQTT_URL, "MQTT_CLIENT_ID": tag, "MQTT_TOPIC_PREFIX": tag, "INGEST_METRICS_PORT": "0",
        "OEM_PACE_SMARTCAR": "1000", "OEM_PACE_SMARTCAR_BURST": "1000",
    }  # fmt: skip
    balance = Balance()
    database = Database(db_url)
    try:
        with oem_simulator(directory, 2 * size.linked + 8) as simulator:
            env["OEM_SIMULATOR_URL"] = simulator
            settings = get_settings().model_copy(
                update={
                    "rpc_url": rpc_url, "deployment_file": manifest_file, "confirmations": 0,
                    "database_url": db_url, "broker_url": feed.url, "result_backend": feed.url,
                    "oem_simulator_url": simulator, "oem_connections": [], "mqtt_url": MQTT_URL,
                    "mqtt_client_id": tag, "mqtt_topic_prefix": tag,
                    "oem_pace_smartcar": 1000.0, "oem_pace_smartcar_burst": 1000,
                }
            )  # fmt: skip
            upgrade(db_url)
            runtime = Runtime(settings)
            try:
                runtime.indexer.sync()
            finally:
                runtime.close()
            with database.session() as session:
                session.execute(insert(OemLink), _links(settings, simulator, world))
            _run(ctx, world, size, settings, env, directory, database, balance)
    finally:
        database.dispose()
        feed.stop()
    return balance


def _run(  # noqa: PLR0917 - the soak's parts
    ctx: BenchContext,
    world: World,
    size: Size,
    settings: Settings,
    env: dict[str, str],
    directory: Path,
    database: Database,
    balance: Balance,
) -> None:
    workers = pull_workers(env, 1, directory)
    gateway = GatewayProcess(env, 1, directory / "gateway.log")
    try:
        with _ingest(env, settings, directory):
            token = gateway.sign_in(world.consumer)
            devices = Devices(ctx, world, size, settings.mqtt_topic_prefix)
            calls = Calls(gateway.url, token, world, size)
            pulls = Pulls(settings, database)
            streams = _Streams(gateway.url, token, world, size)
            began = time.monotonic()
            devices.started = calls.started = began
            for part in (streams, devices, calls):
                part.start()
            # the schedule runs every OEM_SCHEDULE_INTERVAL seconds, scaled like the minutes
            every = settings.oem_schedule_interval / 60
            for run in range(int(size.minutes / every)):
                time.sleep(max(0.0, began + run * every - time.monotonic()))
                pulls.tick()
            devices.join(timeout=size.minutes + 60)
            calls.join(timeout=size.minutes + 60)
            streams.join(timeout=size.minutes + 60)
            outcomes = pulls.outcomes(timeout=60)
            balance.payloads_sent = devices.sent
            _settle(database, balance, world, devices.sent, timeout=60)
    finally:
        gateway.stop()
        for process in workers:
            stop_process(process)
    balance.pulls_scheduled = len(outcomes)
    balance.pulls_done = sum(1 for o in outcomes if o.get("status") == "stored")
    balance.pulls_signals = sum(int(o.get("stored") or 0) for o in outcomes)
    other = {o["status"] for o in outcomes if o.get("status") != "stored"}
    if other:
        balance.notes.append(f"pull outcomes other than stored: {sorted(other)}")
    balance.calls = sum(calls.statuses.values())
    balance.calls_charged = calls.statuses.get("charged", 0)
    balance.calls_empty = calls.statuses.get("empty", 0)
    balance.calls_refused = balance.calls - balance.calls_charged - balance.calls_empty
    balance.streams_open = streams.result.get("open", 0)
    balance.stream_events = streams.result.get("events", 0)
    balance.stream_expected = size.streams * len(world.vehicles) * size.minutes


class _Streams(threading.Thread):
    """`size.streams` live streams of every member vehicle for the whole soak (loadgen sse)."""

    def __init__(self, url: str, token: str, world: World, size: Size) -> None:
        super().__init__(daemon=True)
        self.args = [
            "sse", "--url", f"{url}/v1/orders/{world.stream_order}/stream?refresh=1",
            "--header", f"Authorization: Bearer {token}", "--streams", str(size.streams),
            "--duration", str(size.minutes),
        ]  # fmt: skip
        self.result: dict[str, Any] = {}

    def run(self) -> None:
        self.result = loadgen(*self.args)


def table_of(balance: Balance, size: Size, seconds: float) -> Table:
    table = Table(
        f"Soak: {size.minutes} simulated minutes (1 s each) of MQTT ingest, OEM pulls, live streams and "
        "metered calls at once (PostgreSQL)",
        ["flow", "in", "done", "stored / counted", "balanced"],
    )
    table.add(
        f"device payloads over MQTT ({size.devices} devices, 1 a minute each): sent, stored, history rows / "
        f"{len(DEVICE_SIGNALS)}",
        balance.payloads_sent, balance.payloads_stored, balance.device_rows // len(DEVICE_SIGNALS),
        balance.ingest_balanced,
    )  # fmt: skip
    table.add(
        f"OEM pulls ({size.linked} linked cars, each due a minute after its last pull): scheduled, done, "
        "signals stored = history rows",
        balance.pulls_scheduled, balance.pulls_done, f"{balance.pulls_signals:,} = {balance.oem_rows:,}",
        balance.pulls_balanced,
    )  # fmt: skip
    table.add(
        f"metered signals/latest ({size.calls_per_minute} a minute): 200s with signals, credits spent, "
        "usage counted",
        balance.calls_charged, balance.credits_spent, balance.usage_counted, balance.calls_balanced,
    )  # fmt: skip
    delivered = balance.stream_events / balance.stream_expected if balance.stream_expected else 0.0
    table.add(
        f"stream events ({size.streams} streams of every vehicle, refresh 1 minute): expected, delivered",
        balance.stream_expected, balance.stream_events, f"{100 * delivered:.1f} %",
        balance.streams_open == size.streams and delivered >= 0.95,
    )  # fmt: skip
    table.notes += [
        *balance.notes,
        f"metered calls: {balance.calls:,} in all, {balance.calls_empty:,} answered 200 with no signals yet "
        f"(nothing charged), {balance.calls_refused:,} refused",
        f"OEM pulls: {balance.pulls_scheduled / (size.linked * size.minutes):.2f} a car a simulated minute, "
        f"{balance.pulls_scheduled / size.minutes:.1f} a second by one solo-pool worker (below 1 a car: "
        "the worker is the limit; the schedule runs every OEM_SCHEDULE_INTERVAL, scaled, and never "
        "claims a car whose pull is still queued)",
        f"streams balanced: all {size.streams} opened and >= 95 % of vehicle-periods delivered "
        "(the first period of each stream and its last may fall outside the window)",
        f"whole soak {seconds:.0f} s including setup; load average at the end: {os.getloadavg()[0]:.2f} "
        "(2 cores shared with the gateway, ingest, Celery worker, simulator, PostgreSQL, Redis and "
        "this process)",
    ]
    return table


def run(ctx: BenchContext, size: Size = BENCH) -> list[Table]:
    reason = postgres_unavailable() or (None if mqtt_answers(MQTT_URL) else f"no MQTT broker at {MQTT_URL}")
    if reason:
        table = Table("Soak", ["flow", "in", "done", "stored / counted", "balanced"])
        table.notes.append(f"skipped: {reason}")
        return [table]
    began = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="bench-soak-") as tmp, postgres_database() as db_url:
        balance = soak(ctx, size, Path(tmp), db_url)
    return [table_of(balance, size, time.monotonic() - began)]
