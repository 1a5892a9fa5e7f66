"""OEM integration throughput: signed device telemetry accepted per second (EIP-712 recovery,
the live pairing read from AftermarketDevice, the sequence claimed and the signals stored in
SQLite) beside signature recovery alone; and vehicle pulls per second through the published
clients against the OEM simulator, beside a bare HTTP GET to the same server."""

from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import requests
from eth_account import Account
from eth_utils import keccak
from web3.logs import DISCARD

from benchmarks.framework import BenchContext, Table, format_cell, ratio
from devkit.devnet import free_port
from workers import eip712
from workers.config import PROJECT_ROOT, get_settings
from workers.db import Database, upgrade
from workers.oem.connectors import callback_uri, connector_for
from workers.oem.telemetry import (
    ChainDeviceRegistry,
    Envelope,
    TelemetryVerifier,
    canonical_json,
    ingest,
    sign_envelope,
    telemetry_domain,
    typed,
)
from workers.oem.tokens import MemoryTokens
from workers.signals import catalogue as vss

PAYLOADS = 400
PULLS = 60
DEVICE_KEY = "0x" + keccak(text="bench device").hex().removeprefix("0x")
SIGNALS = {vss.SPEED: 51.0, vss.SOC: 64.5, vss.LATITUDE: 48.13, vss.LONGITUDE: 11.58, vss.IS_LOCKED: True}


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


def _paired_device(ctx: BenchContext) -> tuple[int, int]:
    vehicles, devices = ctx.contract("VehicleId"), ctx.contract("AftermarketDevice")
    me = ctx.deployer.account.address
    ctx.deployer.call(devices, "setManufacturer", me, True)
    ctx.deployer.call(vehicles, "addConnection", "bench", me)
    connection_id = vehicles.functions.connectionCount().call()
    receipt = ctx.deployer.call(vehicles, "mint", me, connection_id, keccak(text="oem bench vin"))
    vehicle_id = vehicles.events.VehicleMinted().process_receipt(receipt, errors=DISCARD)[0]["args"][
        "vehicleId"
    ]
    signer = Account.from_key(DEVICE_KEY).address
    receipt = ctx.deployer.call(devices, "mintDevice", me, signer, keccak(text="oem bench serial"))
    device_id = devices.events.DeviceMinted().process_receipt(receipt, errors=DISCARD)[0]["args"]["deviceId"]
    # The chain's clock, which earlier benchmarks may have moved ahead of the wall clock.
    deadline = ctx.w3.eth.get_block("latest")["timestamp"] + 3600
    pair = eip712.pair(
        eip712.domain(eip712.DEVICE_DOMAIN, ctx.w3.eth.chain_id, devices.address),
        vehicle_id=vehicle_id,
        device_id=device_id,
        nonce=(nonce := eip712.free_nonce(devices, signer)),
        deadline=deadline,
    )
    ctx.deployer.call(devices, "pair", vehicle_id, device_id, nonce, deadline, eip712.sign(pair, DEVICE_KEY))
    return vehicle_id, device_id


def telemetry_table(ctx: BenchContext, db: Database) -> Table:
    _, device_id = _paired_device(ctx)
    devices = ctx.contract("AftermarketDevice")
    domain = telemetry_domain(ctx.w3.eth.chain_id, devices.address)
    verifier = TelemetryVerifier(domain, ChainDeviceRegistry(devices), max_age=3600, max_future=60)
    now = int(time.time())
    bodies = [
        sign_envelope(domain, DEVICE_KEY, device_id=device_id, sequence=i + 1, timestamp=now, signals=SIGNALS)
        for i in range(PAYLOADS)
    ]

    def recover_only(i: int) -> None:
        envelope = Envelope.parse(bodies[i])
        doc = typed(domain, envelope, keccak(canonical_json(envelope.signals)))
        eip712.recover(doc, bytes.fromhex(envelope.signature[2:]))

    def ingest_one(i: int) -> None:
        with db.session() as session:
            ingest(session, verifier, bodies[i], device_id)

    recovery = _timed(PAYLOADS, recover_only)
    verify = _timed(PAYLOADS, lambda i: verifier.verify(Envelope.parse(bodies[i])))
    accepted = _timed(PAYLOADS, ingest_one)
    table = Table(
        "Device telemetry: signed payloads accepted, one at a time",
        ["step", "payloads", "per second", "p50 ms", "p99 ms", "time vs recovery alone"],
    )
    _row(table, "RFC 8785 hash + EIP-712 recovery (eth-keys) alone", recovery)
    _row(table, "verify: known key via OpenSSL + pairing read from anvil", verify, recovery)
    _row(table, "verify + claim sequence + store (SQLite)", accepted, recovery)
    table.notes.append(
        f"{len(SIGNALS)} signals a payload; the device signer is remembered, the pairing read live."
    )
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
        database_url = f"sqlite:///{directory / 'bench.db'}"
        upgrade(database_url)
        db = Database(database_url)
        try:
            tables = [telemetry_table(ctx, db)]
            with _simulator(directory) as url:
                tables.append(pulls_table(url))
        finally:
            db.dispose()
    return tables
