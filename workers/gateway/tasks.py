"""Queueing Celery tasks from the gateway by their stable names (DESIGN.md §4)."""

from __future__ import annotations

from typing import Any

from workers.config import Settings
from workers.gateway.problems import Problem


def send_task(settings: Settings, name: str, **kwargs: Any) -> str:
    """Queues task `name` with keyword arguments; its id. 503 when no broker answers."""
    from workers.app import app as celery_app  # noqa: PLC0415 - the gateway runs without Celery too

    try:
        result = celery_app.send_task(name, kwargs=kwargs)
    except Exception as exc:  # kombu raises transport-specific errors
        raise Problem("not_ready", f"the task queue is unavailable ({exc.__class__.__name__})") from exc
    return str(result.id)
