"""Owner and key-holder endpoints: a vehicle's live consents (its owner only) and remote
commands (whoever holds the command's permission bit on the latest block)."""

from __future__ import annotations

import logging
import secrets
import time
from typing import Literal

from fastapi import APIRouter, Path, Request
from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from workers.access import may_command
from workers.db.gateway import VehicleProfile
from workers.db.projections import (
    Connection,
    Device,
    KeyManagerEpoch,
    Membership,
    Pairing,
    Product,
    Vehicle,
    VehicleKey,
)
from workers.gateway.deps import Caller, read_session, state_of
from workers.gateway.problems import Problem, problem_responses
from workers.gateway.tasks import send_task
from workers.protocol import UINT256_MAX

log = logging.getLogger(__name__)

router = APIRouter(prefix="/v1/vehicles", tags=["vehicles"])


class KeyView(BaseModel):
    grantee: str
    permissions: int
    expires_at: int
    terms_hash: str


class MembershipView(BaseModel):
    product_id: int
    version: int


class ConsentsView(BaseModel):
    vehicle_id: int
    owner: str
    keys: list[KeyView]
    products: list[MembershipView]


class OwnedVehicleView(BaseModel):
    vehicle_id: int
    make: str | None
    model: str | None
    connection_id: int | None
    #: The automaker connection's name on VehicleId (None: minted without one).
    connection: str | None
    #: The aftermarket device paired now (None: none).
    device_id: int | None


class CommandAccepted(BaseModel):
    vehicle_id: int
    command: str
    status: str
    task_id: str
    request_id: str


def owned_vehicle(session: Session, vehicle_id: int, caller: str) -> Vehicle:
    """The vehicle as the indexer last confirmed it, when `caller` owns it; else the refusal
    (`not_found`, `not_owner`). Every owner-only endpoint asks here."""
    vehicle = session.get(Vehicle, vehicle_id)
    if vehicle is None or vehicle.burned or vehicle.owner is None:
        raise Problem("not_found", f"no vehicle {vehicle_id}")
    if vehicle.owner.lower() != caller.lower():
        raise Problem("not_owner", f"{caller} does not own vehicle {vehicle_id}")
    return vehicle


@router.get("", response_model=list[OwnedVehicleView], responses=problem_responses(401, 429))
def my_vehicles(request: Request, caller: Caller) -> list[OwnedVehicleView]:
    """The caller's vehicles as the indexer last confirmed them: what the automaker says each
    is, its connection and the device paired with it now."""
    state = state_of(request)
    with read_session(state) as session:
        rows = session.execute(
            select(Vehicle, VehicleProfile.make, VehicleProfile.model, Connection.name, Device.device_id)
            .outerjoin(VehicleProfile, VehicleProfile.vehicle_id == Vehicle.vehicle_id)
            .outerjoin(Connection, Connection.connection_id == Vehicle.connection_id)
            .outerjoin(
                Pairing,
                (Pairing.vehicle_id == Vehicle.vehicle_id) & (Pairing.generation == Vehicle.generation),
            )
            .outerjoin(
                Device,
                (Device.device_id == Pairing.device_id)
                & (Device.generation == Pairing.device_generation)
                & Device.revoked.is_(False),
            )
            .where(Vehicle.owner == caller.address.lower(), Vehicle.burned.is_(False))
            .order_by(Vehicle.vehicle_id)
        )
        return [
            OwnedVehicleView(
                vehicle_id=int(vehicle.vehicle_id),
                make=make,
                model=model,
                connection_id=None if vehicle.connection_id is None else int(vehicle.connection_id),
                connection=connection,
                device_id=None if device_id is None else int(device_id),
            )
            for vehicle, make, model, connection, device_id in rows
        ]


@router.get(
    "/{vehicleId}/consents",
    response_model=ConsentsView,
    responses=problem_responses(401, 403, 404, 429),
)
def consents(
    request: Request, caller: Caller, vehicle_id: int = Path(alias="vehicleId", ge=0, le=UINT256_MAX)
) -> ConsentsView:
    """For the vehicle's owner: the live keys on it and the products it is a member of, as
    the indexer last confirmed them (expired, revoked and pre-transfer ones are left out, and
    so are keys of a key manager that lost MANAGE_KEYS since: their epoch moved on)."""
    state = state_of(request)
    with read_session(state) as session:
        facts = state.facts(session)
        vehicle = owned_vehicle(session, vehicle_id, caller.address)
        now = facts.now()
        keys = session.scalars(
            select(VehicleKey)
            .outerjoin(
                KeyManagerEpoch,
                (KeyManagerEpoch.vehicle_id == VehicleKey.vehicle_id)
                & (KeyManagerEpoch.manager == VehicleKey.granted_by),
            )
            .where(
                VehicleKey.vehicle_id == vehicle_id,
                VehicleKey.generation == vehicle.generation,
                VehicleKey.granted_by.is_(None)
                | (KeyManagerEpoch.epoch.is_(None) & (VehicleKey.granter_epoch == 0))
                | (KeyManagerEpoch.epoch == VehicleKey.granter_epoch),
            )
            .order_by(VehicleKey.grantee)
        )
        products = session.execute(
            select(Membership.product_id, Membership.version)
            .join(Product, Product.product_id == Membership.product_id)
            .where(
                Membership.vehicle_id == vehicle_id,
                Membership.generation == vehicle.generation,
                Membership.version == Product.version,
            )
            .order_by(Membership.product_id)
        )
        return ConsentsView(
            vehicle_id=vehicle_id,
            owner=vehicle.owner,
            keys=[
                KeyView(
                    grantee=k.grantee,
                    permissions=int(k.permissions),
                    expires_at=int(k.expires_at),
                    terms_hash=k.terms_hash,
                )
                for k in keys
                if int(k.expires_at) > now and int(k.permissions) != 0
            ],
            products=[MembershipView(product_id=int(p), version=int(v)) for p, v in products],
        )


@router.post(
    "/{vehicleId}/commands/{command}",
    response_model=CommandAccepted,
    status_code=202,
    responses=problem_responses(401, 403, 429, 503),
)
async def command(
    request: Request,
    caller: Caller,
    command: Literal["lock", "unlock", "start"],
    vehicle_id: int = Path(alias="vehicleId", ge=0, le=UINT256_MAX),
) -> CommandAccepted:
    """Relays lock, unlock or remote start to the automaker (task `oem.command`) when the
    caller holds the LOCK, UNLOCK or DRIVE bit on the vehicle on the latest block."""
    state = state_of(request)
    decision = await run_in_threadpool(may_command, state.chain, vehicle_id, caller.address, command)
    if not decision:
        raise Problem(decision.reason or "no_permission", decision.detail)
    request_id = secrets.token_hex(16)
    task_id = await run_in_threadpool(
        send_task,
        state,
        "oem.command",
        request_id=request_id,
        vehicle_id=vehicle_id,
        caller=caller.address,
        command=command,
        requested_at=int(time.time()),
    )
    log.info("command %s for vehicle %d by %s queued as %s", command, vehicle_id, caller.address, task_id)
    return CommandAccepted(
        vehicle_id=vehicle_id, command=command, status="queued", task_id=task_id, request_id=request_id
    )
