"""The tables of stored vehicle signals (COVESA VSS names, unit, source, device signature):
the history, the newest observation per vehicle and name, and the hourly roll-up of numeric
history kept after the raw rows are dropped. Read and written only through
`workers.signals.store` (and `workers.signals.storage`, which keeps the history's partitions,
retention and roll-up).

On PostgreSQL the history is partitioned by day (declarative RANGE partitioning on
`timestamp_ms`, one partition `signals_pYYYYMMDD` per UTC day and `signals_default` for
anything outside them, made by migration 0017 and `workers.signals.storage`), so its primary
key carries the partition key: (id, timestamp_ms). SQLite keeps one plain table whose key is
`id` alone (its rowid); nothing reads a row by its key."""

from __future__ import annotations

import re
from datetime import date

from sqlalchemy import BigInteger, Float, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from workers.db.base import Base, UInt

#: The history's catch-all partition on PostgreSQL (rows outside every day's partition).
DEFAULT_PARTITION = "signals_default"
_DAY_PARTITION = re.compile(r"signals_p(\d{8})")


def partition_name(day: date) -> str:
    """The history's partition of one UTC day on PostgreSQL."""
    return f"signals_p{day:%Y%m%d}"


def partition_day(table_name: str) -> date | None:
    """The day a partition name holds, or None when the name is no day's partition."""
    found = _DAY_PARTITION.fullmatch(table_name)
    if found is None:
        return None
    digits = found.group(1)
    return date(int(digits[:4]), int(digits[4:6]), int(digits[6:]))


def is_partition(table_name: str) -> bool:
    """Whether a table is one of the history's partitions (made at run time, not a model)."""
    return table_name == DEFAULT_PARTITION or _DAY_PARTITION.fullmatch(table_name) is not None


class StoredSignal(Base):
    """Every observation, in arrival order (history)."""

    __tablename__ = "signals"
    __table_args__ = (
        Index("ix_signals_vehicle_name_ts", "vehicle_id", "name", "timestamp_ms"),
        # history of every name within a window (the tenure predicate): one range scan
        Index("ix_signals_vehicle_ts", "vehicle_id", "timestamp_ms"),
    )

    #: Arrival order (a sequence on PostgreSQL, the rowid on SQLite).
    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    vehicle_id: Mapped[int] = mapped_column(UInt)
    name: Mapped[str] = mapped_column(String(160))
    #: JSON of the value (number, bool or string).
    value: Mapped[str] = mapped_column(Text)
    #: The value as a number when it is one (aggregates), else None.
    number: Mapped[float | None] = mapped_column(Float, nullable=True)
    unit: Mapped[str | None] = mapped_column(String(32), nullable=True)
    #: When it was observed (unix ms): the partition key on PostgreSQL.
    timestamp_ms: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    #: `oem:<connectionId>` or `device:<deviceId>`.
    source: Mapped[str] = mapped_column(String(80))
    #: For device data: the verified EIP-712 Telemetry signature (0x-hex).
    signature: Mapped[str | None] = mapped_column(Text, nullable=True)


class LatestSignal(Base):
    """The newest observation per vehicle and signal name."""

    __tablename__ = "signals_latest"

    vehicle_id: Mapped[int] = mapped_column(UInt, primary_key=True)
    name: Mapped[str] = mapped_column(String(160), primary_key=True)
    value: Mapped[str] = mapped_column(Text)
    number: Mapped[float | None] = mapped_column(Float, nullable=True)
    unit: Mapped[str | None] = mapped_column(String(32), nullable=True)
    timestamp_ms: Mapped[int] = mapped_column(BigInteger)
    source: Mapped[str] = mapped_column(String(80))
    signature: Mapped[str | None] = mapped_column(Text, nullable=True)


class SignalRollup(Base):
    """One vehicle's numeric signal over one UTC hour, rolled up from the history before its
    raw rows are dropped (SIGNALS_RETENTION_DAYS) and kept for SIGNALS_ROLLUP_RETENTION_DAYS."""

    __tablename__ = "signal_rollups"
    __table_args__ = (Index("ix_signal_rollups_hour_ms", "hour_ms"),)

    vehicle_id: Mapped[int] = mapped_column(UInt, primary_key=True)
    name: Mapped[str] = mapped_column(String(160), primary_key=True)
    #: The hour's start (unix ms, a multiple of 3,600,000).
    hour_ms: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    count: Mapped[int] = mapped_column(BigInteger)
    min: Mapped[float] = mapped_column(Float)
    max: Mapped[float] = mapped_column(Float)
    #: The sum of the hour's values (mean = sum / count).
    sum: Mapped[float] = mapped_column(Float)
    #: The hour's last value and when it was observed.
    last: Mapped[float] = mapped_column(Float)
    last_ms: Mapped[int] = mapped_column(BigInteger)
