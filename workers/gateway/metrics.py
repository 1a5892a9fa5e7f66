"""Prometheus metrics of the gateway: request counters and latency histograms by route
template (never by raw path, so vehicle ids do not explode the label space), refusals by
reason, credits spent, stream fan-out.

Several gateway processes (GATEWAY_WORKERS > 1) write their values to files under
PROMETHEUS_MULTIPROC_DIR (prometheus_client's multiprocess mode, which reads that variable
when it is imported), and each process's /metrics answers the sum of all of them."""

from __future__ import annotations

import os
from pathlib import Path

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead

#: Latency buckets (seconds) around the gateway's p99 goal of 20 ms.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.0075, 0.01, 0.015, 0.02, 0.03, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


class GatewayMetrics:
    """One registry per app, so tests can build several apps in one process."""

    def __init__(self, multiproc_dir: Path | None = None) -> None:
        self.multiproc_dir = multiproc_dir
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "gateway_requests_total",
            "HTTP requests answered",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "gateway_request_seconds",
            "Time to answer an HTTP request",
            ["method", "route"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.refusals = Counter(
            "gateway_refusals_total", "Requests refused, by reason", ["reason"], registry=self.registry
        )
        self.db_statements = Counter(
            "gateway_db_statements_total",
            "SQL statements (with BEGIN and COMMIT) the gateway sent to its database",
            registry=self.registry,
        )
        self.credits_spent = Counter(
            "gateway_credits_spent_total", "API credits spent", registry=self.registry
        )
        self.streams_open = Gauge(
            "gateway_streams_open",
            "Live SSE streams open",
            registry=self.registry,
            multiprocess_mode="livesum",
        )
        self.stream_events = Counter(
            "gateway_stream_events_total",
            "Vehicle signal events sent on live streams",
            registry=self.registry,
        )
        self.stream_feed_up = Gauge(
            "gateway_stream_feed_up",
            "1 while the stream hub is subscribed to the signal feed (every live process's)",
            registry=self.registry,
            multiprocess_mode="livemin",
        )
        self.stream_pushed = Counter(
            "gateway_stream_pushed_total",
            "Vehicles' observations the signal feed pushed to the stream hub for carried vehicles",
            registry=self.registry,
        )
        self.stream_store_reads = Counter(
            "gateway_stream_store_reads_total",
            "Carried vehicles the stream hub read from the store (first carried, feed outage, no feed)",
            registry=self.registry,
        )

    def exposition(self) -> bytes:
        """The Prometheus text of this process, or of every process writing to the
        multiprocess directory (summed) when there is one."""
        if self.multiproc_dir is None:
            return generate_latest(self.registry)
        registry = CollectorRegistry()
        MultiProcessCollector(registry, path=str(self.multiproc_dir))
        return generate_latest(registry)

    def close(self) -> None:
        """This process's live gauges leave the sums (multiprocess mode)."""
        if self.multiproc_dir is not None:
            mark_process_dead(os.getpid(), str(self.multiproc_dir))


def clear_multiproc_dir(directory: Path) -> None:
    """Removes the files a previous run's processes left (before the gateway's start)."""
    directory.mkdir(parents=True, exist_ok=True)
    for stale in directory.glob("*.db"):
        stale.unlink()
