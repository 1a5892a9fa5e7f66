"""Stored vehicle signals (COVESA VSS names, unit, source, device signature).

Minimal version written by the gateway so it can serve; the OEM side (workers/oem) owns
what it writes here and may extend it. Writers call `store_signals`, which appends the
history and keeps `signals_latest` (one row per vehicle and name) current, so the metered
`signals/latest` is one indexed read."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import BigInteger, Float, Index, Integer, String, Text, bindparam, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Mapped, Session, mapped_column

from workers.db.base import Base, UInt


@dataclass(frozen=True)
class SignalValue:
    """One observation as stored and served: VSS name, value, unit, unix ms, source."""

    name: str
    value: float | bool | str
    unit: str | None
    timestamp_ms: int
    source: str
    signature: str | None = None


class StoredSignal(Base):
    """Every observation, in arrival order (history)."""

    __tablename__ = "signals"
    __table_args__ = (Index("ix_signals_vehicle_name_ts", "vehicle_id", "name", "timestamp_ms"),)

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    vehicle_id: Mapped[int] = mapped_column(UInt)
    name: Mapped[str] = mapped_column(String(160))
    #: JSON of the value (number, bool or string).
    value: Mapped[str] = mapped_column(Text)
    #: The value as a number when it is one (aggregates), else None.
    number: Mapped[float | None] = mapped_column(Float, nullable=True)
    unit: Mapped[str | None] = mapped_column(String(32), nullable=True)
    timestamp_ms: Mapped[int] = mapped_column(BigInteger)
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


def _number(value: float | bool | str) -> float | None:
    if isinstance(value, bool):
        return 1.0 if value else 0.0
    if isinstance(value, int | float):
        return float(value)
    return None


def store_signals(session: Session, vehicle_id: int, signals: Iterable[SignalValue]) -> int:
    """Appends `signals` to the history and moves `signals_latest` forward (never back)."""
    insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    count = 0
    for s in signals:
        row = {
            "vehicle_id": vehicle_id,
            "name": s.name,
            "value": json.dumps(s.value),
            "number": _number(s.value),
            "unit": s.unit,
            "timestamp_ms": s.timestamp_ms,
            "source": s.source,
            "signature": s.signature,
        }
        session.add(StoredSignal(**row))
        statement = insert(LatestSignal).values(**row)
        newer = {k: statement.excluded[k] for k in row if k not in ("vehicle_id", "name")}
        session.execute(
            statement.on_conflict_do_update(
                index_elements=["vehicle_id", "name"],
                set_=newer,
                where=LatestSignal.timestamp_ms <= statement.excluded.timestamp_ms,
            )
        )
        count += 1
    return count


def _value(row: StoredSignal | LatestSignal) -> SignalValue:
    return SignalValue(
        name=row.name,
        value=json.loads(row.value),
        unit=row.unit,
        timestamp_ms=int(row.timestamp_ms),
        source=row.source,
        signature=row.signature,
    )


_LATEST = (
    select(
        LatestSignal.name,
        LatestSignal.value,
        LatestSignal.unit,
        LatestSignal.timestamp_ms,
        LatestSignal.source,
        LatestSignal.signature,
    )
    .where(LatestSignal.vehicle_id == bindparam("vehicle_id"))
    .order_by(LatestSignal.name)
)


def latest_signals(session: Session, vehicle_id: int) -> list[SignalValue]:
    """The newest observation of each signal of the vehicle, by name (one indexed read)."""
    rows = session.connection().execute(_LATEST, {"vehicle_id": vehicle_id})
    return [
        SignalValue(name, json.loads(value), unit, int(ts), source, sig)
        for name, value, unit, ts, source, sig in rows
    ]


def signal_history(
    session: Session,
    vehicle_id: int,
    *,
    names: Iterable[str] | None,
    since_ms: int,
    until_ms: int,
    limit: int,
) -> list[SignalValue]:
    query = select(StoredSignal).where(
        StoredSignal.vehicle_id == vehicle_id,
        StoredSignal.timestamp_ms >= since_ms,
        StoredSignal.timestamp_ms <= until_ms,
    )
    if names is not None:
        query = query.where(StoredSignal.name.in_(list(names)))
    rows = session.scalars(query.order_by(StoredSignal.timestamp_ms, StoredSignal.id).limit(limit))
    return [_value(r) for r in rows]
