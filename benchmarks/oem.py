"""OEM integration throughput: signed device telemetry verified and stored per second, end to
end over MQTT (Mosquitto, the ingest process) and over HTTP (the gateway), on SQLite and
PostgreSQL, beside Phase 1.1's one-at-a-time rate; and vehicle pulls per second through the
published clients against the OEM simulator, beside a bare HTTP GET to the same server."""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Any

import httpx
import requests
from eth_account import Account
from eth_utils import keccak
from sqlalchemy import func, insert, select, text, update
from sqlalchemy.orm import Session
from web3.logs import DISCARD

from benchmarks.framework import BenchContext, Table, cpu_seconds, format_cell, ratio
from benchmarks.gateway import GatewayProcess
from benchmarks.telemetry_load import SIGNALS, newest_payload_id, stored_payloads
from devkit.databases import postgres_database, postgres_unavailable
from devkit.devnet import ServiceStartError, free_port, stop_process, wait_ready
from devkit.stack import RedisServer, mqtt_answers
from workers import eip712
from workers.app import create_app
from workers.config import PROJECT_ROOT, Settings, get_settings
from workers.db import Database, upgrade
from workers.db.oem import OemLink
from workers.db.projections import Membership, Product, Vehicle
from workers.oem.connectors import callback_uri, connector_for
from workers.oem.links import cipher_from
from workers.oem.mqtt_ingest import end_session
from workers.oem.schedule import schedule_pulls
from workers.oem.tokens import MemoryTokens
from workers.runtime import Runtime

PULLS = 60
#: Devices publishing in the telemetry benchmark, each paired with its own vehicle.
DEVICES = 64
MQTT_PAYLOADS = 20_000
#: HTTP rows: (envelopes a request, payloads in all).
HTTP_ROWS = ((100, 10_000), (1, 2_000))
#: Payloads a second each transport must sustain (issue 17), load generator included.
MQTT_GOAL = 2_000
HTTP_GOAL = 1_000
#: Signed payloads verified and stored a second in Phase 1.1 (BENCHMARKS.md, one at a time:
#: eth-keys recovery, OpenSSL for known keys, an eth_call per payload): what the rows compare to.
BEFORE_PER_SECOND = 67
MQTT_URL = "mqtt://127.0.0.1:1883"
#: The publisher stays at most this many payloads ahead of what is stored (this machine's
#: Mosquitto runs its default limits, which drop a subscriber's messages past some backlog).
WINDOW = 4_000


def _timed(n: int, step: Callable[[int], object]) -> list[float]:
    laps = []
    for i in range(n):
        started = time.perf_counter()
        step(i)
        laps.append(time.perf_counter() - started)
    return laps


def _row(table: Table, what: str, laps: list[float], baseline: list[float] | None = None) -> None:
    per_second = len(laps) / sum(laps)
    quantiles = statistics.quantiles(laps, n=100)
    base = "" if baseline is None else ratio(sum(laps) / len(laps), sum(baseline) / len(baseline))
    table.add(
        what,
        len(laps),
        format_cell(round(per_second)),
        f"{quantiles[49] * 1000:.2f}",
        f"{quantiles[98] * 1000:.2f}",
        base,
    )


def paired_devices(ctx: BenchContext, count: int) -> list[tuple[int, str]]:
    """`count` devices, each paired with a vehicle of its own: [(device id, device key)]."""
    vehicles, devices = ctx.contract("VehicleId"), ctx.contract("AftermarketDevice")
    me = ctx.deployer.account.address
    ctx.deployer.call(devices, "setManufacturer", me, True)
    ctx.deployer.call(vehicles, "addConnection", "bench", me)
    connection_id = vehicles.functions.connectionCount().call()
    domain = eip712.domain(eip712.DEVICE_DOMAIN, ctx.w3.eth.chain_id, devices.address)
    # The chain's clock, which earlier benchmarks may have moved ahead of the wall clock.
    deadline = ctx.w3.eth.get_block("latest")["timestamp"] + 3600
    paired = []
    for i in range(count):
        key = "0x" + keccak(text=f"bench device {i}").hex().removeprefix("0x")
        receipt = ctx.deployer.call(vehicles, "mint", me, connection_id, keccak(text=f"oem bench vin {i}"))
        vehicle_id = vehicles.events.VehicleMinted().process_receipt(receipt, errors=DISCARD)[0]["args"][
            "vehicleId"
        ]
        signer = Account.from_key(key).address
        receipt = ctx.deployer.call(devices, "mintDevice", me, signer, keccak(text=f"oem bench serial {i}"))
        device_id = devices.events.DeviceMinted().process_receipt(receipt, errors=DISCARD)[0]["args"][
            "deviceId"
        ]
        pair = eip712.pair(domain, vehicle_id=vehicle_id, device_id=device_id, nonce=0, deadline=deadline)
        ctx.deployer.call(devices, "pair", vehicle_id, device_id, 0, deadline, eip712.sign(pair, key))
        paired.append((int(device_id), key))
    return paired


def _load(mode: str, spec: dict[str, Any], directory: Path) -> tuple[subprocess.Popen[str], float]:
    """The device load in its own process, once its envelopes are signed: (process, start)."""
    spec_file = directory / f"load-{mode}.json"
    spec_file.write_text(json.dumps(spec))
    process = subprocess.Popen(
        [sys.executable, "-m", "benchmarks.telemetry_load", mode, str(spec_file)],
        cwd=PROJECT_ROOT,
        env={**os.environ, "PYTHONPATH": str(PROJECT_ROOT)},
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    line = process.stdout.readline()
    if not line:
        raise RuntimeError(f"the {mode} load generator stopped before it started")
    return process, float(json.loads(line)["start"])


def _finish(process: subprocess.Popen[str]) -> dict[str, Any]:
    out, _ = process.communicate(timeout=600)
    if process.returncode:
        raise RuntimeError(f"the load generator failed ({process.returncode})")
    return json.loads(out.strip().splitlines()[-1])


def _env(settings: Settings) -> dict[str, str]:
    return {
        "DATABASE_URL": settings.database_url,
        "RPC_URL": settings.rpc_url,
        "DEPLOYMENT_FILE": str(settings.deployment_file),
        "CONFIRMATIONS": "0",
        "INDEX_MAX_SECONDS_BEHIND": "86400",
    }


def _add(
    table: Table, transport: str, label: str, *, count: int, seconds: float, goal: int, cpu: float
) -> None:
    """One row: `cpu` is the server's (ingest or gateway) CPU seconds over the run."""
    per_second = count / seconds
    table.add(transport, label, count, f"{seconds:.2f}", round(per_second), goal, per_second >= goal,
              f"{cpu * 1000 / count:.3f}", ratio(per_second, BEFORE_PER_SECOND), "yes")  # fmt: skip


def _mqtt_row(table: Table, settings: Settings, spec: dict[str, Any], directory: Path, label: str) -> None:
    """The ingest process (its defaults: batches of INGEST_BATCH_SIZE) against Mosquitto, the
    publisher in another process; payloads/s = stored / (last stored - first published), and
    the ingest's CPU over the same time."""
    tag = f"bench-{free_port()}"
    ingest_settings = settings.model_copy(
        update={"mqtt_url": MQTT_URL, "mqtt_client_id": tag, "mqtt_topic_prefix": tag}
    )
    log = directory / f"ingest-{label}.log"
    ingest = subprocess.Popen(
        [sys.executable, "-m", "workers.oem.mqtt_ingest"],
        cwd=PROJECT_ROOT,
        env={
            **os.environ,
            "PYTHONPATH": str(PROJECT_ROOT),
            **_env(settings),
            "MQTT_URL": MQTT_URL,
            "MQTT_CLIENT_ID": tag,
            "MQTT_TOPIC_PREFIX": tag,
            "INGEST_METRICS_PORT": "0",
        },
        stdout=open(log, "w"),  # noqa: SIM115
        stderr=subprocess.STDOUT,
    )
    db = Database(settings.database_url)
    try:
        wait_ready(ingest, lambda: "subscribed to" in log.read_text(), "the MQTT ingest", timeout=60, log=log)
        before, newest = stored_payloads(db), newest_payload_id(db)
        cpu_before = cpu_seconds(ingest.pid)
        load, started = _load(
            "mqtt",
            {**spec, "url": MQTT_URL, "prefix": tag, "window": WINDOW, "database_url": settings.database_url},
            directory,
        )
        deadline = time.monotonic() + 600
        # Progress by the newest id (an index lookup), then the count itself once it is due.
        while newest_payload_id(db) - newest < spec["count"] and time.monotonic() < deadline:
            time.sleep(0.05)
        while stored_payloads(db) - before < spec["count"] and time.monotonic() < deadline:
            time.sleep(0.05)
        finished = time.time()
        cpu = cpu_seconds(ingest.pid) - cpu_before
        sent = _finish(load)["published"]
        time.sleep(0.5)  # anything more would be a duplicate
        stored = stored_payloads(db) - before
        if stored != sent:
            raise AssertionError(f"MQTT ingest on {label}: {sent} published, {stored} stored")
        _add(
            table,
            "MQTT (Mosquitto, QoS 1)",
            label,
            count=sent,
            seconds=finished - started,
            goal=MQTT_GOAL,
            cpu=cpu,
        )
    finally:
        stop_process(ingest)
        end_session(ingest_settings)
        db.dispose()


def _http_rows(table: Table, settings: Settings, spec: dict[str, Any], directory: Path, label: str) -> None:
    """The gateway (one uvicorn process) and the device load in another process."""
    gateway = GatewayProcess(_env(settings), 1, directory / f"gateway-{label}.log")
    db = Database(settings.database_url)
    try:
        first = spec["first_sequence"]
        for per_request, count in HTTP_ROWS:
            before = stored_payloads(db)
            cpu_before = gateway.cpu_seconds()
            load, _ = _load(
                "http",
                {**spec, "url": gateway.url, "count": count, "first_sequence": first,
                 "per_request": per_request, "connections": 4},
                directory,
            )  # fmt: skip
            result = _finish(load)
            cpu = gateway.cpu_seconds() - cpu_before
            first += count  # above every sequence sent so far, per device
            stored = stored_payloads(db) - before
            if not result["accepted"] == stored == count or result["failed_requests"]:
                raise AssertionError(f"HTTP ingest on {label}: sent {count}, {result}, stored {stored}")
            transport = f"HTTP, {per_request} envelope(s) a request"
            _add(table, transport, label, count=count, seconds=result["seconds"], goal=HTTP_GOAL, cpu=cpu)
    finally:
        gateway.stop()
        db.dispose()


def telemetry_table(ctx: BenchContext, directory: Path) -> Table:
    table = Table(
        "Device telemetry: signed payloads verified and stored, end to end",
        ["transport", "database", "payloads", "seconds", "payloads/s", "goal/s", "goal met",
         "server CPU ms/payload", f"vs {BEFORE_PER_SECOND}/s before", "stored = sent"],
    )  # fmt: skip
    devices = paired_devices(ctx, DEVICES)
    contract = ctx.contract("AftermarketDevice")
    manifest_file = directory / "local.json"
    ctx.manifest.write(manifest_file)
    base = get_settings().model_copy(
        update={
            "rpc_url": ctx.w3.provider.endpoint_uri,  # type: ignore[attr-defined]
            "deployment_file": manifest_file,
            "confirmations": 0,
        }
    )
    spec = {
        "chain_id": ctx.w3.eth.chain_id,
        "contract": contract.address,
        "devices": devices,
        "count": MQTT_PAYLOADS,
        "first_sequence": 1,
    }
    mqtt_ok = mqtt_answers(MQTT_URL)
    databases: list[tuple[str, Any]] = [("SQLite", nullcontext(f"sqlite:///{directory / 'telemetry.db'}"))]
    if postgres_unavailable() is None:
        databases.append(("PostgreSQL", postgres_database()))
    else:
        table.notes.append(f"PostgreSQL rows skipped: {postgres_unavailable()}")
    for label, opened in databases:
        with opened as url:
            settings = base.model_copy(update={"database_url": url})
            upgrade(url)
            runtime = Runtime(settings)
            try:
                runtime.indexer.sync()  # the devices and pairings the ingest reads
            finally:
                runtime.close()
            if mqtt_ok:
                _mqtt_row(table, settings, spec, directory, label)
            _http_rows(table, settings, {**spec, "first_sequence": MQTT_PAYLOADS + 1}, directory, label)
    if not mqtt_ok:
        table.notes.append(f"MQTT rows skipped: no broker answers at {MQTT_URL}")
    load = os.getloadavg()
    table.notes += [
        f"{DEVICES} devices, each paired with its own vehicle (read from the index, cached); "
        f"{len(SIGNALS)} signals a payload; envelopes signed beforehand by the load process "
        "(benchmarks/telemetry_load.py, libsecp256k1), which then publishes or posts them",
        "MQTT: `python -m workers.oem.mqtt_ingest` with its default batch (INGEST_BATCH_SIZE, "
        "INGEST_BATCH_WAIT), acking each batch after its commit; time from the first publish to "
        f"the last payload stored; the publisher (one connection, 1,000 in flight) stays at most "
        f"{WINDOW:,} payloads ahead of what is stored (Mosquitto here runs its default limits, which "
        "drop a subscriber's messages past a backlog: deploy/mosquitto.conf raises them). HTTP: one "
        "uvicorn process, 4 keep-alive connections",
        "server CPU ms/payload: the CPU (user + system, all threads) the ingest process or the "
        "gateway spent over the run, divided by the payloads: what a payload costs whatever else "
        "runs on the machine (the load generator, Mosquitto and the database are not in it)",
        f"before: {BEFORE_PER_SECOND}/s, Phase 1.1's one-at-a-time path (eth-keys recovery, an "
        "eth_call for each payload's pairing, one transaction each)",
        f"goal: >= {MQTT_GOAL:,}/s over MQTT, >= {HTTP_GOAL:,}/s over HTTP on this 2-core machine, "
        "load generator included (HTTP: with lists; one envelope a request is a request each); load average "
        f"when the table was made: {load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f}",
    ]
    return table


@contextmanager
def oem_simulator(directory: Path, vehicles: int = 8) -> Iterator[str]:
    port = free_port()
    log = open(directory / f"sim-{port}.log", "w")  # noqa: SIM115
    process = subprocess.Popen(
        [sys.executable, "-m", "devkit.simulator", "--port", str(port), "--vehicles", str(vehicles)],
        cwd=PROJECT_ROOT,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                if httpx.get(f"{url}/healthz").status_code == 200:
                    break
            except httpx.TransportError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)
        log.close()


def pulls_table(simulator_url: str) -> Table:
    settings = get_settings().model_copy(
        update={
            "oem_simulator_url": simulator_url,
            "oem_connections": [],
            "oem_pace_smartcar": 10_000.0,
            "oem_pace_tesla": 10_000.0,
        }
    )
    fleet = httpx.get(f"{simulator_url}/_sim/vehicles").json()
    table = Table(
        "OEM pulls through the published clients against the simulator, one at a time",
        ["call", "calls", "per second", "p50 ms", "p99 ms", "time vs bare GET"],
    )
    bare = _timed(PULLS, lambda _: requests.get(f"{simulator_url}/_sim/clock", timeout=10))
    _row(table, "bare GET (requests, new connection, like smartcar's)", bare)
    for connection_id, oem in ((1, "smartcar"), (2, "tesla")):
        car = next(v for v in fleet if v["oem"] == oem)
        connector = connector_for(connection_id, settings)
        code = httpx.post(
            f"{simulator_url}/_sim/consent",
            json={"vin": car["vin"], "redirect_uri": callback_uri(settings, connection_id), "state": ""},
        ).json()["code"]
        tokens = MemoryTokens(connector.exchange_code(code))
        external = car["id"] if oem == "smartcar" else car["vin"]
        connector.read_signals(tokens, external)  # a Tesla wakes up once
        laps = _timed(PULLS, lambda _, c=connector, t=tokens, e=external: c.read_signals(t, e))
        client = "smartcar 6.19 batch" if oem == "smartcar" else "tesla-fleet-api 1.5 vehicle_data"
        _row(table, f"{client}, normalised to VSS", laps, bare)
    return table


# --- pulls at fleet size -----------------------------------------------------------------------

FLEET_LINKS = 5_000
CLAIM_LINKS = 100_000
#: Seconds each fleet run is measured (the table reports it per minute).
FLEET_WINDOW = 30
OWNER = "0x" + "42" * 20


def _members(session: Session, vehicle_ids: range, vin_hashes: dict[int, str] | None = None) -> None:
    """An active product (refreshSeconds 60) with every vehicle a live member."""
    session.add(
        Product(
            product_id=1,
            operator=OWNER,
            kind=0,
            version=1,
            active=True,
            refresh_seconds=60,
            created_block=1,
            block_number=1,
        )
    )
    session.execute(
        insert(Vehicle),
        [
            {
                "vehicle_id": v,
                "owner": OWNER,
                "generation": 1,
                "burned": False,
                "block_number": 1,
                "vin_hash": (vin_hashes or {}).get(v),
            }
            for v in vehicle_ids
        ],
    )
    session.execute(
        insert(Membership),
        [
            {
                "product_id": 1,
                "vehicle_id": v,
                "owner": OWNER,
                "version": 1,
                "generation": 1,
                "block_number": 1,
            }
            for v in vehicle_ids
        ],
    )


def _link_rows(settings: Settings, simulator_url: str, count: int) -> list[dict[str, object]]:
    """One consented link per simulated car (real code exchanges, 8 at a time)."""
    fleet = httpx.get(f"{simulator_url}/_sim/vehicles").json()[:count]
    cipher = cipher_from(settings)
    now = int(time.time())

    def consent(item: tuple[int, dict]) -> dict[str, object]:
        vehicle_id, car = item
        connection_id = 1 if car["oem"] == "smartcar" else 2
        code = httpx.post(
            f"{simulator_url}/_sim/consent",
            json={"vin": car["vin"], "redirect_uri": callback_uri(settings, connection_id), "state": ""},
        ).json()["code"]
        tokens = connector_for(connection_id, settings).exchange_code(code)
        return {
            "connection_id": connection_id,
            "vin_hash": "0x" + eip712.vin_hash(car["vin"]).hex(),
            "vin_ciphertext": cipher.encrypt_text(car["vin"]),
            "owner": OWNER,
            "vehicle_id": vehicle_id,
            "external_id": car["id"] if car["oem"] == "smartcar" else car["vin"],
            "make": car["make"],
            "model": car["model"],
            "tokens_ciphertext": cipher.encrypt(tokens),
            "token_expires_at": int(tokens.expires_at),
            "status": "active",
            "created_at": now,
            "updated_at": now,
        }

    with ThreadPoolExecutor(8) as pool:
        return list(pool.map(consent, enumerate(fleet, start=1)))


def pull_workers(env: dict[str, str], count: int, directory: Path) -> list[subprocess.Popen]:
    processes = []
    for _ in range(count):
        log = directory / f"worker-{free_port()}.log"
        command = [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "workers.app",
            "worker",
            "-Q",
            "oem",
            "--pool",
            "solo",
            "--loglevel",
            "INFO",
            "--without-gossip",
            "--without-mingle",
            "--hostname",
            f"bench-{free_port()}@%h",
        ]
        process = subprocess.Popen(
            command,
            cwd=PROJECT_ROOT,
            env={**os.environ, "PYTHONPATH": str(PROJECT_ROOT), **env},
            stdout=open(log, "w"),  # noqa: SIM115
            stderr=subprocess.STDOUT,
        )
        processes.append(process)
        try:
            wait_ready(
                process, lambda log=log: "ready." in log.read_text(), "celery worker", timeout=120, log=log
            )
        except ServiceStartError:
            for started in processes:
                stop_process(started)
            raise
    return processes


def _pulled_per_minute(settings: Settings, workers: int, directory: Path) -> int:
    """Vehicles pulled in FLEET_WINDOW seconds by `workers` solo worker processes, with the
    beat's schedule run in this process every OEM_SCHEDULE_INTERVAL, per minute."""
    db = Database(settings.database_url)
    with db.session() as session:
        session.execute(update(OemLink).values(next_pull_at=0, last_pull_at=None))
    with RedisServer(directory) as feed:
        url = feed.url
        env = {
            "DATABASE_URL": settings.database_url,
            "BROKER_URL": url,
            "RESULT_BACKEND": url,
            "OEM_SIMULATOR_URL": settings.oem_simulator_url,
            "OEM_RATE_LIMIT_REDIS_URL": url,
            "OEM_PACE_SMARTCAR": str(settings.oem_pace_smartcar),
            "OEM_PACE_TESLA": str(settings.oem_pace_tesla),
        }
        processes = pull_workers(env, workers, directory)
        app = create_app(settings.model_copy(update={"broker_url": url, "result_backend": url}))
        try:
            started = int(time.time())
            while time.time() < started + FLEET_WINDOW:
                tick = time.monotonic()
                schedule_pulls(settings, db, lambda v: app.send_task("oem.pull", kwargs={"vehicle_id": v}))
                time.sleep(max(0.0, settings.oem_schedule_interval - (time.monotonic() - tick)))
            with db.session(read_only=True) as session:
                pulled = session.scalar(
                    select(func.count()).select_from(OemLink).where(OemLink.last_pull_at >= started)
                )
        finally:
            for process in processes:
                stop_process(process)
            db.dispose()
    return round(int(pulled or 0) * 60 / FLEET_WINDOW)


def fleet_pulls_table(simulator_url: str, database_url: str, directory: Path) -> Table:
    base = get_settings().model_copy(
        update={"oem_simulator_url": simulator_url, "oem_connections": [], "database_url": database_url}
    )
    rows = _link_rows(base, simulator_url, FLEET_LINKS)
    db = Database(database_url)
    with db.session() as session:
        _members(session, range(1, FLEET_LINKS + 1))
        session.execute(insert(OemLink), rows)
    db.dispose()
    table = Table(
        f"OEM pulls at fleet size: {FLEET_LINKS:,} linked member cars (3 Smartcar-style : 1 Tesla-style),"
        " scheduler + Celery workers (solo pool) + simulator, PostgreSQL",
        ["paces (calls/s per connection)", "worker processes", "vehicles pulled / min", "pace ceiling / min"],
    )
    for pace in (base.oem_pace_smartcar, 1_000.0):
        settings = base.model_copy(update={"oem_pace_smartcar": pace, "oem_pace_tesla": pace})
        ceiling = "none" if pace >= 1_000 else format_cell(round(2 * pace * 60))
        for workers in (1, 2):
            per_minute = _pulled_per_minute(settings, workers, directory)
            label = "default (OEM_PACE_*)" if pace < 1_000 else "1,000 (no pace)"
            table.add(f"{label}: {pace:g}", workers, format_cell(per_minute), ceiling)
    table.notes.append(
        f"Counted over {FLEET_WINDOW} s (links whose last pull fell inside), scaled to a minute; the schedule"
        f" runs every {base.oem_schedule_interval:g} s and claims at most pace x interval + burst"
        " a connection."
        " Before: 5 calls/s a connection, about 300 vehicles a minute."
    )
    return table


def claim_table(database_url: str) -> Table:
    """oem.schedule's claim with CLAIM_LINKS links, all due, on PostgreSQL: the time of one
    run and the index entries it reads (pg_stat_user_indexes), against the whole table the
    previous schedule read each run."""
    settings = get_settings().model_copy(update={"database_url": database_url, "oem_connections": []})
    db = Database(database_url)
    now = int(time.time())
    with db.session() as session:
        _members(session, range(1, CLAIM_LINKS + 1))
        session.execute(
            insert(OemLink),
            [
                {
                    "connection_id": 1 + v % 2,
                    "vin_hash": f"0x{v:064x}",
                    "vin_ciphertext": "-",
                    "owner": OWNER,
                    "vehicle_id": v,
                    "external_id": str(v),
                    "tokens_ciphertext": "-",
                    "token_expires_at": now,
                    "status": "active",
                    "created_at": now,
                    "updated_at": now,
                }
                for v in range(1, CLAIM_LINKS + 1)
            ],
        )
    with db.session() as session:
        session.execute(text("ANALYZE"))

    def index_reads() -> int:
        with db.session() as session:
            session.execute(text("SELECT pg_stat_force_next_flush()"))
        with db.session(read_only=True) as session:
            return int(
                session.scalar(
                    text(
                        "SELECT idx_tup_read FROM pg_stat_user_indexes"
                        " WHERE indexrelname = 'ix_oem_links_due'"
                    )
                )
                or 0
            )

    runs, laps, claimed = 20, [], 0
    before = index_reads()
    for i in range(runs):
        started = time.perf_counter()
        claimed += len(schedule_pulls(settings, db, lambda _: None, now + i))
        laps.append(time.perf_counter() - started)
    reads = index_reads() - before
    db.dispose()
    table = Table(
        f"oem.schedule claim with {CLAIM_LINKS:,} linked member cars, all due (PostgreSQL, default paces)",
        ["what", "per run", "p50 ms", "p99 ms"],
    )
    quantiles = statistics.quantiles(laps, n=100)
    table.add(
        "links claimed and queued",
        claimed // runs,
        f"{quantiles[49] * 1000:.1f}",
        f"{quantiles[98] * 1000:.1f}",
    )
    table.add("ix_oem_links_due entries read", reads // runs, "", "")
    table.add("links read by the previous schedule (every link of every member)", CLAIM_LINKS, "", "")
    table.notes.append(
        f"{runs} runs, each claiming the longest-waiting due links per connection (SKIP LOCKED) and counting"
        " the rest for workers_oem_links_due, up to 10 runs' claims a connection."
    )
    return table


def run(ctx: BenchContext) -> list[Table]:
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        tables = [telemetry_table(ctx, directory)]
        with oem_simulator(directory) as url:
            tables.append(pulls_table(url))
        if postgres_unavailable() is None:
            with oem_simulator(directory, FLEET_LINKS) as url, postgres_database() as raw:
                upgrade(raw)
                tables.append(fleet_pulls_table(url, raw, directory))
            with postgres_database() as raw:
                upgrade(raw)
                tables.append(claim_table(raw))
    return tables
