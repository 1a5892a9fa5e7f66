"""docs/operators.md and docs/brokers.md are true: every statement of their Python blocks runs,
in order, in the namespace `ape console` opens with, against a fresh deployment, and the
chain then holds what the pages say. The brokers' sign-in function is then called against a
real gateway. The only help the tests give is time (an unbonding period passing)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from eth_account import Account

from devkit.databases import migrated, sqlite_url
from tests.support.anvil import ANVIL_KEYS
from tests.support.console_docs import run_page
from tests.workers.gateway.conftest import LiveServer
from tests.workers.gateway.projections import fresh_index
from workers.config import PROJECT_ROOT, get_settings
from workers.gateway.app import create_app
from workers.protocol import DIMO, Role, Tier

DOCS = PROJECT_ROOT / "docs"


def address(n: int) -> str:
    return Account.from_key(ANVIL_KEYS[n]).address


def test_the_operators_page_runs_and_does_what_it_says(console, chain) -> None:
    ns = console
    staking, products, market = ns["staking"].functions, ns["products"].functions, ns["market"].functions
    token = ns["token"].functions
    me = address(2)

    def let_the_unbonding_pass(source: str) -> None:
        if "staking.functions.withdraw()" in source:
            release_at = staking.stakeOf(me).call()[2]
            chain.pending_timestamp = release_at + 1
            chain.mine()

    answer = run_page(DOCS / "operators.md", ns, let_the_unbonding_pass).answer
    assert answer("requiredStake(me.address") == 1_000 * DIMO
    assert answer("isActive(me.address") is True
    assert answer("demand(1)")[3] is True and answer("demand(1)")[2] == 5_000 * DIMO
    stream, api, dataset, bundle = ns["stream"], ns["api"], ns["dataset"], ns["bundle"]
    assert (stream, api, dataset, bundle) == (1, 2, 3, 4)
    assert answer("components(bundle)") == [[1, 2, 3], [0, 1_000, 0]]
    assert products.product(bundle).call()[3][0] == 3  # kind Bundle
    # joins: the stream by join, then voided by the terms update; the API by a relayed signature
    assert answer("isMember(api, car)") is True
    assert answer("product(stream).call()[1]") == 2
    assert answer("isMember(stream, car)") is False
    # the dataset sale: 300 DIMO, 20 % to the operator (withdrawn), 5 % fee, 5 % broker share
    # (no broker: to the Treasury), 70 % to the members, vesting only once delivered
    assert answer("quote(dataset)") == (1, 300 * DIMO)
    assert answer("earnings(me.address)") == 60 * DIMO
    assert answer("orderVesting(order)") == [210 * DIMO, 0, 0, 0, 1]
    assert answer("vested(dataset)") == 0
    assert market.claimable(me).call() == 0
    assert token.balanceOf(me).call() == (3_000 - 1_500 + 60 + 500) * DIMO
    assert products.product(api).call()[2] is False
    assert answer("stakeOf(me.address)")[:2] == [1_000 * DIMO, 500 * DIMO]
    assert staking.stakeOf(me).call()[:2] == [1_000 * DIMO, 0]


@pytest.fixture
def gateway(tmp_path: Path) -> Iterator[str]:
    with migrated(sqlite_url(tmp_path, "gateway.db")) as url:
        fresh_index(url)  # the gateway serves nothing from an index without a health report
        # the SIWE chain id named, not read: this gateway has no deployment manifest of ape's chain
        settings = get_settings().model_copy(update={"database_url": url, "siwe_chain_id": 31337})
        server = LiveServer(create_app(settings))
        try:
            yield server.url
        finally:
            server.stop()


def test_the_brokers_page_runs_and_its_sign_in_works(console, gateway) -> None:
    ns = console
    staking, market = ns["staking"].functions, ns["market"].functions
    broker = address(3)
    run = run_page(DOCS / "brokers.md", ns)
    answer = run.answer
    assert run.values("requiredStake(broker.address, 1)") == [
        500 * DIMO,
        580 * DIMO,
    ]  # before and after 16 live vehicles
    assert answer("isActive(broker.address, 1)") is True
    assert answer("usageOf(broker.address)") == [16, Tier.LIVE]
    assert staking.isActive(broker, Role.BROKER).call()
    assert answer("earnings(broker.address)") == 1 * DIMO  # 5 % of 10 vehicles x 2 DIMO
    assert market.claimable(broker).call() == 0
    assert answer("earnings(steward.address)") == 0
    # the refund after the terms bump: the 14 DIMO member share less the seconds that vested
    # (none, or a few, between the purchase and the refund)
    member_share = 14 * DIMO
    refunded = ns["refunded"]
    assert 0 <= member_share - refunded < member_share // 10_000
    share, _starts, _ends, refunded_at, version = answer("orderVesting(client_order)")
    assert (share, version) == (member_share, 1) and refunded_at > 0
    # the sign-in function of the page, against a real gateway
    ns["GATEWAY"] = gateway
    headers = ns["sign_in"](ANVIL_KEYS[3])
    signed_in = httpx.get(f"{gateway}/v1/datasets/none", headers=headers)
    assert signed_in.status_code == 404 and signed_in.json()["reason"] == "not_found"
    assert httpx.get(f"{gateway}/v1/datasets/none").status_code == 401
