"""Signal history on PostgreSQL, plain table (migration 0016) against the day-partitioned one
(0017): the insert rate through `store_many` in batches of 500 observations, and the time of
a bounded `history` read (one vehicle, one day) on a 5-million-row history spread over ten
days. Each layout gets its own scratch database on the local server.

    python -m benchmarks.signal_storage [--rows 5000000] [--batches 200]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta

from sqlalchemy import text

from devkit.databases import postgres_database
from workers.config import get_settings
from workers.db import Database, upgrade
from workers.signals.storage import DAY_MS, day_of, day_start_ms, maintain
from workers.signals.store import SignalValue, history, store_many

DAYS = 10
VEHICLES = 2_500
NAMES = [f"Vehicle.Bench.Signal{n}" for n in range(20)]
START_MS = day_start_ms(day_of(int(time.time() * 1000)) - timedelta(days=DAYS))


@contextmanager
def _database(revision: str) -> Iterator[Database]:
    with postgres_database() as url:
        upgrade(url, revision)
        database = Database(url)
        if revision != "0016_key_epochs_revoked":
            settings = get_settings().model_copy(
                update={"signals_retention_days": 0, "signals_partitions_ahead": DAYS + 2}
            )
            with database.session() as session:
                maintain(session, settings, now_ms=START_MS)
        try:
            yield database
        finally:
            database.dispose()


def insert_rate(database: Database, batches: int) -> float:
    """Rows a second through store_many, 25 vehicles x 20 signals a batch, one commit each."""
    vehicle, stored, began = 1, 0, time.perf_counter()
    for batch in range(batches):
        ts = START_MS + batch * 60_000
        rows = [
            (vehicle + v, [SignalValue(name, float(batch), None, ts, "oem:1") for name in NAMES])
            for v in range(25)
        ]
        with database.session() as session:
            stored += store_many(session, rows)
        vehicle = vehicle + 25 if vehicle + 25 < VEHICLES else 1
    return stored / (time.perf_counter() - began)


def load(database: Database, rows: int) -> None:
    """`rows` observations of VEHICLES vehicles, evenly over DAYS days, in one statement."""
    per_vehicle = rows // VEHICLES
    step = DAYS * DAY_MS // per_vehicle
    with database.engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO signals (vehicle_id, name, value, number, unit, timestamp_ms, source) "
                "SELECT v, 'Vehicle.Speed', (n % 200)::text, n % 200, 'km/h', "
                ":start + n * :step + v, 'oem:1' "
                "FROM generate_series(1, :vehicles) AS v, generate_series(0, :per - 1) AS n"
            ),
            {"start": START_MS, "step": step, "vehicles": VEHICLES, "per": per_vehicle},
        )
    with database.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("VACUUM ANALYZE signals"))


def bytes_per_row(database: Database) -> float:
    """The history's size on disk (heap, indexes, TOAST; every partition) per row."""
    with database.engine.connect() as conn:
        size = conn.execute(
            text(
                "SELECT coalesce((SELECT sum(pg_total_relation_size(relid)) "
                "FROM pg_partition_tree('signals')), pg_total_relation_size('signals'))"
            )
        ).scalar()
        rows = conn.execute(text("SELECT count(*) FROM signals")).scalar()
    return int(size or 0) / max(int(rows or 0), 1)


def history_ms(database: Database, queries: int = 300) -> tuple[float, float, int]:
    """Median and p99 milliseconds of one vehicle's history over one day (day 5 of 10)."""
    since = START_MS + 5 * DAY_MS
    times, found = [], 0
    with database.session(read_only=True) as session:
        for n in range(queries):
            began = time.perf_counter()
            found = len(history(session, 1 + (n * 7) % VEHICLES, since_ms=since, until_ms=since + DAY_MS - 1))
            times.append((time.perf_counter() - began) * 1000)
    times.sort()
    return statistics.median(times), times[int(len(times) * 0.99) - 1], found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=5_000_000)
    parser.add_argument("--batches", type=int, default=200)
    args = parser.parse_args()
    for label, revision in (("plain", "0016_key_epochs_revoked"), ("partitioned", "heads")):
        with _database(revision) as database:
            rate = insert_rate(database, args.batches)
            with database.engine.begin() as conn:
                conn.execute(text("TRUNCATE signals"))
            began = time.perf_counter()
            load(database, args.rows)
            loaded = time.perf_counter() - began
            median, p99, found = history_ms(database)
            print(
                f"{label:12} insert {rate:9,.0f} rows/s (store_many, 500 a batch)   "
                f"load {args.rows:,} rows {loaded:6.1f} s, {bytes_per_row(database):.0f} bytes a row   "
                f"history of one vehicle-day ({found} rows): median {median:.2f} ms, p99 {p99:.2f} ms"
            )


if __name__ == "__main__":
    main()
