"""Prometheus metrics of the gateway: request counters and latency histograms by route
template (never by raw path, so vehicle ids do not explode the label space), refusals by
reason, credits spent, stream fan-out."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

#: Latency buckets (seconds) around the gateway's p99 goal of 20 ms.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.0075, 0.01, 0.015, 0.02, 0.03, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


class GatewayMetrics:
    """One registry per app, so tests can build several apps in one process."""

    def __init__(self) -> None:
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
        self.credits_spent = Counter(
            "gateway_credits_spent_total", "API credits spent", registry=self.registry
        )
        self.streams_open = Gauge("gateway_streams_open", "Live SSE streams open", registry=self.registry)
        self.stream_events = Counter(
            "gateway_stream_events_total",
            "Vehicle signal events sent on live streams",
            registry=self.registry,
        )
        self.stream_feed_up = Gauge(
            "gateway_stream_feed_up",
            "1 while the stream hub is subscribed to the signal feed",
            registry=self.registry,
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
