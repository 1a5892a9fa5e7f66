"""A Smartcar-style connection through the published `smartcar` client (6.19).

The client reads its origins from module globals (`smartcar.config.API_ORIGIN`, …) on every
call, so each call points them at this connection under a process-wide lock. Signals come
from one `batch` request (one rate-limit unit at the OEM), in metric units.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any, TypeVar
from urllib.parse import urlencode

import requests
import smartcar
import smartcar.config as smartcar_config
import smartcar.helpers as smartcar_helpers
from smartcar import SmartcarException

from workers.oem import pkce
from workers.oem.connectors.base import Command, CommandResult, Connector, OemVehicle, parse_retry_after
from workers.oem.errors import (
    CONNECTION_SCOPE,
    VEHICLE_SCOPE,
    AmbiguousVehicleError,
    AuthExpiredError,
    InvalidGrantError,
    MalformedPayloadError,
    NotCapableError,
    OemError,
    OemRequestError,
    RateLimitedError,
    UnavailableError,
)
from workers.oem.signals import Signal, make_signal
from workers.oem.tokens import TokenSet
from workers.signals import catalogue as vss

T = TypeVar("T")

#: What an onboarding consent asks for.
SCOPES = (
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
)
#: One batch per pull: every endpoint a vehicle may support (501s are skipped).
BATCH_PATHS = (
    "/odometer",
    "/battery",
    "/battery/capacity",
    "/battery/nominal_capacity",
    "/charge",
    "/fuel",
    "/location",
    "/security",
    "/tires/pressure",
)
_ORIGINS_LOCK = threading.RLock()
_TIRES = (("front_left", "Row1", "Left"), ("front_right", "Row1", "Right"))
_TIRES += (("back_left", "Row2", "Left"), ("back_right", "Row2", "Right"))


def translate(exc: Exception) -> OemError:
    """A smartcar client outcome as a connector error."""
    if isinstance(exc, SmartcarException):
        return _translate_smartcar(exc)
    if isinstance(exc, ValueError | KeyError | TypeError | AttributeError):
        # requests' JSONDecodeError is a ValueError (and a RequestException): a broken body.
        return MalformedPayloadError(f"smartcar: unexpected response ({exc.__class__.__name__}: {exc})")
    if isinstance(exc, requests.RequestException):
        return UnavailableError(f"smartcar: {exc.__class__.__name__}: {exc}")
    return MalformedPayloadError(f"smartcar: unexpected response ({exc.__class__.__name__}: {exc})")


def _translate_smartcar(exc: SmartcarException) -> OemError:  # noqa: PLR0911 - one answer per error class
    status = getattr(exc, "status_code", None)
    kind = getattr(exc, "type", None)
    detail = f"smartcar {status} {kind}: {exc}"
    if status is not None and not isinstance(status, int):
        return MalformedPayloadError(f"smartcar error with status {status!r}: {exc}")
    if status is None:
        # The client's own failure (connection refused, timeout): it wraps the cause.
        return UnavailableError(detail)
    if status == 401 or kind == "AUTHENTICATION":
        return AuthExpiredError(detail)
    if status == 429:
        # RATE_LIMIT:VEHICLE limits calls to one vehicle; RATE_LIMIT:SMARTCAR_API the application.
        scope = CONNECTION_SCOPE if getattr(exc, "code", None) == "SMARTCAR_API" else VEHICLE_SCOPE
        return RateLimitedError(detail, parse_retry_after(getattr(exc, "retry_after", None)), scope)
    if kind == "COMPATIBILITY" or status == 501:
        return NotCapableError(detail)
    if kind == "invalid_grant":
        return InvalidGrantError(detail)
    if status >= 500:
        return UnavailableError(detail)
    if kind == "SDK_ERROR":
        return MalformedPayloadError(detail)
    return OemRequestError(detail)


def _number(value: Any, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise MalformedPayloadError(f"smartcar {what}: expected a number, got {value!r}")
    return float(value)


def _timestamp(meta: Any, fallback: datetime) -> datetime:
    age = getattr(meta, "data_age", None) if meta is not None else None
    if not age:
        return fallback
    try:
        parsed = datetime.fromisoformat(str(age))
    except ValueError as exc:
        raise MalformedPayloadError(f"smartcar sc-data-age {age!r} is not a timestamp") from exc
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


class SmartcarConnector(Connector):
    kind = "smartcar"
    #: Smartcar Connect's documented parameters name no code_challenge: PKCE only where a
    #: connection turns it on (OEM_CONNECTIONS `pkce`; the simulator's does).
    pkce_default = False

    @contextmanager
    def _origins(self) -> Iterator[None]:
        with _ORIGINS_LOCK:
            saved = (smartcar_config.API_ORIGIN, smartcar_config.AUTH_ORIGIN, smartcar_config.CONNECT_ORIGIN)
            smartcar_config.API_ORIGIN = self.connection.api_url.rstrip("/")
            smartcar_config.AUTH_ORIGIN = self.connection.token_url
            smartcar_config.CONNECT_ORIGIN = self.connection.auth_url.rstrip("/")
            try:
                yield
            finally:
                smartcar_config.API_ORIGIN, smartcar_config.AUTH_ORIGIN, smartcar_config.CONNECT_ORIGIN = (
                    saved
                )

    def _client(self) -> smartcar.AuthClient:
        return smartcar.AuthClient(self.client_id, self.client_secret, self.redirect_uri, mode="live")

    def _guarded(self, fn: Callable[[], T]) -> T:
        with self._origins():
            try:
                return fn()
            except OemError:
                raise
            except Exception as exc:
                raise translate(exc) from exc

    def authorize_url(self, state: str, code_challenge: str | None = None) -> str:
        options = {"state": state, "force_prompt": True, "single_select": {"enabled": True}}
        with self._origins():
            url = self._client().get_auth_url(list(SCOPES), options)
        if code_challenge is None:
            return url
        # the client builds no PKCE parameters: they are appended to its URL
        return f"{url}&{urlencode({'code_challenge': code_challenge, 'code_challenge_method': pkce.METHOD})}"

    def _access(self, access: Any) -> TokenSet:
        expiration = access.expiration
        if not isinstance(expiration, datetime):
            raise MalformedPayloadError("smartcar token response without expires_in")
        return TokenSet(
            access_token=str(access.access_token),
            refresh_token=str(access.refresh_token),
            expires_at=expiration.replace(tzinfo=UTC).timestamp(),
            token_type=str(access.token_type or "Bearer"),
        )

    def _exchange_code(self, code: str, code_verifier: str | None) -> TokenSet:
        # The client's exchange_code sends no code_verifier: this is its request (through its
        # requester: same headers, same errors) with the verifier added when there is one.
        form = {"grant_type": "authorization_code", "code": code, "redirect_uri": self.redirect_uri}
        if code_verifier is not None:
            form["code_verifier"] = code_verifier

        def post() -> Any:
            response = smartcar_helpers.requester(
                "POST", smartcar_config.AUTH_ORIGIN, data=form, auth=self._client().auth
            )
            return response.json()

        body = self._guarded(post)
        if not isinstance(body, dict):
            raise MalformedPayloadError("smartcar token response is not an object")
        return TokenSet.from_oauth(body, self._clock())

    def _refresh(self, refresh_token: str) -> TokenSet:
        return self._access(self._guarded(lambda: self._client().exchange_refresh_token(refresh_token)))

    def _read_vehicle(self, access_token: str | None) -> OemVehicle:
        token = access_token or ""
        ids = self._guarded(lambda: smartcar.get_vehicles(token).vehicles)
        if not isinstance(ids, list) or len(ids) != 1:
            raise AmbiguousVehicleError(f"smartcar: the consent covers {ids!r}, expected one vehicle")
        vehicle = smartcar.Vehicle(str(ids[0]), token)
        vin = self._guarded(lambda: vehicle.vin().vin)
        attributes = self._guarded(vehicle.attributes)
        year = attributes.year
        return OemVehicle(
            external_id=str(ids[0]),
            vin=str(vin),
            make=attributes.make,
            model=attributes.model,
            year=int(year) if isinstance(year, int | str) and str(year).isdigit() else None,
        )

    def _read_signals(self, access_token: str, external_id: str) -> list[Signal]:
        vehicle = smartcar.Vehicle(external_id, access_token, {"unit_system": "metric"})
        batch = self._guarded(lambda: vehicle.batch(list(BATCH_PATHS)))
        now = datetime.fromtimestamp(self._clock(), UTC)
        parts: dict[str, Any] = {}
        for attribute in ("odometer", "battery", "battery_capacity", "battery_nominal_capacity"):
            parts[attribute] = self._part(batch, attribute)
        for attribute in ("charge", "fuel", "location", "lock_status", "tire_pressure"):
            parts[attribute] = self._part(batch, attribute)
        return _normalise(parts, now, self.source)

    def _part(self, batch: Any, attribute: str) -> Any | None:
        """One path of a batch answer; None when the vehicle is not capable of it."""
        getter = getattr(batch, attribute, None)
        if getter is None:
            raise MalformedPayloadError(f"smartcar batch answer lacks {attribute}")
        try:
            return self._guarded(getter)
        except NotCapableError:
            return None

    def _send_command(self, access_token: str, external_id: str, command: Command) -> CommandResult:
        vehicle = smartcar.Vehicle(external_id, access_token)
        if command is Command.LOCK:
            action = self._guarded(vehicle.lock)
        elif command is Command.UNLOCK:
            action = self._guarded(vehicle.unlock)
        else:
            raise NotCapableError("smartcar-style connections offer no remote start")
        if action.status != "success":
            raise OemRequestError(f"smartcar {command}: {action.status} {action.message}")
        return CommandResult(command, str(action.message))


def _normalise(parts: dict[str, Any], now: datetime, source: str) -> list[Signal]:
    out: list[Signal] = []

    def add(name: str, value: Any, meta_of: Any) -> None:
        out.append(make_signal(name, value, _timestamp(getattr(meta_of, "meta", None), now), source))

    if (odometer := parts["odometer"]) is not None:
        add(vss.TRAVELED_DISTANCE, _number(odometer.distance, "odometer"), odometer)
    ranges: list[tuple[float, Any]] = []
    if (battery := parts["battery"]) is not None:
        add(vss.SOC, _number(battery.percent_remaining, "battery") * 100.0, battery)
        battery_m = _number(battery.range, "battery range") * 1000.0
        add(vss.BATTERY_RANGE, battery_m, battery)
        ranges.append((battery_m, battery))
    capacity, nominal = parts["battery_capacity"], parts["battery_nominal_capacity"]
    if capacity is not None and nominal is not None and isinstance(nominal.capacity, dict):
        nominal_kwh = _number(nominal.capacity.get("nominal"), "nominal capacity")
        if nominal_kwh > 0:
            # Smartcar reports today's capacity and the nominal one: their ratio is the SoH.
            add(vss.SOH, _number(capacity.capacity, "capacity") / nominal_kwh * 100.0, capacity)
    if (charge := parts["charge"]) is not None:
        add(vss.CABLE_CONNECTED, charge.is_plugged_in, charge)
        add(vss.IS_CHARGING, charge.state == "CHARGING", charge)
    if (fuel := parts["fuel"]) is not None:
        add(vss.FUEL_LEVEL, _number(fuel.percent_remaining, "fuel") * 100.0, fuel)
        fuel_m = _number(fuel.range, "fuel range") * 1000.0
        add(vss.FUEL_RANGE, fuel_m, fuel)
        ranges.append((fuel_m, fuel))
    if ranges:
        add(vss.RANGE, sum(m for m, _ in ranges), ranges[0][1])
    if (location := parts["location"]) is not None:
        add(vss.LATITUDE, _number(location.latitude, "latitude"), location)
        add(vss.LONGITUDE, _number(location.longitude, "longitude"), location)
    if (lock := parts["lock_status"]) is not None:
        add(vss.IS_LOCKED, lock.is_locked, lock)
    if (tires := parts["tire_pressure"]) is not None:
        for attribute, row, side in _TIRES:
            add(vss.TIRE_PRESSURE[(row, side)], _number(getattr(tires, attribute), "tire pressure"), tires)
    return out
