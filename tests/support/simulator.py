"""The OEM cloud simulator as a real HTTP server process (`python -m workers.oem.simulator`),
with helpers for its `/_sim` controls and settings that point the workers at it."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
from pydantic import SecretStr

from tests.support.anvil import free_port
from workers.config import SIMULATOR_CLIENT_ID, SIMULATOR_CLIENT_SECRET, OemConnection, Settings
from workers.contracts import PROJECT_ROOT


class SimulatorProcess:
    def __init__(self, *, vehicles: int = 8, port: int | None = None, log_dir: Path | None = None) -> None:
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        log = open(log_dir / f"oem-sim-{self.port}.log", "w") if log_dir else subprocess.DEVNULL  # noqa: SIM115
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "workers.oem.simulator",
                "--port",
                str(self.port),
                "--vehicles",
                str(vehicles),
            ],
            cwd=PROJECT_ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        self.http = httpx.Client(base_url=self.url, timeout=10)
        self._wait_ready()

    def _wait_ready(self, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the simulator exited with {self.process.returncode}")
            try:
                if self.http.get("/healthz").status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.05)
        raise TimeoutError(f"the simulator did not answer on {self.url} within {timeout}s")

    # --- /_sim controls -----------------------------------------------------------------
    def _json(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        response = self.http.request(method, path, json=body)
        response.raise_for_status()
        return response.json()

    def vehicles(self, oem: str | None = None) -> list[dict[str, Any]]:
        rows = self._json("GET", "/_sim/vehicles")
        return [r for r in rows if oem is None or r["oem"] == oem]

    def vehicle(self, vin: str) -> dict[str, Any]:
        return self._json("GET", f"/_sim/vehicles/{vin}")

    def consent(self, vin: str, redirect_uri: str, state: str = "") -> str:
        body = {"vin": vin, "redirect_uri": redirect_uri, "state": state}
        return self._json("POST", "/_sim/consent", body)["code"]

    def fault(self, kind: str, api: str = "any", **options: Any) -> dict[str, Any]:
        return self._json("POST", "/_sim/faults", {"kind": kind, "api": api, **options})

    def clear_faults(self) -> None:
        self._json("DELETE", "/_sim/faults")

    def configure(self, **options: Any) -> dict[str, Any]:
        return self._json("POST", "/_sim/config", options)

    def advance(self, seconds: float) -> float:
        return self._json("POST", "/_sim/clock", {"advance": seconds})["now"]

    def expire_tokens(self, vin: str | None = None) -> int:
        return self._json("POST", "/_sim/tokens/expire", {"vin": vin})["expired"]

    def sleep_vehicle(self, vin: str) -> None:
        self._json("POST", f"/_sim/vehicles/{vin}/sleep")

    def stats(self) -> dict[str, Any]:
        return self._json("GET", "/_sim/stats")

    def requests(self, since: float = 0.0) -> list[dict[str, Any]]:
        return self.http.get("/_sim/requests", params={"since": since}).json()

    def reset(self) -> None:
        self._json("POST", "/_sim/reset")

    # --- workers' view ------------------------------------------------------------------
    def connections(self, **overrides: Any) -> list[OemConnection]:
        """Connection 1 (Smartcar-style) and 2 (Tesla-style) at this simulator."""
        overrides = {
            "client_id": SIMULATOR_CLIENT_ID,
            "client_secret": SecretStr(SIMULATOR_CLIENT_SECRET),
            **overrides,
        }
        return [
            OemConnection(
                connection_id=1,
                kind="smartcar",
                name="smartcar",
                api_url=self.url,
                auth_url=self.url,
                token_url=f"{self.url}/oauth/token",
                **overrides,
            ),
            OemConnection(
                connection_id=2,
                kind="tesla",
                name="tesla",
                api_url=self.url,
                auth_url=self.url,
                token_url=f"{self.url}/oauth2/v3/token",
                **overrides,
            ),
        ]

    def settings(self, base: Settings, **changes: Any) -> Settings:
        """`base` pointed at this simulator (both connections)."""
        return base.model_copy(update={"oem_simulator_url": self.url, "oem_connections": [], **changes})

    def stop(self) -> None:
        self.http.close()
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
