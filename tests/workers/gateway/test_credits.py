"""API credits are spent atomically: with 10 credits and 50 concurrent spends exactly 10
succeed, on SQLite and on PostgreSQL, whether the counter exists yet or not."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import select

from tests.support.databases import session_scope
from workers.access.rule import Entitlement, OrderFacts
from workers.db.gateway import ApiCredit
from workers.gateway.credits import ensure_counter, in_spending_order, spend_credit

BUYER = "0x" + "11" * 20


def _ent(order_id: int, allowance: int, product_id: int = 7) -> Entitlement:
    order = OrderFacts(order_id, product_id, BUYER, allowance, 0, 2**40)
    return Entitlement(order, product_id, product_id, allowance)


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
    first = Entitlement(OrderFacts(1, 7, BUYER, 1, 0, 2**30), 7, 7, 1)
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
