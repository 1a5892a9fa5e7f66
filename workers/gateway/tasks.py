"""Queueing Celery tasks from the gateway by their stable names (DESIGN.md §4)."""

from __future__ import annotations

from typing import Any

from workers.config import Settings
from workers.gateway.problems import Problem

#: A broker that does not answer fails the request quickly instead of hanging it.
RETRY_POLICY = {"max_retries": 2, "interval_start": 0.0, "interval_step": 0.2, "interval_max": 0.5}


def send_task(settings: Settings, name: str, **kwargs: Any) -> str:
    """Queues task `name` with keyword arguments; its id. 503 when no broker answers."""
    try:
        from workers.app import app as celery_app  # noqa: PLC0415 - the gateway runs without Celery too

        result = celery_app.send_task(name, kwargs=kwargs, retry=True, retry_policy=RETRY_POLICY)
    except Exception as exc:  # kombu raises transport-specific errors
        raise Problem("not_ready", f"the task queue is unavailable ({exc.__class__.__name__})") from exc
    return str(result.id)
