"""The gateway's one door to stored signals (written by workers/oem): latest per name and
history, as `(name, value, unit, timestamp_ms, source)` records."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy.orm import Session

from workers.db.signals import SignalValue
from workers.db.signals import latest_signals as _latest
from workers.db.signals import signal_history as _history

__all__ = ["SignalValue", "history", "latest"]


def latest(session: Session, vehicle_id: int, names: Sequence[str] | None = None) -> list[SignalValue]:
    found = _latest(session, vehicle_id)
    if names is None:
        return found
    wanted = set(names)
    return [s for s in found if s.name in wanted]


def history(
    session: Session, vehicle_id: int, *, names: Sequence[str] | None, start_ms: int, end_ms: int, limit: int
) -> list[SignalValue]:
    return _history(session, vehicle_id, names=names, since_ms=start_ms, until_ms=end_ms, limit=limit)
