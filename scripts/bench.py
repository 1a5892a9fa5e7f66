"""`make bench`: every benchmark module on its own fresh anvil and deployment (no module
sees another's accounts, nonces or state), printed as tables with ratios and written to
BENCHMARKS.md. Benchmarks measure; they are not timed tests.

    python -m scripts.bench [--only token,identity,...]
"""

from __future__ import annotations

import argparse
import importlib
import os
import platform
import subprocess
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path

from eth_account import Account

from benchmarks.framework import BenchContext, Table, write_report
from devkit.deployment import Deployer, deploy_all
from devkit.devnet import ANVIL_KEYS, AnvilNode
from workers.config import PROJECT_ROOT

#: Benchmark modules under benchmarks/, in the order they print.
BENCHES = (
    "token",
    "identity",
    "staking",
    "market",
    "oem",
    "gateway",
    "streams",
    "indexer",
    "scale",
    "soak",
)
REPORT = PROJECT_ROOT / "BENCHMARKS.md"


def machine_description() -> str:
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    anvil = subprocess.run(
        [str(PROJECT_ROOT / "node_modules/.bin/anvil"), "--version"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.splitlines()[0]
    return f"{cpu}, {os.cpu_count()} cores, Python {platform.python_version()}, {anvil}"


def run_module(name: str) -> list[Table]:
    """One benchmark module on a fresh anvil with a fresh deployment."""
    module = importlib.import_module(f"benchmarks.{name}")
    with tempfile.TemporaryDirectory() as tmp:
        node = AnvilNode("--code-size-limit", "100000", "--gas-limit", "100000000", log_dir=Path(tmp))
        try:
            manifest, _ = deploy_all(node.w3, ANVIL_KEYS[0], directory=Path(tmp))
            deployer = Deployer(node.w3, Account.from_key(ANVIL_KEYS[0]))
            return list(module.run(BenchContext(node.w3, manifest, deployer, ANVIL_KEYS)))
        finally:
            node.stop()


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--only", default="", help="comma-separated benchmark modules to run")
    args = parser.parse_args()
    selected = [b for b in BENCHES if not args.only or b in args.only.split(",")]

    tables: list[Table] = []
    for name in selected:
        for table in run_module(name):
            print(table.text())
            tables.append(table)

    header = (
        "# Benchmarks\n\nWritten by `make bench` on "
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC ({machine_description()}).\n"
        "Each module runs on its own fresh anvil and deployment; the rows of one table share one\n"
        "anvil. Gas is read from transaction receipts; ratios are ours / baseline.\n"
    )
    if not args.only:
        write_report(tables, header, REPORT)
        print(f"wrote {REPORT.relative_to(PROJECT_ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
