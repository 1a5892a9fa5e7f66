"""The OEM cloud simulator as a real HTTP server process (`python -m devkit.simulator`),
with helpers for its `/_sim` controls, settings that point the workers at it, and the link
that onboarding leaves behind for one of its cars."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
from pydantic import SecretStr

from devkit.devnet import free_port, stop_process, wait_ready
from tests.support.databases import session_scope
from workers import eip712
from workers.config import (
    PROJECT_ROOT,
    SIMULATOR_CLIENT_ID,
    SIMULATOR_CLIENT_SECRET,
    OemConnection,
    Settings,
    get_settings,
)
from workers.oem.connectors import callback_uri, connector_for
from workers.oem.links import LinkInput, cipher_from, save_link

#: The simulator's connections by OEM (`SimulatorProcess.connections`).
CONNECTION_IDS = {"smartcar": 1, "tesla": 2}


class SimulatorProcess:
    def __init__(self, *, vehicles: int = 8, port: int | None = None, log_dir: Path | None = None) -> None:
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        log_path = log_dir / f"oem-sim-{self.port}.log" if log_dir else None
        log = open(log_path, "w") if log_path else subprocess.DEVNULL  # noqa: SIM115
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "devkit.simulator",
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
        wait_ready(
            self.process,
            lambda: self.http.get("/healthz").status_code == 200,
            f"the simulator on {self.url}",
            log=log_path,
        )

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

    def consent(self, vin: str, redirect_uri: str, state: str = "", code_challenge: str | None = None) -> str:
        body = {"vin": vin, "redirect_uri": redirect_uri, "state": state}
        if code_challenge is not None:
            body |= {"code_challenge": code_challenge, "code_challenge_method": "S256"}
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
    def connections(self) -> list[OemConnection]:
        """Connection 1 (Smartcar-style) and 2 (Tesla-style) at this simulator with its client
        credentials: what the workers derive from OEM_SIMULATOR_URL."""
        return self.settings(
            get_settings(),
            oem_client_id=SIMULATOR_CLIENT_ID,
            oem_client_secret=SecretStr(SIMULATOR_CLIENT_SECRET),
        ).oem_connection_list()

    def settings(self, base: Settings, **changes: Any) -> Settings:
        """`base` pointed at this simulator (both connections)."""
        return base.model_copy(update={"oem_simulator_url": self.url, "oem_connections": [], **changes})

    def stop(self) -> None:
        self.http.close()
        stop_process(self.process)


def consent(sim: SimulatorProcess, authorize_url: str, vin: str) -> str:
    """The person who was sent to `authorize_url` clicks "allow" for `vin`: the code the
    automaker returns to the URL's redirect URI, bound to its state and PKCE challenge."""
    params = httpx.URL(authorize_url).params
    return sim.consent(vin, params["redirect_uri"], params["state"], params.get("code_challenge"))


def link_vehicle(
    sim: SimulatorProcess, settings: Settings, oem: str, vehicle_id: int | None, owner: str, *, index: int = 0
) -> int:
    """What onboarding leaves behind for the simulator's `index`-th car of `oem`: an active
    link owned by `owner` with encrypted tokens from a real consent. Returns the link's id."""
    car = sim.vehicles(oem)[index]
    connection_id = CONNECTION_IDS[oem]
    connector = connector_for(connection_id, settings)
    tokens = connector.exchange_code(sim.consent(car["vin"], callback_uri(settings, connection_id)))
    with session_scope(settings.database_url) as session:
        return save_link(
            session,
            cipher_from(settings),
            LinkInput(
                connection_id=connection_id,
                vin_hash="0x" + eip712.vin_hash(car["vin"]).hex(),
                vin=car["vin"],
                external_id=car["id"] if oem == "smartcar" else car["vin"],
                owner=owner,
                vehicle_id=vehicle_id,
                tokens=tokens,
                make=car["make"],
                model=car["model"],
            ),
        )
