"""Permission bits of a vehicle key (contracts/libraries/Permissions.sol, DESIGN.md §3.1)
and the bit each signal and command needs."""

from __future__ import annotations

LOCK = 1 << 0
UNLOCK = 1 << 1
DRIVE = 1 << 2
TELEMETRY = 1 << 3
LOCATION = 1 << 4
LIVE = 1 << 5
VIN = 1 << 6
MANAGE_KEYS = 1 << 7
ALL = (1 << 8) - 1

#: The bit each remote command needs (POST /v1/vehicles/{id}/commands/{command}).
COMMAND_BITS: dict[str, int] = {"lock": LOCK, "unlock": UNLOCK, "start": DRIVE}

LOCATION_PREFIX = "Vehicle.CurrentLocation."
VIN_SIGNAL = "Vehicle.VehicleIdentification.VIN"


def signal_bit(name: str) -> int:
    """The permission bit a signal's class needs: LOCATION for location, VIN for the VIN,
    TELEMETRY for everything else."""
    if name.startswith(LOCATION_PREFIX):
        return LOCATION
    if name == VIN_SIGNAL:
        return VIN
    return TELEMETRY


def signals_mask(names: list[str] | tuple[str, ...] | set[str]) -> int:
    mask = 0
    for name in names:
        mask |= signal_bit(name)
    return mask
