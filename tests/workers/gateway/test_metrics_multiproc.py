"""Several gateway processes with PROMETHEUS_MULTIPROC_DIR: each one's /metrics answers the
sum of all of them (prometheus_client's multiprocess mode reads the variable at import, so
each "process" here is a real one)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from workers.config import PROJECT_ROOT
from workers.gateway.metrics import clear_multiproc_dir

COUNT = """
from pathlib import Path
import sys
from workers.gateway.metrics import GatewayMetrics
metrics = GatewayMetrics(Path(sys.argv[1]))
metrics.credits_spent.inc(int(sys.argv[2]))
metrics.streams_open.inc()
if sys.argv[3] == "exit":
    metrics.close()
print(metrics.exposition().decode())
"""


def _process(directory: Path, credits: int, then: str) -> str:
    return subprocess.run(
        [sys.executable, "-c", COUNT, str(directory), str(credits), then],
        cwd=PROJECT_ROOT,
        env={**os.environ, "PYTHONPATH": str(PROJECT_ROOT), "PROMETHEUS_MULTIPROC_DIR": str(directory)},
        capture_output=True,
        text=True,
        check=True,
    ).stdout


def _value(exposition: str, name: str) -> float:
    line = next(line for line in exposition.splitlines() if line.startswith(name + " "))
    return float(line.split()[1])


def test_metrics_sum_every_gateway_process(tmp_path: Path) -> None:
    directory = tmp_path / "metrics"
    clear_multiproc_dir(directory)
    _process(directory, 3, "exit")
    last = _process(directory, 4, "stay")
    assert _value(last, "gateway_credits_spent_total") == 7  # both processes' counters
    assert _value(last, "gateway_streams_open") == 1  # the exited process's live gauge left


def test_a_new_start_forgets_the_last_runs_files(tmp_path: Path) -> None:
    directory = tmp_path / "metrics"
    clear_multiproc_dir(directory)
    _process(directory, 5, "stay")
    clear_multiproc_dir(directory)
    assert _value(_process(directory, 1, "stay"), "gateway_credits_spent_total") == 1
