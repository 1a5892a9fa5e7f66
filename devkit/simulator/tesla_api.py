"""A Tesla Fleet API-style vehicle API, shaped after what `tesla-fleet-api` 1.5 sends and
parses: `/api/1/...` with a bearer token, `{"response": ...}` bodies, cars that fall asleep
(408 until `wake_up`), `vehicle_data?endpoints=a;b` (location only with `location_data`),
and the unsigned `command/door_lock|door_unlock|remote_start_drive` paths. Imperial units,
as Tesla reports them: miles, mph, bar."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from devkit.simulator.fleet import (
    KM_PER_MILE,
    KPA_PER_BAR,
    REMOTE_START_SECONDS,
    Oem,
    VehicleState,
    snapshot,
)
from devkit.simulator.responses import gate, over_rate, payload, sim, tesla_error
from devkit.simulator.state import SimState, Token

router = APIRouter(prefix="/api/1")

ASLEEP = "vehicle unavailable: vehicle is offline or asleep"
DEFAULT_ENDPOINTS = (
    "charge_state",
    "climate_state",
    "drive_state",
    "gui_settings",
    "vehicle_config",
    "vehicle_state",
)
COMMANDS = ("door_lock", "door_unlock", "remote_start_drive")
CAR_TYPES = {"Model 3": "model3", "Model Y": "modely", "Model S": "models", "Model X": "modelx"}


def _authorize(
    request: Request, key: str | None
) -> tuple[Token | None, VehicleState | None, Response | None]:
    state = sim(request)
    blocked = gate(state, "tesla")
    if blocked is not None:
        return None, None, blocked
    token, why = state.bearer(request.headers.get("authorization"), Oem.TESLA)
    if token is None:
        return (
            None,
            None,
            tesla_error(401, "token expired (401)" if why == "expired" else "invalid bearer token"),
        )
    vehicle = None
    if key is not None:
        vehicle = state.vehicle(key)
        if vehicle is None or vehicle.spec.oem is not Oem.TESLA or vehicle.spec.vin != token.vin:
            return None, None, tesla_error(404, "not_found")
    if state.over_rate(token.access_token):
        return None, None, over_rate("tesla", state)
    return token, vehicle, None


def _summary(state: SimState, vehicle: VehicleState) -> dict[str, Any]:
    spec = vehicle.spec
    return {
        "id": int(spec.id),
        "vehicle_id": int(spec.id) % 1_000_000_000,
        "vin": spec.vin,
        "display_name": f"{spec.model} {spec.vin[-4:]}",
        "color": None,
        "access_type": "OWNER",
        "state": "online" if vehicle.online(state.now()) else "asleep",
        "in_service": False,
        "id_s": spec.id,
        "calendar_enabled": True,
        "api_version": 71,
        "backseat_token": None,
        "backseat_token_updated_at": None,
    }


def vehicle_data(state: SimState, vehicle: VehicleState, endpoints: set[str]) -> dict[str, Any]:
    spec = vehicle.spec
    now = state.now()
    snap = snapshot(spec, now)
    ms = int(now * 1000)
    body = _summary(state, vehicle)
    if "charge_state" in endpoints and snap.soc_percent is not None and snap.range_km is not None:
        level = round(snap.soc_percent)
        miles = snap.range_km / KM_PER_MILE
        charging = "Charging" if snap.charging else ("Stopped" if snap.plugged_in else "Disconnected")
        body["charge_state"] = {
            "battery_level": level,
            "usable_battery_level": max(level - 1, 0),
            "battery_range": round(miles, 2),
            "est_battery_range": round(miles * 0.93, 2),
            "ideal_battery_range": round(miles * 1.05, 2),
            "charging_state": charging,
            "charge_limit_soc": 90,
            "charger_power": 11 if snap.charging else 0,
            "charge_port_door_open": snap.plugged_in,
            "timestamp": ms,
        }
    if "drive_state" in endpoints:
        drive: dict[str, Any] = {
            "gps_as_of": int(now),
            "heading": round(snap.heading_deg),
            "power": 12 if snap.driving else 0,
            "shift_state": "D" if snap.driving else None,
            "speed": round(snap.speed_kmh / KM_PER_MILE) if snap.driving else None,
            "timestamp": ms,
        }
        if "location_data" in endpoints:
            drive.update(
                latitude=round(snap.latitude, 6),
                longitude=round(snap.longitude, 6),
                native_latitude=round(snap.latitude, 6),
                native_longitude=round(snap.longitude, 6),
                native_location_supported=1,
                native_type="wgs",
            )
        body["drive_state"] = drive
    if "vehicle_state" in endpoints:
        fl, fr, rl, rr = (round(p / KPA_PER_BAR, 3) for p in snap.tire_kpa)
        body["vehicle_state"] = {
            "locked": vehicle.locked,
            "odometer": round(snap.odometer_km / KM_PER_MILE, 3),
            "remote_start": vehicle.remote_started(now),
            "remote_start_enabled": True,
            "car_version": "2026.20.1",
            "df": 0,
            "dr": 0,
            "pf": 0,
            "pr": 0,
            "tpms_pressure_fl": fl,
            "tpms_pressure_fr": fr,
            "tpms_pressure_rl": rl,
            "tpms_pressure_rr": rr,
            "timestamp": ms,
        }
    if "vehicle_config" in endpoints:
        body["vehicle_config"] = {"car_type": CAR_TYPES.get(spec.model, "model3"), "timestamp": ms}
    if "climate_state" in endpoints:
        body["climate_state"] = {
            "inside_temp": 21.5,
            "outside_temp": 14.0,
            "is_climate_on": False,
            "timestamp": ms,
        }
    if "gui_settings" in endpoints:
        body["gui_settings"] = {"gui_distance_units": "mi/hr", "gui_temperature_units": "F", "timestamp": ms}
    return body


@router.get("/products")
@router.get("/vehicles")
async def products(request: Request) -> Response:
    token, _, error = _authorize(request, None)
    if error is not None:
        return error
    assert token is not None
    state = sim(request)
    vehicle = state.vehicle(token.vin)
    rows = [_summary(state, vehicle)] if vehicle is not None else []
    return payload(state, "tesla", {"response": rows, "count": len(rows)})


@router.get("/vehicles/{key}")
async def vehicle(key: str, request: Request) -> Response:
    _, found, error = _authorize(request, key)
    if error is not None:
        return error
    assert found is not None
    state = sim(request)
    return payload(state, "tesla", {"response": _summary(state, found)})


@router.post("/vehicles/{key}/wake_up")
async def wake_up(key: str, request: Request) -> Response:
    _, found, error = _authorize(request, key)
    if error is not None:
        return error
    assert found is not None
    state = sim(request)
    found.wake(state.now(), state.config.wake_delay, state.config.stay_awake)
    return payload(state, "tesla", {"response": _summary(state, found)})


@router.get("/vehicles/{key}/vehicle_data")
async def get_vehicle_data(key: str, request: Request) -> Response:
    _, found, error = _authorize(request, key)
    if error is not None:
        return error
    assert found is not None
    state = sim(request)
    if not found.online(state.now()):
        return tesla_error(408, ASLEEP)
    found.touch(state.now(), state.config.stay_awake)
    raw = request.query_params.get("endpoints")
    endpoints = set(raw.split(";")) if raw else set(DEFAULT_ENDPOINTS)
    return payload(state, "tesla", {"response": vehicle_data(state, found, endpoints)})


@router.post("/vehicles/{key}/command/{command}")
async def command(key: str, command: str, request: Request) -> Response:
    _, found, error = _authorize(request, key)
    if error is not None:
        return error
    assert found is not None
    state = sim(request)
    if command not in COMMANDS:
        return tesla_error(400, "invalid_command")
    now = state.now()
    if not found.online(now):
        return tesla_error(408, ASLEEP)
    found.touch(now, state.config.stay_awake)
    if command == "door_lock":
        found.locked = True
    elif command == "door_unlock":
        found.locked = False
    else:
        found.remote_start_until = now + REMOTE_START_SECONDS
    found.commands.append((now, command))
    state.stats.commands += 1
    return payload(state, "tesla", {"response": {"result": True, "reason": ""}})
