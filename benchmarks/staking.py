"""Staking gas (stake, permit, unstake, withdraw, slash, claim, sweep), claimSlash beside a plain
DIMO transfer to an empty address, slash gas at 10 vs 100,000 impacted owners, and the Python
Merkle builder's time for up to 1,000,000 leaves."""

from __future__ import annotations

import random
import statistics
import time
from dataclasses import dataclass
from typing import Any

from eth_account import Account
from web3 import Web3
from web3.contract import Contract

from benchmarks.framework import BenchContext, Table, gas_used, intrinsic_gas
from benchmarks.token import _permit_signature
from devkit.deployment import Deployer
from workers.merkle import PayoutTree
from workers.protocol import DIMO, MARKET_ROLE, UINT256_MAX, SlashSubject

STAKE = 100_000 * DIMO
#: The issue's goal: a typical claim costs at most this much more than a plain transfer.
CLAIM_OVERHEAD_GOAL = 25_000
#: Impact trees measured: a small incident, a mid-size one, the issue's 100,000 owners.
TREE_SIZES = (10, 1_000, 100_000)
#: Typical (not first-in-word) claims measured per tree; the median is reported.
TYPICAL_CLAIMS = 5
#: Merkle build sizes timed.
BUILD_SIZES = (10_000, 100_000, 1_000_000)
REASON = "benchmark: misuse of location data"


@dataclass
class Bench:
    ctx: BenchContext
    token: Contract
    staking: Contract

    def gas(self, contract: Contract, fn: str, *args: Any, sender: Deployer | None = None) -> int:
        return gas_used((sender or self.ctx.deployer).call(contract, fn, *args))

    def staker(self, key: str, amount: int) -> Deployer:
        """`key`'s account funded with `amount` DIMO and an approval to Staking."""
        who = self.ctx.sender(key)
        self.ctx.deployer.call(self.token, "transfer", who.account.address, amount)
        who.call(self.token, "approve", self.staking.address, UINT256_MAX)
        return who

    def warp(self, seconds: int) -> None:
        self.ctx.w3.provider.make_request("evm_increaseTime", [seconds])  # type: ignore[arg-type]
        self.ctx.w3.provider.make_request("evm_mine", [])  # type: ignore[arg-type]

    def propose(self, account: str, amount: int) -> tuple[int, int]:
        """(gas, slashId) of a slash proposal against `account` (it freezes the stake)."""
        receipt = self.ctx.deployer.call(
            self.staking, "proposeSlash", account, amount, SlashSubject.PRODUCT, 1, REASON
        )
        return gas_used(receipt), self.staking.functions.slashCount().call()

    def slash(self, account: str, amount: int, tree: PayoutTree | None) -> tuple[int, int, int]:
        """(gas, execution gas, slashId) of executing a slash of `account` paying `tree` (None:
        all to the Treasury), proposed just before. Execution gas leaves out the 21,000 base
        and the calldata bytes."""
        _, slash_id = self.propose(account, amount)
        return self.execute(slash_id, tree)

    def execute(self, slash_id: int, tree: PayoutTree | None) -> tuple[int, int, int]:
        """(gas, execution gas, slashId) of executing proposal `slash_id`, paying `tree`."""
        to_impacted = tree.total if tree else 0
        root = tree.root_bytes if tree else bytes(32)
        receipt = self.ctx.deployer.call(self.staking, "slash", slash_id, to_impacted, root)
        data = bytes(self.ctx.w3.eth.get_transaction(receipt["transactionHash"])["input"])
        gas = gas_used(receipt)
        return gas, gas - intrinsic_gas(data), slash_id

    def claim(self, slash_id: int, tree: PayoutTree, i: int) -> int:
        index, account, amount = tree.leaf(i)
        return self.gas(self.staking, "claimSlash", slash_id, index, account, amount, tree.proof_bytes(i))

    def transfer_to_empty(self) -> int:
        return self.gas(self.token, "transfer", Account.create().address, DIMO)


def impact_payouts(size: int, seed: int) -> list[tuple[str, int]]:
    """`size` fresh owners (holding no DIMO) with 0.001..1 DIMO each."""
    rnd = random.Random(seed)
    return [(Web3.to_checksum_address(rnd.randbytes(20)), rnd.randrange(10**15, DIMO)) for _ in range(size)]


def impact_tree(size: int, seed: int) -> PayoutTree:
    return PayoutTree.from_amounts(impact_payouts(size, seed))


def lifecycle_table(bench: Bench) -> Table:
    ctx = bench.ctx
    table = Table("Staking gas", ["operation", "gas", "note"])
    alice = bench.staker(ctx.keys[1], 2 * STAKE)
    table.add("stake (first)", bench.gas(bench.staking, "stake", STAKE // 2, sender=alice), "new stake slot")
    table.add("stake (top-up)", bench.gas(bench.staking, "stake", STAKE // 2, sender=alice), "")

    carol = ctx.sender(ctx.keys[3])
    ctx.deployer.call(bench.token, "transfer", carol.account.address, STAKE)
    deadline = ctx.w3.eth.get_block("latest")["timestamp"] + 3600
    v, r, s = _permit_signature(ctx, ctx.keys[3], bench.staking.address, STAKE, deadline)
    permit_gas = bench.gas(bench.staking, "stakeWithPermit", STAKE, deadline, v, r, s, sender=carol)
    table.add("stakeWithPermit (first)", permit_gas, "permit + stake in one transaction")

    table.add("requestUnstake (first)", bench.gas(bench.staking, "requestUnstake", DIMO, sender=alice), "")
    table.add(
        "requestUnstake (adds, restarts)", bench.gas(bench.staking, "requestUnstake", DIMO, sender=alice), ""
    )
    bench.warp(bench.staking.functions.unbondingPeriod().call())
    table.add("withdraw", bench.gas(bench.staking, "withdraw", sender=alice), "after the unbonding period")

    ctx.deployer.call(bench.staking, "grantRole", MARKET_ROLE, ctx.deployer.account.address)
    table.add(
        "setUsage (per purchase)", bench.gas(bench.staking, "setUsage", alice.account.address, 40, 2), ""
    )
    proposal, slash_id = bench.propose(alice.account.address, DIMO)
    table.add("proposeSlash (first)", proposal, "freezes the stake for the dispute window")
    first_slash, _, _ = bench.execute(slash_id, None)
    table.add("slash, all to the Treasury", first_slash, "executes a proposal; the deployment's first slash")
    bench.gas(bench.staking, "requestUnstake", 10 * DIMO, sender=carol)
    reaching, _, _ = bench.slash(carol.account.address, STAKE, None)
    table.add("slash reaching unbonding stake", reaching, "all of active, then unbonding; to the Treasury")
    return table


def slash_and_claim_tables(bench: Bench) -> list[Table]:
    """Slashes into trees of 10 .. 100,000 owners, claims in each, compares with a transfer."""
    ctx = bench.ctx
    bob = bench.staker(ctx.keys[2], STAKE)
    bench.gas(bench.staking, "stake", STAKE, sender=bob)
    warm = impact_tree(3, 0)
    bench.slash(bob.account.address, warm.total, warm)  # later slashes find every counter written

    slash_table = Table(
        "slash gas vs impacted owners",
        ["impacted owners", "slash gas", "execution gas", "tree build (s)", "note"],
    )
    claim_table = Table(
        "claimSlash vs a plain DIMO transfer to an address that holds none",
        [
            "owners",
            "proof depth",
            "first in word",
            "typical claim",
            "DIMO transfer",
            "typical - transfer",
            f"within {CLAIM_OVERHEAD_GOAL:,}",
        ],
    )
    pools: list[tuple[int, PayoutTree]] = []
    for size in TREE_SIZES:
        payouts = impact_payouts(size, size)
        started = time.perf_counter()
        tree = PayoutTree.from_amounts(payouts)
        built = time.perf_counter() - started
        gas, execution, slash_id = bench.slash(bob.account.address, tree.total + DIMO, tree)
        slash_table.add(f"{size:,}", gas, execution, f"{built:.2f}", "a root: no per-owner work on-chain")
        pools.append((slash_id, tree))

    for slash_id, tree in pools:
        first = bench.claim(slash_id, tree, 0)
        typical = statistics.median(bench.claim(slash_id, tree, i) for i in range(1, 1 + TYPICAL_CLAIMS))
        transfer = statistics.median(bench.transfer_to_empty() for _ in range(3))
        extra = int(typical - transfer)
        claim_table.add(
            f"{len(tree):,}",
            len(tree.proof_bytes(1)),
            first,
            int(typical),
            int(transfer),
            extra,
            extra <= CLAIM_OVERHEAD_GOAL,
        )
    claim_table.notes.append(
        "typical = median of claims 1..5, each sharing its bitmap word with an earlier claim; "
        "first in word = the claim that writes a fresh bitmap word (zero to non-zero)."
    )
    claim_table.notes.append(
        "every claim pays a fresh address, as does the transfer; the claim also updates the pool's word "
        "(found under the root its proof leads to: the proof check and the cap in one slot) and the "
        "bitmap, and carries the proof (about 570 gas a level, 512 of it calldata)."
    )

    slash_id, tree = pools[0]
    bench.warp(bench.staking.functions.claimWindow().call())
    sweep = bench.gas(bench.staking, "sweepSlash", slash_id)
    slash_table.add("sweepSlash (10-owner pool)", sweep, "-", "-", "the unclaimed rest, after the window")
    slash_table.notes.append(
        "execution gas = gas - 21,000 - calldata bytes; each row executes a proposal made just "
        "before (proposeSlash is in the table above)"
    )
    return [slash_table, claim_table]


def build_time_table() -> Table:
    table = Table(
        "Python Merkle builder (workers/merkle.py)",
        ["leaves", "build wall (s)", "build CPU (s)", "proof (µs)", "root"],
    )
    for size in BUILD_SIZES:
        rnd = random.Random(size)
        values = [(i, "0x" + rnd.randbytes(20).hex(), rnd.randrange(DIMO)) for i in range(size)]
        wall, cpu = time.perf_counter(), time.process_time()
        tree = PayoutTree.build(values)
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        started = time.perf_counter()
        proof = tree.proof(size // 2)
        proof_us = (time.perf_counter() - started) * 1e6
        assert tree.verify(size // 2, proof)
        table.add(f"{size:,}", f"{wall:.2f}", f"{cpu:.2f}", f"{proof_us:.0f}", tree.root[:18] + "…")
    table.notes.append(
        "goal: 1,000,000 leaves in under 10 s; wall time depends on what else the machine runs."
    )
    return table


def run(ctx: BenchContext) -> list[Table]:
    bench = Bench(ctx, ctx.contract("DimoToken"), ctx.contract("Staking"))
    return [lifecycle_table(bench), *slash_and_claim_tables(bench), build_time_table()]
