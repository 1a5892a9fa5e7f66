"""When links are pulled (the work behind `oem.schedule`, and what `oem.pull` records).

Each link carries `next_pull_at`. A run claims, per connection, the links whose time has come,
in one statement: `UPDATE oem_links SET next_pull_at = <lease end> WHERE id IN (SELECT … WHERE
status = 'active' AND connection_id = ? AND next_pull_at <= now ORDER BY next_pull_at LIMIT n
FOR UPDATE SKIP LOCKED) RETURNING …`. On PostgreSQL several schedulers (or overlapping runs)
skip each other's rows; on SQLite the one statement is the single writer's atomic claim.
Either way a claimed link is queued once, and only the due rows of the index are read. The
lease keeps it until its pull records the next time (its products' refreshSeconds on); a pull
that dies leaves the lease to expire, and the link is claimed again.

A 429 holds what the API says it limits (errors.py scopes): the vehicle (`held_until` and
`next_pull_at` on the link) or the connection (`oem_connection_holds`), until its Retry-After.
Both are rows, so a restarted worker or scheduler keeps them; held work is not queued, and a
pull that finds its link held makes no call.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass

from sqlalchemy import ColumnElement, func, select, update
from sqlalchemy.orm import Session

from workers.config import OemConnection, Settings
from workers.db.oem import OemConnectionHold, OemLink
from workers.db.projections import Membership, Product, Vehicle
from workers.db.session import Database
from workers.db.statements import upsert
from workers.oem.errors import CONNECTION_SCOPE
from workers.oem.links import ACTIVE
from workers.oem.metrics import LINKS_DUE

#: Kind.Bundle in DataProducts: bundles are pulled at their own refreshSeconds like any product.
MIN_PULL_SECONDS = 1


@dataclass(frozen=True)
class Claimed:
    link_id: int
    vehicle_id: int | None
    vin_hash: str


def member_refresh_seconds(session: Session, vehicle_ids: Collection[int]) -> dict[int, int]:
    """Vehicle id -> the shortest refreshSeconds among the active products it is a live
    member of (consent to the product's current version, in the vehicle's current generation);
    vehicles in none are absent."""
    if not vehicle_ids:
        return {}
    rows = session.execute(
        select(Membership.vehicle_id, func.min(Product.refresh_seconds))
        .join(Product, Product.product_id == Membership.product_id)
        .join(Vehicle, Vehicle.vehicle_id == Membership.vehicle_id)
        .where(
            Membership.vehicle_id.in_(sorted(vehicle_ids)),
            Product.active.is_(True),
            Membership.version == Product.version,
            Membership.generation == Vehicle.generation,
            Vehicle.burned.is_(False),
        )
        .group_by(Membership.vehicle_id)
    )
    return {int(vehicle_id): max(int(seconds or 0), MIN_PULL_SECONDS) for vehicle_id, seconds in rows}


def next_pull_after(session: Session, settings: Settings, vehicle_id: int, now: int) -> int:
    """When a vehicle pulled at `now` is due again (OEM_SCHEDULE_IDLE if in no product now)."""
    interval = member_refresh_seconds(session, [vehicle_id]).get(vehicle_id, settings.oem_schedule_idle)
    return now + interval


def claim_limit(settings: Settings, connection: OemConnection) -> int:
    """Links of one connection claimed per run: what its pace serves until the next run (plus
    its burst), at most OEM_SCHEDULE_BATCH; more would only wait in the queue."""
    rate = connection.rate_per_second or settings.oem_pace(connection.kind)[0]
    burst = connection.rate_burst or settings.oem_pace(connection.kind)[1]
    return max(1, min(settings.oem_schedule_batch, math.ceil(rate * settings.oem_schedule_interval) + burst))


def _due(connection_id: int, now: int) -> tuple[ColumnElement[bool], ...]:
    """The due links of a connection: one range of ix_oem_links_due."""
    return (OemLink.status == ACTIVE, OemLink.connection_id == connection_id, OemLink.next_pull_at <= now)


def claim_due(session: Session, connection_id: int, now: int, limit: int, lease_until: int) -> list[Claimed]:
    """Claims up to `limit` due active links of a connection, the longest-waiting first, by
    moving their `next_pull_at` to `lease_until` (see the module docstring)."""
    due = (
        select(OemLink.id)
        .where(*_due(connection_id, now))
        .order_by(OemLink.next_pull_at)
        .limit(limit)
        .with_for_update(skip_locked=True)  # SQLite renders none: its writer is alone anyway
    )
    rows = session.execute(
        update(OemLink)
        .where(OemLink.id.in_(due.scalar_subquery()))
        .values(next_pull_at=lease_until, scheduled_at=now)
        .returning(OemLink.id, OemLink.vehicle_id, OemLink.vin_hash)
        .execution_options(synchronize_session=False)
    ).all()
    return [Claimed(int(i), int(v) if v is not None else None, str(h)) for i, v, h in rows]


#: The links_due gauge counts at most this many runs' claims a connection (past that, its
#: pulls are that far behind, which is what the gauge is for): each run reads a bounded range.
DUE_COUNT_RUNS = 10


def count_due(session: Session, connection_id: int, now: int, at_most: int) -> int:
    """Due links of a connection, counted up to `at_most` (one bounded index range)."""
    due = select(OemLink.id).where(*_due(connection_id, now)).limit(at_most).subquery()
    return int(session.scalar(select(func.count()).select_from(due)) or 0)


def _resolve_vehicles(session: Session, claimed: list[Claimed]) -> list[Claimed]:
    """Fills in the vehicle id of claimed links whose VIN has since been minted (indexer)."""
    pending = {c.vin_hash for c in claimed if c.vehicle_id is None}
    if not pending:
        return claimed
    minted = dict(
        session.execute(
            select(Vehicle.vin_hash, Vehicle.vehicle_id).where(
                Vehicle.vin_hash.in_(sorted(pending)), Vehicle.burned.is_(False)
            )
        ).all()
    )
    resolved = []
    for c in claimed:
        vehicle_id = c.vehicle_id if c.vehicle_id is not None else minted.get(c.vin_hash)
        if c.vehicle_id is None and vehicle_id is not None:
            session.execute(update(OemLink).where(OemLink.id == c.link_id).values(vehicle_id=int(vehicle_id)))
        resolved.append(Claimed(c.link_id, int(vehicle_id) if vehicle_id is not None else None, c.vin_hash))
    return resolved


def connection_holds(session: Session, now: int) -> dict[int, int]:
    """Connection id -> until, for the connections held now."""
    rows = session.execute(
        select(OemConnectionHold.connection_id, OemConnectionHold.until).where(OemConnectionHold.until > now)
    )
    return {int(c): int(until) for c, until in rows}


def hold(session: Session, link: OemLink, *, scope: str, until: int, reason: str) -> None:
    """Holds the vehicle (its link) or the whole connection until `until` after a 429."""
    now = int(time.time())
    if scope == CONNECTION_SCOPE:  # a hold only grows: a shorter Retry-After does not cut it
        session.execute(
            upsert(session, OemConnectionHold, update=("until", "reason", "updated_at"), if_newer="until"),
            {"connection_id": link.connection_id, "until": until, "reason": reason, "updated_at": now},
        )
    session.execute(
        update(OemLink)
        .where(OemLink.id == link.id)
        .values(
            held_until=until if scope != CONNECTION_SCOPE else OemLink.held_until,
            next_pull_at=until,
            last_error=reason,
            updated_at=now,
        )
    )


def held_until(session: Session, link: OemLink, now: int) -> int | None:
    """Until when calls for this link may not go out (its vehicle's or connection's hold)."""
    connection = session.get(OemConnectionHold, link.connection_id)
    times = [t for t in (link.held_until, connection.until if connection else None) if t and t > now]
    return max(times) if times else None


def _schedule_connection(
    session: Session, settings: Settings, connection: OemConnection, now: int
) -> tuple[set[int], int]:
    """One connection's part of a run: (vehicle ids to queue, links due)."""
    limit = claim_limit(settings, connection)
    claimed = claim_due(session, connection.connection_id, now, limit, now + settings.oem_pull_lease)
    claimed = _resolve_vehicles(session, claimed)
    due = len(claimed)
    if due == limit:  # more are waiting: the gauge counts them too (up to a bound)
        due += count_due(session, connection.connection_id, now, limit * (DUE_COUNT_RUNS - 1))
    intervals = member_refresh_seconds(session, {c.vehicle_id for c in claimed if c.vehicle_id is not None})
    idle = [c.link_id for c in claimed if c.vehicle_id not in intervals]
    if idle:
        session.execute(
            update(OemLink)
            .where(OemLink.id.in_(idle))
            .values(next_pull_at=now + settings.oem_schedule_idle)
            .execution_options(synchronize_session=False)
        )
    return {c.vehicle_id for c in claimed if c.vehicle_id is not None and c.vehicle_id in intervals}, due


def schedule_pulls(
    settings: Settings, db: Database, enqueue: Callable[[int], object], now: int | None = None
) -> list[int]:
    """Claims every connection's due links (none of a held connection), queues one `oem.pull`
    per member vehicle and moves the others (in no active product, or not minted) on by
    OEM_SCHEDULE_IDLE. The claims commit before anything is queued: a run that dies between
    the two leaves leases that expire. Returns the queued vehicle ids."""
    now = int(time.time()) if now is None else now
    queued: set[int] = set()
    due = 0
    with db.session() as session:
        held = connection_holds(session, now)
        for connection in settings.oem_connection_list():
            if connection.connection_id in held:
                at_most = claim_limit(settings, connection) * DUE_COUNT_RUNS
                due += count_due(session, connection.connection_id, now, at_most)
                continue
            vehicles, waiting = _schedule_connection(session, settings, connection, now)
            queued |= vehicles
            due += waiting
    LINKS_DUE.set(due)
    for vehicle_id in sorted(queued):
        enqueue(vehicle_id)
    return sorted(queued)
