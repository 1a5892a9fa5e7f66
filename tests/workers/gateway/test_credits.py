"""API credits are spent atomically: with 10 credits and 50 concurrent spends exactly 10
succeed, on SQLite and on PostgreSQL, whether the counter exists yet or not; the metered
call's fused spend (workers/gateway/hotpath.py) too, counting usage with the credit."""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import select

from tests.support.databases import get_engine, session_scope
from workers.access.rule import Entitlement, OrderFacts, Terms
from workers.db.gateway import ApiCredit, GatewaySession
from workers.db.settlement import UsageCounter
from workers.gateway.credits import ensure_counter, in_spending_order, spend_credit
from workers.gateway.hotpath import MeteredStore

BUYER = "0x" + "11" * 20


def _ent(order_id: int, allowance: int, product_id: int = 7) -> Entitlement:
    order = OrderFacts(order_id, product_id, BUYER, allowance, 0, 2**40)
    return Entitlement(order, product_id, product_id, allowance, Terms(0, 0, 0))


def _race(db_url: str, ent: Entitlement, calls: int) -> list[int | None]:
    barrier = threading.Barrier(calls)

    def one(_: int) -> int | None:
        barrier.wait()
        with session_scope(db_url) as session:
            return spend_credit(session, ent)

    with ThreadPoolExecutor(max_workers=calls) as pool:
        return list(pool.map(one, range(calls)))


@pytest.mark.parametrize("precreated", [True, False])
def test_ten_credits_fifty_concurrent_calls_exactly_ten_succeed(db_url: str, precreated: bool) -> None:
    ent = _ent(order_id=1, allowance=10)
    if precreated:
        with session_scope(db_url) as session:
            ensure_counter(session, ent)
    results = _race(db_url, ent, 50)
    spent = sorted(r for r in results if r is not None)
    assert len(spent) == 10
    assert spent == list(range(10))  # every remaining value 9..0 handed out exactly once
    with session_scope(db_url, read_only=True) as session:
        assert session.scalar(select(ApiCredit.remaining).where(ApiCredit.order_id == 1)) == 0


def test_the_earliest_ending_order_pays_first_then_the_next(db_url: str) -> None:
    first = Entitlement(OrderFacts(1, 7, BUYER, 1, 0, 2**30), 7, 7, 1, Terms(0, 0, 0))
    second = _ent(2, 2)
    taken = []
    for _ in range(4):
        with session_scope(db_url) as session:
            paid = next(
                (
                    (ent.order.order_id, left)
                    for ent in in_spending_order((second, first))
                    if (left := spend_credit(session, ent)) is not None
                ),
                None,
            )
            taken.append(paid)
    assert taken == [(1, 0), (2, 1), (2, 0), None]


def test_an_expired_counter_spends_nothing(db_url: str) -> None:
    ent = _ent(3, 5)
    with session_scope(db_url) as session:
        ensure_counter(session, ent)
        session.execute(ApiCredit.__table__.update().values(expired=True, remaining=0))
    with session_scope(db_url) as session:
        assert spend_credit(session, ent) is None


def _live_session(db_url: str, session_id: str, *, revoked: bool = False) -> None:
    with session_scope(db_url) as session:
        session.add(
            GatewaySession(
                id=session_id,
                address=BUYER,
                issued_at=0,
                expires_at=2**40,
                revoked_at=1 if revoked else None,
            )
        )


def _fused_spend(store: MeteredStore, ent: Entitlement, session_id: str) -> int | None:
    return store.spend(
        session_id=session_id,
        now=1_000,
        order_id=ent.order.order_id,
        product_id=ent.product_id,
        consent_id=ent.consent_id,
        vehicle_id=9,
        period=3,
        owner=BUYER,
    )


def _usage(db_url: str) -> list[tuple[int, int, int, int, str, int]]:
    with session_scope(db_url, read_only=True) as session:
        rows = session.execute(
            select(
                UsageCounter.product_id,
                UsageCounter.order_id,
                UsageCounter.vehicle_id,
                UsageCounter.period,
                UsageCounter.owner,
                UsageCounter.units,
            )
        ).all()
    return [tuple(r) for r in rows]


def test_the_fused_spend_takes_ten_of_ten_credits_under_fifty_calls_and_counts_ten(db_url: str) -> None:
    """The metered call's one statement (PostgreSQL) or one transaction (SQLite): the credit
    and the usage counter move together, and the last credit is taken once."""
    ent = _ent(order_id=4, allowance=10)
    with session_scope(db_url) as session:
        ensure_counter(session, ent)
    _live_session(db_url, "s1")
    store = MeteredStore(get_engine(db_url), 8, lambda _: None)

    async def fifty() -> list[int | None]:
        return await asyncio.gather(*(store.run(_fused_spend, store, ent, "s1") for _ in range(50)))

    try:
        results = asyncio.run(fifty())
    finally:
        store.close()
    assert sorted(r for r in results if r is not None) == list(range(10))
    assert _usage(db_url) == [(7, 4, 9, 3, BUYER, 10)]  # one counter row, not a row per call


def test_the_fused_spend_takes_nothing_for_a_revoked_session_or_a_missing_counter(db_url: str) -> None:
    ent = _ent(order_id=5, allowance=3)
    _live_session(db_url, "gone", revoked=True)
    _live_session(db_url, "live")
    store = MeteredStore(get_engine(db_url), 0, lambda _: None)
    try:
        assert _fused_spend(store, ent, "live") is None  # no counter yet: the caller creates it
        with session_scope(db_url) as session:
            ensure_counter(session, ent)
        assert _fused_spend(store, ent, "gone") is None
        assert _fused_spend(store, ent, "unknown") is None
        assert _usage(db_url) == []
        assert _fused_spend(store, ent, "live") == 2
    finally:
        store.close()
    assert _usage(db_url) == [(7, 5, 9, 3, BUYER, 1)]
