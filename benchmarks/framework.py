"""What every benchmark shares: one anvil with the deployment, gas read from receipts,
forge-built baselines, and tables with ratios rendered for the terminal and BENCHMARKS.md."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from eth_account import Account
from web3 import Web3
from web3.contract import Contract

from devkit.deployment import Deployer
from workers.chain.artifacts import load_artifact
from workers.chain.deployment import Manifest
from workers.config import PROJECT_ROOT

FORGE_OUT = PROJECT_ROOT / "out"
#: Intrinsic gas: every transaction's base, and each calldata byte (EIP-2028).
TX_BASE_GAS = 21_000
CALLDATA_ZERO_BYTE_GAS = 4
CALLDATA_BYTE_GAS = 16


@dataclass
class Table:
    """One printed table. `rows` are already-formatted cells."""

    title: str
    columns: list[str]
    rows: list[list[str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def add(self, *cells: object) -> None:
        self.rows.append([format_cell(c) for c in cells])

    def markdown(self) -> str:
        lines = [f"### {self.title}", "", "| " + " | ".join(self.columns) + " |"]
        lines.append("|" + "|".join("---" for _ in self.columns) + "|")
        lines += ["| " + " | ".join(row) + " |" for row in self.rows]
        lines += [""] + [f"- {note}" for note in self.notes]
        return "\n".join(lines).rstrip() + "\n"

    def text(self) -> str:
        widths = [max(len(str(x)) for x in col) for col in zip(self.columns, *self.rows, strict=False)]
        fmt = "  ".join(f"{{:<{w}}}" for w in widths)
        lines = [self.title, fmt.format(*self.columns), fmt.format(*("-" * w for w in widths))]
        lines += [fmt.format(*row) for row in self.rows]
        lines += [f"  * {note}" for note in self.notes]
        return "\n".join(lines) + "\n"


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system) of process `pid` and its child processes so far (0 for a
    process that is gone)."""
    tick = os.sysconf("SC_CLK_TCK")
    pids = [pid]
    children = Path(f"/proc/{pid}/task/{pid}/children")
    if children.exists():
        pids += [int(p) for p in children.read_text().split()]
    total = 0.0
    for one in pids:
        try:
            fields = Path(f"/proc/{one}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / tick
    return total


def format_cell(value: object) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:,.2f}"
    return str(value)


def ratio(ours: float, baseline: float) -> str:
    return f"{ours / baseline:.2f}x" if baseline else "n/a"


@dataclass
class BenchContext:
    """The chain every benchmark of one run measures on."""

    w3: Web3
    manifest: Manifest
    deployer: Deployer
    keys: tuple[str, ...]

    def contract(self, name: str) -> Contract:
        return self.w3.eth.contract(address=self.manifest.address(name), abi=load_artifact(name).abi)

    def sender(self, key: str) -> Deployer:
        return Deployer(self.w3, Account.from_key(key))

    def deploy_forge(
        self, source: str, name: str, args: list[Any], sender: Deployer | None = None
    ) -> Contract:
        """Deploys a contract compiled by forge (baselines under tests/forge/baselines)."""
        artifact = json.loads((FORGE_OUT / source / f"{name}.json").read_text())
        factory = self.w3.eth.contract(abi=artifact["abi"], bytecode=artifact["bytecode"]["object"])
        deployer = sender or self.deployer
        receipt = deployer.send(
            factory.constructor(*args).build_transaction({"gas": 30_000_000}), f"deploy {name}"
        )
        return self.w3.eth.contract(address=receipt["contractAddress"], abi=artifact["abi"])


def gas_used(receipt: Any) -> int:
    return int(receipt["gasUsed"])


@dataclass(frozen=True)
class Gas:
    """A transaction's gasUsed, and its execution gas: gasUsed minus the intrinsic 21,000 and
    calldata cost (two calls with other ids differ in calldata only)."""

    total: int
    execution: int


def intrinsic_gas(calldata: bytes) -> int:
    return TX_BASE_GAS + sum(CALLDATA_BYTE_GAS if b else CALLDATA_ZERO_BYTE_GAS for b in calldata)


def measure(ctx: BenchContext, sender: Deployer, contract: Contract, fn: str, *args: Any) -> Gas:
    """Sends `contract.fn(*args)` from `sender`; its Gas."""
    receipt = sender.call(contract, fn, *args)
    calldata = bytes(ctx.w3.eth.get_transaction(receipt["transactionHash"])["input"])
    return Gas(gas_used(receipt), gas_used(receipt) - intrinsic_gas(calldata))


def write_report(tables: list[Table], header: str, path: Path) -> None:
    path.write_text(header + "\n" + "\n".join(t.markdown() for t in tables))
