"""The usage ledger on both databases: metered calls add to their (product, order, vehicle,
period, owner) counter, stream member-days and dataset rows count once per period however often
they are recorded, settlement reads a period's counters aggregated in SQL, and the claims read
model answers from the accepted root."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import insert, select

from tests.support.databases import session_scope
from workers.db.projections import MarketRoot, MemberClaim
from workers.db.settlement import SettlementRoot, SettlementRootLeaf, UsageCounter
from workers.ledger import (
    Served,
    UsageKind,
    member_claim,
    period_of,
    periods_with_usage,
    record_usage,
    served_in,
)
from workers.merkle import ClaimTree, verify_claim
from workers.protocol import ZERO_ADDRESS

OWNER = "0x" + "ab" * 20
OTHER = "0x" + "cd" * 20


def _record(db_url: str, kind: UsageKind, *, product: int = 1, order: int = 12, vehicle: int = 7,
            period: int = 3, owner: str | None = OWNER, units: int = 1) -> None:  # fmt: skip
    with session_scope(db_url) as session:
        record_usage(
            session, kind, product_id=product, order_id=order, vehicle_id=vehicle, owner=owner,
            period=period, units=units,
        )  # fmt: skip


def _counters(db_url: str) -> list[tuple[int, int, int, int, str, int]]:
    with session_scope(db_url, read_only=True) as session:
        rows = session.scalars(select(UsageCounter)).all()
        return sorted((r.product_id, r.order_id, r.vehicle_id, r.period, r.owner, r.units) for r in rows)


def test_calls_add_up_and_member_days_and_dataset_rows_count_once(db_url):
    _record(db_url, UsageKind.API)
    _record(db_url, UsageKind.API)  # the order's next credit
    _record(db_url, UsageKind.API, units=3)
    _record(db_url, UsageKind.STREAM, order=13)  # a member-day
    _record(db_url, UsageKind.STREAM, order=13)  # the stream reconnected: the same member-day
    _record(db_url, UsageKind.DATASET, order=14)
    _record(db_url, UsageKind.DATASET, order=14)  # the job retried
    _record(db_url, UsageKind.STREAM, order=13, period=4)  # the next period counts again
    assert _counters(db_url) == [
        (1, 12, 7, 3, OWNER, 5),
        (1, 13, 7, 3, OWNER, 1),
        (1, 13, 7, 4, OWNER, 1),
        (1, 14, 7, 3, OWNER, 1),
    ]


def test_a_vehicle_without_a_known_owner_is_counted_for_nobody(db_url):
    _record(db_url, UsageKind.API, owner=None)
    assert _counters(db_url) == [(1, 12, 7, 3, ZERO_ADDRESS, 1)]
    with pytest.raises(ValueError, match="positive units"):
        _record(db_url, UsageKind.API, units=0)


def test_a_period_is_read_aggregated_per_order_and_vehicle(db_url):
    _record(db_url, UsageKind.API, units=2)
    _record(db_url, UsageKind.API, vehicle=8)
    _record(db_url, UsageKind.API, vehicle=8, owner=OTHER)  # the vehicle changed hands
    _record(db_url, UsageKind.API, order=20)
    _record(db_url, UsageKind.API, product=2, order=30)
    _record(db_url, UsageKind.API, period=5)
    with session_scope(db_url, read_only=True) as session:
        assert served_in(session, 1, 3) == {
            12: [Served(7, OWNER, 2), Served(8, OWNER, 1), Served(8, OTHER, 1)],
            20: [Served(7, OWNER, 1)],
        }
        assert served_in(session, 1, 4) == {}
        assert periods_with_usage(session, 1, 0, 10) == [3, 5]
        assert periods_with_usage(session, 1, 4, 5) == []


def test_periods_are_whole_epochs():
    assert [period_of(t, 3_600) for t in (0, 3_599, 3_600, 7_199, 7_200)] == [0, 0, 1, 1, 2]


def _root(session, tree: ClaimTree, status: str, block: int) -> None:
    row = SettlementRoot(root=tree.root, status="accepted", total=tree.total, leaf_count=len(tree),
                         product_ids="[]", cumulative_taken="[]", data_hash="0x" + "00" * 32)  # fmt: skip
    session.add(row)
    session.flush()
    session.execute(
        insert(SettlementRootLeaf),
        [
            {"root_id": row.id, "account": a, "cumulative": c, "proof": json.dumps(tree.proof(i))}
            for i, (a, c) in enumerate(tree.values)
        ],
    )
    session.add(MarketRoot(root=tree.root, status=status, claimable_at=0, data_hash="0x" + "00" * 32,
                           product_ids="[]", cumulative_taken="[]", tx_hash="0x" + "11" * 32,
                           block_number=block))  # fmt: skip


def test_a_member_claims_from_the_accepted_root_only(db_url):
    old = ClaimTree.build([(OWNER, 10), (OTHER, 5)])
    new = ClaimTree.build([(OWNER, 30), (OTHER, 5)])
    pending = ClaimTree.build([(OWNER, 99), (OTHER, 6)])
    with session_scope(db_url) as session:
        assert member_claim(session, OWNER) is None  # no root yet
        _root(session, old, "replaced", 1)
        _root(session, new, "accepted", 2)
        _root(session, pending, "pending", 3)
        session.add(MemberClaim(account=OWNER, claimed=10, block_number=2))
    with session_scope(db_url, read_only=True) as session:
        claim = member_claim(session, OWNER.upper().replace("0X", "0x"))
        other = member_claim(session, OTHER)
        nobody = member_claim(session, "0x" + "ef" * 20)
    assert claim is not None and other is not None and nobody is None
    assert (claim["root"], claim["cumulative"], claim["claimed"], claim["claimable"]) == (
        new.root,
        30,
        10,
        20,
    )
    assert verify_claim(claim["root"], (claim["account"], claim["cumulative"]), claim["proof"])
    assert (other["cumulative"], other["claimed"], other["claimable"]) == (5, 0, 5)
