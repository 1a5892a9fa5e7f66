"""Celery tasks of the OEM integration (DESIGN.md §4 names): `oem.schedule` claims due links
and fans out `oem.pull` per vehicle; `oem.command` relays one remote command. Thin wrappers
over workers/oem/schedule.py and jobs.py. A pull's transient OEM errors are retried here
(exponential backoff, full jitter); a 429 is not: the pull holds the vehicle or connection
until its Retry-After and the schedule claims it again then."""

from __future__ import annotations

import logging
import random
from dataclasses import asdict
from typing import Any

from celery import Task

from workers.app import app
from workers.config import Settings
from workers.oem.errors import OemError
from workers.oem.jobs import pull_vehicle, relay_command
from workers.oem.schedule import schedule_pulls

log = logging.getLogger(__name__)

#: A failed command is retried quickly: it is dropped once older than OEM_COMMAND_TTL anyway.
COMMAND_RETRY_SECONDS = 2.0


def _countdown(task: Task, settings: Settings) -> float:
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
        raise self.retry(exc=exc, countdown=_countdown(self, settings)) from exc
    if outcome.status != "stored":
        log.info("oem.pull %s: %s %s", vehicle_id, outcome.status, outcome.reason or "")
    return asdict(outcome)


@app.task(name="oem.schedule")
def schedule_task() -> dict[str, Any]:
    """Claims the due links and queues `oem.pull` for each member vehicle of an active product."""
    runtime = app.runtime

    # A queued pull not started within half its link's lease is dropped: the link is
    # claimed again when the lease ends, never while this pull may still run.
    expires = runtime.settings.oem_pull_lease / 2

    def enqueue(vehicle_id: int) -> None:
        pull_task.apply_async(kwargs={"vehicle_id": vehicle_id}, expires=expires)

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
