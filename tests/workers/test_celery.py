"""The Celery app itself: routing by task-name prefix, late acknowledgement everywhere, and a
Redis broker (started by the test, append-only file on) restarted while tasks are queued and
while a worker runs: no task is lost."""

from __future__ import annotations

import gc
import json
import time

import pytest
import redis

from tests.support.celery_worker import CeleryWorker, RedisServer
from tests.support.databases import get_engine
from tests.support.history import History
from tests.support.market import settings_for
from tests.support.projections import rows
from workers.app import QUEUES, app, beat_schedule, create_app, route_by_prefix
from workers.config import Settings, use_settings


def test_tasks_route_to_the_queue_of_their_prefix():
    app.loader.import_default_modules()
    names = {n for n in app.tasks if not n.startswith("celery.")}
    assert {"indexer.sync", "settlement.close", "settlement.root", "settlement.sweep"} <= names
    for name in names:
        assert name.split(".")[0] in QUEUES, f"{name} has no queue"
        assert route_by_prefix(name, (), {}, {})["queue"] == name.split(".")[0]
        task = app.tasks[name]
        assert task.acks_late and task.reject_on_worker_lost, f"{name} could be lost with its worker"
        assert task.retry_backoff and task.retry_jitter
    assert app.conf.worker_prefetch_multiplier == 1


def test_the_beat_schedule_runs_the_indexer_and_the_sweep():
    schedule = beat_schedule(Settings(sync_interval=2.0, settlement_interval=60.0))
    assert schedule["indexer-sync"]["task"] == "indexer.sync" and schedule["indexer-sync"]["schedule"] == 2.0
    assert schedule["settlement-sweep"]["task"] == "settlement.sweep"
    assert all("expires" in entry["options"] for entry in schedule.values())


@pytest.fixture
def world(deployment, db_url, tmp_path):
    anvil, manifest, path = deployment
    settings = settings_for(anvil.url, db_url, path)
    use_settings(settings)
    History(anvil.w3, manifest).token_and_treasury()
    return anvil, settings


def finished(backend: str, results, timeout: float) -> set[str]:
    """Ids of `results` whose success the result backend (Redis db 1) holds, read with plain
    GETs (no subscription to lose when the broker restarts), waiting up to `timeout`."""
    deadline = time.monotonic() + timeout
    store = redis.Redis.from_url(backend)
    while True:
        done = set()
        for r in results:
            try:
                meta = store.get(f"celery-task-meta-{r.id}")
            except redis.RedisError:
                meta = None
            if meta is not None and json.loads(meta)["status"] == "SUCCESS":
                done.add(r.id)
        if len(done) == len(results) or time.monotonic() > deadline:
            return done
        time.sleep(0.5)


def wait_delivered(worker: CeleryWorker, ids: set[str], timeout: float) -> set[str]:
    """Ids of tasks the worker's log shows received and run to the end of their body."""
    deadline = time.monotonic() + timeout
    while True:
        text = worker.log.read_text()
        ran = {i for i in ids if f"[{i}] succeeded" in text or f"[{i}] raised" in text}
        if ran == ids or time.monotonic() > deadline:
            return ran
        time.sleep(0.5)


def test_a_broker_restart_loses_no_task(world, tmp_path):
    anvil, settings = world
    redis_server = RedisServer(tmp_path, persistent=True)
    backend = redis_server.url.rsplit("/", 1)[0] + "/1"
    client = create_app(
        settings.model_copy(update={"broker_url": redis_server.url, "result_backend": backend})
    )
    env = {
        "RPC_URL": settings.rpc_url,
        "DATABASE_URL": settings.database_url,
        "DEPLOYMENT_FILE": str(settings.deployment_file),
        "BROKER_URL": redis_server.url,
        "RESULT_BACKEND": backend,
        "CONFIRMATIONS": "0",
        "BROKER_VISIBILITY_TIMEOUT": "5",
    }
    worker = None
    try:
        # Queued with no worker running, then the broker restarts: the tasks are still there.
        queued = [client.send_task("indexer.sync") for _ in range(5)]
        queued += [client.send_task("settlement.sweep") for _ in range(3)]
        redis_server.restart()
        worker = CeleryWorker(env, "indexer,settlement", tmp_path)
        assert finished(backend, queued, 60) == {r.id for r in queued}
        # The broker restarts under a running worker, with tasks queued and one in its hands:
        # every task is still delivered and run (one taken but not acknowledged comes back after
        # the visibility timeout, at the consumer's next restore pass: ~100 s on a quiet machine;
        # a restart during a pass leaves the restore mutex behind for UNACKED_MUTEX_EXPIRE, which
        # at kombu's default of 300 s once kept a task out past 480 s; a task taken off the queue
        # just as the broker went down was lost until workers/broker.py held it). Whether
        # a result reached the result backend (Redis too, restarting) is not the question here:
        # the worker's log shows each task received and run.
        anvil.mine(3)
        around = [client.send_task("indexer.sync") for _ in range(20)]
        redis_server.restart()
        around += [client.send_task("indexer.sync") for _ in range(3)]
        ids = {r.id for r in around}
        assert wait_delivered(worker, ids, 480) == ids
        del queued, around  # their finalizers talk to the broker: run them while it is up
        gc.collect()
    finally:
        client.close()
        if worker is not None:
            worker.stop()
        redis_server.stop()
    cursor = rows(get_engine(settings.database_url), "indexer_cursor")[0]
    assert cursor["last_block"] == anvil.w3.eth.block_number


def test_beat_and_worker_keep_the_index_current(world, tmp_path):
    """`celery beat` schedules indexer.sync; the worker applies new blocks within seconds."""
    anvil, settings = world
    redis_server = RedisServer(tmp_path)
    env = {
        "RPC_URL": settings.rpc_url,
        "DATABASE_URL": settings.database_url,
        "DEPLOYMENT_FILE": str(settings.deployment_file),
        "BROKER_URL": redis_server.url,
        "CONFIRMATIONS": "0",
        "SYNC_INTERVAL": "0.5",
        "SETTLEMENT_INTERVAL": "3600",
    }
    worker = CeleryWorker(env, "indexer", tmp_path)
    beat = CeleryWorker(env, "beat", tmp_path, beat=True)
    try:
        engine = get_engine(settings.database_url)
        target = anvil.w3.eth.block_number
        deadline = time.monotonic() + 60
        while not (cursor := rows(engine, "indexer_cursor")) or cursor[0]["last_block"] < target:
            assert time.monotonic() < deadline, "beat + worker never caught up"
            time.sleep(0.3)
    finally:
        beat.stop()
        worker.stop()
        redis_server.stop()
