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
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Any

import httpx
import requests
from eth_account import Account
from eth_utils import keccak
from sqlalchemy import func, select
from web3.logs import DISCARD

from benchmarks.framework import BenchContext, Table, format_cell, ratio
from benchmarks.gateway import GatewayProcess
from benchmarks.telemetry_load import SIGNALS
from devkit.databases import postgres_database, postgres_unavailable
from devkit.devnet import free_port, stop_process, wait_ready
from devkit.stack import mqtt_answers
from workers import eip712
from workers.config import PROJECT_ROOT, Settings, get_settings
from workers.db import Database, upgrade
from workers.db.oem import DevicePayload
from workers.oem.connectors import callback_uri, connector_for
from workers.oem.mqtt_ingest import end_session
from workers.oem.tokens import MemoryTokens
from workers.runtime import Runtime

PULLS = 60
#: Devices publishing in the telemetry benchmark, each paired with its own vehicle.
DEVICES = 64
MQTT_PAYLOADS = 20_000
#: HTTP rows: (envelopes a request, payloads in all).
HTTP_ROWS = ((100, 10_000), (1, 2_000))
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


def _paired_devices(ctx: BenchContext, count: int) -> list[tuple[int, str]]:
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


def _stored(db: Database) -> int:
    with db.session(read_only=True) as session:
        return session.scalar(select(func.count()).select_from(DevicePayload)) or 0


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


def _mqtt_row(table: Table, settings: Settings, spec: dict[str, Any], directory: Path, label: str) -> None:
    """The ingest process (its defaults: batches of INGEST_BATCH_SIZE) against Mosquitto, the
    publisher in another process; payloads/s = stored / (last stored - first published)."""
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
        before = _stored(db)
        load, started = _load(
            "mqtt",
            {**spec, "url": MQTT_URL, "prefix": tag, "window": WINDOW, "database_url": settings.database_url},
            directory,
        )
        deadline = time.monotonic() + 600
        while (stored := _stored(db) - before) < spec["count"] and time.monotonic() < deadline:
            time.sleep(0.05)
        finished = time.time()
        sent = _finish(load)["published"]
        time.sleep(0.5)  # anything more would be a duplicate
        stored = _stored(db) - before
        if stored != sent:
            raise AssertionError(f"MQTT ingest on {label}: {sent} published, {stored} stored")
        seconds = finished - started
        table.add("MQTT (Mosquitto, QoS 1)", label, sent, f"{seconds:.2f}", round(sent / seconds),
                  ratio(sent / seconds, BEFORE_PER_SECOND), "yes")  # fmt: skip
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
            before = _stored(db)
            load, _ = _load(
                "http",
                {**spec, "url": gateway.url, "count": count, "first_sequence": first,
                 "per_request": per_request, "connections": 4},
                directory,
            )  # fmt: skip
            result = _finish(load)
            first += count  # above every sequence sent so far, per device
            stored = _stored(db) - before
            if not result["accepted"] == stored == count or result["failed_requests"]:
                raise AssertionError(f"HTTP ingest on {label}: sent {count}, {result}, stored {stored}")
            per_second = count / result["seconds"]
            table.add(f"HTTP, {per_request} envelope(s) a request", label, count, f"{result['seconds']:.2f}",
                      round(per_second), ratio(per_second, BEFORE_PER_SECOND), "yes")  # fmt: skip
    finally:
        gateway.stop()
        db.dispose()


def telemetry_table(ctx: BenchContext, directory: Path) -> Table:
    table = Table(
        "Device telemetry: signed payloads verified and stored, end to end",
        ["transport", "database", "payloads", "seconds", "payloads/s", f"vs {BEFORE_PER_SECOND}/s before",
         "stored = sent"],
    )  # fmt: skip
    devices = _paired_devices(ctx, DEVICES)
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
        f"the last payload stored; the publisher stays at most {WINDOW:,} payloads ahead of what is "
        "stored (Mosquitto here runs its default limits, which drop a subscriber's messages past a "
        "backlog: deploy/mosquitto.conf raises them). HTTP: one uvicorn process, 4 keep-alive connections",
        f"before: {BEFORE_PER_SECOND}/s, Phase 1.1's one-at-a-time path (eth-keys recovery, an "
        "eth_call for each payload's pairing, one transaction each)",
        f"goal: >= 2,000/s over MQTT, >= 1,000/s over HTTP on this 2-core machine; load average "
        f"when the table was made: {load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f}",
    ]
    return table


@contextmanager
def _simulator(directory: Path) -> Iterator[str]:
    port = free_port()
    log = open(directory / "sim.log", "w")  # noqa: SIM115
    process = subprocess.Popen(
        [sys.executable, "-m", "devkit.simulator", "--port", str(port)],
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
        update={"oem_simulator_url": simulator_url, "oem_connections": [], "oem_rate_per_second": 10_000.0}
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


def run(ctx: BenchContext) -> list[Table]:
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        tables = [telemetry_table(ctx, directory)]
        with _simulator(directory) as url:
            tables.append(pulls_table(url))
    return tables
