"""Exactly-once settlement with real Celery worker processes on a private Redis: the worker is
SIGKILLed at one step of the settlement (closing a batch of periods before its commit; each of
proposeRoot and acceptRoot before the send, after the send before the receipt, after the
receipt before the row update), restarted, and the broker re-delivers the unacknowledged task:
each period closes once, one root is proposed and accepted with the settler's next two nonces,
members' claims pay on chain, and the Marketplace's books balance to the wei. A duplicate task
afterwards changes nothing."""

from __future__ import annotations

import gc
import time
from pathlib import Path

import pytest
from sqlalchemy import func, select

from tests.support.celery_worker import CeleryWorker, RedisServer
from tests.support.databases import get_engine, session_scope
from tests.support.history import ACCOUNTS, BROKER, OPERATOR, OWNERS, History
from tests.support.market import Market, settings_for, vesting_market
from tests.workers.test_celery import finished
from workers.app import create_app
from workers.chain import connect
from workers.config import Settings, use_settings
from workers.db.settlement import ChainTx, SettlementPeriod, SettlementRoot
from workers.indexer.sync import Indexer
from workers.ledger import member_claim
from workers.protocol.constants import MIN_ROOT_DELAY

FAULTS = (
    "settlement.close:before_commit",
    "settlement.propose:before_send",
    "settlement.propose:after_send",
    "settlement.propose:after_receipt",
    "settlement.accept:before_send",
    "settlement.accept:after_send",
    "settlement.accept:after_receipt",
)
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
        "SETTLEMENT_GRACE_SECONDS": str(settings.settlement_grace_seconds),
        "BROKER_VISIBILITY_TIMEOUT": str(VISIBILITY_TIMEOUT),
        "TASK_RETRY_BACKOFF_MAX": "2",
        "FAULT_POINT": fault,
        "FAULT_MARKER": str(marker),
    }


def wait_for(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.2)


def root_status(url: str) -> str | None:
    with session_scope(url, read_only=True) as session:
        return session.scalar(select(SettlementRoot.status).order_by(SettlementRoot.id.desc()).limit(1))


def balance_sheet(market: Market) -> tuple[int, int]:
    """(Marketplace's DIMO balance, what it owes: earnings + Σ member shares - claimed)."""
    m = market.market
    held = (
        market.history.contract("DimoToken")
        .functions.balanceOf(market.history.manifest.address("Marketplace"))
        .call()
    )
    shares = sum(m.orderVesting(o).call()[0] for o in market.orders.values())
    earnings = sum(m.claimable(a).call() for a in (OPERATOR, BROKER))
    return held, earnings + shares - m.totalClaimed().call()


@pytest.mark.parametrize("fault", FAULTS)
def test_a_worker_killed_while_settling_settles_exactly_once(deployment, db_url, tmp_path, fault):
    anvil, manifest, path = deployment
    settings = settings_for(anvil.url, db_url, path)
    use_settings(settings)
    market = vesting_market(History(anvil.w3, manifest), settings)
    v1, _v2, _v3, v4, v5 = market.history.vehicles
    stream_order = market.orders["stream"]
    market.add_usage(
        market.stream,
        stream_order,
        market.period(),
        [(v1, OWNERS[0], 2), (v4, OWNERS[3], 1), (v5, OWNERS[1], 4)],
    )
    market.end_period()
    indexer = Indexer(connect(settings), get_engine(db_url), settings)
    indexer.sync()
    settler_nonce = anvil.w3.eth.get_transaction_count(ACCOUNTS[0])

    redis_server = RedisServer(tmp_path, persistent=True)
    marker = tmp_path / "fault.fired"
    env = worker_env(settings, redis_server.url, fault, marker)
    client = create_app(
        settings.model_copy(update={"broker_url": redis_server.url, "result_backend": env["RESULT_BACKEND"]})
    )
    worker = CeleryWorker(env, "settlement", tmp_path)

    def survive_the_fault(step: str) -> None:
        nonlocal worker
        if not fault.startswith(f"settlement.{step}"):
            return
        assert worker.wait_exit(90) == -9, (
            f"the worker did not die at {fault}:\n{worker.log.read_text()[-2000:]}"
        )
        assert marker.exists()
        # Redis hands an unacknowledged task out again once it is older than the visibility
        # timeout, checked when a worker starts: restart after that.
        time.sleep(VISIBILITY_TIMEOUT + 1)
        worker = CeleryWorker(env, "settlement", tmp_path)  # restarted; the marker keeps it alive

    try:
        client.send_task("settlement.sweep")
        survive_the_fault("close")
        survive_the_fault("propose")
        wait_for(lambda: root_status(db_url) == "proposed", 90, "the proposal")
        market.history.advance(MIN_ROOT_DELAY)
        client.send_task("settlement.root")
        survive_the_fault("accept")
        wait_for(lambda: root_status(db_url) == "accepted", 90, "the acceptance")
        duplicate = client.send_task("settlement.root")
        assert finished(env["RESULT_BACKEND"], [duplicate], 60) == {duplicate.id}
        del duplicate  # its finalizer talks to the broker: run it while the broker is up
        gc.collect()
    finally:
        client.close()
        worker.stop()
        redis_server.stop()

    events = market.history.contract("Marketplace").events
    assert len(events.RootProposed().get_logs(from_block=0)) == 1
    assert len(events.RootAccepted().get_logs(from_block=0)) == 1
    assert anvil.w3.eth.get_transaction_count(ACCOUNTS[0]) == settler_nonce + 2
    with session_scope(db_url, read_only=True) as session:
        txs = session.scalars(select(ChainTx).order_by(ChainTx.nonce)).all()
        assert [(t.status, t.nonce) for t in txs] == [("mined", settler_nonce), ("mined", settler_nonce + 1)]
        closed = session.scalars(select(SettlementPeriod.product_id)).all()
        assert sorted(closed) == sorted({market.stream, market.api})  # one period each, once
        assert session.scalar(select(func.count()).select_from(SettlementRoot)) == 1

    indexer.sync()
    for owner in (OWNERS[0], OWNERS[3], OWNERS[1]):
        with session_scope(db_url, read_only=True) as session:
            claim = member_claim(session, owner)
        assert claim is not None and claim["claimable"] > 0
        market.claim(owner, claim["cumulative"], claim["proof"])
    held, owed = balance_sheet(market)
    assert held == owed
    assert market.market.totalClaimed().call() == market.market.totalTaken().call()
