"""The workers run as a deployment runs them: the commands of deploy/compose.yaml (the same as
the systemd units'), each in its own process — the migrations once, one Celery worker per
queue, beat, the gateway, the OEM simulator — with their settings from a workers.env file,
against this machine's PostgreSQL (a fresh database) and RabbitMQ (a fresh virtual host; a
private Redis where RabbitMQ cannot be used) and a real anvil with the protocol deployed.

Nothing here calls a task or the indexer directly: the chain is changed through its
contracts, the gateway through HTTP, and everything else happens because beat scheduled it
and the worker of the right queue ran it."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from dotenv import dotenv_values
from eth_account import Account
from eth_account.messages import encode_defunct
from eth_utils import keccak

from devkit.databases import postgres_database, postgres_unavailable
from devkit.deployment import ANVIL_DEPLOYER_KEY, deploy_all
from devkit.market_world import MarketWorld
from devkit.oem_connections import register_connections
from tests.support.anvil import ANVIL_KEYS, AnvilNode, free_port
from tests.support.brokers import BrokerUnavailableError, deployment_broker
from tests.support.databases import close_databases, session_scope
from tests.support.deploy_files import PENDING_TASKS, devnet_services, local_argv, workers_services
from tests.support.oem_chain import mint_with_attestation
from workers.app import QUEUES, app, beat_schedule
from workers.chain.deployment import Manifest
from workers.config import PROJECT_ROOT, Settings
from workers.ledger import member_claim
from workers.protocol import DIMO, MONTH_SECONDS, Kind
from workers.signals import store as signal_store

pytestmark = pytest.mark.postgres

#: Seconds any one step of the flow may take before the test fails with the logs.
STEP_TIMEOUT = 120
#: Seconds a process gets to stop after SIGTERM (systemd's TimeoutStopSec is longer).
STOP_TIMEOUT = 60
ODOMETER = "Vehicle.TraveledDistance"
OWNER_KEY = ANVIL_KEYS[6]
OWNER = Account.from_key(OWNER_KEY).address
RELAYER_KEY = ANVIL_KEYS[5]
SETTING_NAMES = {name.upper() for name in Settings.model_fields}


@dataclass
class Service:
    """One process of the deployment, started from its compose command."""

    name: str
    argv: list[str]
    log: Path
    process: subprocess.Popen[bytes]

    def text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def tail(self, chars: int = 3000) -> str:
        return f"--- {self.name} ({self.log}) ---\n{self.text()[-chars:]}"


@dataclass
class Flow:
    """What the flow's steps hand to the later ones."""

    dataset_product: int = 0
    dataset_order: int = 0
    vehicle: int = 0


@dataclass
class Deployment:
    node: AnvilNode
    manifest: Manifest
    env: dict[str, str]
    broker: str
    gateway_url: str
    simulator_url: str
    log_dir: Path
    services: dict[str, Service] = field(default_factory=dict)
    flow: Flow = field(default_factory=Flow)

    def logs(self) -> str:
        return "\n".join(s.tail() for s in self.services.values())

    def wait(self, check: Callable[[], Any], what: str, timeout: float = STEP_TIMEOUT) -> Any:
        """Polls `check` until it answers something truthy; fails with every log otherwise."""
        deadline = time.monotonic() + timeout
        while True:
            for service in self.services.values():
                if service.process.poll() is not None:
                    pytest.fail(f"{service.name} exited with {service.process.returncode}\n{self.logs()}")
            try:
                answer = check()
            except (httpx.HTTPError, OSError):
                answer = None
            if answer:
                return answer
            if time.monotonic() > deadline:
                pytest.fail(f"{what} did not happen within {timeout:.0f}s\n{self.logs()}")
            time.sleep(0.25)


def with_option(argv: list[str], option: str, value: str) -> list[str]:
    """`argv` with `option`'s value replaced (the compose file's in-container paths and ports)."""
    index = argv.index(option)
    return [*argv[: index + 1], value, *argv[index + 2 :]]


def start(deployment: Deployment, name: str, argv: list[str], ready: Callable[[Service], bool]) -> Service:
    log = deployment.log_dir / f"{name}.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            argv,
            cwd=PROJECT_ROOT,
            env={**os.environ, "PYTHONPATH": str(PROJECT_ROOT), **deployment.env},
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    service = Service(name, argv, log, process)
    deployment.services[name] = service
    deployment.wait(lambda: ready(service), f"{name} becoming ready")
    return service


def stop(service: Service) -> int:
    if service.process.poll() is None:
        service.process.send_signal(signal.SIGTERM)
        try:
            service.process.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            service.process.kill()
            service.process.wait()
            return -signal.SIGKILL
    return service.process.returncode


def http_ok(url: str) -> Callable[[Service], bool]:
    return lambda _service: httpx.get(url, timeout=2).status_code == 200


def write_env_file(path: Path, values: dict[str, str]) -> dict[str, str]:
    """The deployment's workers.env (as systemd's EnvironmentFile or compose's env_file),
    read back the way they read it."""
    unknown = set(values) - SETTING_NAMES
    assert not unknown, f"{unknown} are not settings"
    path.write_text("".join(f"{name}={value}\n" for name, value in values.items()))
    return {k: v for k, v in dotenv_values(path).items() if v is not None}


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    reason = postgres_unavailable()
    if reason:
        pytest.skip(reason)
    directory = tmp_path_factory.mktemp("deployment")
    try:
        broker_context = deployment_broker(directory)
        broker_kind, broker_url = broker_context.__enter__()
    except BrokerUnavailableError as exc:
        pytest.skip(f"no message broker answers: {exc}")
    services: dict[str, Service] = {}
    try:
        with postgres_database() as database_url:
            # Automine for quick transactions, plus a block a second so confirmations come.
            node = AnvilNode("--mixed-mining", "--block-time", "1", log_dir=directory)
            try:
                manifest, manifest_file = deploy_all(
                    node.w3, ANVIL_DEPLOYER_KEY, directory=directory / "deployments"
                )
                gateway_port, simulator_port = free_port(), free_port()
                gateway_url = f"http://127.0.0.1:{gateway_port}"
                simulator_url = f"http://127.0.0.1:{simulator_port}"
                env = write_env_file(
                    directory / "workers.env",
                    {
                        "RPC_URL": node.url,
                        "DEPLOYMENT_FILE": str(manifest_file),
                        "DATABASE_URL": database_url,
                        "BROKER_URL": broker_url,
                        "GATEWAY_HOST": "127.0.0.1",
                        "GATEWAY_PORT": str(gateway_port),
                        "SIWE_DOMAINS": f'["127.0.0.1:{gateway_port}"]',
                        "OEM_CALLBACK_BASE_URL": gateway_url,
                        "OEM_SIMULATOR_URL": simulator_url,
                        # Beat runs everything often so the test sees each tick.
                        "SYNC_INTERVAL": "1",
                        "OEM_SCHEDULE_INTERVAL": "2",
                        "SWEEP_INTERVAL": "2",
                        "SETTLEMENT_INTERVAL": "5",
                        "SIGNALS_MAINTENANCE_INTERVAL": "5",
                    },
                )
                dep = Deployment(
                    node, manifest, env, broker_kind, gateway_url, simulator_url, directory, services
                )
                start_services(dep, directory)
                yield dep
            finally:
                for service in reversed(list(services.values())):
                    stop(service)
                close_databases()
                node.stop()
    finally:
        broker_context.__exit__(None, None, None)


def start_services(dep: Deployment, directory: Path) -> None:
    compose = workers_services()
    migrate = subprocess.run(
        local_argv(compose["migrate"]["command"]),
        cwd=PROJECT_ROOT,
        env={**os.environ, "PYTHONPATH": str(PROJECT_ROOT), **dep.env},
        capture_output=True,
        text=True,
        timeout=STEP_TIMEOUT,
        check=False,
    )
    assert migrate.returncode == 0, f"migrations failed:\n{migrate.stderr[-3000:]}"
    simulator = local_argv(devnet_services()["oem-simulator"]["command"])
    simulator = with_option(
        with_option(simulator, "--port", dep.simulator_url.rsplit(":", 1)[1]), "--host", "127.0.0.1"
    )
    start(dep, "oem-simulator", simulator, http_ok(f"{dep.simulator_url}/healthz"))
    for queue in QUEUES:
        start(
            dep,
            f"worker-{queue}",
            local_argv(compose[f"worker-{queue}"]["command"]),
            lambda s: " ready." in s.text(),
        )
    beat = with_option(
        local_argv(compose["beat"]["command"]), "--schedule", str(directory / "celerybeat-schedule")
    )
    start(dep, "beat", beat, lambda s: "beat: Starting" in s.text())
    start(dep, "gateway", local_argv(compose["gateway"]["command"]), http_ok(f"{dep.gateway_url}/healthz"))


# ------------------------------------------------------------------------------ helpers


def sign_in(dep: Deployment, key: str) -> dict[str, str]:
    """SIWE through the gateway process; the bearer header."""
    address = Account.from_key(key).address
    nonce = httpx.post(f"{dep.gateway_url}/auth/nonce", json={"address": address}, timeout=10)
    assert nonce.status_code == 200, nonce.text
    message = nonce.json()["message"]
    signature = Account.sign_message(encode_defunct(text=message), key).signature.hex()
    verified = httpx.post(
        f"{dep.gateway_url}/auth/verify",
        json={"message": message, "signature": "0x" + signature.removeprefix("0x")},
        timeout=10,
    )
    assert verified.status_code == 200, verified.text
    return {"Authorization": f"Bearer {verified.json()['token']}"}


def gateway_json(dep: Deployment, path: str, headers: dict[str, str] | None = None) -> Any:
    answer = httpx.get(f"{dep.gateway_url}{path}", headers=headers, timeout=10)
    return answer.json() if answer.status_code == 200 else None


def onboard(dep: Deployment, world: MarketWorld) -> int:
    """The owner signs in and connects a car through the gateway and the automaker (the
    simulator, with PKCE), and submits the oracle's attestation on chain; the new vehicle id."""
    answer = httpx.get(f"{dep.gateway_url}/v1/oem/1/authorize", headers=sign_in(dep, OWNER_KEY), timeout=10)
    assert answer.status_code == 200, answer.text
    query = parse_qs(urlsplit(answer.json()["authorize_url"]).query)
    state = query["state"][0]
    car = httpx.get(f"{dep.simulator_url}/_sim/vehicles", timeout=10).json()
    vin = next(c["vin"] for c in car if c["oem"] == "smartcar")
    redirect = query["redirect_uri"][0]
    assert redirect == f"{dep.gateway_url}/v1/oem/1/callback"
    consent = httpx.post(
        f"{dep.simulator_url}/_sim/consent",
        json={
            "vin": vin,
            "redirect_uri": redirect,
            "state": state,
            "code_challenge": query["code_challenge"][0],
            "code_challenge_method": "S256",
        },
    )
    assert consent.status_code == 200, consent.text
    code = consent.json()["code"]
    attestation = httpx.get(f"{redirect}?code={code}&state={state}", timeout=30)
    assert attestation.status_code == 200, attestation.text
    body = attestation.json()
    assert body["to"] == OWNER
    return mint_with_attestation(world.sender(RELAYER_KEY), world.vehicles, body)


@pytest.fixture(scope="module")
def world(deployment: Deployment) -> MarketWorld:
    """The OEM connections the workers serve (the default ORACLE_KEY as their oracle), then
    an active operator, active consumers and the curves (devkit/market_world.py)."""
    world = MarketWorld(deployment.node.w3, deployment.manifest)
    settings = Settings(oem_simulator_url=deployment.simulator_url)
    register_connections(world.vehicles, world.sender(world.dao_key), settings)
    return world.setup()


# ------------------------------------------------------------------------------ tests


def test_each_process_is_started_by_its_documented_command_and_serves_only_its_queue(
    deployment: Deployment, record_property: Callable[[str, object], None]
) -> None:
    for queue in QUEUES:
        text = deployment.services[f"worker-{queue}"].text()
        consumed = [q for q in QUEUES if f".> {q} " in text]
        assert consumed == [queue], f"worker-{queue} consumes {consumed}\n{text[-2000:]}"
    assert deployment.services["beat"].process.poll() is None
    health = httpx.get(f"{deployment.gateway_url}/healthz", timeout=5)
    assert health.json()["status"] == "ok", health.text
    assert health.json()["index"]["fresh"] is True, health.text
    record_property("broker", deployment.broker)


def test_a_car_onboarded_through_the_gateway_is_sold_as_a_dataset(deployment: Deployment, world) -> None:
    """Chain → beat's indexer.sync (indexer worker) → the gateway's catalog; the automaker's
    consent → the oracle's attestation → a mint → beat's oem.schedule → oem.pull (oem worker)
    → stored signals; a dataset order → the gateway queues datasets.build → the datasets worker."""
    dep = deployment
    product = world.create_product(Kind.DATASET, min_cohort=1, tag="deployment")
    world.send(
        world.consumer_keys[0],
        world.products,
        "signalDemand",
        keccak(text="odometers of connected cars"),
        "ipfs://demand/odometers",
        500 * DIMO,
    )
    listed = dep.wait(lambda: gateway_json(dep, f"/v1/products/{product}"), "the product in the catalog")
    assert listed["operator"].lower() == world.operator.lower() and listed["kind"] == "Dataset"
    demand = dep.wait(lambda: gateway_json(dep, "/v1/demand"), "the demand signal in the catalog")
    assert [d["uri"] for d in demand] == ["ipfs://demand/odometers"]

    vehicle = onboard(dep, world)
    world.join(OWNER_KEY, product, vehicle)
    dep.flow = Flow(dataset_product=product, vehicle=vehicle)

    def odometer_stored() -> bool:
        with session_scope(dep.env["DATABASE_URL"], read_only=True) as session:
            return any(s.name == ODOMETER for s in signal_store.latest(session, vehicle, since_ms=0))

    dep.wait(odometer_stored, "the beat-scheduled oem.schedule → oem.pull storing the car's odometer")

    order = world.purchase_dataset(world.consumer_keys[0], product)
    headers = sign_in(dep, world.consumer_keys[0])

    def queued() -> Any:
        answer = httpx.post(
            f"{dep.gateway_url}/v1/orders/{order}/dataset",
            json={"metric": ODOMETER},
            headers=headers,
            timeout=10,
        )
        return answer.json() if answer.status_code == 202 else None  # 403 until the order is indexed

    job = dep.wait(queued, "the dataset request accepted")["job_id"]

    def finished() -> Any:
        body = gateway_json(dep, f"/v1/datasets/{job}", headers)
        return body if body and body["status"] not in ("queued", "running") else None

    result = dep.wait(finished, "datasets.build on the datasets worker")
    assert result["status"] == "done", result
    [row] = result["result"]["rows"]  # one vehicle, the onboarded car, behind DP noise
    assert row[0] == "all" and result["result"]["privacy"]["epsilon"] > 0
    dep.flow.dataset_order = order
    # its first result delivers the order on chain (datasets.deliver): the members' share vests
    dep.wait(
        lambda: world.market.functions.orderVesting(order).call()[1] != 0,
        "datasets.deliver sending deliverDataset on the datasets worker",
    )


def test_the_access_worker_expires_an_ended_subscription_on_chain(deployment: Deployment, world) -> None:
    product = world.create_product(Kind.STREAM, tag="deployment-stream")
    consumer = world.consumer_keys[1]
    order = world.subscribe(consumer, product, 2)
    assert world.market.functions.inForce(order).call()
    deployment.node.increase_time(MONTH_SECONDS + 86_400)
    deployment.wait(
        lambda: not world.market.functions.inForce(order).call(), "access.sweep calling expireOrder on chain"
    )
    assert world.market.functions.usageOf(world.address(consumer)).call()[0] == 0


def test_the_settlement_worker_pays_the_dataset_s_members_in_one_cumulative_claim(
    deployment: Deployment, world
) -> None:
    """The dataset build counted the car's row and its delivery vested the members' share;
    once its period ended (the chain is a month ahead now), beat's settlement.sweep closes it
    and proposes a cumulative root; after the root delay the settlement worker accepts it; the
    owner claims everything owed with the leaf the workers stored, in one call, and is paid."""
    dep, product = deployment, deployment.flow.dataset_product
    assert product and dep.flow.dataset_order, "runs after the dataset flow"
    market = world.market.functions
    share = market.orderVesting(dep.flow.dataset_order).call()[0]
    assert market.vestedMemberAmount(product).call() >= share > 0

    def proposed_or_accepted() -> bool:
        return market.pendingRoot().call()[1] != 0 or market.totalTaken().call() > 0

    dep.wait(proposed_or_accepted, "settlement.sweep closing the period and proposing a root")
    dep.node.increase_time(market.rootDelay().call() + 1)
    dep.wait(lambda: market.takenMemberAmount(product).call() > 0, "the settlement worker accepting the root")
    taken = market.takenMemberAmount(product).call()
    assert taken <= market.vestedMemberAmount(product).call()

    def leaf() -> dict[str, Any] | None:
        with session_scope(dep.env["DATABASE_URL"], read_only=True) as session:
            found = member_claim(session, OWNER)
        accepted = "0x" + bytes(market.root().call()).hex()
        return found if found and found["root"] == accepted and found["claimable"] else None

    claim = dep.wait(leaf, "the accepted root indexed and the owner's leaf claimable")
    assert 0 < claim["cumulative"] <= taken  # one contributing car: its rows earn the release
    before = world.token.functions.balanceOf(OWNER).call()
    world.send(
        OWNER_KEY,
        world.market,
        "claim",
        world.w3.to_checksum_address(claim["account"]),
        claim["cumulative"],
        [bytes.fromhex(p.removeprefix("0x")) for p in claim["proof"]],
    )
    assert world.token.functions.balanceOf(OWNER).call() - before == claim["claimable"]
    assert market.claimed(OWNER).call() == claim["cumulative"]


def test_every_scheduled_task_ran_on_the_worker_of_its_queue(deployment: Deployment) -> None:
    app.loader.import_default_modules()  # the task modules, as a worker imports them
    registered = set(app.tasks)
    schedule = beat_schedule(Settings())
    unregistered = {entry["task"] for entry in schedule.values()} - registered
    assert unregistered <= PENDING_TASKS, f"beat schedules tasks no module registers: {unregistered}"
    for entry in schedule.values():
        name = entry["task"]
        if name in unregistered:
            continue
        queue = name.split(".", 1)[0]
        service = deployment.services[f"worker-{queue}"]
        deployment.wait(
            lambda service=service, name=name: (
                f"Task {name}[" in service.text() and " succeeded in " in service.text()
            ),
            f"{name} succeeding on worker-{queue}",
        )
        for other in QUEUES:
            if other != queue:
                assert f"Task {name}[" not in deployment.services[f"worker-{other}"].text()


def test_every_process_stops_cleanly_on_sigterm(deployment: Deployment) -> None:
    """systemd and compose stop with SIGTERM: Celery's warm shutdown exits 0; uvicorn shuts
    down gracefully and re-raises the signal (death by SIGTERM, which systemd counts as a
    clean stop)."""
    codes = {name: stop(service) for name, service in reversed(list(deployment.services.items()))}
    logs = deployment.logs()
    for name, code in codes.items():
        if name.startswith(("worker-", "beat")):
            assert code == 0, f"{name} exited with {code}\n{logs}"
        else:
            assert code in (0, -signal.SIGTERM), f"{name} exited with {code}\n{logs}"
    for name in ("worker-indexer", "worker-oem"):
        assert "Warm shutdown" in deployment.services[name].text()
    assert "Application shutdown complete." in deployment.services["gateway"].text()
