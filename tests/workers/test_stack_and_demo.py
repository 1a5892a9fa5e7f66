"""The local stack (`make up` / `make down`) and the whole story (`make demo`), as a newcomer
runs them: every service starts and answers, the story completes, and nothing is left behind."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from devkit.devnet import free_port
from devkit.stack import StackInfo, is_alive, running_stack, start_stack, stop_stack
from workers.chain.deployment import Manifest
from workers.config import PROJECT_ROOT

pytestmark = pytest.mark.slow


def test_stack_starts_every_service_and_stops_them_all(tmp_path: Path):
    """On a machine with no broker at BROKER_URL the stack starts a Redis of its own."""
    nobody_there = f"redis://127.0.0.1:{free_port()}/0"
    info = start_stack(tmp_path, broker_url=nobody_there, fixed_ports=False)
    try:
        recorded = json.loads((tmp_path / "stack.json").read_text())
        assert set(recorded) >= {
            "rpc_url",
            "gateway_url",
            "simulator_url",
            "deployment",
            "database_url",
            "broker_url",
        }
        assert running_stack(tmp_path / "stack.json") == StackInfo.read(tmp_path / "stack.json")
        names = {p.name for p in info.processes}
        assert {"anvil", "redis", "worker", "beat", "oem-simulator", "gateway"} <= names
        assert info.broker_url != nobody_there
        assert httpx.get(f"{info.gateway_url}/healthz", timeout=5).status_code == 200
        assert httpx.get(f"{info.simulator_url}/_sim/vehicles", timeout=5).json()
        manifest = Manifest.read(Path(info.deployment))
        assert "Marketplace" in manifest.contracts
    finally:
        stopped = stop_stack(tmp_path)
    assert set(stopped) == names
    assert not any(is_alive(p.pid) for p in info.processes)
    assert not (tmp_path / "stack.json").exists()


def test_demo_tells_the_whole_story_and_leaves_nothing_running():
    result = subprocess.run(
        [sys.executable, "-m", "scripts.demo"],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    out = result.stdout
    assert result.returncode == 0, out[-3000:] + result.stderr[-3000:]
    for fact in (
        "oracle-signed",
        "Dave -> start (no DRIVE bit): refused, reason 'no_permission'",
        "seq 1 accepted",
        "the same payload again (HTTP): refused, reason 'replayed'",
        "conservation: paid",
        ": True",
        "live stream of order",
        ": done, differentially private (epsilon 0.25 of the order's budget, 0.75 left)",
        "members' share",
        "proposed: pending for",
        "accepted: #",
        "in ONE claim",
        "one claim of",
        "never above what vested",
        "Acme -> refund(#",
        "reason 'order_refunded'",
        "claimed 100.000000000000000000 DIMO (relayed: no ETH)",
        "Dave -> unlock: refused, reason 'no_permission'",
        "keys [], products []",
        "the token is refused, 'session_revoked'",
        "Alice -> callback with her consent: refused, reason 'vehicle_exists'",
        "the centre of the 0.05-degree cell around the zone",
        "Alice's observations served to Acme after the sale: 0",
        "nothing left running",
        "Executed by the timelock: Alice (owner) received",
    ):
        assert fact in out, f"the demo did not print {fact!r}:\n{out[-3000:]}"
