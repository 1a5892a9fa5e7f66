"""oem.schedule, oem.pull and oem.command through a real Celery worker process (solo pool,
queue `oem`) on a private Redis, against the OEM simulator and a real anvil."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
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
        context: dict = {"worker": worker}

        def stop_worker() -> None:  # the one running then (a test may have restarted it)
            context["worker"].stop()

        cleanup.callback(stop_worker)
        settings = sim.settings(
            get_settings(),
            database_url=database_url,
            broker_url=redis_server.url,
            result_backend=redis_server.url,
            rpc_url=node.url,
            deployment_file=chain.manifest_file,
        )
        context |= {"sim": sim, "chain": chain, "settings": settings, "env": env, "directory": directory}
        yield context


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


def tesla_member(stack: dict, index: int = 0) -> tuple[int, str]:
    """A minted, linked Tesla in an active product (refresh 60 s): (vehicle id, VIN)."""
    settings: Settings = stack["settings"]
    chain: IdentityChain = stack["chain"]
    sim: SimulatorProcess = stack["sim"]
    vin = sim.vehicles("tesla")[index]["vin"]
    vehicle_id = chain.vehicle_id.functions.vehicleOfVin(eip712.vin_hash(vin)).call()
    if vehicle_id == 0:
        vehicle_id = chain.mint_vehicle(OWNER, 2, eip712.vin_hash(vin))
    link_vehicle(sim, settings, "tesla", vehicle_id, OWNER, index=index)
    with session_scope(settings.database_url) as session:
        world = World(session)
        world.product(1, 0, refresh=60)
        world.vehicle(vehicle_id, OWNER)
        world.join(1, vehicle_id, OWNER)
    return vehicle_id, vin


def tesla_calls(sim: SimulatorProcess, since: float) -> list[dict]:
    return [r for r in sim.requests(since) if r["api"] == "tesla"]


def test_a_429_holds_the_vehicle_and_the_schedule_queues_it_after_retry_after(stack, client):
    sim: SimulatorProcess = stack["sim"]
    vehicle_id, _ = tesla_member(stack)
    sim.fault("rate_limit", "tesla", count=1, retry_after=2)
    since = time.time()
    outcome = client.send_task("oem.pull", kwargs={"vehicle_id": vehicle_id}).get(timeout=TIMEOUT)
    assert (outcome["status"], outcome["reason"]) == ("rate_limited", "oem_rate_limited")
    assert client.send_task("oem.schedule").get(timeout=TIMEOUT) == {"queued": []}  # held: not queued
    assert [r["status"] for r in tesla_calls(sim, since)] == [429]  # and the task did not retry
    time.sleep(2.1)
    assert client.send_task("oem.schedule").get(timeout=TIMEOUT) == {"queued": [vehicle_id]}

    def stored() -> bool:
        with session_scope(stack["settings"].database_url, read_only=True) as session:
            return bool(signal_store.latest(session, vehicle_id, since_ms=0))

    wait_for(stored, "the pull queued once the hold ended", stack)
    log = tesla_calls(sim, since)
    assert log[-1]["status"] == 200 and log[-1]["at"] - log[0]["at"] >= 1.9


def test_an_hour_long_429_survives_a_worker_restart(stack, client):
    sim: SimulatorProcess = stack["sim"]
    vehicle_id, _ = tesla_member(stack, index=1)
    sim.fault("rate_limit", "tesla", count=1, retry_after=3600, retry_after_form="http-date")
    assert (
        client.send_task("oem.pull", kwargs={"vehicle_id": vehicle_id}).get(timeout=TIMEOUT)["status"]
        == "rate_limited"
    )
    stack["worker"].kill()  # a power cut: nothing of the hold lives in the worker
    stack["worker"] = CeleryWorker(stack["env"], "oem", stack["directory"])
    since = time.time()
    held = client.send_task("oem.pull", kwargs={"vehicle_id": vehicle_id}).get(timeout=TIMEOUT)
    assert held["status"] == "held"
    assert client.send_task("oem.schedule").get(timeout=TIMEOUT) == {"queued": []}
    assert tesla_calls(sim, since) == []


def test_two_worker_processes_keep_one_shared_pace(stack, tmp_path):
    """Two more workers on their own broker, one connection paced at 4 calls/s (burst 1)
    through a Redis both share: the automaker sees that pace, not twice it."""
    settings: Settings = stack["settings"]
    sim: SimulatorProcess = stack["sim"]
    sim.reset()
    cars = sim.vehicles("smartcar")[:3]
    vehicle_ids = [9_001, 9_002, 9_003]
    for index, vehicle_id in enumerate(vehicle_ids):
        link_vehicle(sim, settings, "smartcar", vehicle_id, OWNER, index=index)
    with session_scope(settings.database_url) as session:
        for vehicle_id in vehicle_ids:
            World(session).vehicle(vehicle_id, OWNER)
    assert len(cars) == 3
    rate, pulls = 4.0, 16
    with ExitStack() as cleanup:
        broker = RedisServer(tmp_path)
        cleanup.callback(broker.stop)
        env = {
            **stack["env"],
            "BROKER_URL": broker.url,
            "RESULT_BACKEND": broker.url,
            "OEM_RATE_LIMIT_REDIS_URL": broker.url,
            "OEM_PACE_SMARTCAR": str(rate),
            "OEM_PACE_SMARTCAR_BURST": "1",
        }
        with ThreadPoolExecutor(2) as starting:  # both start at once (each takes seconds)
            workers = list(starting.map(lambda _: CeleryWorker(env, "oem", tmp_path), range(2)))
        for worker in workers:
            cleanup.callback(worker.stop)
        app = create_app(settings.model_copy(update={"broker_url": broker.url, "result_backend": broker.url}))
        since = time.time()
        results = [app.send_task("oem.pull", kwargs={"vehicle_id": vehicle_ids[i % 3]}) for i in range(pulls)]
        assert {r.get(timeout=TIMEOUT)["status"] for r in results} == {"stored"}
        del results  # their backend goes with the broker
        assert all("succeeded in" in w.log.read_text() for w in workers)  # both processes pulled
    at = sorted(r["at"] for r in sim.requests(since) if r["api"] == "smartcar")
    assert len(at) == pulls
    for i in range(len(at)):
        for j in range(i + 1, len(at)):
            # calls i..j went out within at[j] - at[i] seconds: at most the burst plus the pace
            assert j - i <= 1 + rate * (at[j] - at[i]) + 1, (i, j, at[j] - at[i])
    assert at[-1] - at[0] >= (pulls - 2) / rate - 0.25


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
