"""Message brokers for deployment tests: a fresh virtual host on this machine's RabbitMQ
(made and deleted with `rabbitmqctl`), or, where RabbitMQ does not answer or cannot be
administered, a private redis-server (tests/support/celery_worker.RedisServer)."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from kombu import Connection

from tests.support.celery_worker import RedisServer

RABBITMQ_HOST = os.environ.get("TEST_RABBITMQ_HOST", "127.0.0.1")
RABBITMQ_PORT = int(os.environ.get("TEST_RABBITMQ_PORT", "5672"))
RABBITMQ_USER = os.environ.get("TEST_RABBITMQ_USER", "guest")
RABBITMQ_PASSWORD = os.environ.get("TEST_RABBITMQ_PASSWORD", "guest")


class BrokerUnavailableError(RuntimeError):
    """No broker of this kind can be used here (the message says why)."""


def _port_answers(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=2):
            return True
    except OSError:
        return False


def _rabbitmqctl(*args: str) -> None:
    done = subprocess.run(["rabbitmqctl", *args], capture_output=True, text=True, timeout=60, check=False)
    if done.returncode:
        raise BrokerUnavailableError(
            f"rabbitmqctl {' '.join(args)} failed: {(done.stderr or done.stdout)[-500:]}"
        )


@contextmanager
def rabbitmq_vhost() -> Iterator[str]:
    """An AMQP URL on a new, empty virtual host of this machine's RabbitMQ; deleted after."""
    if not _port_answers(RABBITMQ_HOST, RABBITMQ_PORT):
        raise BrokerUnavailableError(f"RabbitMQ does not answer on {RABBITMQ_HOST}:{RABBITMQ_PORT}")
    if shutil.which("rabbitmqctl") is None:
        raise BrokerUnavailableError("rabbitmqctl is not installed: cannot make a private virtual host")
    vhost = f"dimo-test-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    _rabbitmqctl("add_vhost", vhost)
    try:
        _rabbitmqctl("set_permissions", "-p", vhost, RABBITMQ_USER, ".*", ".*", ".*")
        url = f"amqp://{RABBITMQ_USER}:{RABBITMQ_PASSWORD}@{RABBITMQ_HOST}:{RABBITMQ_PORT}/{vhost}"
        with Connection(url, connect_timeout=5) as conn:
            conn.ensure_connection(max_retries=2)
        yield url
    finally:
        _rabbitmqctl("delete_vhost", vhost)


@contextmanager
def deployment_broker(log_dir: Path) -> Iterator[tuple[str, str]]:
    """(kind, URL): RabbitMQ on a fresh virtual host, else a private Redis."""
    try:
        with rabbitmq_vhost() as url:
            yield "rabbitmq", url
            return
    except BrokerUnavailableError as why:
        fallback_reason = str(why)
    try:
        redis_server = RedisServer(log_dir)
    except RuntimeError as exc:
        raise BrokerUnavailableError(f"{fallback_reason}; and no Redis either: {exc}") from exc
    try:
        yield f"redis (RabbitMQ unusable: {fallback_reason})", redis_server.url
    finally:
        redis_server.stop()
