"""oem.schedule, oem.pull and oem.command through a real Celery worker process (solo pool,
queue `oem`) on a private Redis, against the OEM simulator and a real anvil."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack

import pytest
from eth_account import Account
from sqlalchemy import select

from devkit.databases import migrated, sqlite_url
from tests.support.celery_worker import CeleryWorker, RedisServer
from tests.support.databases import session_scope
from tests.support.oem_chain import OWNER_KEY, IdentityChain
from tests.support.simulator import SimulatorProcess, link_vehicle
from tests.workers.gateway.projections import World
from workers import eip712
from workers.app import create_app, route_by_prefix
from workers.config import Settings, get_settings, use_settings
from workers.db.oem import OemLink
from workers.signals import store as signal_store

OWNER = Account.from_key(OWNER_KEY).address
TIMEOUT = 60


@pytest.fixture(scope="module")
def stack(
    tmp_path_factory: pytest.TempPathFactory, sim: SimulatorProcess, chain_base: IdentityChain
) -> Iterator[dict]:
    """The module's simulator and anvil with the protocol, a migrated SQLite file, a private
    Redis and one worker process."""
    directory = tmp_path_factory.mktemp("stack")
    chain, node = chain_base, chain_base.node
    with ExitStack() as cleanup:
        redis_server = RedisServer(directory)
        cleanup.callback(redis_server.stop)
        database_url = cleanup.enter_context(migrated(sqlite_url(directory)))
        env = {
            "DATABASE_URL": database_url,
            "BROKER_URL": redis_server.url,
            "RESULT_BACKEND": redis_server.url,
            "RPC_URL": node.url,
            "DEPLOYMENT_FILE": str(chain.manifest_file),
            "OEM_SIMULATOR_URL": sim.url,
            "OEM_MAX_ATTEMPTS": "1",
        }
        worker = CeleryWorker(env, "oem", directory)
        cleanup.callback(worker.stop)
        settings = sim.settings(
            get_settings(),
            database_url=database_url,
            broker_url=redis_server.url,
            result_backend=redis_server.url,
            rpc_url=node.url,
            deployment_file=chain.manifest_file,
        )
        yield {"sim": sim, "chain": chain, "settings": settings, "worker": worker}


@pytest.fixture
def client(stack: dict):
    use_settings(stack["settings"])
    stack["sim"].reset()
    return create_app(stack["settings"])


def wait_for(check, what: str, stack: dict) -> None:
    deadline = time.monotonic() + TIMEOUT
    while not check():
        worker: CeleryWorker = stack["worker"]
        if worker.process.poll() is not None or time.monotonic() > deadline:
            pytest.fail(f"{what} did not happen; worker log:\n{worker.log.read_text()[-3000:]}")
        time.sleep(0.2)


def test_the_schedule_fans_out_pulls_that_store_signals(stack, client):
    settings: Settings = stack["settings"]
    chain: IdentityChain = stack["chain"]
    sim: SimulatorProcess = stack["sim"]
    vehicle_id = chain.mint_vehicle(OWNER, 1, eip712.vin_hash(sim.vehicles("smartcar")[0]["vin"]))
    link_vehicle(sim, settings, "smartcar", vehicle_id, OWNER)
    with session_scope(settings.database_url) as session:
        world = World(session)
        world.product(1, 0, refresh=60)
        world.vehicle(vehicle_id, OWNER)
        world.join(1, vehicle_id, OWNER)

    result = client.send_task("oem.schedule").get(timeout=TIMEOUT)
    assert result == {"queued": [vehicle_id]}

    def stored() -> bool:
        with session_scope(settings.database_url, read_only=True) as session:
            return bool(signal_store.latest(session, vehicle_id, since_ms=0))

    wait_for(stored, "the queued oem.pull", stack)
    with session_scope(settings.database_url, read_only=True) as session:
        assert (
            session.scalar(select(OemLink.last_pull_at).where(OemLink.vehicle_id == vehicle_id)) is not None
        )
    assert client.send_task("oem.schedule").get(timeout=TIMEOUT) == {"queued": []}


def test_a_rate_limited_pull_is_retried_after_retry_after(stack, client):
    settings: Settings = stack["settings"]
    chain: IdentityChain = stack["chain"]
    sim: SimulatorProcess = stack["sim"]
    vin = sim.vehicles("tesla")[0]["vin"]
    vehicle_id = chain.mint_vehicle(OWNER, 2, eip712.vin_hash(vin))
    link_vehicle(sim, settings, "tesla", vehicle_id, OWNER)
    with session_scope(settings.database_url) as session:
        World(session).vehicle(vehicle_id, OWNER)
    sim.fault("rate_limit", "tesla", count=1, retry_after=2)
    since = time.time()
    outcome = client.send_task("oem.pull", kwargs={"vehicle_id": vehicle_id}).get(timeout=TIMEOUT)
    assert outcome["status"] == "stored" and outcome["stored"] > 5
    log = [r for r in sim.requests(since) if r["api"] == "tesla"]
    assert log[0]["status"] == 429 and log[-1]["status"] == 200
    assert log[1]["at"] - log[0]["at"] >= 1.9  # the task waited out Retry-After before its retry


def test_a_command_is_relayed_by_the_worker(stack, client):
    settings: Settings = stack["settings"]
    chain: IdentityChain = stack["chain"]
    sim: SimulatorProcess = stack["sim"]
    vin = sim.vehicles("smartcar")[0]["vin"]
    vehicle_id = chain.vehicle_id.functions.vehicleOfVin(eip712.vin_hash(vin)).call()
    if vehicle_id == 0:
        vehicle_id = chain.mint_vehicle(OWNER, 1, eip712.vin_hash(vin))
    link_vehicle(sim, settings, "smartcar", vehicle_id, OWNER)
    kwargs = {
        "request_id": uuid.uuid4().hex,
        "vehicle_id": vehicle_id,
        "caller": OWNER,
        "command": "unlock",
        "requested_at": int(time.time()),
    }
    outcome = client.send_task("oem.command", kwargs=kwargs).get(timeout=TIMEOUT)
    assert outcome["status"] == "sent"
    assert sim.vehicle(vin)["locked"] is False
    stranger = {**kwargs, "request_id": uuid.uuid4().hex, "caller": "0x" + "11" * 20, "command": "lock"}
    refused = client.send_task("oem.command", kwargs=stranger).get(timeout=TIMEOUT)
    assert (refused["status"], refused["reason"]) == ("refused", "no_permission")
    assert sim.vehicle(vin)["locked"] is False


def test_oem_tasks_are_routed_to_the_oem_queue_and_scheduled_by_beat(stack):
    app = create_app(stack["settings"])
    app.loader.import_default_modules()
    assert {"oem.pull", "oem.schedule", "oem.command"} <= set(app.tasks)
    for name in ("oem.pull", "oem.schedule", "oem.command"):
        assert route_by_prefix(name, (), {}, {}) == {"queue": "oem", "routing_key": "oem"}
    entry = app.conf.beat_schedule["oem-schedule"]
    assert (entry["task"], entry["schedule"]) == ("oem.schedule", stack["settings"].oem_schedule_interval)
