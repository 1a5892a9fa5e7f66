"""Vehicle signals normalised to COVESA VSS names, with units, a source and a class.

Every signal the workers store or serve is named here, once, with its VSS unit, its type,
its plausible range and its class: `location` signals need the LOCATION permission bit,
everything else is `telemetry` (TELEMETRY bit). A value outside its type or range means the
producer (an OEM payload, a device) sent something broken: MalformedPayloadError, and the
whole payload is refused.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from workers.oem.errors import MalformedPayloadError


class SignalClass(StrEnum):
    """What the access rule maps to a permission bit (TELEMETRY or LOCATION)."""

    TELEMETRY = "telemetry"
    LOCATION = "location"


class ValueType(StrEnum):
    FLOAT = "float"
    BOOL = "bool"


@dataclass(frozen=True)
class SignalSpec:
    name: str
    unit: str | None
    type: ValueType
    signal_class: SignalClass = SignalClass.TELEMETRY
    minimum: float = -math.inf
    maximum: float = math.inf


def _f(name: str, unit: str, lo: float, hi: float, cls: SignalClass = SignalClass.TELEMETRY) -> SignalSpec:
    return SignalSpec(name, unit, ValueType.FLOAT, cls, lo, hi)


def _b(name: str) -> SignalSpec:
    return SignalSpec(name, None, ValueType.BOOL)


SPEED = "Vehicle.Speed"
TRAVELED_DISTANCE = "Vehicle.TraveledDistance"
SOC = "Vehicle.Powertrain.TractionBattery.StateOfCharge.Current"
SOH = "Vehicle.Powertrain.TractionBattery.StateOfHealth"
IS_CHARGING = "Vehicle.Powertrain.TractionBattery.Charging.IsCharging"
CABLE_CONNECTED = "Vehicle.Powertrain.TractionBattery.Charging.IsChargingCableConnected"
#: Remaining range on every energy source (battery plus fuel for a PHEV).
RANGE = "Vehicle.Powertrain.Range"
BATTERY_RANGE = "Vehicle.Powertrain.TractionBattery.Range"
FUEL_LEVEL = "Vehicle.Powertrain.FuelSystem.RelativeLevel"
FUEL_RANGE = "Vehicle.Powertrain.FuelSystem.Range"
#: The central lock, reported on the driver's door (VSS has no vehicle-level lock).
IS_LOCKED = "Vehicle.Cabin.Door.Row1.DriverSide.IsLocked"
LATITUDE = "Vehicle.CurrentLocation.Latitude"
LONGITUDE = "Vehicle.CurrentLocation.Longitude"
HEADING = "Vehicle.CurrentLocation.Heading"
TIRE_PRESSURE = {
    ("Row1", "Left"): "Vehicle.Chassis.Axle.Row1.Wheel.Left.Tire.Pressure",
    ("Row1", "Right"): "Vehicle.Chassis.Axle.Row1.Wheel.Right.Tire.Pressure",
    ("Row2", "Left"): "Vehicle.Chassis.Axle.Row2.Wheel.Left.Tire.Pressure",
    ("Row2", "Right"): "Vehicle.Chassis.Axle.Row2.Wheel.Right.Tire.Pressure",
}
ENGINE_SPEED = "Vehicle.Powertrain.CombustionEngine.Speed"
AIR_TEMPERATURE = "Vehicle.Exterior.AirTemperature"
LOW_VOLTAGE = "Vehicle.LowVoltageBattery.CurrentVoltage"

_MAX_KM = 5_000_000.0
_MAX_RANGE_M = 5_000_000.0
_LOC = SignalClass.LOCATION

CATALOGUE: dict[str, SignalSpec] = {
    spec.name: spec
    for spec in (
        _f(SPEED, "km/h", 0, 500),
        _f(TRAVELED_DISTANCE, "km", 0, _MAX_KM),
        _f(SOC, "percent", 0, 100),
        _f(SOH, "percent", 0, 100),
        _b(IS_CHARGING),
        _b(CABLE_CONNECTED),
        _f(RANGE, "m", 0, _MAX_RANGE_M),
        _f(BATTERY_RANGE, "m", 0, _MAX_RANGE_M),
        _f(FUEL_LEVEL, "percent", 0, 100),
        _f(FUEL_RANGE, "m", 0, _MAX_RANGE_M),
        _b(IS_LOCKED),
        _f(LATITUDE, "degrees", -90, 90, _LOC),
        _f(LONGITUDE, "degrees", -180, 180, _LOC),
        _f(HEADING, "degrees", 0, 360, _LOC),
        *(_f(name, "kPa", 0, 1_000) for name in TIRE_PRESSURE.values()),
        _f(ENGINE_SPEED, "rpm", 0, 20_000),
        _f(AIR_TEMPERATURE, "celsius", -90, 90),
        _f(LOW_VOLTAGE, "V", 0, 60),
    )
}


def signal_class(name: str) -> SignalClass:
    """The class of a catalogued signal (KeyError for names outside the catalogue)."""
    return CATALOGUE[name].signal_class


@dataclass(frozen=True)
class Signal:
    """One observation: a VSS name, a value in the catalogue's unit, when, and from where
    (`oem:<connectionId>` or `device:<deviceId>`)."""

    name: str
    value: float | bool
    unit: str | None
    timestamp: datetime
    source: str
    #: For device data: the device's EIP-712 signature over the payload this came in.
    signature: str | None = None

    @property
    def signal_class(self) -> SignalClass:
        return signal_class(self.name)

    @property
    def timestamp_ms(self) -> int:
        return round(self.timestamp.timestamp() * 1000)

    def to_json(self) -> dict[str, Any]:
        """The shape the gateway serves (DESIGN.md §4); device data adds its signature."""
        body: dict[str, Any] = {
            "name": self.name,
            "value": self.value,
            "unit": self.unit,
            "timestamp": self.timestamp.isoformat().replace("+00:00", "Z"),
            "source": self.source,
        }
        if self.signature is not None:
            body["signature"] = self.signature
        return body


def check_value(name: str, value: Any) -> float | bool:
    """`value` as the catalogue's type for `name`, or MalformedPayloadError."""
    spec = CATALOGUE.get(name)
    if spec is None:
        raise MalformedPayloadError(f"{name!r} is not a known VSS signal")
    if spec.type is ValueType.BOOL:
        if not isinstance(value, bool):
            raise MalformedPayloadError(f"{name} must be a boolean, got {value!r}")
        return value
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise MalformedPayloadError(f"{name} must be a number, got {value!r}")
    number = float(value)
    if not math.isfinite(number) or not spec.minimum <= number <= spec.maximum:
        bounds = f"[{spec.minimum}, {spec.maximum}] {spec.unit}"
        raise MalformedPayloadError(f"{name} = {value!r} is outside {bounds}")
    return number


def make_signal(name: str, value: Any, timestamp: datetime, source: str) -> Signal:
    """A checked signal in the catalogue's unit (convert to that unit before calling)."""
    if timestamp.tzinfo is None:
        raise ValueError("signal timestamps must be timezone-aware")
    return Signal(name, check_value(name, value), CATALOGUE[name].unit, timestamp.astimezone(UTC), source)


def oem_source(connection_id: int) -> str:
    return f"oem:{connection_id}"


def device_source(device_id: int) -> str:
    return f"device:{device_id}"
