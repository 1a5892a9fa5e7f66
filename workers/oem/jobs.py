"""The work behind the `oem.*` tasks as plain functions (workers/oem/tasks.py wraps them):

- `pull_vehicle`: one vehicle's signals through its connector with its stored tokens,
  normalised and stored, and the vehicle's profile kept current.
- `oem.schedule` is workers/oem/schedule.py: links claimed when due, 429 holds.
- `relay_command`: lock / unlock / remote start, decided by `workers.access.may_command` on
  the latest block at the moment of sending, never older than OEM_COMMAND_TTL, once.

Pulls and commands only use a link whose consenting owner still owns the vehicle NFT: a new
owner's car is not driven or read with the previous owner's automaker consent.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from sqlalchemy import update
from sqlalchemy.orm import Session
from web3.exceptions import ContractLogicError

from workers.access import may_command
from workers.chain.views import Chain
from workers.config import Settings
from workers.db.gateway import upsert_profile
from workers.db.oem import OemCommand, OemLink
from workers.db.projections import Vehicle
from workers.db.session import Database
from workers.oem.connectors import Command, Connector, connector_for
from workers.oem.errors import OemError, RateLimitedError, ReauthorizationRequiredError
from workers.oem.links import ACTIVE, OWNER_CHANGED, LinkTokens, cipher_from, link_for_vehicle, set_status
from workers.oem.metrics import PULLS
from workers.oem.schedule import held_until, hold, next_pull_after
from workers.oem.signals import Signal
from workers.signals import catalogue as vss
from workers.signals.store import store_signals

log = logging.getLogger(__name__)


class Owners(Protocol):
    def owner_of(self, vehicle_id: int) -> str | None:
        """The vehicle's owner now (lower-case), or None if unknown or burned."""
        ...


class IndexedOwners:
    """Owners as the indexer last confirmed them (projections.vehicles)."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def owner_of(self, vehicle_id: int) -> str | None:
        with self.db.session(read_only=True) as session:
            row = session.get(Vehicle, vehicle_id)
        return None if row is None or row.burned or row.owner is None else row.owner.lower()


class ChainOwners:
    """Owners on the latest block (what commands use: the same block `may_command` reads)."""

    def __init__(self, chain: Chain) -> None:
        self.chain = chain

    def owner_of(self, vehicle_id: int) -> str | None:
        try:
            owner = self.chain.vehicle_id.functions.ownerOf(vehicle_id).call(block_identifier="latest")
        except ContractLogicError:  # burned or never minted
            return None
        return str(owner).lower()


# --- pulls ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class PullOutcome:
    vehicle_id: int
    #: stored | held | rate_limited | no_link | link_inactive | owner_changed | reauth_required | failed
    status: str
    stored: int = 0
    reason: str | None = None
    detail: str | None = None


def region_of(latitude: float, longitude: float) -> str:
    """A coarse region for stream and dataset filters (us-west, us-central, us-east,
    eu-west, eu-central, other)."""
    if 15 <= latitude <= 72 and -170 <= longitude <= -50:
        if longitude < -115:
            return "us-west"
        return "us-central" if longitude < -85 else "us-east"
    if 34 <= latitude <= 72 and -25 <= longitude <= 45:
        return "eu-west" if longitude < 5 else "eu-central"
    return "other"


def powertrain_of(names: set[str]) -> str | None:
    battery = vss.SOC in names
    fuel = vss.FUEL_LEVEL in names
    if battery and fuel:
        return "PHEV"
    if battery:
        return "BEV"
    return "ICE" if fuel else None


def _update_profile(session: Session, vehicle_id: int, link: OemLink, signals: Sequence[Signal]) -> None:
    by_name = {s.name: s for s in signals}
    region = None
    if vss.LATITUDE in by_name and vss.LONGITUDE in by_name:
        region = region_of(float(by_name[vss.LATITUDE].value), float(by_name[vss.LONGITUDE].value))
    upsert_profile(
        session,
        vehicle_id,
        make=link.make,
        model=link.model,
        powertrain=powertrain_of(set(by_name)),
        region=region,
    )


def _record(db: Database, link_id: int, **values: object) -> None:
    with db.session() as session:
        session.execute(update(OemLink).where(OemLink.id == link_id).values(**values))


def _usable_link(db: Database, vehicle_id: int, owners: Owners) -> tuple[OemLink | None, str | None]:
    """The vehicle's link if pulls and commands may use it, else (None, why not)."""
    with db.session(read_only=True) as session:
        link = link_for_vehicle(session, vehicle_id)
    if link is None:
        return None, "no_link"
    if link.status != ACTIVE:
        return None, "reauth_required" if link.status == "reauth_required" else "link_inactive"
    owner = owners.owner_of(vehicle_id)
    if owner is None or owner != link.owner.lower():
        set_status(db, link.id, OWNER_CHANGED, f"vehicle owner is {owner}, consent was {link.owner}")
        return None, "owner_changed"
    return link, None


def pull_vehicle(
    vehicle_id: int,
    settings: Settings,
    db: Database,
    *,
    owners: Owners | None = None,
    connectors: Callable[[int, Settings], Connector] = connector_for,
    now: int | None = None,
) -> PullOutcome:
    """Pulls, normalises and stores one vehicle's signals, and records when it is due next.

    A 429 the connector did not wait out holds the vehicle or the connection (its API's scope)
    until its Retry-After and is returned, not raised: the schedule claims it again then, and
    no retry piles onto the automaker. Other transient errors (outages, malformed answers) are
    recorded on the link and raised, for the task to retry; final ones are recorded and
    returned. `now`: the clock (unix seconds; tests move it)."""
    return _pull(vehicle_id, settings, db, owners or IndexedOwners(db), connectors, now)


def _connection_name(settings: Settings, connection_id: int) -> str:
    try:
        return settings.oem_connection(connection_id).name
    except KeyError:
        return str(connection_id)


def _pull(  # noqa: PLR0917 - pull_vehicle's arguments
    vehicle_id: int,
    settings: Settings,
    db: Database,
    owners: Owners,
    connectors: Callable[[int, Settings], Connector],
    now: int | None,
) -> PullOutcome:
    now = int(time.time()) if now is None else now
    link, why_not = _usable_link(db, vehicle_id, owners)
    if link is None:
        PULLS.labels("none", why_not or "no_link").inc()
        return PullOutcome(vehicle_id, why_not or "no_link")
    counted = PULLS.labels(_connection_name(settings, link.connection_id), "stored")
    with db.session() as session:
        until = held_until(session, link, now)
        if until is not None:
            session.execute(update(OemLink).where(OemLink.id == link.id).values(next_pull_at=until))
    if until is not None:
        PULLS.labels(_connection_name(settings, link.connection_id), "held").inc()
        return PullOutcome(vehicle_id, "held", reason="oem_rate_limited", detail=f"held until {until}")
    connector = connectors(link.connection_id, settings)
    tokens = LinkTokens(db, link.id, cipher_from(settings))
    try:
        signals = connector.read_signals(tokens, link.external_id)
    except ReauthorizationRequiredError as exc:
        PULLS.labels(connector.connection.name, "reauth_required").inc()
        return PullOutcome(vehicle_id, "reauth_required", reason=exc.reason, detail=exc.detail)
    except RateLimitedError as exc:
        wait = exc.retry_after if exc.retry_after is not None else settings.oem_rate_limited_hold
        until = now + max(math.ceil(wait), 1)
        with db.session() as session:
            hold(session, link, scope=exc.scope, until=until, reason=f"{exc.reason}: {exc.detail}")
        log.warning("oem.pull %s: 429, %s held until %s", vehicle_id, exc.scope, until)
        PULLS.labels(connector.connection.name, "rate_limited").inc()
        detail = f"{exc.scope} held until {until}"
        return PullOutcome(vehicle_id, "rate_limited", reason=exc.reason, detail=detail)
    except OemError as exc:
        values: dict[str, object] = {"last_error": f"{exc.reason}: {exc.detail}", "updated_at": now}
        if exc.transient:  # the lease stays: the task retries, or the link is claimed again after it
            _record(db, link.id, **values)
            PULLS.labels(connector.connection.name, "error").inc()
            raise
        with db.session() as session:
            values["next_pull_at"] = next_pull_after(session, settings, vehicle_id, now)
            session.execute(update(OemLink).where(OemLink.id == link.id).values(**values))
        PULLS.labels(connector.connection.name, "failed").inc()
        return PullOutcome(vehicle_id, "failed", reason=exc.reason, detail=exc.detail)
    with db.session() as session:
        stored = store_signals(session, vehicle_id, signals)
        _update_profile(session, vehicle_id, link, signals)
        session.execute(
            update(OemLink)
            .where(OemLink.id == link.id)
            .values(
                last_pull_at=now,
                last_error=None,
                updated_at=now,
                next_pull_at=next_pull_after(session, settings, vehicle_id, now),
            )
        )
    counted.inc()
    return PullOutcome(vehicle_id, "stored", stored)


# --- commands --------------------------------------------------------------------------------


@dataclass(frozen=True)
class CommandOutcome:
    request_id: str
    #: sent | refused | expired | failed
    status: str
    reason: str | None = None
    detail: str | None = None


_FINAL = ("sent", "refused", "expired", "failed")


def _command_row(
    session: Session, request_id: str, *, vehicle_id: int, caller: str, command: str, requested_at: int
) -> OemCommand:
    row = session.get(OemCommand, request_id)
    if row is None:
        row = OemCommand(
            request_id=request_id,
            vehicle_id=vehicle_id,
            caller=caller,
            command=command,
            status="queued",
            requested_at=requested_at,
        )
        session.add(row)
    return row


def _finish(
    db: Database, request_id: str, status: str, reason: str | None, detail: str | None
) -> CommandOutcome:
    with db.session() as session:
        session.execute(
            update(OemCommand)
            .where(OemCommand.request_id == request_id)
            .values(status=status, reason=reason, detail=detail, finished_at=int(time.time()))
        )
    log.info("oem.command %s: %s %s", request_id, status, reason or "")
    return CommandOutcome(request_id, status, reason, detail)


def relay_command(
    request_id: str,
    *,
    vehicle_id: int,
    caller: str,
    command: str,
    requested_at: int,
    settings: Settings,
    db: Database,
    chain: Chain,
    owners: Owners | None = None,
    connectors: Callable[[int, Settings], Connector] = connector_for,
) -> CommandOutcome:
    """Relays one command at most once per `request_id`; permission is decided now, on the
    latest block, by `workers.access.may_command`."""
    with db.session() as session:
        row = _command_row(
            session,
            request_id,
            vehicle_id=vehicle_id,
            caller=caller.lower(),
            command=command,
            requested_at=requested_at,
        )
        if row.status in _FINAL:
            return CommandOutcome(request_id, row.status, row.reason, row.detail)
    age = int(time.time()) - requested_at
    if age > settings.oem_command_ttl:
        return _finish(
            db,
            request_id,
            "expired",
            "command_expired",
            f"queued {age}s ago, limit {settings.oem_command_ttl}s",
        )
    decision = may_command(chain, vehicle_id, caller, command)
    if not decision.allowed:
        return _finish(db, request_id, "refused", decision.reason, decision.detail)
    link, why_not = _usable_link(db, vehicle_id, owners or ChainOwners(chain))
    if link is None:
        return _finish(db, request_id, "failed", why_not, "no usable automaker link for this vehicle")
    connector = connectors(link.connection_id, settings)
    tokens = LinkTokens(db, link.id, cipher_from(settings))
    try:
        result = connector.send_command(tokens, link.external_id, Command(command))
    except OemError as exc:
        if exc.transient and int(time.time()) - requested_at <= settings.oem_command_ttl:
            raise
        return _finish(db, request_id, "failed", exc.reason, exc.detail)
    return _finish(db, request_id, "sent", None, result.detail)
