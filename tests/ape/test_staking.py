"""Staking governance from `ape console`: the DAO whitelists an operator, raises the lockup
curve and slashes with a CSV of three impacted owners, using the console one-liners; each owner
then claims through ape with a proof built in Python from the saved tree. A slash proposed
before the vote freezes the stake the target races to withdraw; an operator resigns its role."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.support.anvil import ANVIL_KEYS
from tests.support.console_docs import open_console
from workers.merkle import PayoutTree
from workers.protocol import DIMO, Role, SlashStatus, SlashSubject


@dataclass(frozen=True)
class Env:
    console: dict[str, Any]  # what `ape console` opens with
    staking: Any  # ape contract instances
    token: Any
    treasury: str


@pytest.fixture(scope="module")
def env(manifest, chain, project) -> Env:
    m, path = manifest
    return Env(
        console=open_console(chain, path),
        staking=project.Staking.at(m.address("Staking")),
        token=project.DimoToken.at(m.address("DimoToken")),
        treasury=m.address("Treasury"),
    )


@pytest.fixture(scope="module")
def operator(accounts, env):
    """An operator holding 2,000 DIMO of which 1,500 are staked."""
    dao, account = accounts[0], accounts[1]
    env.token.transfer(account, 2_000 * DIMO, sender=dao)
    env.token.approve(env.staking, 2_000 * DIMO, sender=account)
    env.staking.stake(1_500 * DIMO, sender=account)
    return account


@pytest.fixture(scope="module")
def owners(accounts):
    """Three vehicle owners who hold no DIMO."""
    return [accounts[2], accounts[3], accounts[4]]


def test_console_has_the_staking_one_liners(env):
    for name in (
        "whitelist",
        "set_curve",
        "propose_slash",
        "slash",
        "cancel_slash",
        "set_dispute_window",
        "claim_slash",
        "staking",
    ):
        assert name in env.console, name


def test_whitelist_then_raise_the_curve(env, operator):
    staking, console = env.staking, env.console
    assert not staking.isActive(operator, Role.OPERATOR)
    console["whitelist"](operator.address, "Operator")
    assert staking.isWhitelisted(operator, Role.OPERATOR)
    assert staking.isActive(operator, Role.OPERATOR)  # the default curve asks for nothing

    console["set_curve"]("Operator", "2000 DIMO", "10 DIMO")
    assert staking.curve(Role.OPERATOR) == (2_000 * DIMO, 10 * DIMO)
    assert staking.requiredStake(operator, Role.OPERATOR) == 2_000 * DIMO
    assert not staking.isActive(operator, Role.OPERATOR)
    with pytest.raises(staking.StakeBelowRequired) as refused:
        staking.requestUnstake(1, sender=operator)
    assert refused.value.inputs["required"] == 2_000 * DIMO

    staking.stake(500 * DIMO, sender=operator)
    assert staking.isActive(operator, Role.OPERATOR)

    console["whitelist"](operator.address, "Operator", allowed=False)
    assert not staking.isActive(operator, Role.OPERATOR)


def test_slash_with_a_csv_and_every_owner_claims(env, operator, owners, tmp_path: Path):
    staking, token = env.staking, env.token
    owed = [100 * DIMO, 250 * DIMO, 50 * DIMO]
    csv_path = tmp_path / "impacted.csv"
    rows = ["owner,amount"] + [f"{o.address.lower()},{a}" for o, a in zip(owners, owed, strict=True)]
    csv_path.write_text("\n".join(rows) + "\n")
    treasury_before = token.balanceOf(env.treasury)
    staked_before = staking.stakeOf(operator)[0]

    result = env.console["slash"](operator.address, "600 DIMO", csv_path, "sold location data for resale")

    assert result.to_impacted == sum(owed) and result.to_treasury == 200 * DIMO
    assert result.tree_file == tmp_path / "impacted.tree.json" and result.tree_file.exists()
    assert token.balanceOf(env.treasury) - treasury_before == 200 * DIMO
    assert staking.stakeOf(operator)[0] == staked_before - 600 * DIMO
    root, remaining, _ = staking.slashPool(result.slash_id)
    assert "0x" + bytes(root).hex() == result.root and remaining == sum(owed)

    tree = PayoutTree.read(result.tree_file)  # what an owner downloads
    for owner, amount in zip(owners, owed, strict=True):
        assert token.balanceOf(owner) == 0
        (i,) = tree.indexes_of(owner.address)
        index, account, leaf_amount = tree.leaf(i)
        assert leaf_amount == amount
        staking.claimSlash(result.slash_id, index, account, leaf_amount, tree.proof(i), sender=owner)
        assert token.balanceOf(owner) == amount
        with pytest.raises(staking.AlreadyClaimed):
            staking.claimSlash(result.slash_id, index, account, leaf_amount, tree.proof(i), sender=owner)
    assert staking.slashPool(result.slash_id)[1] == 0


def test_claim_slash_one_liner_and_a_treasury_only_slash(env, operator, accounts, tmp_path: Path):
    owner = accounts[5]
    key = ANVIL_KEYS[5]  # the same mnemonic account as ape's accounts[5]
    csv_path = tmp_path / "one.csv"
    csv_path.write_text(f"{owner.address},{7 * DIMO}\n")
    result = env.console["slash"](operator.address, 10 * DIMO, csv_path, "late answer to a demand signal")
    assert env.console["claim_slash"](result.tree_file, key)
    assert env.token.balanceOf(owner) == 7 * DIMO
    assert env.console["claim_slash"](result.tree_file, key) == []  # nothing left to claim

    empty = tmp_path / "nobody.csv"
    empty.write_text("owner,amount\n")
    only_treasury = env.console["slash"](operator.address, 1 * DIMO, empty, "fee")
    assert only_treasury.to_impacted == 0 and only_treasury.tree_file is None
    assert bytes(env.staking.slashPool(only_treasury.slash_id)[0]) == bytes(32)


def test_slash_refuses_a_csv_owed_more_than_the_slash(env, operator, owners, tmp_path: Path):
    csv_path = tmp_path / "greedy.csv"
    csv_path.write_text(f"{owners[0].address},{10 * DIMO}\n")
    with pytest.raises(ValueError, match="more than the slash"):
        env.console["slash"](operator.address, 5 * DIMO, csv_path, "x")
    bad = tmp_path / "bad.csv"
    bad.write_text("not-an-address,5\n")
    with pytest.raises(ValueError, match=r"bad\.csv:1"):
        env.console["slash"](operator.address, 5 * DIMO, bad, "x")
    with pytest.raises(ValueError, match="Operator"):
        env.console["whitelist"](operator.address, "Oprator")


def test_a_proposed_slash_freezes_the_stake_the_target_races_to_withdraw(
    env, operator, accounts, chain, tmp_path
):
    """The issue's race: the vote takes days; the operator's unbonding matures meanwhile. The
    proposal made when the vote opened freezes it, and the slash takes it all afterwards."""
    staking, console = env.staking, env.console
    console["whitelist"](operator.address, "Operator", allowed=False)  # nothing required: it may unbond
    active, unbonding, _ = staking.stakeOf(operator)
    staking.requestUnstake(active, sender=operator)
    stake = active + unbonding
    slash_id = console["propose_slash"](operator.address, stake, "ipfs://proposal-12", order=3)
    proposal = staking.slashProposal(slash_id)
    assert (proposal.account, proposal.amount, proposal.subject, proposal.subjectId) == (
        operator.address,
        stake,
        SlashSubject.ORDER,
        3,
    )
    assert staking.freezeOf(operator) == (slash_id, proposal.expiresAt)

    chain.pending_timestamp += staking.unbondingPeriod() + 1  # matured during the vote
    chain.mine()
    with pytest.raises(staking.StakeFrozen):
        staking.withdraw(sender=operator)
    with pytest.raises(staking.StakeFrozen):
        staking.requestUnstake(1, sender=operator)

    empty = tmp_path / "nobody.csv"
    empty.write_text("owner,amount\n")
    treasury_before = env.token.balanceOf(env.treasury)
    result = console["slash"](operator.address, stake, empty, "ipfs://proposal-12", slash_id=slash_id)
    assert result.slash_id == slash_id and result.to_treasury == stake
    assert env.token.balanceOf(env.treasury) - treasury_before == stake
    assert staking.stakeOf(operator)[:2] == (0, 0)
    assert staking.freezeOf(operator) == (0, 0)


def test_cancel_slash_ends_the_freeze_and_an_operator_resigns(env, operator, accounts):
    staking, console = env.staking, env.console
    env.token.transfer(operator, 100 * DIMO, sender=accounts[0])
    env.token.approve(env.staking, 100 * DIMO, sender=operator)
    staking.stake(100 * DIMO, sender=operator)
    slash_id = console["propose_slash"](operator.address, "10 DIMO", "ipfs://disputed", product=1)
    with pytest.raises(staking.StakeFrozen):
        staking.requestUnstake(1, sender=operator)
    console["cancel_slash"](slash_id)
    assert staking.slashProposal(slash_id).status == SlashStatus.CANCELLED

    active = staking.stakeOf(operator)[0]
    console["whitelist"](operator.address, "Operator")
    console["set_curve"]("Operator", active, 0)  # every staked wei is required
    with pytest.raises(staking.StakeBelowRequired):
        staking.requestUnstake(1, sender=operator)
    staking.resign(Role.OPERATOR, sender=operator)
    assert not staking.isWhitelisted(operator, Role.OPERATOR)
    staking.requestUnstake(active, sender=operator)
    with pytest.raises(ValueError, match="not both"):
        console["propose_slash"](operator.address, 1, "x", product=1, order=2)
