"""`python -m workers.metrics`: the workers' Prometheus exporter (docs/workers.md
"Observability"), on METRICS_HOST:METRICS_PORT, path `/metrics`.

One exporter serves what no single Celery process can: the gauges read at scrape time from
the database, the node and the broker (workers/observability/collectors.py), and the
counters every worker process wrote to PROMETHEUS_MULTIPROC_DIR (and its subdirectories: one
per worker container or service, so their process ids never collide), summed. The gateway
serves its own `/metrics`. Run one exporter per host whose workers share a metrics
directory; the database and broker gauges are the same from every exporter."""

from __future__ import annotations

import logging
from pathlib import Path

from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.core import Metric
from prometheus_client.multiprocess import MultiProcessCollector

from workers.app import QUEUES
from workers.chain.rpc import Rpc
from workers.config import Settings, get_settings
from workers.db.session import Database
from workers.observability import configure_logging
from workers.observability.collectors import BrokerCollector, DatabaseCollector

log = logging.getLogger(__name__)


class WorkerFilesCollector:
    """The counters of every worker process: the `*.db` files under the directory, at any depth."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def collect(self) -> list[Metric]:
        files = sorted(str(path) for path in self.directory.rglob("*.db"))
        return list(MultiProcessCollector.merge(files, accumulate=True))


def node_head(rpc: Rpc) -> tuple[int, int]:
    latest = rpc.get_block_by_tag("latest")
    assert latest is not None  # `latest` always answers a header or raises
    return int(latest["number"], 16), int(latest["timestamp"], 16)


def registry_for(settings: Settings, database: Database) -> CollectorRegistry:
    """Everything the exporter serves, read afresh at each scrape."""
    registry = CollectorRegistry()
    rpc = Rpc(settings.rpc_url, timeout=min(settings.rpc_timeout, 5.0))
    registry.register(DatabaseCollector(database.engine, settings, lambda: node_head(rpc)))
    registry.register(BrokerCollector(settings.broker_url, QUEUES))
    if settings.prometheus_multiproc_dir is not None:
        registry.register(WorkerFilesCollector(settings.prometheus_multiproc_dir))
    return registry


def main() -> None:
    settings = get_settings()
    configure_logging(settings)
    registry = registry_for(settings, Database(settings.database_url))
    server, thread = start_http_server(settings.metrics_port, addr=settings.metrics_host, registry=registry)
    log.info("metrics exporter on http://%s:%d/metrics", settings.metrics_host, server.server_port)
    thread.join()  # serves until the process is stopped


if __name__ == "__main__":
    main()
