"""A Tesla Fleet API-style connection through the published `tesla-fleet-api` client (1.5).

Vehicle calls go through `TeslaFleetApi(session, access_token, server=api_url)`. The
library's OAuth helper (`TeslaFleetOAuth`) posts to Tesla's production auth server, a
hard-coded URL, so the code exchange and refresh are the same requests sent with httpx to
this connection's token URL; onboarding uses PKCE (S256), which Tesla's authorize and token
endpoints take. Commands use the unsigned Fleet API paths.

The client is asyncio-based; each connector call runs it on a fresh event loop, so call
connectors from synchronous code (Celery tasks, or a thread from async code).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any, TypeVar
from urllib.parse import urlencode

import aiohttp
import httpx
from tesla_fleet_api import TeslaFleetApi
from tesla_fleet_api.exceptions import (
    RateLimited,
    ResponseError,
    TeslaFleetError,
    VehicleOffline,
)
from tesla_fleet_api.tesla.vehicle.fleet import VehicleFleet
from tesla_fleet_api.tesla.vehicle.vehicle import MODELS as TESLA_MODELS

from workers.oem import pkce
from workers.oem.connectors.base import (
    HTTP_TIMEOUT,
    Command,
    CommandResult,
    Connector,
    OemVehicle,
    parse_retry_after,
)
from workers.oem.errors import (
    VEHICLE_SCOPE,
    AmbiguousVehicleError,
    AuthExpiredError,
    CommandRejectedError,
    InvalidGrantError,
    MalformedPayloadError,
    OemError,
    OemRequestError,
    RateLimitedError,
    UnavailableError,
    VehicleAsleepError,
)
from workers.oem.signals import Signal, make_signal
from workers.oem.tokens import TokenSet
from workers.signals import catalogue as vss

T = TypeVar("T")

SCOPES = ("openid", "offline_access", "vehicle_device_data", "vehicle_location", "vehicle_cmds")
DATA_ENDPOINTS = ("charge_state", "drive_state", "location_data", "vehicle_state")
KM_PER_MILE = 1.609344
KPA_PER_BAR = 100.0
#: How long a sleeping car may take to come online after wake_up, and the polling pace.
WAKE_TIMEOUT = 30.0
WAKE_POLL = 0.25
_COMMAND_PATHS = {
    Command.LOCK: "door_lock",
    Command.UNLOCK: "door_unlock",
    Command.START: "remote_start_drive",
}
_TPMS = (("fl", "Row1", "Left"), ("fr", "Row1", "Right"), ("rl", "Row2", "Left"), ("rr", "Row2", "Right"))
_HTTP_UNAUTHORIZED = 401
_HTTP_TOO_MANY = 429
_HTTP_SERVER_ERROR = 500
_HTTP_BAD_REQUEST = 400


def translate(exc: BaseException) -> OemError:  # noqa: PLR0911 - one answer per error class
    """A tesla-fleet-api / aiohttp outcome as a connector error."""
    if isinstance(exc, VehicleOffline):
        return VehicleAsleepError("tesla: vehicle offline or asleep")
    if isinstance(exc, RateLimited):
        data = exc.data if isinstance(exc.data, dict) else {}
        # Fleet API limits are per vehicle (device data, commands, wakes: per vehicle a
        # minute and a day), so a 429 holds that vehicle, for hours once its day is spent.
        return RateLimitedError("tesla 429", parse_retry_after(data.get("after")), VEHICLE_SCOPE)
    if isinstance(exc, TeslaFleetError):
        status = exc.status or 0
        detail = f"tesla {status} {exc.__class__.__name__}: {exc.data}"
        if status == _HTTP_UNAUTHORIZED:
            return AuthExpiredError(detail)
        if status >= _HTTP_SERVER_ERROR:
            return UnavailableError(detail)
        if isinstance(exc, ResponseError):
            return MalformedPayloadError(detail)
        return OemRequestError(detail)
    if isinstance(exc, aiohttp.ContentTypeError | json.JSONDecodeError):
        return MalformedPayloadError(f"tesla: body is not JSON ({exc})")
    if isinstance(exc, aiohttp.ClientError | asyncio.TimeoutError | OSError):
        return UnavailableError(f"tesla: {exc.__class__.__name__}: {exc}")
    return MalformedPayloadError(f"tesla: unexpected response ({exc.__class__.__name__}: {exc})")


def _number(value: Any, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise MalformedPayloadError(f"tesla {what}: expected a number, got {value!r}")
    return float(value)


def _section(response: dict[str, Any], name: str) -> dict[str, Any] | None:
    section = response.get(name)
    if section is None:
        return None
    if not isinstance(section, dict):
        raise MalformedPayloadError(f"tesla {name} is not an object")
    return section


def _stamp(section: dict[str, Any], fallback: datetime) -> datetime:
    ms = section.get("timestamp")
    if ms is None:
        return fallback
    return datetime.fromtimestamp(_number(ms, "timestamp") / 1000.0, UTC)


class TeslaConnector(Connector):
    kind = "tesla"
    #: Tesla's authorize and token endpoints take code_challenge / code_verifier (S256).
    pkce_default = True

    def authorize_url(self, state: str, code_challenge: str | None = None) -> str:
        query = {
            "response_type": "code",
            "client_id": self.client_id,
            "redirect_uri": self.redirect_uri,
            "scope": " ".join(SCOPES),
            "state": state,
            "prompt_missing_scopes": "true",
        }
        if code_challenge is not None:
            query |= {"code_challenge": code_challenge, "code_challenge_method": pkce.METHOD}
        return f"{self.connection.auth_url.rstrip('/')}/oauth2/v3/authorize?{urlencode(query)}"

    # --- OAuth (the requests TeslaFleetOAuth sends, to this connection's token URL) -----
    def _token_request(self, form: dict[str, str]) -> TokenSet:
        try:
            response = httpx.post(self.connection.token_url, data=form, timeout=HTTP_TIMEOUT)
        except httpx.TransportError as exc:
            raise UnavailableError(f"tesla token endpoint: {exc.__class__.__name__}: {exc}") from exc
        if response.status_code == _HTTP_TOO_MANY:
            raise RateLimitedError(
                "tesla token endpoint 429", parse_retry_after(response.headers.get("Retry-After"))
            )
        if response.status_code >= _HTTP_SERVER_ERROR:
            raise UnavailableError(f"tesla token endpoint {response.status_code}")
        try:
            body = response.json()
        except ValueError as exc:
            raise MalformedPayloadError(
                f"tesla token endpoint answered non-JSON ({response.status_code})"
            ) from exc
        if response.status_code >= _HTTP_BAD_REQUEST:
            error = body.get("error") if isinstance(body, dict) else None
            if error == "invalid_grant":
                raise InvalidGrantError(f"tesla: {body.get('error_description') or error}")
            raise OemRequestError(f"tesla token endpoint {response.status_code}: {body}")
        if not isinstance(body, dict):
            raise MalformedPayloadError("tesla token response is not an object")
        return TokenSet.from_oauth(body, self._clock())

    def _exchange_code(self, code: str, code_verifier: str | None) -> TokenSet:
        form = {
            "grant_type": "authorization_code",
            "client_id": self.client_id,
            "client_secret": self.client_secret,
            "code": code,
            "audience": self.connection.api_url.rstrip("/"),
            "redirect_uri": self.redirect_uri,
        }
        if code_verifier is not None:
            form["code_verifier"] = code_verifier
        return self._token_request(form)

    def _refresh(self, refresh_token: str) -> TokenSet:
        return self._token_request(
            {"grant_type": "refresh_token", "client_id": self.client_id, "refresh_token": refresh_token}
        )

    # --- vehicle calls through tesla-fleet-api ------------------------------------------
    def _run(self, access_token: str, work: Callable[[TeslaFleetApi], Awaitable[T]]) -> T:
        async def main() -> T:
            timeout = aiohttp.ClientTimeout(total=HTTP_TIMEOUT)
            async with aiohttp.ClientSession(timeout=timeout) as session:
                api = TeslaFleetApi(
                    session,
                    access_token=access_token,
                    server=self.connection.api_url.rstrip("/"),
                    charging_scope=False,
                    energy_scope=False,
                    partner_scope=False,
                    user_scope=False,
                )
                return await work(api)

        try:
            return asyncio.run(main())
        except OemError:
            raise
        except (TeslaFleetError, Exception) as exc:
            raise translate(exc) from exc

    def _read_vehicle(self, access_token: str | None) -> OemVehicle:
        body = self._run(access_token or "", lambda api: api.products())
        rows = body.get("response") if isinstance(body, dict) else None
        if not isinstance(rows, list):
            raise MalformedPayloadError("tesla products: no response list")
        cars = [r for r in rows if isinstance(r, dict) and r.get("vin")]
        if len(cars) != 1:
            raise AmbiguousVehicleError(f"tesla: the consent covers {len(cars)} vehicles, expected one")
        vin = str(cars[0]["vin"])
        return OemVehicle(external_id=vin, vin=vin, make="Tesla", model=TESLA_MODELS.get(vin[3:4]))

    async def _awake(self, vehicle: VehicleFleet[TeslaFleetApi], work: Callable[[], Awaitable[T]]) -> T:
        """`work()`, waking the car first if it answers 408 (asleep)."""
        try:
            return await work()
        except VehicleOffline:
            pass
        loop = asyncio.get_running_loop()
        deadline = loop.time() + WAKE_TIMEOUT
        state = (await vehicle.wake_up()).get("response", {}).get("state")
        while state != "online":
            if loop.time() > deadline:
                raise UnavailableError(f"tesla: vehicle did not wake within {WAKE_TIMEOUT}s")
            await asyncio.sleep(WAKE_POLL)
            state = (await vehicle.vehicle()).get("response", {}).get("state")
        return await work()

    def _read_signals(self, access_token: str, external_id: str) -> list[Signal]:
        async def work(api: TeslaFleetApi) -> dict[str, Any]:
            vehicle = api.vehicles.createFleet(external_id)
            return await self._awake(vehicle, lambda: vehicle.vehicle_data(list(DATA_ENDPOINTS)))

        body = self._run(access_token, work)
        response = body.get("response") if isinstance(body, dict) else None
        if not isinstance(response, dict):
            raise MalformedPayloadError("tesla vehicle_data: no response object")
        return _normalise(response, datetime.fromtimestamp(self._clock(), UTC), self.source)

    def _send_command(self, access_token: str, external_id: str, command: Command) -> CommandResult:
        path = _COMMAND_PATHS[command]

        async def work(api: TeslaFleetApi) -> dict[str, Any]:
            vehicle = api.vehicles.createFleet(external_id)
            return await self._awake(vehicle, getattr(vehicle, path))

        body = self._run(access_token, work)
        result = body.get("response") if isinstance(body, dict) else None
        if not isinstance(result, dict) or not isinstance(result.get("result"), bool):
            raise MalformedPayloadError(f"tesla {path}: no result")
        if not result["result"]:
            raise CommandRejectedError(f"tesla {path}: {result.get('reason') or 'refused'}")
        return CommandResult(command, str(result.get("reason") or "ok"))


def _normalise(response: dict[str, Any], now: datetime, source: str) -> list[Signal]:
    missing = [name for name in ("charge_state", "drive_state", "vehicle_state") if name not in response]
    if missing:
        raise MalformedPayloadError(f"tesla vehicle_data lacks {', '.join(missing)}")
    out: list[Signal] = []
    if (charge := _section(response, "charge_state")) is not None:
        at = _stamp(charge, now)
        range_m = _number(charge.get("battery_range"), "battery_range") * KM_PER_MILE * 1000.0
        state = charge.get("charging_state")
        if not isinstance(state, str):
            raise MalformedPayloadError(f"tesla charging_state {state!r}")
        out += [
            make_signal(vss.SOC, _number(charge.get("battery_level"), "battery_level"), at, source),
            make_signal(vss.BATTERY_RANGE, range_m, at, source),
            make_signal(vss.RANGE, range_m, at, source),
            make_signal(vss.IS_CHARGING, state == "Charging", at, source),
            make_signal(vss.CABLE_CONNECTED, state != "Disconnected", at, source),
        ]
    if (drive := _section(response, "drive_state")) is not None:
        at = _stamp(drive, now)
        speed = drive.get("speed")
        mph = 0.0 if speed is None else _number(speed, "speed")
        out.append(make_signal(vss.SPEED, mph * KM_PER_MILE, at, source))
        if "latitude" in drive:
            out += [
                make_signal(vss.LATITUDE, _number(drive.get("latitude"), "latitude"), at, source),
                make_signal(vss.LONGITUDE, _number(drive.get("longitude"), "longitude"), at, source),
                make_signal(vss.HEADING, _number(drive.get("heading"), "heading") % 360.0, at, source),
            ]
    if (state := _section(response, "vehicle_state")) is not None:
        at = _stamp(state, now)
        odometer_km = _number(state.get("odometer"), "odometer") * KM_PER_MILE
        out += [
            make_signal(vss.TRAVELED_DISTANCE, odometer_km, at, source),
            make_signal(vss.IS_LOCKED, state.get("locked"), at, source),
        ]
        for suffix, row, side in _TPMS:
            bar = state.get(f"tpms_pressure_{suffix}")
            if bar is not None:
                kpa = _number(bar, "tpms") * KPA_PER_BAR
                out.append(make_signal(vss.TIRE_PRESSURE[(row, side)], kpa, at, source))
    return out
