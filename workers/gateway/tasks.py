"""Queueing Celery tasks from the gateway by their stable names (DESIGN.md §4), on the
broker the gateway's own settings name."""

from __future__ import annotations

from typing import Any

from workers.gateway.problems import Problem
from workers.gateway.state import GatewayState

#: A broker that does not answer fails the request quickly instead of hanging it.
RETRY_POLICY = {"max_retries": 2, "interval_start": 0.0, "interval_step": 0.2, "interval_max": 0.5}


def send_task(state: GatewayState, name: str, **kwargs: Any) -> str:
    """Queues task `name` with keyword arguments; its id. 503 when no broker answers."""
    try:
        from workers.app import create_app  # noqa: PLC0415 - the gateway runs without Celery too

        producer = state.lazy("celery", lambda: create_app(state.settings))
        result = producer.send_task(name, kwargs=kwargs, retry=True, retry_policy=RETRY_POLICY)
    except Exception as exc:  # kombu raises transport-specific errors
        raise Problem("not_ready", f"the task queue is unavailable ({exc.__class__.__name__})") from exc
    return str(result.id)
