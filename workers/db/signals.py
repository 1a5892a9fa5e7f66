"""The tables of stored vehicle signals (COVESA VSS names, unit, source, device signature):
the history and the newest observation per vehicle and name. Read and written only through
`workers.signals.store`."""

from __future__ import annotations

from sqlalchemy import BigInteger, Float, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from workers.db.base import Base, UInt


class StoredSignal(Base):
    """Every observation, in arrival order (history)."""

    __tablename__ = "signals"
    __table_args__ = (
        Index("ix_signals_vehicle_name_ts", "vehicle_id", "name", "timestamp_ms"),
        # history of every name within a window (the tenure predicate): one range scan
        Index("ix_signals_vehicle_ts", "vehicle_id", "timestamp_ms"),
    )

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    vehicle_id: Mapped[int] = mapped_column(UInt)
    name: Mapped[str] = mapped_column(String(160))
    #: JSON of the value (number, bool or string).
    value: Mapped[str] = mapped_column(Text)
    #: The value as a number when it is one (aggregates), else None.
    number: Mapped[float | None] = mapped_column(Float, nullable=True)
    unit: Mapped[str | None] = mapped_column(String(32), nullable=True)
    timestamp_ms: Mapped[int] = mapped_column(BigInteger)
    #: `oem:<connectionId>` or `device:<deviceId>`.
    source: Mapped[str] = mapped_column(String(80))
    #: For device data: the verified EIP-712 Telemetry signature (0x-hex).
    signature: Mapped[str | None] = mapped_column(Text, nullable=True)


class LatestSignal(Base):
    """The newest observation per vehicle and signal name."""

    __tablename__ = "signals_latest"

    vehicle_id: Mapped[int] = mapped_column(UInt, primary_key=True)
    name: Mapped[str] = mapped_column(String(160), primary_key=True)
    value: Mapped[str] = mapped_column(Text)
    number: Mapped[float | None] = mapped_column(Float, nullable=True)
    unit: Mapped[str | None] = mapped_column(String(32), nullable=True)
    timestamp_ms: Mapped[int] = mapped_column(BigInteger)
    source: Mapped[str] = mapped_column(String(80))
    signature: Mapped[str | None] = mapped_column(Text, nullable=True)
