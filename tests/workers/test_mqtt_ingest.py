"""Signed device telemetry over MQTT, end to end: devices publish at QoS 1 to a real broker
(this machine's Mosquitto, and the dev kit's embedded amqtt broker), the ingest verifies and
stores in batches against the index of a real anvil, refusals are counted by reason, a
revocation indexed while the ingest runs takes effect on its next batch, and an ingest
process killed (SIGKILL) in the middle of its work loses and duplicates nothing once it is
back (the broker redelivers what was not acknowledged; the sequence claims refuse repeats)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account
from eth_utils import keccak
from prometheus_client import REGISTRY
from sqlalchemy import select

from devkit.deployment import ANVIL_DEPLOYER_KEY
from devkit.devices import publish
from devkit.devnet import free_port
from devkit.stack import mqtt_answers
from tests.support.databases import database, get_engine, session_scope
from tests.support.oem_chain import OWNER_KEY, IdentityChain, world_fixtures
from workers.chain import connect
from workers.config import PROJECT_ROOT, Settings, get_settings
from workers.db.oem import DevicePayload
from workers.indexer.sync import Indexer
from workers.oem.mqtt_ingest import MqttIngest, end_session
from workers.oem.telemetry import TelemetryVerifier, sign_envelope, telemetry_domain
from workers.signals import catalogue as vss

MOSQUITTO_URL = os.environ.get("TEST_MQTT_URL", "mqtt://127.0.0.1:1883")
OWNER = Account.from_key(OWNER_KEY).address
KEYS = ["0x" + keccak(text=f"mqtt device {i}").hex().removeprefix("0x") for i in range(3)]
LONE_KEY = "0x" + keccak(text="mqtt lone device").hex().removeprefix("0x")
SIGNALS = {vss.SPEED: 42.5, vss.SOC: 77.0}


@pytest.fixture(scope="module", params=["mosquitto", "amqtt"])
def broker(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, str]]:
    """(MQTT_URL, MQTT_PROTOCOL) of this machine's Mosquitto, or of an amqtt broker started here."""
    if request.param == "mosquitto":
        if not mqtt_answers(MOSQUITTO_URL):
            pytest.skip(f"no MQTT broker answers at {MOSQUITTO_URL} (set TEST_MQTT_URL to use another)")
        yield MOSQUITTO_URL, "5"
        return
    port = free_port()
    url = f"mqtt://ingest@127.0.0.1:{port}"
    log = tmp_path_factory.mktemp("amqtt") / "broker.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "devkit.mqtt_broker", "--port", str(port)],
            cwd=PROJECT_ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 20
        while not mqtt_answers(url):
            assert process.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.2)
        yield url, "3.1.1"
    finally:
        process.terminate()
        process.wait(10)


class World:
    def __init__(self, chain: IdentityChain) -> None:
        self.chain = chain
        self.vehicles = [chain.mint_vehicle(OWNER, 1, keccak(text=f"MQTT-VIN-{i}")) for i in range(len(KEYS))]
        self.devices = [
            chain.mint_device(OWNER, key, f"mqtt-serial-{i}".encode()) for i, key in enumerate(KEYS)
        ]
        for vehicle, device, key in zip(self.vehicles, self.devices, KEYS, strict=True):
            chain.pair(OWNER_KEY, vehicle, device, key)
        self.lone = chain.mint_device(OWNER, LONE_KEY, b"mqtt-serial-lone")
        self.domain = telemetry_domain(chain.chain_id, chain.device.address)

    def envelope(self, index: int, sequence: int, *, key: str | None = None) -> dict[str, Any]:
        return sign_envelope(
            self.domain,
            key or KEYS[index],
            device_id=self.devices[index],
            sequence=sequence,
            timestamp=int(time.time()),
            signals=SIGNALS,
        )


world_base, world = world_fixtures(World)


@pytest.fixture
def settings(world: World, broker: tuple[str, str], sqlite_db: str) -> Iterator[Settings]:
    """Settings of one ingest on its own topic prefix and client id (the broker is shared), the
    index caught up; its MQTT session is dropped at the end."""
    url, protocol = broker
    tag = uuid.uuid4().hex[:10]
    configured = get_settings().model_copy(
        update={
            "database_url": sqlite_db,
            "rpc_url": world.chain.node.url,
            "deployment_file": world.chain.manifest_file,
            "confirmations": 0,
            "mqtt_url": url,
            "mqtt_protocol": protocol,
            "mqtt_client_id": f"test-ingest-{tag}",
            "mqtt_topic_prefix": f"test-{tag}",
            "ingest_batch_size": 50,
            "ingest_batch_wait": 0.02,
            "ingest_metrics_port": 0,
        }
    )
    index(configured)
    yield configured
    end_session(configured)


def index(settings: Settings) -> None:
    Indexer(connect(settings), get_engine(settings.database_url), settings).sync()


def verifier(settings: Settings) -> TelemetryVerifier:
    chain = connect(settings)
    return TelemetryVerifier(
        telemetry_domain(chain.chain_id, chain.aftermarket_device.address),
        max_age=settings.telemetry_max_age,
        max_future=settings.telemetry_max_future,
    )


@contextmanager
def running_ingest(settings: Settings) -> Iterator[MqttIngest]:
    """The ingest loop in a thread of this process (its counters are this process's)."""
    ingest = MqttIngest(settings, database(settings.database_url), verifier(settings))
    ingest.start()
    stop = threading.Event()
    loop = threading.Thread(target=ingest.run, args=(stop,), daemon=True)
    loop.start()
    try:
        yield ingest
    finally:
        stop.set()
        loop.join(10)
        ingest.close()


def send(settings: Settings, envelopes: list[dict[str, Any]]) -> None:
    publish(settings.mqtt_url, envelopes, f"device-{uuid.uuid4().hex[:8]}", prefix=settings.mqtt_topic_prefix)


def stored(settings: Settings) -> list[tuple[int, int]]:
    with session_scope(settings.database_url, read_only=True) as session:
        rows = session.execute(select(DevicePayload.device_id, DevicePayload.sequence))
        return sorted((int(device), int(sequence)) for device, sequence in rows)


def wait_for(what: str, check: Callable[[], bool], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"{what}: not within {timeout} s"
        time.sleep(0.05)


def refused(reason: str) -> float:
    return REGISTRY.get_sample_value("workers_ingest_refused_total", {"reason": reason}) or 0.0


def test_published_payloads_are_verified_and_stored_in_batches(settings, world):
    envelopes = [world.envelope(i, seq) for seq in range(1, 41) for i in range(len(KEYS))]
    with running_ingest(settings) as ingest:
        send(settings, envelopes)
        wait_for("every payload stored", lambda: ingest.stored == len(envelopes))
    expected = sorted((world.devices[i], seq) for seq in range(1, 41) for i in range(len(KEYS)))
    assert stored(settings) == expected


def test_the_backlog_gauge_counts_what_waits_beyond_the_batch(settings, world):
    envelopes = [world.envelope(i, seq) for seq in range(1, 41) for i in range(len(KEYS))]
    ingest = MqttIngest(settings, database(settings.database_url), verifier(settings))
    ingest.start()  # the network thread only: messages pile up until a batch is taken
    try:
        send(settings, envelopes)
        wait_for("every message received", lambda: ingest._inbox.qsize() == len(envelopes))
        batch = ingest.take()
        assert len(batch) == settings.ingest_batch_size
        waiting = REGISTRY.get_sample_value("workers_ingest_waiting")
        assert waiting == len(envelopes) - settings.ingest_batch_size
        while batch:
            ingest.process(batch)
            batch = ingest.take(poll=0.5)
        assert REGISTRY.get_sample_value("workers_ingest_waiting") == 0
        assert ingest.stored == len(envelopes)
    finally:
        ingest.close()


def test_refusals_are_counted_by_reason_and_the_loop_goes_on(settings, world):
    reasons = (
        "bad_signature",
        "unpaired",
        "replayed",
        "oversized",
        "bad_payload",
        "revoked",
        "unknown_device",
    )
    before = {r: refused(r) for r in reasons}
    lone = sign_envelope(
        world.domain, LONE_KEY, device_id=world.lone, sequence=1, timestamp=int(time.time()), signals=SIGNALS
    )
    oversized = {**world.envelope(0, 9), "padding": "x" * settings.telemetry_max_bytes}
    with running_ingest(settings) as ingest:
        send(settings, [world.envelope(0, 1), world.envelope(0, 1)])  # a duplicate
        send(settings, [world.envelope(0, 2, key=LONE_KEY), lone, oversized])
        send(settings, [{**world.envelope(0, 3), "sequence": "three"}])
        send(settings, [world.envelope(1, 1) | {"device_id": 10**6}])  # no such device
        wait_for("the refusals counted", lambda: sum(refused(r) - before[r] for r in reasons) == 6)
        world.chain.send(ANVIL_DEPLOYER_KEY, world.chain.device, "revokeDevice", world.devices[0])
        index(settings)  # the running ingest's cache is warm: the indexed revocation drops it
        send(settings, [world.envelope(0, 4), world.envelope(1, 2)])
        wait_for("the last payload stored", lambda: ingest.stored == 2)
    counted = {r: refused(r) - before[r] for r in reasons}
    assert counted == {
        "bad_signature": 1,
        "unpaired": 1,
        "replayed": 1,
        "oversized": 1,
        "bad_payload": 1,
        "revoked": 1,
        "unknown_device": 1,
    }
    assert stored(settings) == [(world.devices[0], 1), (world.devices[1], 2)]


def _ingest_process(settings: Settings, log: Path) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "PYTHONPATH": str(PROJECT_ROOT),
        "DATABASE_URL": settings.database_url,
        "RPC_URL": settings.rpc_url,
        "DEPLOYMENT_FILE": str(settings.deployment_file),
        "CONFIRMATIONS": "0",
        "MQTT_URL": settings.mqtt_url,
        "MQTT_PROTOCOL": settings.mqtt_protocol,
        "MQTT_CLIENT_ID": settings.mqtt_client_id,
        "MQTT_TOPIC_PREFIX": settings.mqtt_topic_prefix,
        "INGEST_BATCH_SIZE": str(settings.ingest_batch_size),
        "INGEST_BATCH_WAIT": str(settings.ingest_batch_wait),
        "INGEST_METRICS_PORT": "0",
    }
    with log.open("ab") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "workers.oem.mqtt_ingest"],
            cwd=PROJECT_ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    wait_for("the ingest subscribed", lambda: log.read_text().count("subscribed to") > _starts.get(log, 0))
    _starts[log] = log.read_text().count("subscribed to")
    return process


_starts: dict[Path, int] = {}


def test_an_ingest_killed_mid_batch_loses_and_duplicates_nothing(settings, world, broker, tmp_path):
    if broker[1] != "5":
        pytest.skip(
            "amqtt drops a QoS 1 message whose PUBACK does not come within 5 s and keeps no "
            "in-flight message across a reconnect: redelivery after a crash needs a real broker"
        )
    log = tmp_path / "ingest.log"
    per_device = 250  # 750 in all: Mosquitto keeps 1,000 for an offline session by default
    envelopes = [world.envelope(i, seq) for seq in range(1, per_device + 1) for i in range(len(KEYS))]
    expected = sorted((world.devices[i], seq) for seq in range(1, per_device + 1) for i in range(len(KEYS)))
    process = _ingest_process(settings, log)
    publisher = threading.Thread(target=send, args=(settings, envelopes))
    publisher.start()
    stored_at_kills: list[int] = []
    try:
        # SIGKILL it whenever it has stored something since it started, while messages flow
        for _ in range(3):
            seen = len(stored(settings))
            wait_for("a batch stored", lambda seen=seen: len(stored(settings)) > seen)
            process.send_signal(signal.SIGKILL)
            process.wait(10)
            stored_at_kills.append(len(stored(settings)))
            if len(stored(settings)) == len(expected):
                break
            process = _ingest_process(settings, log)
        publisher.join(60)
        if process.poll() is not None:
            process = _ingest_process(settings, log)
        wait_for("every payload stored", lambda: len(stored(settings)) == len(expected), timeout=60)
        time.sleep(1.0)  # redeliveries still coming in are refused, never stored again
        assert stored(settings) == expected
        assert stored_at_kills[0] < len(expected)  # killed while messages were still coming
    finally:
        if process.poll() is None:
            process.terminate()
            process.wait(10)
        publisher.join(60)
