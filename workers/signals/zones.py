"""Owner privacy zones: an owner, signed in, names places (home, work) where the vehicle's
location is coarsened before any buyer sees it.

`coarsen` is the one function every serving read passes observations through (the store's
`latest` and `history` call it, so signals/latest, history, streams and datasets all do).
A latitude/longitude pair (same source, same timestamp) inside a live zone is replaced by the
centre of the `CELL_DEGREES` grid cell holding the zone's centre: every point of the zone maps
to the same point, which is neither the car's position nor the zone's centre. A coordinate
whose partner is missing cannot be shown to lie outside the zones, so it is snapped to its own
grid cell (fail closed). Other observations pass unchanged.

A zone belongs to the tenure it was made in: it is live while its owner still owns the
vehicle at the generation it was made in (`vehicles.generation`, bumped by every transfer).
A transfer voids it; the new owner defines their own."""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from sqlalchemy import and_, bindparam, delete, exists, func, select
from sqlalchemy.orm import Session

from workers.db import upsert
from workers.db.indexing import ProjectionVersion
from workers.db.projections import Vehicle
from workers.db.zones import PrivacyZone
from workers.signals.catalogue import LATITUDE, LONGITUDE

if TYPE_CHECKING:
    from workers.signals.store import SignalValue

#: The signals a zone coarsens.
COORDINATES = frozenset({LATITUDE, LONGITUDE})
#: Zones one owner may keep on one vehicle.
MAX_ZONES = 8
MIN_RADIUS_M = 100.0
MAX_RADIUS_M = 10_000.0
MAX_LABEL = 64
#: The grid (degrees of latitude and of longitude) a coarsened location is snapped to:
#: about 5.6 km north-south.
CELL_DEGREES = 0.05
EARTH_RADIUS_M = 6_371_008.8


@dataclass(frozen=True)
class Zone:
    zone_id: int
    vehicle_id: int
    label: str
    latitude: float
    longitude: float
    radius_m: float
    created_at: int

    def contains(self, latitude: float, longitude: float) -> bool:
        """Is the point within the radius (great-circle distance)?"""
        phi1, phi2 = math.radians(self.latitude), math.radians(latitude)
        dphi = phi2 - phi1
        dlambda = math.radians(longitude - self.longitude)
        a = math.sin(dphi / 2) ** 2 + math.cos(phi1) * math.cos(phi2) * math.sin(dlambda / 2) ** 2
        return 2 * EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(a))) <= self.radius_m


#: The change counter (a `projection_versions` row) every zone write bumps in its transaction:
#: a stream hub reads it to know its cached zones are stale (workers/gateway/hub.py). Not the
#: table's row count and largest id: SQLite gives a new zone the id of a deleted largest one,
#: so deleting a zone and making another leaves both as they were.
CHANGES = PrivacyZone.__tablename__

#: A zone is live while the vehicle's owner and generation are still the ones it was made in.
_IN_ITS_TENURE = and_(
    Vehicle.vehicle_id == PrivacyZone.vehicle_id,
    Vehicle.generation == PrivacyZone.generation,
    Vehicle.owner == PrivacyZone.owner,
)

#: The zones of a vehicle's current tenure: one indexed read, Core (no ORM objects) since it
#: runs on metered reads.
_LIVE = (
    select(
        PrivacyZone.zone_id,
        PrivacyZone.vehicle_id,
        PrivacyZone.label,
        PrivacyZone.latitude,
        PrivacyZone.longitude,
        PrivacyZone.radius_m,
        PrivacyZone.created_at,
    )
    .join(Vehicle, _IN_ITS_TENURE)
    .where(PrivacyZone.vehicle_id == bindparam("vehicle_id"))
    .order_by(PrivacyZone.zone_id)
)


#: A column to read along with a vehicle's signals (its `vehicle_id` parameter): does the
#: vehicle have live zones? It spares the hot `signals/latest` a second statement.
ZONED = exists(
    select(PrivacyZone.zone_id)
    .join(Vehicle, _IN_ITS_TENURE)
    .where(PrivacyZone.vehicle_id == bindparam("vehicle_id"))
).label("zoned")


def _zone(row: Any) -> Zone:
    zone_id, vehicle_id, label, latitude, longitude, radius_m, created_at = row
    return Zone(
        int(zone_id),
        int(vehicle_id),
        label,
        float(latitude),
        float(longitude),
        float(radius_m),
        int(created_at),
    )


def live_zones(session: Session, vehicle_id: int) -> list[Zone]:
    """The zones of the vehicle's current tenure."""
    return [_zone(row) for row in session.connection().execute(_LIVE, {"vehicle_id": vehicle_id})]


def cell_centre(value: float) -> float:
    """The centre of the `CELL_DEGREES` grid cell holding `value` (a latitude or longitude)."""
    return round((math.floor(value / CELL_DEGREES) + 0.5) * CELL_DEGREES, 6)


def _number(value: float | bool | str) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def shape(zones: Sequence[Zone], signals: Sequence[SignalValue]) -> list[SignalValue]:
    """`signals` as a buyer may see them under `zones` (see the module's docstring)."""
    if not zones:
        return list(signals)
    points: dict[tuple[int, str], dict[str, float]] = {}
    for s in signals:
        number = _number(s.value)
        if s.name in COORDINATES and number is not None:
            points.setdefault((s.timestamp_ms, s.source), {})[s.name] = number
    shaped: list[SignalValue] = []
    for s in signals:
        if s.name not in COORDINATES:
            shaped.append(s)
            continue
        number = _number(s.value)
        if number is None:
            continue  # not a coordinate one could coarsen: withheld
        point = points.get((s.timestamp_ms, s.source), {})
        lat, lon = point.get(LATITUDE), point.get(LONGITUDE)
        if lat is None or lon is None:
            coarse = cell_centre(number)
        else:
            zone = next((z for z in zones if z.contains(lat, lon)), None)
            if zone is None:
                shaped.append(s)
                continue
            coarse = cell_centre(zone.latitude if s.name == LATITUDE else zone.longitude)
        shaped.append(replace(s, value=coarse, signature=None))
    return shaped


def coarsen(
    session: Session, vehicle_id: int, signals: Sequence[SignalValue], *, zoned: bool = True
) -> list[SignalValue]:
    """The vehicle's observations as any buyer may see them: locations inside the current
    tenure's zones coarsened. Reads the zones only when a coordinate is among `signals` and
    the caller did not read `ZONED` false along with them (`zoned=False`)."""
    if not zoned or not any(s.name in COORDINATES for s in signals):
        return list(signals)
    return shape(live_zones(session, vehicle_id), signals)


def create_zone(
    session: Session,
    vehicle: Vehicle,
    *,
    label: str,
    latitude: float,
    longitude: float,
    radius_m: float,
    now: int | None = None,
) -> Zone | None:
    """Adds a zone to the current tenure of `vehicle` (its owner's); None when the tenure
    already has `MAX_ZONES`."""
    assert vehicle.owner is not None
    count = session.scalar(
        select(func.count())
        .select_from(PrivacyZone)
        .where(
            PrivacyZone.vehicle_id == vehicle.vehicle_id,
            PrivacyZone.generation == vehicle.generation,
            PrivacyZone.owner == vehicle.owner,
        )
    )
    if int(count or 0) >= MAX_ZONES:
        return None
    row = PrivacyZone(
        vehicle_id=vehicle.vehicle_id,
        owner=vehicle.owner,
        generation=vehicle.generation,
        label=label,
        latitude=latitude,
        longitude=longitude,
        radius_m=radius_m,
        created_at=int(time.time()) if now is None else now,
    )
    session.add(row)
    session.flush()
    _changed(session)
    return Zone(int(row.zone_id), vehicle.vehicle_id, label, latitude, longitude, radius_m, row.created_at)


def delete_zone(session: Session, vehicle: Vehicle, zone_id: int) -> bool:
    """Removes a zone of the vehicle's current tenure; False when there is no such zone."""
    result = session.execute(
        delete(PrivacyZone)
        .where(
            PrivacyZone.zone_id == zone_id,
            PrivacyZone.vehicle_id == vehicle.vehicle_id,
            PrivacyZone.generation == vehicle.generation,
            PrivacyZone.owner == vehicle.owner,
        )
        .execution_options(synchronize_session=False)
    )
    if not result.rowcount:  # type: ignore[attr-defined]
        return False
    _changed(session)
    return True


def _changed(session: Session) -> None:
    connection = session.connection()
    connection.execute(
        upsert(connection, ProjectionVersion, add=("version",)), {"table_name": CHANGES, "version": 1}
    )
