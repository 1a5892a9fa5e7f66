"""Owner privacy zones: places (home, work) where a vehicle's location is coarsened before any
buyer sees it. Each zone belongs to the tenure it was made in (owner and vehicle generation):
a transfer voids it. Read and written only through `workers.signals.zones`."""

from __future__ import annotations

from sqlalchemy import BigInteger, Float, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from workers.db.base import Address, Base, UInt


class PrivacyZone(Base):
    """A circle (centre, radius in metres) of one owner's tenure of one vehicle."""

    __tablename__ = "privacy_zones"
    __table_args__ = (Index("ix_privacy_zones_vehicle_generation", "vehicle_id", "generation"),)

    zone_id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    vehicle_id: Mapped[int] = mapped_column(UInt)
    #: The owner who made it, and the vehicle generation (tenure) it was made in.
    owner: Mapped[str] = mapped_column(Address)
    generation: Mapped[int] = mapped_column(UInt)
    label: Mapped[str] = mapped_column(String(64))
    latitude: Mapped[float] = mapped_column(Float)
    longitude: Mapped[float] = mapped_column(Float)
    radius_m: Mapped[float] = mapped_column(Float)
    created_at: Mapped[int] = mapped_column(BigInteger)
