"""Keeping the signal history's size bounded (DESIGN.md §4, docs/workers.md "Signal storage"):
day partitions made ahead, raw history dropped past SIGNALS_RETENTION_DAYS after its numeric
signals are rolled up by the hour into `signal_rollups`, and roll-ups dropped past
SIGNALS_ROLLUP_RETENTION_DAYS. `maintain` does all of it in one transaction; the beat runs it
as `datasets.signal_storage` (workers/signals/tasks.py).

PostgreSQL: the history is partitioned by UTC day (migration 0017); partitions are made
`SIGNALS_PARTITIONS_AHEAD` days ahead and whole partitions are dropped, never rows one by one.
`signals_default` catches any row outside every day's partition, so an insert never fails for
want of one; a day's partition made later takes that day's rows out of it first, and its rows
past retention are rolled up and deleted like SQLite's. SQLite: one plain table, rolled up and
deleted by timestamp range."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta

from sqlalchemy import text
from sqlalchemy.orm import Session

from workers.config import Settings
from workers.db.signals import DEFAULT_PARTITION, partition_day, partition_name

DAY_MS = 86_400_000
HOUR_MS = 3_600_000
_EPOCH = date(1970, 1, 1)
#: Serialises maintenance runs (PostgreSQL; SQLite's writing transaction already does).
_LOCK = text("SELECT pg_advisory_xact_lock(hashtext('signals.storage'))")
_PARTITIONS = text(
    "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
    "WHERE i.inhparent = 'signals'::regclass"
)
_DELETE_ROLLUPS = text("DELETE FROM signal_rollups WHERE hour_ms < :oldest")

#: Folds the numeric observations of `{source}` before :until into hourly roll-ups; an hour
#: already rolled up (late rows rolled up on a later run) is merged, not replaced.
_ROLL_UP = """
INSERT INTO signal_rollups (vehicle_id, name, hour_ms, count, min, max, sum, last, last_ms)
SELECT vehicle_id, name, hour_ms, count(*), min(number), max(number), sum(number),
       max(CASE WHEN newest = 1 THEN number END), max(timestamp_ms)
FROM (
    SELECT vehicle_id, name, number, timestamp_ms, timestamp_ms / {hour} * {hour} AS hour_ms,
           row_number() OVER (PARTITION BY vehicle_id, name, timestamp_ms / {hour}
                              ORDER BY timestamp_ms DESC, id DESC) AS newest
    FROM {source}
    WHERE number IS NOT NULL AND timestamp_ms < :until
) AS observed
WHERE true
GROUP BY vehicle_id, name, hour_ms
ON CONFLICT (vehicle_id, name, hour_ms) DO UPDATE SET
    count = signal_rollups.count + excluded.count,
    min = CASE WHEN excluded.min < signal_rollups.min THEN excluded.min ELSE signal_rollups.min END,
    max = CASE WHEN excluded.max > signal_rollups.max THEN excluded.max ELSE signal_rollups.max END,
    sum = signal_rollups.sum + excluded.sum,
    last = CASE WHEN excluded.last_ms >= signal_rollups.last_ms
                THEN excluded.last ELSE signal_rollups.last END,
    last_ms = CASE WHEN excluded.last_ms >= signal_rollups.last_ms
                   THEN excluded.last_ms ELSE signal_rollups.last_ms END
"""


@dataclass
class Maintenance:
    """What one `maintain` run did."""

    #: Day partitions made (PostgreSQL).
    created: list[str] = field(default_factory=list)
    #: Day partitions dropped past retention (PostgreSQL).
    dropped: list[str] = field(default_factory=list)
    #: Raw rows deleted by range past retention (SQLite; PostgreSQL's default partition).
    deleted: int = 0
    #: Hourly roll-ups written or merged.
    rolled_up: int = 0
    #: Roll-ups deleted past their own retention.
    rollups_deleted: int = 0


def day_of(timestamp_ms: int) -> date:
    """The UTC day of a unix-ms timestamp."""
    return _EPOCH + timedelta(days=timestamp_ms // DAY_MS)


def day_start_ms(day: date) -> int:
    return (day - _EPOCH).days * DAY_MS


def maintain(session: Session, settings: Settings, *, now_ms: int) -> Maintenance:
    """Rolls up and drops raw history past retention, drops roll-ups past theirs and makes
    the partitions ahead, in `session`'s transaction. Idempotent: a second run finds nothing
    to do. The long part (rolling a day up) comes first and takes no lock that readers or
    writers wait on; partitions are attached and dropped last, just before the commit (a
    DROP holds the history's table exclusively until then). Days past retention get no new
    rows (device telemetry older than TELEMETRY_MAX_AGE is refused), so none arrives between
    a day's roll-up and its drop."""
    done = Maintenance()
    today = day_of(now_ms)
    postgres = session.get_bind().dialect.name == "postgresql"
    if postgres:
        session.execute(_LOCK)
    expired: list[tuple[str, date]] = []
    if settings.signals_retention_days:
        cutoff = today - timedelta(days=settings.signals_retention_days)
        roll_up = settings.signals_rollup_retention_days > 0
        source = "signals"
        if postgres:
            expired = [
                (name, day) for name in partitions(session) if (day := partition_day(name)) and day < cutoff
            ]
            if roll_up:
                for name, day in expired:
                    done.rolled_up += _roll_up(session, name, day_start_ms(day) + DAY_MS)
            source = DEFAULT_PARTITION
        done.deleted = _drop_rows(session, source, day_start_ms(cutoff), roll_up, done)
    if settings.signals_rollup_retention_days:
        oldest = day_start_ms(today - timedelta(days=settings.signals_rollup_retention_days))
        done.rollups_deleted = session.execute(_DELETE_ROLLUPS, {"oldest": oldest}).rowcount
    if postgres:
        for offset in range(settings.signals_partitions_ahead + 1):
            made = ensure_partition(session, today + timedelta(days=offset))
            if made:
                done.created.append(made)
        for name, _ in expired:
            session.execute(text(f"DROP TABLE {name}"))
            done.dropped.append(name)
    return done


def partitions(session: Session) -> list[str]:
    """The history's partitions on PostgreSQL, by name."""
    return sorted(session.execute(_PARTITIONS).scalars())


def ensure_partition(session: Session, day: date) -> str | None:
    """Makes `day`'s partition unless it exists (its name then, else None): a table shaped
    like the history, filled with that day's rows from the default partition, then attached
    (an insert never waited for it: the default partition held them)."""
    name = partition_name(day)
    if name in partitions(session):
        return None
    start = day_start_ms(day)
    bounds = {"start": start, "end": start + DAY_MS}
    session.execute(text(f"CREATE TABLE {name} (LIKE signals INCLUDING DEFAULTS)"))
    session.execute(
        text(
            f"WITH moved AS (DELETE FROM {DEFAULT_PARTITION} WHERE timestamp_ms >= :start "
            f"AND timestamp_ms < :end RETURNING *) INSERT INTO {name} SELECT * FROM moved"
        ),
        bounds,
    )
    session.execute(
        text(f"ALTER TABLE signals ATTACH PARTITION {name} FOR VALUES FROM ({start}) TO ({start + DAY_MS})")
    )
    return name


def _roll_up(session: Session, source: str, until_ms: int) -> int:
    statement = text(_ROLL_UP.format(hour=HOUR_MS, source=source))
    return session.execute(statement, {"until": until_ms}).rowcount


def _drop_rows(session: Session, source: str, cutoff_ms: int, roll_up: bool, done: Maintenance) -> int:
    """Deletes `source`'s rows before `cutoff_ms`, rolled up first when roll-ups are kept."""
    if roll_up:
        done.rolled_up += _roll_up(session, source, cutoff_ms)
    delete = text(f"DELETE FROM {source} WHERE timestamp_ms < :cutoff")
    return session.execute(delete, {"cutoff": cutoff_ms}).rowcount
