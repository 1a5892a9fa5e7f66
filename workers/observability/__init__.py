"""What an operator watches (docs/workers.md "Observability"): the workers' Prometheus metrics
(`metrics`: counters the code increments; `collectors`: gauges read from the database, the
broker and the node at scrape time) and the one logging setup of every process (`logs`:
structlog, JSON or console lines, request and task ids bound to every line).

Every process entry calls `configure_logging` (the Celery worker and beat through
workers/app.py's signals, the gateway in its app factory, `python -m workers.metrics`).
This part imports only the settings and the store (workers/config.py, workers/db)."""

from workers.observability.logs import (
    REQUEST_ID_HEADER,
    RequestIdMiddleware,
    bind_task,
    configure_logging,
    request_id_of,
    unbind_task,
)

__all__ = [
    "REQUEST_ID_HEADER",
    "RequestIdMiddleware",
    "bind_task",
    "configure_logging",
    "request_id_of",
    "unbind_task",
]
