"""Settlement in process against a real anvil and both databases: shares by the DESIGN rule,
root and proofs stored before anything is sent, one Settled per epoch however often the tasks
run, members' claims verify on chain, the Marketplace's balance sheet conserves to the wei."""

from __future__ import annotations

import threading

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from tests.support.databases import get_engine, session_scope
from tests.support.history import ACCOUNTS, OWNERS, History
from tests.support.market import Market, market_with_pools, settings_for
from workers.chain import connect
from workers.config import use_settings
from workers.db.settlement import ChainTx, SettlementEpoch, SettlementLeaf, Usage
from workers.indexer.sync import Indexer
from workers.ledger import Contribution, unclaimed_claims
from workers.merkle import verify
from workers.protocol import ZERO_ADDRESS
from workers.settlement import NotYetError, Settlement, SettlementError, compute_shares

# --- the share rule ---------------------------------------------------------------------------

contributions = st.lists(
    st.builds(
        Contribution,
        vehicle_id=st.integers(1, 30),
        owner=st.sampled_from([*[a.lower() for a in ACCOUNTS[:6]], ZERO_ADDRESS]),
        units=st.integers(0, 10**6),
    ),
    max_size=60,
)


@given(pool=st.integers(0, 10**30), items=contributions)
@settings(max_examples=300, deadline=None)
def test_shares_never_exceed_the_pool_and_round_down(pool, items):
    shares = compute_shares(pool, items)
    assert shares.amount <= pool and shares.remainder == pool - shares.amount
    total = sum(c.units for c in items)
    assert shares.total_units == total
    per_vehicle: dict[tuple[int, str], int] = {}
    for c in items:
        per_vehicle[(c.vehicle_id, c.owner)] = per_vehicle.get((c.vehicle_id, c.owner), 0) + c.units
    expected: dict[str, int] = {}
    for (_v, owner), units in per_vehicle.items():
        if owner != ZERO_ADDRESS and total:
            expected[owner] = expected.get(owner, 0) + pool * units // total
    assert {a: x for _, a, x in shares.leaves} == {a: x for a, x in expected.items() if x > 0}
    # Rounding loses less than one unit of money per (vehicle, owner), plus the unowned part.
    unowned = sum(u for (_v, o), u in per_vehicle.items() if o == ZERO_ADDRESS)
    if total:
        assert shares.remainder <= len(per_vehicle) + pool * unowned // total + 1
    assert [i for i, _, _ in shares.leaves] == list(range(len(shares.leaves)))
    assert [a for _, a, _ in shares.leaves] == sorted(a for _, a, _ in shares.leaves)


def test_shares_follow_contribution():
    shares = compute_shares(
        1_000, [Contribution(1, "0xaa", 1), Contribution(2, "0xbb", 2), Contribution(3, "0xbb", 0)]
    )
    assert shares.leaves == [(0, "0xaa", 333), (1, "0xbb", 666)] and shares.remainder == 1


# --- against the chain -------------------------------------------------------------------------


@pytest.fixture
def market(deployment, db_url) -> Market:
    anvil, manifest, path = deployment
    settings = settings_for(anvil.url, db_url, path)
    use_settings(settings)
    return market_with_pools(History(anvil.w3, manifest), settings)


def service(market: Market) -> Settlement:
    return Settlement(connect(market.settings), get_engine(market.settings.database_url), market.settings)


def indexer(market: Market) -> Indexer:
    return Indexer(connect(market.settings), get_engine(market.settings.database_url), market.settings)


def test_an_epoch_settles_once_and_members_claim(market):
    epoch = market.epoch()
    v1, _v2, _v3, v4, v5 = market.history.vehicles
    market.add_usage(market.api, epoch, [(v1, OWNERS[0], 3), (v4, OWNERS[3], 1), (v5, OWNERS[1], 1)])
    pool = market.history.contract("Marketplace").functions.memberPool(market.api).call()
    svc = service(market)
    with pytest.raises(NotYetError, match="runs until"):
        svc.close_epoch(market.api, epoch)
    market.end_epoch()
    closed = svc.close_epoch(market.api, epoch)
    assert closed.status == "computed" and closed.pool == pool
    assert closed.amount == pool * 3 // 5 + pool // 5 + pool // 5 and closed.amount <= pool
    # Root and every proof are stored before anything is sent.
    with session_scope(market.settings.database_url, read_only=True) as session:
        leaves = session.scalars(select(SettlementLeaf).where(SettlementLeaf.epoch == epoch)).all()
        assert len(leaves) == 3 and session.scalars(select(ChainTx)).all() == []
        assert all(u.included for u in session.scalars(select(Usage)))
    assert svc.close_epoch(market.api, epoch) == closed  # closing again finds the record

    done = svc.submit(market.api, epoch)
    assert done.status == "settled" and done.tx_hash
    assert svc.submit(market.api, epoch).status == "settled"
    assert len(market.settled_logs(market.api, epoch)) == 1

    indexer(market).sync()
    held, owed = market.balance_sheet()
    assert held == owed
    for owner in (OWNERS[0], OWNERS[3], OWNERS[1]):
        with session_scope(market.settings.database_url, read_only=True) as session:
            (claim,) = unclaimed_claims(session, owner)
        assert verify(claim["root"], (claim["index"], claim["account"], claim["amount"]), claim["proof"])
        before = market.history.contract("DimoToken").functions.balanceOf(owner).call()
        market.claim(owner, claim)
        after = market.history.contract("DimoToken").functions.balanceOf(owner).call()
        assert after - before == claim["amount"]
    indexer(market).sync()
    with session_scope(market.settings.database_url, read_only=True) as session:
        assert all(unclaimed_claims(session, o) == [] for o in OWNERS)
    held, owed = market.balance_sheet()
    assert held == owed


def test_the_remainder_stays_in_the_pool_for_the_next_epoch(market):
    svc = service(market)
    first = market.epoch()
    v1, _v2, _v3, v4, _v5 = market.history.vehicles
    market.add_usage(market.api, first, [(v1, OWNERS[0], 1), (v4, OWNERS[3], 1), (v4, OWNERS[3], 1)])
    market.end_epoch()
    one = svc.close_epoch(market.api, first)
    svc.submit(market.api, first)
    pool_after = market.history.contract("Marketplace").functions.memberPool(market.api).call()
    assert pool_after == one.remainder == one.pool - one.amount
    second = market.epoch()
    market.add_usage(market.api, second, [(v1, OWNERS[0], 1)], tag="b")
    market.end_epoch()
    two = svc.close_epoch(market.api, second)
    assert two.pool == pool_after and two.amount == pool_after  # one member takes the carried rest
    assert svc.submit(market.api, second).status == "settled"


def test_duplicated_submits_running_at_once_settle_once(market):
    svc_a, svc_b = service(market), service(market)
    epoch = market.epoch()
    market.add_usage(market.api, epoch, [(market.history.vehicles[0], OWNERS[0], 5)])
    market.end_epoch()
    svc_a.close_epoch(market.api, epoch)
    results = []
    threads = [
        threading.Thread(target=lambda s=s: results.append(s.submit(market.api, epoch)))
        for s in (svc_a, svc_b)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert {r.status for r in results} == {"settled"}
    assert len(market.settled_logs(market.api, epoch)) == 1
    with session_scope(market.settings.database_url, read_only=True) as session:
        assert len(session.scalars(select(ChainTx)).all()) == 1


def test_a_settlement_the_chain_would_refuse_is_never_sent(market):
    svc = service(market)
    epoch = market.epoch()
    market.add_usage(market.api, epoch, [(market.history.vehicles[0], OWNERS[0], 5)])
    market.end_epoch()
    svc.close_epoch(market.api, epoch)
    # Someone else settles a later epoch first: epoch `epoch` can no longer be settled.
    market.history.tx("Marketplace", "settle", market.api, epoch + 5, 1, "0x" + "11" * 32)
    nonce = market.history.w3.eth.get_transaction_count(ACCOUNTS[0])
    view = svc.submit(market.api, epoch)
    assert view.status == "failed" and "EpochNotIncreasing" in view.error
    assert market.history.w3.eth.get_transaction_count(ACCOUNTS[0]) == nonce  # nothing sent
    assert market.settled_logs(market.api, epoch) == []
    with session_scope(market.settings.database_url, read_only=True) as session:
        assert session.scalars(select(ChainTx)).all() == []
    later = market.epoch()
    market.add_usage(market.api, later, [(market.history.vehicles[0], OWNERS[0], 5)], tag="x")
    with pytest.raises(SettlementError, match="settled epoch"):
        market.end_epoch() or svc.close_epoch(market.api, epoch + 1)


def test_an_empty_epoch_sends_nothing(market):
    svc = service(market)
    epoch = market.epoch()
    market.add_usage(market.api, epoch, [(market.history.vehicles[0], ZERO_ADDRESS, 5)])  # owner unknown
    market.end_epoch()
    view = svc.close_epoch(market.api, epoch)
    assert view.status == "empty" and view.amount == 0
    assert svc.submit(market.api, epoch).status == "empty"
    assert market.settled_logs(market.api, epoch) == []


def test_the_sweep_finds_ended_epochs_and_late_usage(market):
    svc = service(market)
    epoch = market.epoch()
    market.add_usage(market.api, epoch, [(market.history.vehicles[0], OWNERS[0], 5)])
    assert svc.pending_work() == ([], [])
    market.end_epoch()
    assert svc.pending_work() == ([(market.api, epoch)], [])
    svc.close_epoch(market.api, epoch)
    assert svc.pending_work() == ([], [(market.api, epoch)])
    svc.submit(market.api, epoch)
    market.add_usage(market.api, epoch, [(market.history.vehicles[0], OWNERS[0], 1)], tag="late")
    market.end_epoch()
    to_close, _ = svc.pending_work()
    assert to_close == [(market.api, epoch + 1)]  # late rows go into the next epoch
    with session_scope(market.settings.database_url, read_only=True) as session:
        assert (
            session.scalar(select(SettlementEpoch.status).where(SettlementEpoch.epoch == epoch)) == "settled"
        )
