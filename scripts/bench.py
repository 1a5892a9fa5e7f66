"""`make bench`: every benchmark on one fresh anvil, printed as tables with ratios and
written to BENCHMARKS.md. Benchmarks measure; they are not timed tests.

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
from workers.contracts import PROJECT_ROOT
from workers.deployment import Deployer, deploy_all
from workers.devnet import ANVIL_KEYS, AnvilNode

#: Benchmark modules under benchmarks/, in the order they print.
BENCHES = ("token", "identity", "staking", "market", "oem", "gateway", "indexer")
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


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--only", default="", help="comma-separated benchmark modules to run")
    args = parser.parse_args()
    selected = [b for b in BENCHES if not args.only or b in args.only.split(",")]

    tables: list[Table] = []
    with tempfile.TemporaryDirectory() as tmp:
        node = AnvilNode("--code-size-limit", "100000", "--gas-limit", "100000000", log_dir=Path(tmp))
        try:
            manifest, _ = deploy_all(node.w3, ANVIL_KEYS[0], directory=Path(tmp))
            ctx = BenchContext(
                node.w3, manifest, Deployer(node.w3, Account.from_key(ANVIL_KEYS[0])), ANVIL_KEYS
            )
            for name in selected:
                module = importlib.import_module(f"benchmarks.{name}")
                for table in module.run(ctx):
                    print(table.text())
                    tables.append(table)
        finally:
            node.stop()

    header = (
        "# Benchmarks\n\nWritten by `make bench` on "
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC ({machine_description()}).\n"
        "Gas is read from transaction receipts on one anvil in one run; ratios are ours / baseline.\n"
    )
    if not args.only:
        write_report(tables, header, REPORT)
        print(f"wrote {REPORT.relative_to(PROJECT_ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
