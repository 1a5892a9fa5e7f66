"""The vehicle signals the workers know, by COVESA VSS name, with their unit, type and
plausible range, and each signal's class: the one place that decides which permission bit
reading a signal needs. Location signals (the VSS branch `Vehicle.CurrentLocation`) need
LOCATION, the VIN needs VIN, every other signal TELEMETRY (Permissions.sol). OEM pulls and
device telemetry check what they store against this catalogue; the access rule, the gateway,
streams and datasets ask it for the bit."""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

from workers.protocol import permissions


class SignalClass(StrEnum):
    """What a signal reveals, each class read under one permission bit (CLASS_BITS)."""

    TELEMETRY = "telemetry"
    LOCATION = "location"
    VIN = "vin"


#: The permission bit that opens each class.
CLASS_BITS = {
    SignalClass.TELEMETRY: permissions.TELEMETRY,
    SignalClass.LOCATION: permissions.LOCATION,
    SignalClass.VIN: permissions.VIN,
}

#: The VSS branch of the vehicle's position: every signal under it is location.
LOCATION_BRANCH = "Vehicle.CurrentLocation."
#: The VIN as a signal name (the VIN credential).
VIN = "Vehicle.VehicleIdentification.VIN"


def signal_class(name: str) -> SignalClass:
    """The class of the signal called `name`, catalogued or not."""
    if name.startswith(LOCATION_BRANCH):
        return SignalClass.LOCATION
    if name == VIN:
        return SignalClass.VIN
    return SignalClass.TELEMETRY


def signal_bit(name: str) -> int:
    """The permission bit reading the signal called `name` needs."""
    return CLASS_BITS[signal_class(name)]


def signals_mask(names: Iterable[str]) -> int:
    """The permission bits reading all of `names` needs."""
    mask = 0
    for name in names:
        mask |= signal_bit(name)
    return mask


class ValueType(StrEnum):
    FLOAT = "float"
    BOOL = "bool"


@dataclass(frozen=True)
class SignalSpec:
    name: str
    unit: str | None
    type: ValueType
    minimum: float = -math.inf
    maximum: float = math.inf

    @property
    def signal_class(self) -> SignalClass:
        return signal_class(self.name)


def _f(name: str, unit: str, lo: float, hi: float) -> SignalSpec:
    return SignalSpec(name, unit, ValueType.FLOAT, lo, hi)


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
LATITUDE = LOCATION_BRANCH + "Latitude"
LONGITUDE = LOCATION_BRANCH + "Longitude"
HEADING = LOCATION_BRANCH + "Heading"
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
        _f(LATITUDE, "degrees", -90, 90),
        _f(LONGITUDE, "degrees", -180, 180),
        _f(HEADING, "degrees", 0, 360),
        *(_f(name, "kPa", 0, 1_000) for name in TIRE_PRESSURE.values()),
        _f(ENGINE_SPEED, "rpm", 0, 20_000),
        _f(AIR_TEMPERATURE, "celsius", -90, 90),
        _f(LOW_VOLTAGE, "V", 0, 60),
    )
}
