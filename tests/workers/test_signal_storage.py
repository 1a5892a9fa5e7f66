"""Signal storage at fleet size: the history partitioned by UTC day on PostgreSQL (made
ahead, a default partition for anything else, rows placed by their own day at a boundary),
retention that rolls numeric signals up by the hour before dropping whole partitions (SQLite:
rows by range), bounded history reads that touch only the partitions in their window, and
migration 0017 moving a populated plain table over and back."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, timedelta

import pytest
from alembic import command
from sqlalchemy import text

from devkit.databases import postgres_database, postgres_unavailable
from tests.support.databases import get_engine, session_scope
from workers.config import Settings, get_settings
from workers.db import alembic_config, create_engine_for, upgrade
from workers.db.signals import DEFAULT_PARTITION, partition_name
from workers.signals.storage import DAY_MS, HOUR_MS, day_of, day_start_ms, maintain, partitions
from workers.signals.store import SignalValue, history, history_query, store_many, store_signals

TODAY = date(2031, 3, 10)
NOW_MS = day_start_ms(TODAY) + 12 * HOUR_MS
SPEED = "Vehicle.Speed"
VIN = "Vehicle.VehicleIdentification.Brand"


def _settings(**changes: object) -> Settings:
    return get_settings().model_copy(
        update={
            "signals_retention_days": 30,
            "signals_rollup_retention_days": 400,
            "signals_partitions_ahead": 3,
            **changes,
        }
    )


def _value(name: str, value: float | str, ts_ms: int) -> SignalValue:
    return SignalValue(name, value, None, ts_ms, "oem:1")


def _maintain(db_url: str, now_ms: int = NOW_MS, **changes: object):
    with session_scope(db_url) as session:
        return maintain(session, _settings(**changes), now_ms=now_ms)


def _rows(db_url: str, query: str, **params: object) -> list[tuple]:
    with get_engine(db_url).connect() as conn:
        return [tuple(r) for r in conn.execute(text(query), params)]


@pytest.fixture
def pg_url(db_url: str) -> str:
    if not db_url.startswith("postgresql"):
        pytest.skip("partitions are PostgreSQL's")
    return db_url


def test_partitions_are_made_ahead_once(pg_url):
    done = _maintain(pg_url)
    assert done.created == [partition_name(TODAY + timedelta(days=n)) for n in range(4)]
    again = _maintain(pg_url)
    assert again.created == [] and again.dropped == []
    with session_scope(pg_url, read_only=True) as session:
        names = partitions(session)
    assert DEFAULT_PARTITION in names
    assert {partition_name(TODAY + timedelta(days=n)) for n in range(4)} <= set(names)


def _where(db_url: str) -> dict[int, str]:
    rows = _rows(db_url, "SELECT timestamp_ms, tableoid::regclass::text FROM signals")
    return {int(ts): table for ts, table in rows}


def test_rows_land_in_their_own_day_at_the_boundary(pg_url):
    _maintain(pg_url)
    midnight = day_start_ms(TODAY + timedelta(days=1))
    with session_scope(pg_url) as session:
        store_signals(session, 1, [_value(SPEED, 1.0, midnight - 1), _value(SPEED, 2.0, midnight)])
    assert _where(pg_url) == {
        midnight - 1: partition_name(TODAY),
        midnight: partition_name(TODAY + timedelta(days=1)),
    }
    with session_scope(pg_url, read_only=True) as session:
        found = history(session, 1, since_ms=midnight - 1, until_ms=midnight)
    assert [s.value for s in found] == [1.0, 2.0]


def test_an_insert_without_its_day_s_partition_waits_in_the_default_one(pg_url):
    later = TODAY + timedelta(days=40)
    at = day_start_ms(later) + 5
    with session_scope(pg_url) as session:
        store_signals(session, 1, [_value(SPEED, 7.0, at)])  # no partition that far ahead
    assert _where(pg_url) == {at: DEFAULT_PARTITION}
    done = _maintain(pg_url, now_ms=day_start_ms(later))  # that day comes: its partition takes the row
    assert partition_name(later) in done.created
    assert _where(pg_url) == {at: partition_name(later)}
    with session_scope(pg_url, read_only=True) as session:
        assert [s.value for s in history(session, 1, since_ms=at, until_ms=at)] == [7.0]


def test_history_reads_across_partitions_in_order(db_url):
    _maintain(db_url)
    stamps = [day_start_ms(TODAY + timedelta(days=d)) + h * HOUR_MS for d in range(3) for h in (0, 23)]
    with session_scope(db_url) as session:
        store_many(session, [(4, [_value(SPEED, float(i), ts) for i, ts in enumerate(reversed(stamps))])])
    with session_scope(db_url, read_only=True) as session:
        found = history(session, 4, since_ms=stamps[0], until_ms=stamps[-1])
        assert [s.timestamp_ms for s in found] == stamps
        window = history(session, 4, since_ms=stamps[1], until_ms=stamps[4], limit=2)
        assert [s.timestamp_ms for s in window] == stamps[1:3]


def _old_day_history(db_url: str, old: date) -> None:
    """Vehicle 1's speed over two hours of `old` day, a string signal, and today's rows."""
    start = day_start_ms(old)
    with session_scope(db_url) as session:
        store_many(
            session,
            [
                (1, [_value(SPEED, v, start + m * 60_000) for m, v in ((0, 10.0), (10, 30.0), (59, 20.0))]),
                (1, [_value(SPEED, 50.0, start + HOUR_MS + 1), _value(VIN, "Kia", start + 5)]),
                (2, [_value(SPEED, -4.0, start + 30 * 60_000)]),
                (1, [_value(SPEED, 99.0, NOW_MS)]),
            ],
        )


def _rollups(db_url: str) -> dict[tuple[int, int], tuple]:
    columns = "vehicle_id, hour_ms, count, min, max, sum, last, last_ms, name"
    rows = _rows(db_url, f"SELECT {columns} FROM signal_rollups")
    return {(int(v), int(h)): (int(c), *values, int(at), name) for v, h, c, *values, at, name in rows}


def test_retention_rolls_numbers_up_by_the_hour_then_drops_the_raw_rows(db_url):
    old = TODAY - timedelta(days=31)
    _maintain(db_url, now_ms=day_start_ms(old))  # its partition exists on PostgreSQL
    _old_day_history(db_url, old)
    start = day_start_ms(old)
    done = _maintain(db_url)
    if db_url.startswith("postgresql"):
        assert done.dropped == [partition_name(old)]  # the next day is within the 30 days kept
        with session_scope(db_url, read_only=True) as session:
            assert partition_name(old) not in partitions(session)
    else:
        assert done.deleted == 6
    assert done.rolled_up == 3
    assert _rollups(db_url) == {
        (1, start): (3, 10.0, 30.0, 60.0, 20.0, start + 59 * 60_000, SPEED),
        (1, start + HOUR_MS): (1, 50.0, 50.0, 50.0, 50.0, start + HOUR_MS + 1, SPEED),
        (2, start): (1, -4.0, -4.0, -4.0, -4.0, start + 30 * 60_000, SPEED),
    }
    assert _rows(db_url, "SELECT number FROM signals") == [(99.0,)]  # today's row stays
    # a late row for an hour already rolled up is merged into it, not counted anew
    with session_scope(db_url) as session:
        store_signals(session, 1, [_value(SPEED, 5.0, start + 30 * 60_000)])
    late = _maintain(db_url)
    assert late.rolled_up == 1 and late.dropped == []
    assert _rollups(db_url)[(1, start)] == (4, 5.0, 30.0, 65.0, 20.0, start + 59 * 60_000, SPEED)
    assert _rows(db_url, "SELECT count(*) FROM signals") == [(1,)]
    assert _maintain(db_url).rolled_up == 0  # nothing left to do


def test_roll_ups_go_after_their_own_retention(db_url):
    old = TODAY - timedelta(days=31)
    _old_day_history(db_url, old)
    _maintain(db_url)
    assert len(_rollups(db_url)) == 3
    # kept 400 days from their day (TODAY - 31): until TODAY + 369 included
    done = _maintain(db_url, now_ms=NOW_MS + 369 * DAY_MS, signals_retention_days=0)
    assert done.rollups_deleted == 0
    assert _maintain(db_url, now_ms=NOW_MS + 370 * DAY_MS, signals_retention_days=0).rollups_deleted == 3
    assert _rollups(db_url) == {}


def test_retention_zero_keeps_everything(db_url):
    _old_day_history(db_url, TODAY - timedelta(days=3_000))
    done = _maintain(db_url, signals_retention_days=0)
    assert done.deleted == 0 and done.dropped == [] and done.rolled_up == 0
    assert _rows(db_url, "SELECT count(*) FROM signals") == [(7,)]


def _plan(db_url: str, since_ms: int, until_ms: int) -> str:
    query = history_query(3, None, since_ms, until_ms, 100)
    with get_engine(db_url).connect() as conn:
        compiled = query.compile(conn)
        lines = conn.exec_driver_sql("EXPLAIN " + str(compiled), compiled.params).scalars()
        return "\n".join(lines)


def test_a_bounded_history_read_touches_only_the_partitions_in_its_window(pg_url):
    _maintain(pg_url, now_ms=NOW_MS - 3 * DAY_MS)  # TODAY-3 .. TODAY
    days = [TODAY - timedelta(days=n) for n in (3, 2, 1, 0)]
    with session_scope(pg_url) as session:
        store_many(session, [(3, [_value(SPEED, float(i), day_start_ms(d) + 1) for i, d in enumerate(days)])])
    plan = _plan(pg_url, day_start_ms(days[1]), day_start_ms(days[1]) + DAY_MS - 1)
    assert partition_name(days[1]) in plan
    for other in (days[0], days[2], days[3]):
        assert partition_name(other) not in plan, plan
    assert DEFAULT_PARTITION not in plan, plan
    two_days = _plan(pg_url, day_start_ms(days[1]), day_start_ms(days[2]) + 5)
    assert partition_name(days[1]) in two_days and partition_name(days[2]) in two_days
    assert partition_name(days[0]) not in two_days and partition_name(days[3]) not in two_days
    with session_scope(pg_url, read_only=True) as session:
        found = history(session, 3, since_ms=day_start_ms(days[1]), until_ms=day_start_ms(days[2]) + 5)
    assert [s.value for s in found] == [1.0, 2.0]


# --- migration 0017 on a populated PostgreSQL database -----------------------------------


@pytest.fixture
def pg_at_0016() -> Iterator[str]:
    reason = postgres_unavailable()
    if reason:
        pytest.skip(reason)
    with postgres_database() as url:
        upgrade(url, "0016_key_epochs_revoked")
        yield url


def _relkind(conn, name: str) -> str:
    return conn.execute(text("SELECT relkind FROM pg_class WHERE relname = :n"), {"n": name}).scalar()


_INSERT = text(
    "INSERT INTO signals (vehicle_id, name, value, number, unit, timestamp_ms, source) "
    "VALUES (:v, :name, :value, :number, NULL, :ts, 'oem:1') RETURNING id"
)


def _row(n: int, ts: int) -> dict[str, object]:
    return {"v": 9, "name": SPEED, "value": str(n), "number": n, "ts": ts}


def test_migration_0017_moves_the_rows_into_day_partitions_and_back(pg_at_0016):
    engine = create_engine_for(pg_at_0016)
    stamps = [1_700_000_000_000 + n * 3 * HOUR_MS for n in range(20)]  # 20 rows, 2023-11-14 to 11-17
    with engine.begin() as conn:
        ids = [conn.execute(_INSERT, _row(n, ts)).scalar() for n, ts in enumerate(stamps)]
    before = sorted(ids)
    upgrade(pg_at_0016, "0017_signal_partitions")
    with engine.begin() as conn:
        assert _relkind(conn, "signals") == "p"
        rows = conn.execute(
            text("SELECT id, timestamp_ms, tableoid::regclass::text FROM signals ORDER BY id")
        )
        moved = [(int(i), int(ts), table) for i, ts, table in rows]
        assert [i for i, _, _ in moved] == before
        assert {table for _, _, table in moved} == {
            partition_name(date(2023, 11, d)) for d in (14, 15, 16, 17)
        }
        assert all(table == partition_name(day_of(ts)) for _, ts, table in moved)
        new_id = conn.execute(_INSERT, _row(1, stamps[0])).scalar()
        assert new_id > max(before)  # the sequence went on
        keys = conn.execute(text(
            "SELECT a.attname FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid "
            "AND a.attnum = ANY(i.indkey) WHERE i.indrelid = 'signals'::regclass AND i.indisprimary"
        )).scalars()  # fmt: skip
        assert sorted(keys) == ["id", "timestamp_ms"]
    command.downgrade(alembic_config(pg_at_0016), "0016_key_epochs_revoked")
    with engine.begin() as conn:
        assert _relkind(conn, "signals") == "r"
        assert _relkind(conn, "signals_default") is None and _relkind(conn, "signal_rollups") is None
        back = conn.execute(text("SELECT id FROM signals ORDER BY id")).scalars().all()
        assert back == [*before, new_id]
        assert conn.execute(_INSERT, _row(2, 5)).scalar() > new_id
    engine.dispose()
    upgrade(pg_at_0016)  # and up again
