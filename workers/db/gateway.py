"""The gateway's own tables: SIWE nonces and sessions, API credit counters, dataset jobs and
the orders' dataset privacy budgets.
(Owned by workers/gateway and workers/datasets; the indexer's projections live elsewhere.)"""

from __future__ import annotations

import time
from collections.abc import Sequence
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Connection,
    Float,
    Index,
    Integer,
    String,
    Text,
    bindparam,
    select,
)
from sqlalchemy.orm import Mapped, Session, mapped_column

from workers.db.base import Address, Base, UInt


class SiweNonce(Base):
    """A nonce handed out by POST /auth/nonce; single use, expires."""

    __tablename__ = "gateway_siwe_nonces"

    nonce: Mapped[str] = mapped_column(String(64), primary_key=True)
    address: Mapped[str] = mapped_column(Address)
    issued_at: Mapped[int] = mapped_column(BigInteger)
    expires_at: Mapped[int] = mapped_column(BigInteger, index=True)
    #: Set (atomically, once) when a signed message carrying it was accepted.
    used_at: Mapped[int | None] = mapped_column(BigInteger, nullable=True)


class GatewaySession(Base):
    """A bearer token issued by POST /auth/verify. The token is HMAC-signed and names this
    row's id; a token speaks for its address only while its row is live (`session_status`):
    POST /auth/logout and /auth/revoke-all set `revoked_at`, and every gateway process reads
    the row on every authenticated request, so a revocation holds at once everywhere."""

    __tablename__ = "gateway_sessions"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    address: Mapped[str] = mapped_column(Address, index=True)
    issued_at: Mapped[int] = mapped_column(BigInteger)
    expires_at: Mapped[int] = mapped_column(BigInteger)
    #: When the session was signed out or revoked (None: not revoked).
    revoked_at: Mapped[int | None] = mapped_column(BigInteger, nullable=True)


class SessionStatus(StrEnum):
    LIVE = "live"
    #: No such session here (a token from another deployment, or its row was purged).
    UNKNOWN = "unknown"
    REVOKED = "revoked"
    EXPIRED = "expired"


#: The columns `session_status` needs, by session id (one primary-key read).
SESSION_ROW = select(GatewaySession.expires_at, GatewaySession.revoked_at).where(
    GatewaySession.id == bindparam("session_id")
)


def status_of_session_row(row: Sequence[Any] | None, now: int) -> SessionStatus:
    """Whether a session (its SESSION_ROW, None if there is none) may act at `now`: the one
    rule the gateway (every authenticated request, every stream tick) and onboarding (the
    automaker's callback) apply."""
    if row is None:
        return SessionStatus.UNKNOWN
    expires_at, revoked_at = row
    if revoked_at is not None:
        return SessionStatus.REVOKED
    return SessionStatus.LIVE if now < int(expires_at) else SessionStatus.EXPIRED


def session_status(conn: Connection | Session, session_id: str, now: int) -> SessionStatus:
    """`status_of_session_row` of the session `session_id`, read in the caller's transaction."""
    return status_of_session_row(conn.execute(SESSION_ROW, {"session_id": session_id}).first(), now)


class ApiCredit(Base):
    """Calls left on one Api order (or one Api component of a bundle order).

    Decremented by a single conditional UPDATE ... WHERE remaining > 0 RETURNING, so
    concurrent calls never spend a credit twice; access.sweep zeroes expired orders."""

    __tablename__ = "gateway_api_credits"
    __table_args__ = (Index("ix_gateway_api_credits_buyer_product", "buyer", "product_id"),)

    order_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    product_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    buyer: Mapped[str] = mapped_column(Address)
    total: Mapped[int] = mapped_column(BigInteger)
    remaining: Mapped[int] = mapped_column(BigInteger)
    #: The order's endsAt (unix seconds); 0: no end.
    expires_at: Mapped[int] = mapped_column(BigInteger, default=0)
    #: Set by access.sweep once the order ended (remaining is then 0).
    expired: Mapped[bool] = mapped_column(Boolean, default=False)


class DatasetJob(Base):
    """One `datasets.build` job queued by POST /v1/orders/{orderId}/dataset. An order may
    queue several, each spending `epsilon` of the order's DatasetPrivacyBudget."""

    __tablename__ = "gateway_dataset_jobs"
    __table_args__ = (Index("ix_gateway_dataset_jobs_order_product", "order_id", "product_id"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    order_id: Mapped[int] = mapped_column(BigInteger)
    product_id: Mapped[int] = mapped_column(BigInteger)
    buyer: Mapped[str] = mapped_column(Address)
    #: The request: {"metric", "group_by", "filter", "bounds"} as JSON.
    request: Mapped[str] = mapped_column(Text)
    #: queued | running | done | refused | failed
    status: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str | None] = mapped_column(String(32), nullable=True)
    detail: Mapped[str | None] = mapped_column(Text, nullable=True)
    #: The differentially private release as JSON (workers/datasets/privacy.py) once done.
    result: Mapped[str | None] = mapped_column(Text, nullable=True)
    #: Contributing vehicles (exact: for operators, never in an answer).
    cohort: Mapped[int | None] = mapped_column(Integer, nullable=True)
    #: The privacy loss this job took from its order's budget when it was queued.
    epsilon: Mapped[float] = mapped_column(Float)
    created_at: Mapped[int] = mapped_column(BigInteger)
    finished_at: Mapped[int | None] = mapped_column(BigInteger, nullable=True)


class DatasetPrivacyBudget(Base):
    """The differential-privacy budget of one Dataset (or bundle) order: every dataset job of
    the order spends from it, by a single conditional UPDATE, and none is queued past it."""

    __tablename__ = "gateway_dataset_budgets"

    order_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    #: Fixed when the order's first job is queued (DATASET_EPSILON_PER_ORDER then).
    epsilon_total: Mapped[float] = mapped_column(Float)
    epsilon_spent: Mapped[float] = mapped_column(Float)
    updated_at: Mapped[int] = mapped_column(BigInteger)


class VehicleProfile(Base):
    """What the automaker says the vehicle is (make, model, powertrain) and where it is
    registered (region): what stream and dataset consumers filter and group by. Upserted by
    `upsert_profile` (onboarding and pulls)."""

    __tablename__ = "vehicle_profiles"

    vehicle_id: Mapped[int] = mapped_column(UInt, primary_key=True)
    make: Mapped[str | None] = mapped_column(String(64), nullable=True, index=True)
    model: Mapped[str | None] = mapped_column(String(64), nullable=True)
    powertrain: Mapped[str | None] = mapped_column(String(16), nullable=True)
    region: Mapped[str | None] = mapped_column(String(32), nullable=True)
    updated_ms: Mapped[int] = mapped_column(BigInteger, default=0)


def upsert_profile(
    session: Session,
    vehicle_id: int,
    *,
    make: str | None = None,
    model: str | None = None,
    powertrain: str | None = None,
    region: str | None = None,
) -> None:
    """Records what is known of a vehicle; fields given as None keep their stored value."""
    row = session.get(VehicleProfile, vehicle_id)
    if row is None:
        row = VehicleProfile(vehicle_id=vehicle_id)
        session.add(row)
    for key, value in (("make", make), ("model", model), ("powertrain", powertrain), ("region", region)):
        if value is not None:
            setattr(row, key, value)
    row.updated_ms = int(time.time() * 1000)


class OrderExpiry(Base):
    """An ended order that access.sweep has dealt with: `expired` (Marketplace.expireOrder
    mined, Staking usage re-synced), `not_in_force` (nothing to do on chain)."""

    __tablename__ = "gateway_order_expiries"

    order_id: Mapped[int] = mapped_column(UInt, primary_key=True)
    status: Mapped[str] = mapped_column(String(16))
    tx_hash: Mapped[str | None] = mapped_column(String(66), nullable=True)
    handled_at: Mapped[int] = mapped_column(BigInteger)
