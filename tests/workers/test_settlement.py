"""Settlement in process against a real anvil and both databases: each closed period pays the
vested release of each order to the vehicles that served it (or its members equally), once;
the cumulative root and every proof are stored before anything is sent; the root is proposed,
accepted once claimable, and members collect every product's earnings in one claim; the next
root is cumulative; a proposal that goes nowhere changes nothing in the accounting."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import func, select

from tests.support.databases import get_engine, session_scope
from tests.support.history import ACCOUNTS, CONSUMER, OPERATOR, OWNERS, History, terms
from tests.support.market import Market, settings_for, vesting_market
from workers.chain import connect
from workers.config import use_settings
from workers.db.settlement import (
    ChainTx,
    SettlementAccount,
    SettlementProduct,
    SettlementRoot,
    SettlementRootLeaf,
)
from workers.indexer.sync import Indexer
from workers.ledger import member_claim
from workers.ledger.shares import period_release, released, released_scaled
from workers.merkle import verify_claim
from workers.protocol import DIMO, Kind
from workers.protocol.constants import MIN_ROOT_DELAY
from workers.settlement import PRECISION, NotYetError, Settlement


@pytest.fixture
def market(deployment, db_url) -> Market:
    anvil, manifest, path = deployment
    settings = settings_for(anvil.url, db_url, path)
    use_settings(settings)
    return vesting_market(History(anvil.w3, manifest), settings)


def service(market: Market) -> Settlement:
    return Settlement(connect(market.settings), get_engine(market.settings.database_url), market.settings)


def index(market: Market) -> None:
    Indexer(connect(market.settings), get_engine(market.settings.database_url), market.settings).sync()


def close_all(svc: Settlement) -> None:
    for product_id in svc.products_to_close():
        svc.close_periods(product_id)


def owed(market: Market) -> dict[str, int]:
    with session_scope(market.settings.database_url, read_only=True) as session:
        return {a.account: a.owed for a in session.scalars(select(SettlementAccount))}


def test_the_chain_vests_exactly_what_the_share_rule_computes(market):
    """vestedMemberAmount(p) == floor(Σ releasedScaled / PRECISION) over p's orders, at any time."""
    orders = {market.stream: market.orders["stream"], market.api: market.orders["api"]}
    for step in (0, 1_234, 86_400 * 3 + 7, 86_400 * 31, 86_400 * 62):
        market.history.advance(step)
        now = market.now
        for product, order in orders.items():
            v = market.vesting(order)
            assert market.market.vestedMemberAmount(product).call() == released_scaled(v, now) // PRECISION
            assert released(v, now) <= v.member_share


def test_a_refunded_order_stops_where_the_chain_stops_it(market):
    """After a terms bump the buyer takes back the unserved part of the term: from the refund on
    the rule releases everything else, exactly what the chain added to the product at once."""
    market.history.advance(86_400 * 2 + 321)
    market.history.tx("DataProducts", "updateTerms", market.api, terms(Kind.API, DIMO // 50), sender=OPERATOR)
    api_order = market.orders["api"]
    market.history.tx("Marketplace", "refund", api_order, sender=CONSUMER)
    v = market.vesting(api_order)
    assert v.refunded_at is not None and v.refunded_at < v.ends_at
    market.history.advance(86_400 * 40)
    now = market.now
    vested = market.market.vestedMemberAmount(market.api).call()
    assert v.refunded_amount is not None and 0 < v.refunded_amount < v.member_share
    assert released_scaled(v, now) == (v.member_share - v.refunded_amount) * PRECISION
    assert released(v, now) == vested == released(v, v.refunded_at)
    assert released(v, v.refunded_at - 1) < vested  # the members' part of the tail lands at the refund


def test_periods_close_once_and_members_collect_in_one_claim(market):
    svc = service(market)
    v1, _v2, _v3, v4, v5 = market.history.vehicles
    first = market.period()
    stream_order, api_order = market.orders["stream"], market.orders["api"]
    # The stream served v1 three units and v4 one; the API order served nobody (members share).
    market.add_usage(market.stream, stream_order, first, [(v1, OWNERS[0], 3), (v4, OWNERS[3], 1)])
    index(market)
    assert svc.products_to_close() == []  # the period is still running
    market.end_period()
    index(market)
    assert svc.products_to_close() == [market.stream, market.api]
    close_all(svc)
    close_all(svc)  # again: nothing closes twice

    s, a = market.vesting(stream_order), market.vesting(api_order)
    seconds = market.settings.epoch_seconds
    rs, ra = period_release(s, first, seconds), period_release(a, first, seconds)
    assert rs > 0 and ra > 0
    expected = {
        OWNERS[0].lower(): rs * 3 // 4 + ra // 2,
        OWNERS[3].lower(): rs * 1 // 4 + ra // 2,
    }
    assert owed(market) == expected
    with session_scope(market.settings.database_url, read_only=True) as session:
        cursors = {c.product_id: c for c in session.scalars(select(SettlementProduct))}
    assert cursors[market.stream].next_period == first + 1
    assert cursors[market.stream].taken + cursors[market.stream].carry == rs
    assert cursors[market.api].taken + cursors[market.api].carry == ra

    # The root and every proof are stored before anything is sent.
    built = svc.build_root()
    assert built is not None and built.status == "computed" and built.total == sum(expected.values())
    with session_scope(market.settings.database_url, read_only=True) as session:
        assert session.scalar(select(func.count()).select_from(ChainTx)) == 0
        leaves = session.scalars(
            select(SettlementRootLeaf).where(SettlementRootLeaf.root_id == built.id)
        ).all()
    assert {leaf.account: leaf.cumulative for leaf in leaves} == expected
    assert svc.build_root() == built  # in flight: no second root

    with pytest.raises(NotYetError, match="claimable at"):
        svc.settle()  # proposed, pending for the root delay
    pending, claimable_at, _ = market.market.pendingRoot().call()
    in_flight = svc.in_flight()
    assert "0x" + pending.hex() == built.root and in_flight.status == "proposed"
    assert in_flight.claimable_at == claimable_at
    market.history.advance(MIN_ROOT_DELAY)
    accepted = svc.settle()
    assert accepted is not None and accepted.status == "accepted"
    assert "0x" + market.market.root().call().hex() == built.root
    assert market.market.takenMemberAmount(market.stream).call() == cursors[market.stream].taken
    assert market.market.takenMemberAmount(market.api).call() == cursors[market.api].taken

    index(market)
    for owner in (OWNERS[0], OWNERS[3]):
        with session_scope(market.settings.database_url, read_only=True) as session:
            claim = member_claim(session, owner)
        assert claim is not None and claim["claimable"] == expected[owner.lower()] and claim["claimed"] == 0
        assert verify_claim(claim["root"], (claim["account"], claim["cumulative"]), claim["proof"])
        before = market.balance(owner)
        market.claim(owner, claim["cumulative"], claim["proof"])  # both products in one claim
        assert market.balance(owner) - before == expected[owner.lower()]

    # Later periods: the next root is cumulative; members collect only the increment.
    second = market.period()
    market.add_usage(market.stream, stream_order, second, [(v5, OWNERS[1], 2)])
    market.end_period(3)
    index(market)
    close_all(svc)
    totals = owed(market)
    assert totals[OWNERS[1].lower()] >= period_release(s, second, seconds) - 1
    with pytest.raises(NotYetError):
        svc.settle()
    market.history.advance(MIN_ROOT_DELAY)
    assert svc.settle().status == "accepted"
    index(market)
    for owner in (OWNERS[0], OWNERS[1], OWNERS[3]):
        with session_scope(market.settings.database_url, read_only=True) as session:
            claim = member_claim(session, owner)
        assert claim is not None and claim["cumulative"] == totals[owner.lower()]
        before = market.balance(owner)
        market.claim(owner, claim["cumulative"], claim["proof"])
        assert market.balance(owner) - before == claim["claimable"] > 0
    for product in (market.stream, market.api):
        assert (
            market.market.takenMemberAmount(product).call()
            <= market.market.vestedMemberAmount(product).call()
        )
    assert market.market.totalClaimed().call() == sum(totals.values()) == market.market.totalTaken().call()
    assert svc.settle() is None  # nothing new


def test_a_revoked_root_changes_nothing_and_the_next_one_includes_it(market):
    svc = service(market)
    v1 = market.history.vehicles[0]
    market.add_usage(market.stream, market.orders["stream"], market.period(), [(v1, OWNERS[0], 1)])
    market.end_period()
    index(market)
    close_all(svc)
    with pytest.raises(NotYetError):
        svc.settle()
    revoked = svc.in_flight()
    market.history.tx("Marketplace", "revokePendingRoot")
    market.history.advance(MIN_ROOT_DELAY)
    assert svc.settle().status == "revoked"  # the chain moved on: recorded
    assert svc.settle() is None  # and nothing new to propose yet
    with session_scope(market.settings.database_url, read_only=True) as session:
        assert session.get(SettlementRoot, revoked.id).status == "revoked"
    before = owed(market)
    market.end_period()
    index(market)
    close_all(svc)
    after = owed(market)
    assert all(after[a] >= x for a, x in before.items())
    with pytest.raises(NotYetError):
        svc.settle()
    market.history.advance(MIN_ROOT_DELAY)
    view = svc.settle()
    assert view.status == "accepted" and view.total == sum(after.values())
    assert market.market.totalTaken().call() == view.total


def test_a_period_closes_only_after_its_grace(market):
    grace = 600
    svc = Settlement(
        connect(market.settings),
        get_engine(market.settings.database_url),
        market.settings.model_copy(update={"settlement_grace_seconds": grace}),
    )
    first = market.period()
    market.end_period()
    index(market)
    assert svc.products_to_close() == []  # ended, but usage of its last seconds may still come
    late = market.history.vehicles[0]
    market.add_usage(market.stream, market.orders["stream"], first, [(late, OWNERS[0], 1)])
    market.history.advance(grace)
    index(market)
    assert svc.products_to_close() == [market.stream, market.api]
    close_all(svc)
    release = period_release(market.vesting(market.orders["stream"]), first, market.settings.epoch_seconds)
    assert owed(market)[OWNERS[0].lower()] >= release  # the late call's vehicle took the stream's period


def test_two_workers_settling_at_once_propose_once(market):
    svc_a, svc_b = service(market), service(market)
    market.add_usage(
        market.stream, market.orders["stream"], market.period(), [(market.history.vehicles[0], OWNERS[0], 5)]
    )
    market.end_period()
    index(market)
    close_all(svc_a)
    errors: list[BaseException] = []

    def run(svc: Settlement) -> None:
        try:
            svc.settle()
        except NotYetError as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(s,)) for s in (svc_a, svc_b)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    with session_scope(market.settings.database_url, read_only=True) as session:
        assert [t.status for t in session.scalars(select(ChainTx))] == ["mined"]
        assert session.scalar(select(func.count()).select_from(SettlementRoot)) == 1
    logs = market.history.contract("Marketplace").events.RootProposed().get_logs(from_block=0)
    assert len(logs) == 1


def test_a_dropped_proposal_is_recorded_again_and_loses_nothing(market):
    svc = service(market)
    market.add_usage(
        market.stream, market.orders["stream"], market.period(), [(market.history.vehicles[0], OWNERS[0], 1)]
    )
    market.end_period()
    index(market)
    close_all(svc)
    built = svc.build_root()
    with session_scope(market.settings.database_url) as session:
        root = session.get(SettlementRoot, built.id)
        svc._record_propose(session, root)  # recorded (signed, nonce taken), not sent yet
        nonce = session.get(ChainTx, root.propose_tx_id).nonce
    # Before it is sent, the settler key spends that nonce elsewhere: the proposal can never be mined.
    w3 = market.history.w3
    w3.eth.send_transaction({"from": ACCOUNTS[0], "to": ACCOUNTS[1], "value": 1, "nonce": nonce})
    assert svc.settle().status == "computed"  # dropped: back to computed, nothing else changed
    with session_scope(market.settings.database_url, read_only=True) as session:
        assert [t.status for t in session.scalars(select(ChainTx).order_by(ChainTx.id))] == ["dropped"]
    with pytest.raises(NotYetError):
        svc.settle()  # recorded again with the next nonce, proposed
    market.history.advance(MIN_ROOT_DELAY)
    view = svc.settle()
    assert view.id == built.id and view.status == "accepted" and view.total == built.total
    assert market.market.totalTaken().call() == built.total
