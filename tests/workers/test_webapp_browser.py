"""The web app in a real browser: Debian's Chromium driven by Playwright (tests/browser/*.mjs)
with an injected EIP-1193 wallet holding an anvil key, against the local stack (`make up`'s,
on free ports). Skips, saying why, only when no Chromium binary is installed."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from web3 import Web3

from devkit.devnet import ANVIL_KEYS, free_port
from devkit.market_world import MarketWorld
from devkit.stack import StackInfo, register_oem_connections, start_stack, stop_stack
from workers.chain.deployment import Manifest
from workers.config import PROJECT_ROOT
from workers.protocol import Kind
from workers.protocol.permissions import LIVE, LOCATION, TELEMETRY

pytestmark = pytest.mark.slow

CHROMIUM = os.environ.get("CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
BROWSER_DIR = PROJECT_ROOT / "tests" / "browser"
#: Where the flows leave their screenshots (the README shows them); empty: none taken.
SHOTS_DIR = os.environ.get("WEBAPP_SHOTS_DIR", "")

if not Path(CHROMIUM).exists():
    pytest.skip(
        f"no Chromium at {CHROMIUM}: `make setup` installs Debian's chromium when it can (root, apt-get)",
        allow_module_level=True,
    )


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StackInfo]:
    """`make up`'s stack on free ports with the web app built, an active operator, staked
    consumers and one Stream product to join."""
    subprocess.run([PROJECT_ROOT / "tools" / "build-webapp.sh"], check=True)
    run_dir = tmp_path_factory.mktemp("stack")
    # a broker of its own (nothing answers there: the stack starts a Redis)
    info = start_stack(run_dir, broker_url=f"redis://127.0.0.1:{free_port()}/0", fixed_ports=False)
    try:
        register_oem_connections(info)  # as `make up` does
        yield info
    finally:
        stop_stack(run_dir)


@pytest.fixture(scope="module")
def world(stack: StackInfo) -> MarketWorld:
    w3 = Web3(Web3.HTTPProvider(stack.rpc_url))
    return MarketWorld(w3, Manifest.read(Path(stack.deployment))).setup()


@pytest.fixture(scope="module")
def stream_product(world: MarketWorld) -> int:
    """A live Stream product the owner's car joins and the buyer buys."""
    return world.create_product(Kind.STREAM, permissions=TELEMETRY | LOCATION | LIVE)


def run_flow(script: str, stack: StackInfo, **env: str) -> str:
    result = subprocess.run(
        ["node", str(BROWSER_DIR / script)],
        cwd=PROJECT_ROOT,
        env={
            **os.environ,
            "CHROMIUM": CHROMIUM,
            "GATEWAY_URL": stack.gateway_url,
            "RPC_URL": stack.rpc_url,
            "SHOTS_DIR": SHOTS_DIR,
            **env,
        },
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    out = result.stdout + result.stderr
    assert result.returncode == 0, out[-6000:]
    return out


def test_an_owner_connects_a_car_grants_a_key_and_joins_a_product(
    stack: StackInfo, stream_product: int
) -> None:
    out = run_flow(
        "owner_flow.mjs",
        stack,
        OWNER_KEY=ANVIL_KEYS[6],
        HOLDER_KEY=ANVIL_KEYS[9],
        PRODUCT_ID=str(stream_product),
    )
    assert "owner flow: ok" in out


def test_a_buyer_buys_and_watches_the_stream_update(stack: StackInfo, stream_product: int) -> None:
    """After the owner's flow: their car is a member of the product and the automaker's
    telemetry reaches the stream (MarketWorld staked ANVIL_KEYS[3] as a consumer)."""
    out = run_flow("buyer_flow.mjs", stack, BUYER_KEY=ANVIL_KEYS[3], PRODUCT_ID=str(stream_product))
    assert "buyer flow: ok" in out


def test_an_operator_creates_a_product_and_withdraws(stack: StackInfo, world: MarketWorld) -> None:
    """After the buyer's flow: the operator (MarketWorld's, staked and whitelisted) has its
    share of the purchase to withdraw."""
    out = run_flow("operator_flow.mjs", stack, OPERATOR_KEY=world.operator_key)
    assert "operator flow: ok" in out
