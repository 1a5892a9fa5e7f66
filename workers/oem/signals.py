"""Observations as the OEM side produces them: a catalogued VSS signal (workers.signals.catalogue)
with its value checked against the catalogue's type and range, a time and a source. A value
outside its type or range means the producer (an OEM payload, a device) sent something
broken: MalformedPayloadError, and the whole payload is refused."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from workers.oem.errors import MalformedPayloadError
from workers.signals.catalogue import CATALOGUE, SignalClass, ValueType, signal_class


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
