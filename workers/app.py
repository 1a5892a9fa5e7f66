"""The one Celery app of the workers (DESIGN.md §4).

    celery -A workers.app worker -l info          # every queue
    celery -A workers.app worker -Q indexer       # one queue
    celery -A workers.app beat -l info            # the schedule

Task names are stable and start with their queue's name (`indexer.sync` → queue `indexer`);
routing is by that prefix. Task modules are imported from TASK_MODULES: add yours there.
Every task that must not be lost is acknowledged late and re-queued if its worker dies
(`acks_late` + `task_reject_on_worker_lost`), and retries with exponential backoff and jitter.
Tasks reach the database, the chain and the services through the app's one `Runtime`
(`app.runtime`, workers/runtime.py), built from the settings the app was made with.
"""

from __future__ import annotations

from typing import Any

from celery import Celery, Task, signals
from kombu import Exchange, Queue
from sqlalchemy.exc import OperationalError

from workers.broker import REDIS_SCHEMES, TRANSPORT_PATH
from workers.chain.rpc import TransientRpcError
from workers.config import Settings, get_settings
from workers.observability import bind_task, configure_logging, unbind_task
from workers.observability.metrics import TASKS
from workers.runtime import Runtime

#: Queues, named after the first word of the task names routed to them.
QUEUES = ("indexer", "oem", "settlement", "datasets", "access")
#: Seconds the Redis transport's restore mutex lives. A worker takes it to put unacknowledged
#: tasks back (a pass every ~100 s); a broker restart in the middle of a pass leaves the key
#: behind, and with kombu's default (300 s) every worker's next passes were refused until it
#: expired: a task taken before the restart waited 5-8 minutes. A pass takes milliseconds.
UNACKED_MUTEX_EXPIRE = 30
#: Modules whose tasks the app registers (other teams append theirs).
TASK_MODULES = [
    "workers.indexer.tasks",
    "workers.settlement.tasks",
    "workers.datasets.tasks",
    "workers.access.tasks",
    "workers.oem.tasks",
    "workers.signals.tasks",
]


class TransientError(RuntimeError):
    """Worth retrying later (the chain or database was not reachable, a lock was held …)."""


def route_by_prefix(
    name: str, args: Any, kwargs: Any, options: Any, task: Any = None, **_: Any
) -> dict | None:
    """`indexer.sync` → queue `indexer`; names without a known prefix use the default queue."""
    prefix = name.split(".", 1)[0]
    return {"queue": prefix, "routing_key": prefix} if prefix in QUEUES else None


def beat_schedule(settings: Settings) -> dict[str, dict[str, Any]]:
    """The periodic tasks. Entries expire when not picked up in time, so a stopped worker
    does not come back to a pile of stale ticks."""
    return {
        "indexer-sync": {
            "task": "indexer.sync",
            "schedule": settings.sync_interval,
            "options": {"expires": max(settings.sync_interval * 2, 5.0)},
        },
        "settlement-sweep": {
            "task": "settlement.sweep",
            "schedule": settings.settlement_interval,
            "options": {"expires": max(settings.settlement_interval, 5.0)},
        },
        "access-sweep": {
            "task": "access.sweep",
            "schedule": settings.sweep_interval,
            "options": {"expires": max(settings.sweep_interval, 5.0)},
        },
        "signal-storage": {
            "task": "datasets.signal_storage",
            "schedule": settings.signals_maintenance_interval,
            "options": {"expires": settings.signals_maintenance_interval},
        },
        "oem-schedule": {
            "task": "oem.schedule",
            "schedule": settings.oem_schedule_interval,
            "options": {"expires": max(settings.oem_schedule_interval, 5.0)},
        },
    }


class ReliableTask(Task):
    """The base of every task: late acknowledgement, re-queued when its worker dies, retried
    on transient errors with exponential backoff (capped) and full jitter."""

    acks_late = True
    reject_on_worker_lost = True
    autoretry_for = (TransientError, TransientRpcError, OperationalError, ConnectionError)
    retry_backoff = True
    retry_jitter = True


def _task_base(settings: Settings) -> type[ReliableTask]:
    return type(
        "Task",
        (ReliableTask,),
        {"max_retries": settings.task_max_retries, "retry_backoff_max": settings.task_retry_backoff_max},
    )


class WorkersApp(Celery):
    """The Celery app and the process's runtime its tasks use."""

    def __init__(self, settings: Settings) -> None:
        super().__init__("workers", task_cls=_task_base(settings))
        self.runtime = Runtime(settings)


def create_app(settings: Settings | None = None) -> WorkersApp:
    settings = settings or get_settings()
    celery = WorkersApp(settings)
    celery.conf.update(
        broker_url=settings.broker_url,
        # On Redis, kombu's transport with the window closed where it lost a task (workers/broker.py).
        broker_transport=TRANSPORT_PATH if settings.broker_url.startswith(REDIS_SCHEMES) else None,
        result_backend=settings.result_backend,
        include=list(TASK_MODULES),
        task_queues=[Queue(name, Exchange(name, type="direct"), routing_key=name) for name in QUEUES],
        task_default_queue=QUEUES[0],
        task_routes=(route_by_prefix,),
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        # One message at a time per process: a late-acked task never waits behind another.
        worker_prefetch_multiplier=1,
        task_serializer="json",
        result_serializer="json",
        accept_content=["json"],
        timezone="UTC",
        enable_utc=True,
        broker_connection_retry_on_startup=True,
        broker_transport_options={
            "visibility_timeout": settings.broker_visibility_timeout,
            "unacked_mutex_expire": UNACKED_MUTEX_EXPIRE,
        },
        result_expires=24 * 3600,
        beat_schedule=beat_schedule(settings),
        worker_hijack_root_logger=False,
    )
    return celery


# --- logs and metrics of every worker and beat process (workers/observability) ---------------


@signals.setup_logging.connect
def _setup_logging(loglevel: int | str | None = None, **_: Any) -> None:
    """Replaces Celery's logging setup: the workers' one (JSON or console lines)."""
    configure_logging(get_settings(), level=loglevel)


@signals.task_prerun.connect
def _bind_task(task_id: str, task: Task, **_: Any) -> None:
    bind_task(task_id, task.name)


@signals.task_postrun.connect
def _count_task(task: Task, state: str | None = None, **_: Any) -> None:
    TASKS.labels(task.name, state or "UNKNOWN").inc()
    unbind_task()


app = create_app()
