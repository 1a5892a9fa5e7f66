"""The web app in a real browser: Debian's Chromium driven by Playwright (tests/browser/*.mjs)
with an injected EIP-1193 wallet holding an anvil key, against the local stack (`make up`'s,
on free ports). Skips, saying why, only when no Chromium binary is installed."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

import httpx
import pytest
from eth_utils import keccak
from sqlalchemy import select
from web3 import Web3

from devkit.devnet import ANVIL_KEYS, free_port
from devkit.market_world import MarketWorld
from devkit.stack import StackInfo, register_oem_connections, start_stack, stop_stack
from tests.support.databases import session_scope
from workers.chain.deployment import Manifest
from workers.config import PROJECT_ROOT
from workers.db.settlement import SettlementProduct, SettlementRoot
from workers.protocol import DIMO, Kind
from workers.protocol.permissions import LIVE, LOCATION, TELEMETRY

pytestmark = pytest.mark.slow
T = TypeVar("T")

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


@pytest.fixture(scope="module")
def api_product(world: MarketWorld) -> int:
    """An Api product the buyer buys credits of."""
    return world.create_product(Kind.API, permissions=TELEMETRY)


@pytest.fixture(scope="module")
def dataset_product(world: MarketWorld) -> int:
    """A Dataset product (cohort of one) the owner's car joins and the buyer buys a dataset of."""
    return world.create_product(Kind.DATASET, permissions=TELEMETRY | LOCATION, min_cohort=1)


@pytest.fixture(scope="module")
def bundle_product(world: MarketWorld, stream_product: int, api_product: int) -> int:
    """A Bundle of the stream and 500 calls a month of the Api product, which the buyer buys."""
    return world.create_bundle([stream_product, api_product], [0, 500])


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
    stack: StackInfo, stream_product: int, dataset_product: int
) -> None:
    out = run_flow(
        "owner_flow.mjs",
        stack,
        OWNER_KEY=ANVIL_KEYS[6],
        HOLDER_KEY=ANVIL_KEYS[9],
        PRODUCT_ID=str(stream_product),
        DATASET_ID=str(dataset_product),
    )
    assert "owner flow: ok" in out


def test_a_buyer_buys_and_watches_the_stream_update(
    stack: StackInfo, stream_product: int, api_product: int, dataset_product: int, bundle_product: int
) -> None:
    """After the owner's flow: their car is a member of the stream and dataset products and the
    automaker's telemetry reaches the stream (MarketWorld staked ANVIL_KEYS[3] as a consumer);
    the buyer also buys API credits (all left), a bundle (its Api part's calls all left) and a
    dataset, whose job's result is drawn."""
    out = run_flow(
        "buyer_flow.mjs",
        stack,
        BUYER_KEY=ANVIL_KEYS[3],
        PRODUCT_ID=str(stream_product),
        API_ID=str(api_product),
        DATASET_ID=str(dataset_product),
        BUNDLE_ID=str(bundle_product),
    )
    assert "buyer flow: ok" in out


def advance(stack: StackInfo, w3: Web3, seconds: int) -> None:
    """The chain's clock and the automaker's move `seconds` ahead together (as the demo does)."""
    w3.provider.make_request("evm_increaseTime", [seconds])
    w3.provider.make_request("evm_mine", [])
    httpx.post(f"{stack.simulator_url}/_sim/clock", json={"advance": seconds}, timeout=10).raise_for_status()


def wait_for(what: str, check: Callable[[], T], timeout: float = 120.0, stack: StackInfo | None = None) -> T:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if found := check():
            return found
        time.sleep(1)
    raise AssertionError(f"timed out waiting for {what}" + (settlement_state(stack) if stack else ""))


def settlement_state(stack: StackInfo) -> str:
    """What the stack's settler recorded and logged: says why a root did not come."""
    run_dir = Path(stack.database_url.removeprefix("sqlite:///")).parent
    with session_scope(stack.database_url, read_only=True) as session:
        roots = [(r.id, r.status, r.error, r.total) for r in session.scalars(select(SettlementRoot))]
        periods = session.execute(
            select(SettlementProduct.product_id, SettlementProduct.next_period, SettlementProduct.taken)
        ).all()
    lines = (run_dir / "worker.log").read_text(errors="replace").splitlines()
    settler = [line for line in lines if "settlement" in line or "ERROR" in line or "Traceback" in line]
    return f"\nroots: {roots}\nproducts (id, next period, taken): {periods}\nworker log:\n" + "\n".join(
        settler[-60:]
    )


def test_the_owner_claims_everything_owed_once_a_period_settles(stack: StackInfo, world: MarketWorld) -> None:
    """After the buyer's purchase: a month passes on the chain, the stack's settlement worker
    closes the periods, proposes a root and (after the root delay) accepts it; the owner's page
    then shows the earnings per product as a chart and one click claims everything owed: the
    owner's DIMO balance rises by exactly what the gateway said was claimable."""
    w3 = world.w3
    market = world.market.functions
    owner = Web3.to_checksum_address(world.address(ANVIL_KEYS[6]))
    accepted_before = bytes(market.root().call())
    advance(stack, w3, 31 * 86_400)

    def proposed() -> int | None:
        root, claimable_at, _takes = market.pendingRoot().call()
        return int(claimable_at) if claimable_at > 0 and bytes(root) != accepted_before else None

    claimable_at = wait_for(
        "the settler's root (settlement.sweep -> close -> proposeRoot)", proposed, stack=stack
    )
    advance(stack, w3, max(claimable_at - int(w3.eth.get_block("latest")["timestamp"]), 0) + 1)
    wait_for(
        "the settler to accept the root", lambda: bytes(market.root().call()) != accepted_before, stack=stack
    )

    def owed() -> int:
        answer = httpx.get(f"{stack.gateway_url}/v1/members/{owner}/claims", timeout=10).json()
        return int(answer["claimable"])

    claimable = wait_for("the gateway to serve the owner's leaf", owed)
    token = world.token.functions
    before = token.balanceOf(owner).call()
    out = run_flow("owner_claim_flow.mjs", stack, OWNER_KEY=ANVIL_KEYS[6], CLAIMABLE=str(claimable))
    assert "owner claim flow: ok" in out
    assert token.balanceOf(owner).call() - before == claimable > 0
    assert owed() == 0


def test_an_operator_creates_a_product_and_withdraws(stack: StackInfo, world: MarketWorld) -> None:
    """After the buyer's flow: the operator (MarketWorld's, staked and whitelisted) has its
    share of the purchase to withdraw; a staked consumer's open demand signal is answered with
    a product from the page."""
    uri = "ipfs://demand/battery-health"
    world.send(
        world.consumer_keys[1], world.products, "signalDemand", keccak(text="battery health"), uri, 50 * DIMO
    )

    def listed() -> bool:
        demand = httpx.get(f"{stack.gateway_url}/v1/demand", timeout=10).json()
        return any(d["uri"] == uri for d in demand)

    wait_for("the gateway to list the demand signal", listed)
    out = run_flow("operator_flow.mjs", stack, OPERATOR_KEY=world.operator_key, DEMAND_URI=uri)
    assert "operator flow: ok" in out
