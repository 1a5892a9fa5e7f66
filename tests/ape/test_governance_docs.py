"""docs/governance.md is true: every line of its Python code blocks is run, in order, in the
namespace `ape console` opens with (ape_console_extras.ape_init_extras) against a fresh
deployment, and the chain then holds what the page says each line did. The only help the test
gives is time: before `sweep_slash` it moves the chain past the slash's claim window, as the
page says one waits for (the proposal's waits the page makes itself, with `fast_forward`)."""

from __future__ import annotations

import re

from eth_account import Account

from devkit.console import HANDLE_NAMES
from tests.support.anvil import ANVIL_KEYS
from tests.support.console_docs import run_page, statements
from workers.config import PROJECT_ROOT
from workers.protocol import (
    DEFAULT_ADMIN_ROLE,
    DIMO,
    GOVERNOR_ROLE,
    GUARDIAN_ROLE,
    SETTLER_ROLE,
    SLASHER_ROLE,
    Role,
    Tier,
)

DOC = PROJECT_ROOT / "docs" / "governance.md"
DAY = 86_400


def address(n: int) -> str:
    return Account.from_key(ANVIL_KEYS[n]).address


def test_every_line_of_the_governance_page_runs_and_does_what_it_says(console, chain) -> None:
    ns = console
    staking, products, market = ns["staking"].functions, ns["products"].functions, ns["market"].functions
    vehicles, devices, treasury = ns["vehicles"].functions, ns["devices"].functions, ns["treasury"]
    token = ns["token"].functions
    dao = ns["dao"].account.address
    assert len(statements(DOC)) > 40, "the page lost its console lines"

    def wait_for_the_claim_window(source: str) -> None:
        if "sweep_slash(" in source:
            slash_id = staking.slashCount().call()
            _, remaining, closes_at = staking.slashPool(slash_id).call()
            assert remaining == 50 * DIMO  # the second owner did not claim
            chain.pending_timestamp = closes_at + 1
            chain.mine()

    run = run_page(DOC, ns, wait_for_the_claim_window)
    answer = run.answer

    operator, broker, owner, hot_wallet = address(2), address(3), address(4), address(5)
    oracle, maker, grantee = address(6), address(7), address(8)
    # curves, tiers, whitelist
    assert staking.curve(Role.OPERATOR).call() == [1_000 * DIMO, 0]
    assert staking.curve(Role.BROKER).call() == [500 * DIMO, 10 * DIMO]
    assert staking.curve(Role.CONSUMER).call() == [10 * DIMO, 1 * DIMO]
    assert staking.tierMultiplierBps(Tier.COMMANDS).call() == 40_000
    assert (
        staking.isWhitelisted(operator, Role.OPERATOR).call()
        and staking.isWhitelisted(broker, Role.BROKER).call()
    )
    # (whitelist(broker, "Consumer", allowed=False) is undone by the proposal, checked below)
    assert answer("isWhitelisted(operator.address") is True
    assert answer("isActive(operator.address") is True
    # fee and the held product
    assert answer("heldByGovernor(1)") is True
    assert products.product(1).call()[2] is True and products.heldByGovernor(1).call() is False
    # stewards
    assert answer("isSteward(broker.address)") is True and market.isSteward(broker).call() is False
    assert answer("earnings(operator.address)") == 0
    # the slash: 500 from 2,000 staked; 100 claimed by the owner, 50 swept, 350 straight to the Treasury
    to_impacted, to_treasury, tree_file = answer("result.to_impacted")
    assert (to_impacted, to_treasury, tree_file.name) == (150 * DIMO, 350 * DIMO, "impacted.tree.json")
    assert staking.stakeOf(operator).call()[0] == 1_500 * DIMO
    assert token.balanceOf(owner).call() == 100 * DIMO
    assert staking.slashPool(1).call()[1] == 0
    assert staking.claimWindow().call() == 180 * DAY
    assert staking.unbondingPeriod().call() == 14 * DAY
    # identity
    assert answer("connection(connection)") == ["smartcar", oracle, True]
    assert vehicles.connection(1).call() == ["smartcar", oracle, False]
    assert answer("isManufacturer(maker.address)") is True and devices.isManufacturer(maker).call()
    # member roots: the delay, the guardian; nothing pending on a fresh deployment
    assert answer("rootDelay()") == 6 * 3600 and market.rootDelay().call() == 6 * 3600
    assert market.hasRole(GUARDIAN_ROLE, maker).call()
    assert answer("pending_root()") is None
    # roles
    assert answer('has_role(market, "SETTLER_ROLE"') is True
    assert market.hasRole(SETTLER_ROLE, hot_wallet).call() and not market.hasRole(SETTLER_ROLE, dao).call()
    assert not staking.hasRole(SLASHER_ROLE, hot_wallet).call()
    assert dao in answer('manifest.roles["Marketplace"]')["SETTLER_ROLE"]
    # the Treasury
    assert answer("balanceOf(grantee.address)") == 250 * DIMO
    # 350 + 50 swept - 250 released - 100 granted by the proposal
    assert token.balanceOf(treasury.address).call() == 50 * DIMO
    # proposals: the prepared call, then one proposal through the Governor and the timelock
    target, value, calldata = ns["target"], ns["value"], ns["calldata"]
    fn, args = ns["staking"].decode_function_input(calldata)
    assert (target, value, fn.fn_name) == (ns["staking"].address, 0, "setWhitelisted")
    assert args == {"account": operator, "role": Role.OPERATOR, "allowed": True}
    assert run.values("state(p)") == ["Pending", "Succeeded", "Executed"]
    # the operator's votes at the snapshot: 3,000 DIMO in hand and 1,500 DIMO of stake
    assert answer("governor.functions.getVotes(operator.address") == 4_500 * DIMO
    p = ns["p"]
    governor = ns["governor"].functions
    against, for_votes, _ = governor.proposalVotes(p.proposal_id).call()
    assert against == 4_500 * DIMO and for_votes > against
    assert staking.isWhitelisted(broker, Role.CONSUMER).call()
    assert products.protocolFeeBps().call() == 300
    assert token.balanceOf(grantee).call() == 350 * DIMO
    assert market.hasRole(SETTLER_ROLE, grantee).call()
    # the timelock did it: it is every contract's admin and a governor; the deployer is no admin
    timelock = ns["timelock"].address
    assert treasury.functions.defaultAdmin().call() == timelock
    assert treasury.functions.hasRole(GOVERNOR_ROLE, timelock).call()
    assert not treasury.functions.hasRole(DEFAULT_ADMIN_ROLE, dao).call()


def test_the_page_shows_every_console_helper(console) -> None:
    """Every name the console opens with (but the contract handles) appears on the page."""
    handles = set(HANDLE_NAMES.values())
    words = set(re.findall(r"\b[A-Za-z_][A-Za-z0-9_]*\b", DOC.read_text()))
    missing = sorted(name for name in console if name not in handles | words and name != "w3")
    assert not missing, f"docs/governance.md does not show {missing}"
