"""Writing normalised signals into the shared signal tables (`workers.db.signals`: history
plus the latest value per vehicle and name), and reading them back as `Signal`s."""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import UTC, datetime

from sqlalchemy.orm import Session

from workers.db import signals as table
from workers.oem.signals import Signal


def now_ms() -> int:
    return int(time.time() * 1000)


def to_value(signal: Signal) -> table.SignalValue:
    return table.SignalValue(
        name=signal.name,
        value=signal.value,
        unit=signal.unit,
        timestamp_ms=signal.timestamp_ms,
        source=signal.source,
        signature=signal.signature,
    )


def from_value(value: table.SignalValue) -> Signal:
    return Signal(
        name=value.name,
        value=value.value,  # type: ignore[arg-type]
        unit=value.unit,
        timestamp=datetime.fromtimestamp(value.timestamp_ms / 1000, UTC),
        source=value.source,
        signature=value.signature,
    )


def store_signals(session: Session, vehicle_id: int, signals: Sequence[Signal]) -> int:
    """Adds one vehicle's observations in the caller's transaction; returns the count."""
    return table.store_signals(session, vehicle_id, [to_value(s) for s in signals])


def latest_signals(session: Session, vehicle_id: int) -> list[Signal]:
    return [from_value(v) for v in table.latest_signals(session, vehicle_id)]


def signal_history(
    session: Session,
    vehicle_id: int,
    *,
    names: Sequence[str] | None = None,
    since_ms: int = 0,
    until_ms: int = 2**62,
    limit: int = 10_000,
) -> list[Signal]:
    rows = table.signal_history(
        session, vehicle_id, names=names, since_ms=since_ms, until_ms=until_ms, limit=limit
    )
    return [from_value(v) for v in rows]
