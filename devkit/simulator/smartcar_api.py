"""A Smartcar-style vehicle API (v2.0), shaped after what the `smartcar` 6.19 client sends and
parses: `/v2.0/vehicles/{id}/<path>` with a bearer token, `sc-unit-system` honoured, the
`sc-*` response headers, v2 error bodies, batch requests and the LOCK/UNLOCK action."""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from devkit.simulator.fleet import KM_PER_MILE, Oem, Snapshot, VehicleSpec, VehicleState, snapshot
from devkit.simulator.responses import gate, over_rate, payload, sim, smartcar_error
from devkit.simulator.state import SimState, Token

router = APIRouter(prefix="/v2.0")

LITRES_PER_GALLON = 3.785411784
KPA_PER_PSI = 6.894757
PERMISSIONS = [
    "read_vehicle_info",
    "read_vin",
    "read_odometer",
    "read_battery",
    "read_charge",
    "read_fuel",
    "read_location",
    "read_security",
    "control_security",
    "read_tires",
    "read_engine_oil",
]


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _headers(state: SimState, units: str, data_at: float | None = None) -> dict[str, str]:
    headers = {"sc-request-id": secrets.token_hex(8), "sc-fetched-at": _iso(state.now())}
    if data_at is not None:
        headers["sc-data-age"] = _iso(data_at)
        headers["sc-unit-system"] = units
    return headers


def _authorize(
    request: Request, vehicle_id: str | None
) -> tuple[Token | None, VehicleState | None, Response | None]:
    """The token and vehicle of a request, or the error answer (fault, 401, 404, 403, 429)."""
    state = sim(request)
    blocked = gate(state, "smartcar")
    if blocked is not None:
        return None, None, blocked
    token, why = state.bearer(request.headers.get("authorization"), Oem.SMARTCAR)
    if token is None:
        description = (
            "The access token has expired." if why == "expired" else "Invalid or missing access token."
        )
        return None, None, smartcar_error(401, "AUTHENTICATION", None, description)
    vehicle = None
    if vehicle_id is not None:
        vehicle = state.vehicle(vehicle_id)
        if vehicle is None or vehicle.spec.oem is not Oem.SMARTCAR:
            return None, None, smartcar_error(404, "RESOURCE_NOT_FOUND", "PATH", "Unknown vehicle.")
        if vehicle.spec.vin != token.vin:
            return (
                None,
                None,
                smartcar_error(403, "PERMISSION", None, "This token has no access to the vehicle."),
            )
    if state.over_rate(token.access_token):
        return None, None, over_rate("smartcar", state)
    return token, vehicle, None


def _units(request: Request) -> str:
    return "imperial" if request.headers.get("sc-unit-system", "metric").lower() == "imperial" else "metric"


@dataclass(frozen=True)
class _Read:
    """One GET's inputs: the vehicle, its state now, and the caller's unit system."""

    vehicle: VehicleState
    snap: Snapshot
    imperial: bool

    @property
    def spec(self) -> VehicleSpec:
        return self.vehicle.spec

    def distance(self, km: float) -> float:
        return round(km / KM_PER_MILE if self.imperial else km, 1)


_Answer = tuple[int, dict[str, Any], float | None]
NOT_CAPABLE_BODY: dict[str, Any] = {
    "type": "COMPATIBILITY",
    "code": "VEHICLE_NOT_CAPABLE",
    "description": "The vehicle is not capable of this request.",
    "statusCode": 501,
}


def _attributes(r: _Read) -> dict[str, Any] | None:
    return {"id": r.spec.id, "make": r.spec.make, "model": r.spec.model, "year": r.spec.template.year}


def _vin(r: _Read) -> dict[str, Any] | None:
    return {"vin": r.spec.vin}


def _permissions(r: _Read) -> dict[str, Any] | None:
    return {"permissions": PERMISSIONS, "paging": {"count": len(PERMISSIONS), "offset": 0}}


def _odometer(r: _Read) -> dict[str, Any] | None:
    return {"distance": r.distance(r.snap.odometer_km)}


def _location(r: _Read) -> dict[str, Any] | None:
    return {"latitude": round(r.snap.latitude, 6), "longitude": round(r.snap.longitude, 6)}


def _security(r: _Read) -> dict[str, Any] | None:
    vehicle = r.vehicle
    status = "LOCKED" if vehicle.locked else "UNLOCKED"
    doors = [{"type": d, "status": "CLOSED"} for d in ("frontLeft", "frontRight", "backLeft", "backRight")]
    return {
        "isLocked": vehicle.locked,
        "doors": doors,
        "windows": [{"type": w, "status": "CLOSED"} for w in ("frontLeft", "frontRight")],
        "sunroof": [],
        "storage": [{"type": "rear", "status": "CLOSED"}],
        "chargingPort": [{"type": "chargingPort", "status": status}] if vehicle.spec.has_battery else [],
    }


def _tires(r: _Read) -> dict[str, Any] | None:
    scale = KPA_PER_PSI if r.imperial else 1.0
    fl, fr, bl, br = (round(p / scale, 1) for p in r.snap.tire_kpa)
    return {"frontLeft": fl, "frontRight": fr, "backLeft": bl, "backRight": br}


def _oil(r: _Read) -> dict[str, Any] | None:
    return {"lifeRemaining": round(r.snap.oil_life, 3)} if r.spec.has_tank else None


def _fuel(r: _Read) -> dict[str, Any] | None:
    litres, percent = r.snap.fuel_litres, r.snap.fuel_percent
    if litres is None or percent is None:
        return None
    return {
        "range": r.distance(litres / r.spec.template.litres_per_km),
        "percentRemaining": round(percent / 100.0, 4),
        "amountRemaining": round(litres / LITRES_PER_GALLON if r.imperial else litres, 2),
    }


def _battery(r: _Read) -> dict[str, Any] | None:
    soc, rng = r.snap.soc_percent, r.snap.range_km
    if soc is None or rng is None:
        return None
    return {"percentRemaining": round(soc / 100.0, 4), "range": r.distance(rng)}


def _charge(r: _Read) -> dict[str, Any] | None:
    if not r.spec.has_battery:
        return None
    return {"isPluggedIn": r.snap.plugged_in, "state": "CHARGING" if r.snap.charging else "NOT_CHARGING"}


def _capacity(r: _Read) -> dict[str, Any] | None:
    # What the pack holds today; with nominal_capacity this gives the state of health.
    capacity = r.snap.capacity_kwh
    return {"capacity": round(capacity, 2)} if capacity is not None else None


def _nominal_capacity(r: _Read) -> dict[str, Any] | None:
    if not r.spec.has_battery:
        return None
    nominal = r.spec.template.battery_kwh
    return {
        "availableCapacities": [{"capacity": nominal, "description": None}],
        "capacity": {"nominal": nominal, "source": "SMARTCAR"},
        "url": None,
    }


#: path -> (reader, whether the answer is vehicle data carrying sc-data-age); None: not capable.
READERS: dict[str, tuple[Callable[[_Read], dict[str, Any] | None], bool]] = {
    "": (_attributes, False),
    "vin": (_vin, False),
    "permissions": (_permissions, False),
    "odometer": (_odometer, True),
    "location": (_location, True),
    "security": (_security, True),
    "tires/pressure": (_tires, True),
    "engine/oil": (_oil, True),
    "fuel": (_fuel, True),
    "battery": (_battery, True),
    "charge": (_charge, True),
    "battery/capacity": (_capacity, True),
    "battery/nominal_capacity": (_nominal_capacity, True),
}


def read(state: SimState, vehicle: VehicleState, path: str, units: str) -> _Answer:
    """(status, body, data time) of a GET on `path` for `vehicle` (shared by GETs and batch)."""
    if path not in READERS:
        return (
            404,
            {"type": "RESOURCE_NOT_FOUND", "code": "PATH", "description": f"Unknown path /{path}"},
            None,
        )
    reader, is_data = READERS[path]
    now = state.now()
    body = reader(_Read(vehicle, snapshot(vehicle.spec, now), units == "imperial"))
    if body is None:
        return 501, dict(NOT_CAPABLE_BODY), None
    return 200, body, now if is_data else None


def _answer(
    state: SimState, status: int, body: dict[str, Any], units: str, data_at: float | None
) -> Response:
    if status != 200:
        return smartcar_error(status, body["type"], body.get("code"), body["description"])
    return payload(state, "smartcar", body, _headers(state, units, data_at))


@router.get("/vehicles")
async def list_vehicles(request: Request) -> Response:
    token, _, error = _authorize(request, None)
    if error is not None:
        return error
    state = sim(request)
    assert token is not None
    vehicle = state.vehicle(token.vin)
    ids = [vehicle.spec.id] if vehicle is not None else []
    return payload(state, "smartcar", {"vehicles": ids, "paging": {"count": len(ids), "offset": 0}})


@router.post("/vehicles/{vehicle_id}/security")
async def security_action(vehicle_id: str, request: Request) -> Response:
    _, vehicle, error = _authorize(request, vehicle_id)
    if error is not None:
        return error
    assert vehicle is not None
    state = sim(request)
    try:
        action = json.loads(await request.body()).get("action")
    except (ValueError, AttributeError):
        action = None
    if action not in ("LOCK", "UNLOCK"):
        return smartcar_error(400, "VALIDATION", None, '"action" must be "LOCK" or "UNLOCK".')
    vehicle.locked = action == "LOCK"
    vehicle.commands.append((state.now(), action))
    state.stats.commands += 1
    body = {"status": "success", "message": "Successfully sent request to vehicle"}
    return JSONResponse(body, headers=_headers(state, "metric"))


@router.post("/vehicles/{vehicle_id}/batch")
async def batch(vehicle_id: str, request: Request) -> Response:
    _, vehicle, error = _authorize(request, vehicle_id)
    if error is not None:
        return error
    assert vehicle is not None
    state = sim(request)
    units = _units(request)
    try:
        requests = json.loads(await request.body())["requests"]
        paths = [str(r["path"]) for r in requests]
    except (ValueError, KeyError, TypeError):
        return smartcar_error(400, "VALIDATION", None, 'The body must be {"requests": [{"path": ...}]}.')
    responses = []
    for raw in paths:
        status, body, data_at = read(state, vehicle, raw.strip("/"), units)
        if status != 200:
            body = {**body, "statusCode": status}
        headers = {"sc-unit-system": units, **({"sc-data-age": _iso(data_at)} if data_at else {})}
        responses.append({"path": raw, "body": body, "code": status, "headers": headers})
    return payload(state, "smartcar", {"responses": responses}, _headers(state, units))


@router.delete("/vehicles/{vehicle_id}/application")
async def disconnect(vehicle_id: str, request: Request) -> Response:
    token, _, error = _authorize(request, vehicle_id)
    if error is not None:
        return error
    assert token is not None
    token.revoked = True
    return JSONResponse({"status": "success"}, headers=_headers(sim(request), "metric"))


@router.get("/vehicles/{vehicle_id}/")
@router.get("/vehicles/{vehicle_id}")
async def attributes(vehicle_id: str, request: Request) -> Response:
    return await _get(vehicle_id, "", request)


@router.get("/vehicles/{vehicle_id}/{path:path}")
async def get_path(vehicle_id: str, path: str, request: Request) -> Response:
    return await _get(vehicle_id, path, request)


async def _get(vehicle_id: str, path: str, request: Request) -> Response:
    _, vehicle, error = _authorize(request, vehicle_id)
    if error is not None:
        return error
    assert vehicle is not None
    state = sim(request)
    units = _units(request)
    status, body, data_at = read(state, vehicle, path.strip("/"), units)
    return _answer(state, status, body, units, data_at)
