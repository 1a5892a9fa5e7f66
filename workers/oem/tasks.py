"""Celery tasks of the OEM integration (DESIGN.md §4 names): `oem.schedule` fans out
`oem.pull` per due vehicle; `oem.command` relays one remote command. Thin wrappers over
workers/oem/jobs.py; OEM errors worth retrying are retried here with their own countdown
(the OEM's Retry-After, else exponential backoff with full jitter)."""

from __future__ import annotations

import logging
import random
from dataclasses import asdict
from typing import Any

from celery import Task

from workers.app import app
from workers.config import Settings
from workers.oem.errors import OemError, RateLimitedError
from workers.oem.jobs import pull_vehicle, relay_command, schedule_pulls

log = logging.getLogger(__name__)

#: Seconds a queued pull may wait for a worker before it is dropped (the schedule re-queues).
PULL_EXPIRES = 300
#: A failed command is retried quickly: it is dropped once older than OEM_COMMAND_TTL anyway.
COMMAND_RETRY_SECONDS = 2.0


def _countdown(task: Task, exc: OemError, settings: Settings) -> float:
    if isinstance(exc, RateLimitedError) and exc.retry_after is not None:
        return exc.retry_after
    ceiling = min(settings.task_retry_backoff_max, 2 ** (task.request.retries + 1))
    return random.uniform(1.0, max(ceiling, 1.0))


@app.task(name="oem.pull", bind=True)
def pull_task(self: Task, vehicle_id: int) -> dict[str, Any]:
    """Pulls one vehicle's signals through its connector and stores them."""
    runtime = app.runtime
    settings = runtime.settings
    try:
        outcome = pull_vehicle(int(vehicle_id), settings, runtime.database)
    except OemError as exc:
        if not exc.transient:
            raise
        raise self.retry(exc=exc, countdown=_countdown(self, exc, settings)) from exc
    if outcome.status != "stored":
        log.info("oem.pull %s: %s %s", vehicle_id, outcome.status, outcome.reason or "")
    return asdict(outcome)


@app.task(name="oem.schedule")
def schedule_task() -> dict[str, Any]:
    """Queues `oem.pull` for every member vehicle of an active product that is due."""
    runtime = app.runtime

    def enqueue(vehicle_id: int) -> None:
        pull_task.apply_async(kwargs={"vehicle_id": vehicle_id}, expires=PULL_EXPIRES)

    queued = schedule_pulls(runtime.settings, runtime.database, enqueue)
    return {"queued": queued}


@app.task(name="oem.command", bind=True)
def command_task(
    self: Task, *, request_id: str, vehicle_id: int, caller: str, command: str, requested_at: int
) -> dict[str, Any]:
    """Relays lock / unlock / start if `caller` holds the bit on the latest block."""
    runtime = app.runtime
    try:
        outcome = relay_command(
            request_id,
            vehicle_id=int(vehicle_id),
            caller=caller,
            command=command,
            requested_at=int(requested_at),
            settings=runtime.settings,
            db=runtime.database,
            chain=runtime.chain,
        )
    except OemError as exc:
        raise self.retry(exc=exc, countdown=COMMAND_RETRY_SECONDS) from exc
    return asdict(outcome)
