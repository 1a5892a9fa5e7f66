"""The simulated fleet: vehicle specs and their physical state as closed-form functions of time.

Every vehicle repeats a duty cycle (drive a loop from home, then park and, for EVs, charge),
so any instant's odometer, position, speed, state of charge and fuel level follow from the
simulator clock alone, without a background loop. Only what commands change (locks, remote
start, Tesla sleep) is mutable state.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, field
from enum import StrEnum

#: Length of one duty cycle (seconds): a drive, then a long park.
CYCLE_SECONDS = 7200.0
#: Drive part of each cycle (seconds).
DRIVE_SECONDS = 1500.0
#: The simulator's epoch: odometers read their base value at this instant (2026-01-01T00:00Z).
EPOCH = 1_767_225_600.0
#: Kilometres in one degree of latitude.
KM_PER_DEGREE = 111.32
#: AC charging power while parked (kW).
CHARGE_KW = 11.0
#: Fuel is refilled to full when a drive would leave less than this (percent).
REFUEL_BELOW_PERCENT = 15.0
#: State of health lost per kilometre driven (fraction).
SOH_LOSS_PER_KM = 2e-7
#: How long a remote start stays armed (seconds).
REMOTE_START_SECONDS = 120.0
KM_PER_MILE = 1.609344
KPA_PER_BAR = 100.0

_VIN_VALUES = {
    **{str(i): i for i in range(10)},
    **dict(zip("ABCDEFGH", range(1, 9), strict=True)),
    **dict(zip("JKLMN", range(1, 6), strict=True)),
    "P": 7,
    "R": 9,
    **dict(zip("STUVWXYZ", range(2, 10), strict=True)),
}
_VIN_WEIGHTS = (8, 7, 6, 5, 4, 3, 2, 10, 0, 9, 8, 7, 6, 5, 4, 3, 2)


class Powertrain(StrEnum):
    BEV = "BEV"
    PHEV = "PHEV"
    ICE = "ICE"


class Oem(StrEnum):
    """Which of the simulator's two APIs serves a vehicle."""

    SMARTCAR = "smartcar"
    TESLA = "tesla"


def vin_check_digit(vin: str) -> str:
    """The North American check digit (position 9) of a 17-character VIN."""
    total = sum(_VIN_VALUES[c] * w for c, w in zip(vin, _VIN_WEIGHTS, strict=True))
    remainder = total % 11
    return "X" if remainder == 10 else str(remainder)


def make_vin(prefix8: str, year_code: str, plant: str, serial: int) -> str:
    """A VIN with a valid check digit: 8-character WMI+VDS, check digit, year, plant, serial."""
    draft = f"{prefix8}0{year_code}{plant}{serial:06d}"
    return draft[:8] + vin_check_digit(draft) + draft[9:]


def _unit(seed: str) -> float:
    """A deterministic number in [0, 1) derived from `seed`."""
    digest = hashlib.sha256(seed.encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


@dataclass(frozen=True)
class Template:
    make: str
    model: str
    year: int
    powertrain: Powertrain
    oem: Oem
    vin_prefix: str
    year_code: str
    plant: str
    battery_kwh: float = 0.0
    kwh_per_km: float = 0.0
    tank_litres: float = 0.0
    litres_per_km: float = 0.0


@dataclass(frozen=True)
class Place:
    name: str
    region: str
    lat: float
    lon: float


TEMPLATES: tuple[Template, ...] = (
    Template("Tesla", "Model 3", 2023, Powertrain.BEV, Oem.TESLA, "5YJ3E1EA", "P", "F", 75.0, 0.15),
    Template(
        "Ford", "F-150 Lightning", 2023, Powertrain.BEV, Oem.SMARTCAR, "1FTVW1EL", "P", "W", 131.0, 0.28
    ),
    Template("Toyota", "Camry", 2022, Powertrain.ICE, Oem.SMARTCAR, "4T1B11HK", "N", "U", 0, 0, 60.0, 0.07),
    Template("Tesla", "Model Y", 2024, Powertrain.BEV, Oem.TESLA, "7SAYGDEE", "R", "A", 81.0, 0.16),
    Template("Chevrolet", "Bolt EV", 2022, Powertrain.BEV, Oem.SMARTCAR, "1G1FZ6S0", "N", "4", 65.0, 0.16),
    Template(
        "Toyota",
        "RAV4 Prime",
        2023,
        Powertrain.PHEV,
        Oem.SMARTCAR,
        "JTMFB3FV",
        "P",
        "D",
        18.1,
        0.2,
        55.0,
        0.06,
    ),
    Template("Volkswagen", "ID.4", 2023, Powertrain.BEV, Oem.SMARTCAR, "1V2GNPE8", "P", "C", 82.0, 0.18),
    Template("Honda", "Civic", 2022, Powertrain.ICE, Oem.SMARTCAR, "2HGFE2F5", "N", "H", 0, 0, 47.0, 0.065),
)

PLACES: tuple[Place, ...] = (
    Place("San Francisco", "us-west", 37.7749, -122.4194),
    Place("Los Angeles", "us-west", 34.0522, -118.2437),
    Place("Austin", "us-central", 30.2672, -97.7431),
    Place("Chicago", "us-central", 41.8781, -87.6298),
    Place("New York", "us-east", 40.7128, -74.0060),
    Place("Miami", "us-east", 25.7617, -80.1918),
    Place("Berlin", "eu-central", 52.5200, 13.4050),
    Place("Munich", "eu-central", 48.1351, 11.5820),
)


@dataclass(frozen=True)
class VehicleSpec:
    """What never changes about a simulated vehicle."""

    id: str
    vin: str
    template: Template
    place: Place
    avg_speed_kmh: float
    odometer_base_km: float
    phase_seconds: float
    soh_new: float
    soc_phase: float

    @property
    def make(self) -> str:
        return self.template.make

    @property
    def model(self) -> str:
        return self.template.model

    @property
    def powertrain(self) -> Powertrain:
        return self.template.powertrain

    @property
    def oem(self) -> Oem:
        return self.template.oem

    @property
    def has_battery(self) -> bool:
        return self.template.powertrain in (Powertrain.BEV, Powertrain.PHEV)

    @property
    def has_tank(self) -> bool:
        return self.template.powertrain in (Powertrain.ICE, Powertrain.PHEV)

    @property
    def km_per_drive(self) -> float:
        return self.avg_speed_kmh * DRIVE_SECONDS / 3600.0

    def public(self) -> dict[str, object]:
        """The row `GET /_sim/vehicles` answers (DESIGN.md §4), plus year and region."""
        return {
            "id": self.id,
            "vin": self.vin,
            "make": self.make,
            "model": self.model,
            "year": self.template.year,
            "powertrain": self.powertrain.value,
            "oem": self.oem.value,
            "region": self.place.region,
        }


def build_fleet(size: int, seed: str = "dimo-sim") -> list[VehicleSpec]:
    """`size` vehicles cycling through the templates and places, reproducible from `seed`."""
    fleet = []
    for index in range(size):
        template = TEMPLATES[index % len(TEMPLATES)]
        place = PLACES[(index * 3) % len(PLACES)]
        key = f"{seed}:{index}"
        if template.oem is Oem.TESLA:
            vehicle_id = str(1_000_000_000_000 + int(_unit(key + ":id") * 1e12))
        else:
            digest = hashlib.sha256((key + ":id").encode()).hexdigest()
            vehicle_id = f"{digest[:8]}-{digest[8:12]}-4{digest[13:16]}-a{digest[17:20]}-{digest[20:32]}"
        fleet.append(
            VehicleSpec(
                id=vehicle_id,
                vin=make_vin(template.vin_prefix, template.year_code, template.plant, 100_000 + index),
                template=template,
                place=place,
                avg_speed_kmh=28.0 + 20.0 * _unit(key + ":speed"),
                odometer_base_km=round(2_000.0 + 40_000.0 * _unit(key + ":odo"), 1),
                phase_seconds=CYCLE_SECONDS * _unit(key + ":phase"),
                soh_new=0.9 + 0.09 * _unit(key + ":soh"),
                soc_phase=2 * math.pi * _unit(key + ":soc"),
            )
        )
    return fleet


@dataclass
class Snapshot:
    """A vehicle's physical state at one instant, in metric units."""

    at: float
    driving: bool
    speed_kmh: float
    odometer_km: float
    latitude: float
    longitude: float
    heading_deg: float
    soc_percent: float | None
    range_km: float | None
    charging: bool
    plugged_in: bool
    capacity_kwh: float | None
    fuel_percent: float | None
    fuel_litres: float | None
    tire_kpa: tuple[float, float, float, float]
    oil_life: float


def _drive_fraction_km(spec: VehicleSpec, tau: float) -> float:
    """Distance covered `tau` seconds into a drive: speed = avg * (1 - cos(2 pi tau / D))."""
    tau = min(max(tau, 0.0), DRIVE_SECONDS)
    avg_km_s = spec.avg_speed_kmh / 3600.0
    return avg_km_s * (tau - DRIVE_SECONDS / (2 * math.pi) * math.sin(2 * math.pi * tau / DRIVE_SECONDS))


def _soc_at_cycle_start(spec: VehicleSpec, cycle: int) -> float:
    # Drifts by at most 18 * 2pi / 29 ~ 3.9 points per cycle, less than a drive uses, so the
    # park that follows always charges upward to the next cycle's start.
    return 72.0 + 18.0 * math.sin(2 * math.pi * cycle / 29.0 + spec.soc_phase)


def _drive_soc_drop(spec: VehicleSpec) -> float:
    usable = spec.template.battery_kwh * spec.soh_new
    return max(spec.km_per_drive * spec.template.kwh_per_km / usable * 100.0, 4.5)


def snapshot(spec: VehicleSpec, now: float) -> Snapshot:
    """The vehicle's state at simulator time `now`."""
    elapsed = now - EPOCH + spec.phase_seconds
    cycle = math.floor(elapsed / CYCLE_SECONDS)
    tau = elapsed - cycle * CYCLE_SECONDS
    driving = tau < DRIVE_SECONDS
    in_drive_km = _drive_fraction_km(spec, tau)
    odometer = spec.odometer_base_km + cycle * spec.km_per_drive + in_drive_km
    speed = spec.avg_speed_kmh * (1 - math.cos(2 * math.pi * tau / DRIVE_SECONDS)) if driving else 0.0

    lat, lon, heading = _position(spec, in_drive_km / spec.km_per_drive if driving else 0.0)
    soc = rng = capacity = None
    charging = plugged = False
    if spec.has_battery:
        soh = spec.soh_new - SOH_LOSS_PER_KM * odometer
        capacity = spec.template.battery_kwh * soh
        start = _soc_at_cycle_start(spec, cycle)
        end = start - _drive_soc_drop(spec)
        if driving:
            soc = start - (start - end) * in_drive_km / spec.km_per_drive
        else:
            target = _soc_at_cycle_start(spec, cycle + 1)
            charge_seconds = (target - end) / 100.0 * capacity / CHARGE_KW * 3600.0
            parked_for = tau - DRIVE_SECONDS
            plugged = True
            charging = parked_for < charge_seconds
            soc = end + (target - end) * min(parked_for / charge_seconds, 1.0)
        rng = soc / 100.0 * capacity / spec.template.kwh_per_km
    fuel_pct = fuel_l = None
    if spec.has_tank:
        fuel_pct = _fuel_percent(spec, cycle, in_drive_km)
        fuel_l = fuel_pct / 100.0 * spec.template.tank_litres
        if rng is None:
            rng = fuel_l / spec.template.litres_per_km
    wobble = math.sin(now / 600.0 + spec.phase_seconds)
    tires = tuple(round(240.0 + 4.0 * wobble + i, 1) for i in range(4))
    oil = max(0.0, 1.0 - ((odometer % 15_000.0) / 15_000.0))
    return Snapshot(
        at=now,
        driving=driving,
        speed_kmh=speed,
        odometer_km=odometer,
        latitude=lat,
        longitude=lon,
        heading_deg=heading,
        soc_percent=soc,
        range_km=rng,
        charging=charging,
        plugged_in=plugged,
        capacity_kwh=capacity,
        fuel_percent=fuel_pct,
        fuel_litres=fuel_l,
        tire_kpa=tires,  # type: ignore[arg-type]
        oil_life=oil,
    )


def _fuel_percent(spec: VehicleSpec, cycle: int, in_drive_km: float) -> float:
    per_drive = spec.km_per_drive * spec.template.litres_per_km / spec.template.tank_litres * 100.0
    drives_per_tank = max(1, math.floor((100.0 - REFUEL_BELOW_PERCENT) / per_drive))
    start = 100.0 - (cycle % drives_per_tank) * per_drive
    return start - per_drive * in_drive_km / spec.km_per_drive


def _position(spec: VehicleSpec, fraction: float) -> tuple[float, float, float]:
    """A point `fraction` of the way round a loop that starts and ends at home, and the heading."""
    radius_km = spec.km_per_drive / (2 * math.pi)
    angle = 2 * math.pi * fraction
    north_km = radius_km * (1 - math.cos(angle))
    east_km = radius_km * math.sin(angle)
    lat = spec.place.lat + north_km / KM_PER_DEGREE
    lon = spec.place.lon + east_km / (KM_PER_DEGREE * math.cos(math.radians(spec.place.lat)))
    # Direction of travel: d(north)/da = r sin a, d(east)/da = r cos a; clockwise from north.
    heading = math.degrees(math.atan2(math.cos(angle), math.sin(angle))) % 360.0
    return lat, lon, heading


@dataclass
class VehicleState:
    """What commands change: locks, remote start, and for Tesla whether the car is awake."""

    spec: VehicleSpec
    locked: bool = True
    remote_start_until: float = 0.0
    awake_from: float = 0.0
    awake_until: float = 0.0
    commands: list[tuple[float, str]] = field(default_factory=list)

    def remote_started(self, now: float) -> bool:
        return now < self.remote_start_until

    def online(self, now: float) -> bool:
        return self.awake_from <= now < self.awake_until

    def wake(self, now: float, delay: float, stay_awake: float) -> None:
        """Starts waking (online after `delay`), or keeps an online car awake longer."""
        if self.online(now):
            self.awake_until = now + stay_awake
        elif now >= self.awake_until:
            self.awake_from = now + delay
            self.awake_until = self.awake_from + stay_awake

    def touch(self, now: float, stay_awake: float) -> None:
        """Activity on an online car keeps it awake."""
        if self.online(now):
            self.awake_until = max(self.awake_until, now + stay_awake)
