"""Exactly-once settlement with real Celery worker processes on a private Redis: the worker is
SIGKILLed at each step of `settlement.submit` (before the send, after the send before the
receipt, after the receipt before the row update), restarted, and the broker re-delivers the
unacknowledged task: exactly one Settled event, members' claims verify on chain, the
Marketplace's books balance to the wei. A duplicate task afterwards changes nothing."""

from __future__ import annotations

import gc
import time
from pathlib import Path

import pytest
from sqlalchemy import select

from tests.support.celery_worker import CeleryWorker, RedisServer
from tests.support.databases import get_engine, session_scope
from tests.support.history import ACCOUNTS, OWNERS, History
from tests.support.market import market_with_pools, settings_for
from tests.workers.test_celery import finished
from workers.app import create_app
from workers.chain import connect
from workers.config import Settings, use_settings
from workers.db.settlement import ChainTx, SettlementEpoch
from workers.indexer.sync import Indexer
from workers.ledger import unclaimed_claims

FAULTS = ("settlement.submit:before_send", "settlement.submit:after_send", "settlement.submit:after_receipt")
VISIBILITY_TIMEOUT = 4


def worker_env(settings: Settings, broker: str, fault: str, marker: Path) -> dict[str, str]:
    return {
        "RPC_URL": settings.rpc_url,
        "DATABASE_URL": settings.database_url,
        "DEPLOYMENT_FILE": str(settings.deployment_file),
        "BROKER_URL": broker,
        "RESULT_BACKEND": broker.rsplit("/", 1)[0] + "/1",
        "CONFIRMATIONS": "0",
        "EPOCH_SECONDS": str(settings.epoch_seconds),
        "BROKER_VISIBILITY_TIMEOUT": str(VISIBILITY_TIMEOUT),
        "FAULT_POINT": fault,
        "FAULT_MARKER": str(marker),
    }


def wait_for(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.2)


def epoch_status(url: str, product: int, epoch: int) -> str | None:
    with session_scope(url, read_only=True) as session:
        return session.scalar(
            select(SettlementEpoch.status).where(
                SettlementEpoch.product_id == product, SettlementEpoch.epoch == epoch
            )
        )


@pytest.mark.parametrize("fault", FAULTS)
def test_a_worker_killed_while_submitting_settles_exactly_once(deployment, db_url, tmp_path, fault):
    anvil, manifest, path = deployment
    settings = settings_for(anvil.url, db_url, path)
    use_settings(settings)
    market = market_with_pools(History(anvil.w3, manifest), settings)
    epoch = market.epoch()
    v1, _v2, _v3, v4, v5 = market.history.vehicles
    market.add_usage(market.api, epoch, [(v1, OWNERS[0], 2), (v4, OWNERS[3], 1), (v5, OWNERS[1], 4)])
    market.end_epoch()
    settler_nonce = anvil.w3.eth.get_transaction_count(ACCOUNTS[0])

    redis_server = RedisServer(tmp_path, persistent=True)
    marker = tmp_path / "fault.fired"
    env = worker_env(settings, redis_server.url, fault, marker)
    client = create_app(
        settings.model_copy(update={"broker_url": redis_server.url, "result_backend": env["RESULT_BACKEND"]})
    )
    worker = CeleryWorker(env, "settlement", tmp_path)
    try:
        client.send_task("settlement.close_epoch", args=[market.api, epoch])
        assert worker.wait_exit(90) == -9, (
            f"the worker did not die at {fault}:\n{worker.log.read_text()[-2000:]}"
        )
        assert marker.exists()
        status = epoch_status(db_url, market.api, epoch)
        assert status == "submitting", f"after the crash at {fault} the epoch is {status}"

        # Redis hands an unacknowledged task out again once it is older than the visibility
        # timeout, checked when a worker starts (then every 100 s): restart after that.
        time.sleep(VISIBILITY_TIMEOUT + 1)
        worker = CeleryWorker(env, "settlement", tmp_path)  # restarted; the marker keeps it alive
        wait_for(lambda: epoch_status(db_url, market.api, epoch) == "settled", 90, "the re-delivered submit")
        duplicate = client.send_task("settlement.submit", args=[market.api, epoch])
        assert finished(env["RESULT_BACKEND"], [duplicate], 60) == {duplicate.id}
        del duplicate  # its finalizer talks to the broker: run it while the broker is up
        gc.collect()
    finally:
        client.close()
        worker.stop()
        redis_server.stop()

    assert len(market.settled_logs(market.api, epoch)) == 1
    assert anvil.w3.eth.get_transaction_count(ACCOUNTS[0]) == settler_nonce + 1
    with session_scope(db_url, read_only=True) as session:
        txs = session.scalars(select(ChainTx)).all()
        assert [(t.status, t.nonce) for t in txs] == [("mined", settler_nonce)]

    Indexer(connect(settings), get_engine(db_url), settings).sync()
    for owner in (OWNERS[0], OWNERS[3], OWNERS[1]):
        with session_scope(db_url, read_only=True) as session:
            (claim,) = unclaimed_claims(session, owner)
        market.claim(owner, claim)
    held, owed = market.balance_sheet()
    assert held == owed
