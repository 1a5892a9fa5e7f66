"""The usage ledger on both databases: a contribution is counted once however often it is
recorded, each kind keys its contributions its own way, and settlement takes each row once."""

from __future__ import annotations

from sqlalchemy import select

from tests.support.databases import session_scope
from workers.db.settlement import Usage
from workers.ledger import Contribution, UsageKind, epoch_of, latest_untaken_epochs, record_usage, take_usage
from workers.protocol import ZERO_ADDRESS

OWNER = "0x" + "ab" * 20


def _record(db_url: str, kind: UsageKind, key: tuple, *, product: int = 1, vehicle: int = 7, epoch: int = 3,
            owner: str | None = OWNER, units: int = 1) -> None:  # fmt: skip
    with session_scope(db_url) as session:
        record_usage(
            session, kind, key, product_id=product, vehicle_id=vehicle, owner=owner, epoch=epoch, units=units
        )


def _rows(db_url: str) -> list[tuple[str, str, int, bool]]:
    with session_scope(db_url, read_only=True) as session:
        rows = session.scalars(select(Usage).order_by(Usage.id)).all()
        return [(r.kind, r.source, r.epoch, r.included) for r in rows]


def test_a_contribution_recorded_twice_counts_once(db_url):
    _record(db_url, UsageKind.API, (12, 1, 99))
    _record(db_url, UsageKind.API, (12, 1, 99))  # a retried call: the same credit
    _record(db_url, UsageKind.API, (12, 1, 98))  # the order's next credit
    _record(db_url, UsageKind.STREAM, (12, 1, 7, 20_000))  # a member-day
    _record(db_url, UsageKind.STREAM, (12, 1, 7, 20_000))
    _record(db_url, UsageKind.DATASET, ("job-1", 7))
    _record(db_url, UsageKind.DATASET, ("job-1", 7))
    assert _rows(db_url) == [
        ("api", "api:12:1:99", 3, False),
        ("api", "api:12:1:98", 3, False),
        ("stream", "stream:12:1:7:20000", 3, False),
        ("dataset", "dataset:job-1:7", 3, False),
    ]


def test_a_vehicle_without_a_known_owner_is_counted_for_nobody(db_url):
    _record(db_url, UsageKind.API, (1, 1, 5), owner=None)
    with session_scope(db_url, read_only=True) as session:
        assert session.scalars(select(Usage.owner)).one() == ZERO_ADDRESS


def test_settlement_takes_each_row_once(db_url):
    _record(db_url, UsageKind.API, (1, 1, 1), epoch=2, units=2)
    _record(db_url, UsageKind.API, (1, 1, 2), epoch=3, vehicle=8)
    _record(db_url, UsageKind.API, (2, 2, 1), product=2, epoch=5)
    _record(db_url, UsageKind.API, (1, 1, 3), epoch=6)  # the epoch still running
    with session_scope(db_url, read_only=True) as session:
        assert latest_untaken_epochs(session, before_epoch=6) == {1: 3, 2: 5}
    with session_scope(db_url) as session:
        taken = take_usage(session, product_id=1, epoch=3)
    assert taken == [Contribution(7, OWNER, 2), Contribution(8, OWNER, 1)]
    with session_scope(db_url) as session:
        assert take_usage(session, product_id=1, epoch=3) == []
        assert latest_untaken_epochs(session, before_epoch=6) == {2: 5}


def test_epochs_are_whole_periods():
    assert [epoch_of(t, 3_600) for t in (0, 3_599, 3_600, 7_199, 7_200)] == [0, 0, 1, 1, 2]
