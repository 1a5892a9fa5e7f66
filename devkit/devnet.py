"""A local anvil devnet: started from node_modules/.bin by the demo, `make up`, the
benchmarks and the tests, with the JSON-RPC helpers they need; and the start/stop helpers of
the other child processes they run (simulator, Redis, Celery, uvicorn)."""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import redis
from web3 import Web3

from workers.config import PROJECT_ROOT

ANVIL_BIN = PROJECT_ROOT / "node_modules" / ".bin" / "anvil"
#: anvil's default mnemonic accounts (the same ones ape's test accounts use).
ANVIL_KEYS = (
    "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80",
    "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d",
    "0x5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9a804cdab365a",
    "0x7c852118294e51e653712a81e05800f419141751be58f605c371e15141b007a6",
    "0x47e179ec197488593b187f80a00eb0da91f1b9d0b13f8733639f19c30a34926a",
    "0x8b3a350cf5c34c9194ca85829a2df0ec3153be0318b5e2d3348e872092edffba",
    "0x92db14e403b83dfe3df233f83dfa3a0d7096f21ca9b0d6d6b8d88b2b4ec1564e",
    "0x4bbbf85ce3377467afe5d46f804f221813b2bb87f24d81f60f1fcdbf7cbf4356",
    "0xdbda1821b80551c9d65939329250298aa3472ba22feea921c0cf5d620ea67b97",
    "0x2a871d0798f97d79848a013d4936a73bf4cc922c825d33c1cf7073dff6d409c6",
)


#: What a readiness check may raise while its service is still starting.
NOT_READY_ERRORS = (OSError, httpx.HTTPError, redis.RedisError)


class ServiceStartError(RuntimeError):
    """A child process exited, or did not become ready in time."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_ready(
    process: subprocess.Popen[bytes],
    ready: Callable[[], bool],
    what: str,
    *,
    timeout: float = 20.0,
    log: Path | None = None,
    interval: float = 0.05,
) -> None:
    """Returns once `ready()` is true; ServiceStartError (with the tail of `log`) when
    `process` exits first or `timeout` seconds pass."""
    deadline = time.monotonic() + timeout
    while True:
        if process.poll() is not None:
            raise ServiceStartError(f"{what} exited with {process.returncode}{_tail(log)}")
        try:
            if ready():
                return
        except NOT_READY_ERRORS:
            pass
        if time.monotonic() > deadline:
            raise ServiceStartError(f"{what} did not become ready within {timeout:g}s{_tail(log)}")
        time.sleep(interval)


def _tail(log: Path | None, chars: int = 3000) -> str:
    if log is None or not log.exists():
        return ""
    return f"; log {log}:\n{log.read_text(errors='replace')[-chars:]}"


def stop_process(process: subprocess.Popen[bytes], grace: float = 10.0) -> None:
    """SIGTERM, then SIGKILL if it has not exited after `grace` seconds."""
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


class AnvilNode:
    """One anvil process on a free port, with the JSON-RPC test helpers tests need."""

    def __init__(self, *args: str, port: int | None = None, log_dir: Path | None = None) -> None:
        if not ANVIL_BIN.exists() and shutil.which("anvil") is None:
            raise RuntimeError("anvil not found: run `make setup`")
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        binary = str(ANVIL_BIN) if ANVIL_BIN.exists() else "anvil"
        log_path = log_dir / f"anvil-{self.port}.log" if log_dir else None
        log = open(log_path, "w") if log_path else subprocess.DEVNULL  # noqa: SIM115
        # anvil persists old states under ~/.foundry/anvil/tmp and leaves them there when it
        # stops (gigabytes after a long test): give each node its own folder, removed on stop.
        self.states = Path(tempfile.mkdtemp(prefix=f"anvil-states-{self.port}-"))
        self.process = subprocess.Popen(
            [
                binary,
                "--port",
                str(self.port),
                "--host",
                "127.0.0.1",
                "--cache-path",
                str(self.states),
                *args,
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        self.w3 = Web3(Web3.HTTPProvider(self.url, request_kwargs={"timeout": 60}))
        wait_ready(self.process, self.w3.is_connected, f"anvil on {self.url}", log=log_path)

    def rpc(self, method: str, *params: Any) -> Any:
        response = self.w3.provider.make_request(method, list(params))  # type: ignore[arg-type]
        if "error" in response:
            raise RuntimeError(f"{method} failed: {response['error']}")
        return response.get("result")

    def mine(self, blocks: int = 1) -> None:
        self.rpc("anvil_mine", hex(blocks))

    def increase_time(self, seconds: int) -> None:
        self.rpc("evm_increaseTime", hex(seconds))
        self.mine()

    def snapshot(self) -> str:
        return self.rpc("evm_snapshot")

    def revert(self, snapshot_id: str) -> None:
        self.rpc("evm_revert", snapshot_id)

    def reorg(self, depth: int, txs: list[tuple[dict[str, Any], int]] | None = None) -> None:
        """Rewrites the last `depth` blocks (anvil_reorg): hashes change, height stays."""
        self.rpc("anvil_reorg", depth, [[tx, offset] for tx, offset in (txs or [])])

    def stop(self) -> None:
        stop_process(self.process)
        shutil.rmtree(self.states, ignore_errors=True)
