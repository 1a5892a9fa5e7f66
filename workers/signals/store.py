"""The one door to stored vehicle signals. OEM pulls and device telemetry write through
`store_signals`; the gateway, streams and datasets read through `latest` and `history`,
which hand back observations as a buyer may see them: within the window the access rule
allows (`since_ms`, from `workers.access.window_start`, applied in SQL: an observation before
it is never returned) and with the owner's privacy zones applied
(`workers.signals.zones.coarsen`). The tables (`workers.db.signals`) keep every observation
in arrival order and the newest one per vehicle and name, so the metered `signals/latest` is
one indexed read."""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol

from sqlalchemy import Select, bindparam, select
from sqlalchemy.orm import Session

from workers.db import append_rows, upsert
from workers.db.signals import LatestSignal, StoredSignal
from workers.signals import feed, zones

#: What a newer observation replaces in `signals_latest` (all but the key).
_NEWER = ("value", "number", "unit", "timestamp_ms", "source", "signature")
#: Later than any observation: the default end of a history.
END_OF_TIME_MS = 2**62


class Observation(Protocol):
    """What a producer hands the store (an OEM `Signal`, a `SignalValue`)."""

    @property
    def name(self) -> str: ...
    @property
    def value(self) -> float | bool | str: ...
    @property
    def unit(self) -> str | None: ...
    @property
    def timestamp_ms(self) -> int: ...
    @property
    def source(self) -> str: ...
    @property
    def signature(self) -> str | None: ...


@dataclass(frozen=True)
class SignalValue:
    """One observation as stored and served: VSS name, value, unit, unix ms, source."""

    name: str
    value: float | bool | str
    unit: str | None
    timestamp_ms: int
    source: str
    signature: str | None = None


def _number(value: float | bool | str) -> float | None:
    if isinstance(value, bool):
        return 1.0 if value else 0.0
    if isinstance(value, int | float):
        return float(value)
    return None


def _json(value: float | bool | str) -> str:
    """`json.dumps(value)`, without the encoder for the usual finite number or boolean."""
    if value is True or value is False:
        return "true" if value else "false"
    if type(value) is float and math.isfinite(value):
        return repr(value)
    return json.dumps(value)


def _row(vehicle_id: int, s: Observation) -> dict[str, object]:
    return {
        "vehicle_id": vehicle_id,
        "name": s.name,
        "value": _json(s.value),
        "number": _number(s.value),
        "unit": s.unit,
        "timestamp_ms": s.timestamp_ms,
        "source": s.source,
        "signature": s.signature,
    }


def store_many(session: Session, batch: Iterable[tuple[int, Iterable[Observation]]]) -> int:
    """Appends every (vehicle, observations) of `batch` to the history and moves each
    vehicle's latest values forward (never back), in the caller's transaction, with one
    multi-row statement per table (history: COPY on PostgreSQL); returns how many
    observations were stored."""
    observed = [(vehicle_id, s) for vehicle_id, signals in batch for s in signals]
    if not observed:
        return 0
    connection = session.connection()
    append_rows(connection, StoredSignal, [_row(vehicle_id, s) for vehicle_id, s in observed])
    # one row per key, the newest of the batch: a multi-row upsert may not touch a row twice
    newest: dict[tuple[int, str], tuple[int, Observation]] = {}
    for vehicle_id, s in observed:
        kept = newest.get((vehicle_id, s.name))
        if kept is None or s.timestamp_ms >= kept[1].timestamp_ms:
            newest[(vehicle_id, s.name)] = (vehicle_id, s)
    latest = upsert(session, LatestSignal, update=_NEWER, if_newer="timestamp_ms")
    connection.execute(latest, [_row(vehicle_id, s) for vehicle_id, s in newest.values()])
    # live streams are pushed the batch's newest values once the transaction commits
    pushed: dict[int, list[Observation]] = {}
    for vehicle_id, s in newest.values():
        pushed.setdefault(vehicle_id, []).append(s)
    feed.publish_after_commit(session, pushed.items())
    return len(observed)


def store_signals(session: Session, vehicle_id: int, signals: Iterable[Observation]) -> int:
    """Appends `signals` to the vehicle's history and moves its latest values forward (never
    back), in the caller's transaction; returns how many were stored."""
    return store_many(session, [(vehicle_id, signals)])


LATEST_QUERY = (
    select(
        LatestSignal.name,
        LatestSignal.value,
        LatestSignal.unit,
        LatestSignal.timestamp_ms,
        LatestSignal.source,
        LatestSignal.signature,
        zones.ZONED,
    )
    .where(
        LatestSignal.vehicle_id == bindparam("vehicle_id"),
        LatestSignal.timestamp_ms >= bindparam("since_ms"),
    )
    .order_by(LatestSignal.name)
)


def latest(
    session: Session, vehicle_id: int, names: Iterable[str] | None = None, *, since_ms: int
) -> list[SignalValue]:
    """The newest observation of each of the vehicle's signals (of `names` only, if given), by
    name, when it was made at or after `since_ms` (one indexed read, which also tells whether
    the vehicle has live privacy zones), privacy zones applied."""
    rows = session.connection().execute(LATEST_QUERY, {"vehicle_id": vehicle_id, "since_ms": since_ms}).all()
    found = zones.coarsen(
        session,
        vehicle_id,
        [
            SignalValue(name, json.loads(value), unit, int(ts), source, sig)
            for name, value, unit, ts, source, sig, _ in rows
        ],
        zoned=bool(rows) and bool(rows[0].zoned),
    )
    if names is None:
        return found
    wanted = set(names)
    return [s for s in found if s.name in wanted]


def history_query(
    vehicle_id: int, names: Iterable[str] | None, since_ms: int, until_ms: int, limit: int
) -> Select[tuple[StoredSignal]]:
    """The vehicle's stored rows (of `names` only, if given) in [since_ms, until_ms], oldest
    first, at most `limit`. Bounded by timestamp_ms on both sides, so PostgreSQL reads only
    the day partitions in the window."""
    query = select(StoredSignal).where(
        StoredSignal.vehicle_id == vehicle_id,
        StoredSignal.timestamp_ms >= since_ms,
        StoredSignal.timestamp_ms <= until_ms,
    )
    if names is not None:
        query = query.where(StoredSignal.name.in_(sorted(names)))  # a handful of VSS names
    return query.order_by(StoredSignal.timestamp_ms, StoredSignal.id).limit(limit)


def history(
    session: Session,
    vehicle_id: int,
    *,
    names: Iterable[str] | None = None,
    since_ms: int,
    until_ms: int = END_OF_TIME_MS,
    limit: int = 10_000,
) -> list[SignalValue]:
    """The vehicle's observations (of `names` only, if given) in [since_ms, until_ms], oldest
    first, at most `limit`, privacy zones applied. A coordinate is read with its partner (a
    zone needs the whole point), which may leave fewer than `limit` when only one is asked."""
    wanted = None if names is None else set(names)
    read, wanted_and_partner = limit, wanted
    if wanted is not None and wanted & zones.COORDINATES and not wanted >= zones.COORDINATES:
        wanted_and_partner, read = wanted | zones.COORDINATES, 2 * limit
    rows = session.scalars(history_query(vehicle_id, wanted_and_partner, since_ms, until_ms, read))
    found = zones.coarsen(
        session,
        vehicle_id,
        [
            SignalValue(r.name, json.loads(r.value), r.unit, int(r.timestamp_ms), r.source, r.signature)
            for r in rows
        ],
    )
    return [s for s in found if wanted is None or s.name in wanted][:limit]
