"""Owner privacy zones: the vehicle's owner, signed in, creates, lists and deletes places
(home, work) where its location is coarsened before any buyer sees it
(`workers.signals.zones`). Zones belong to the owner's tenure: after a transfer the new owner
sees none of the previous owner's and defines their own."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Request
from pydantic import BaseModel, ConfigDict, Field, StringConstraints
from starlette.responses import Response

from workers.gateway.deps import Caller, read_session, state_of, write_session
from workers.gateway.problems import Problem, problem_responses
from workers.gateway.routes_vehicles import owned_vehicle
from workers.protocol import UINT256_MAX
from workers.signals import zones
from workers.signals.zones import Zone

router = APIRouter(prefix="/v1/vehicles/{vehicleId}/zones", tags=["privacy zones"])

VehicleIdParam = Annotated[int, Path(alias="vehicleId", ge=0, le=UINT256_MAX)]
ZoneIdParam = Annotated[int, Path(alias="zoneId", ge=1, le=2**63 - 1)]


class ZoneRequest(BaseModel):
    """POST /v1/vehicles/{vehicleId}/zones body."""

    model_config = ConfigDict(extra="forbid")

    label: Annotated[
        str, StringConstraints(strip_whitespace=True, min_length=1, max_length=zones.MAX_LABEL)
    ] = Field(examples=["home"])
    latitude: float = Field(ge=-90, le=90, allow_inf_nan=False, description="Centre, degrees")
    longitude: float = Field(ge=-180, le=180, allow_inf_nan=False, description="Centre, degrees")
    radius_m: float = Field(
        ge=zones.MIN_RADIUS_M, le=zones.MAX_RADIUS_M, allow_inf_nan=False, description="Metres"
    )


class ZoneView(BaseModel):
    zone_id: int
    vehicle_id: int
    label: str
    latitude: float
    longitude: float
    radius_m: float
    created_at: int = Field(description="Unix seconds")


class ZonesView(BaseModel):
    vehicle_id: int
    zones: list[ZoneView]
    max_zones: int


def _view(zone: Zone) -> ZoneView:
    return ZoneView(
        zone_id=zone.zone_id,
        vehicle_id=zone.vehicle_id,
        label=zone.label,
        latitude=zone.latitude,
        longitude=zone.longitude,
        radius_m=zone.radius_m,
        created_at=zone.created_at,
    )


@router.post(
    "", response_model=ZoneView, status_code=201, responses=problem_responses(401, 403, 404, 409, 422, 429)
)
def create(request: Request, caller: Caller, vehicle_id: VehicleIdParam, body: ZoneRequest) -> ZoneView:
    """For the vehicle's owner: a new privacy zone. Locations inside it reach buyers only as
    the centre of a coarse grid cell, on every path (latest, history, streams, datasets)."""
    state = state_of(request)
    with write_session(state) as session:
        vehicle = owned_vehicle(session, vehicle_id, caller.address)
        zone = zones.create_zone(
            session,
            vehicle,
            label=body.label,
            latitude=body.latitude,
            longitude=body.longitude,
            radius_m=body.radius_m,
        )
        if zone is None:
            raise Problem("too_many_zones", f"vehicle {vehicle_id} already has {zones.MAX_ZONES} zones")
    return _view(zone)


@router.get("", response_model=ZonesView, responses=problem_responses(401, 403, 404, 422, 429))
def list_zones(request: Request, caller: Caller, vehicle_id: VehicleIdParam) -> ZonesView:
    """For the vehicle's owner: the zones of their tenure (a previous owner's are void)."""
    state = state_of(request)
    with read_session(state) as session:
        owned_vehicle(session, vehicle_id, caller.address)
        live = zones.live_zones(session, vehicle_id)
    return ZonesView(vehicle_id=vehicle_id, zones=[_view(z) for z in live], max_zones=zones.MAX_ZONES)


@router.delete(
    "/{zoneId}",
    status_code=204,
    response_class=Response,
    responses=problem_responses(401, 403, 404, 422, 429),
)
def delete(request: Request, caller: Caller, vehicle_id: VehicleIdParam, zone_id: ZoneIdParam) -> Response:
    """For the vehicle's owner: removes one of their zones; locations inside it are served
    exactly again from the next read on."""
    state = state_of(request)
    with write_session(state) as session:
        vehicle = owned_vehicle(session, vehicle_id, caller.address)
        if not zones.delete_zone(session, vehicle, zone_id):
            raise Problem("not_found", f"vehicle {vehicle_id} has no zone {zone_id}")
    return Response(status_code=204)
