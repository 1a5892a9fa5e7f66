"""OEM integration and device telemetry tables (owned by workers/oem): onboarding states,
linked vehicles with their encrypted tokens, verified device payloads with their
signatures, per-device sequence high-water marks, and relayed commands. The signals
themselves live in `workers.db.signals` (history and latest, shared with the gateway)."""

from __future__ import annotations

from sqlalchemy import BigInteger, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from workers.db.base import Address, Base, Bytes32, UInt

_ID = BigInteger().with_variant(Integer, "sqlite")


class OemAuthState(Base):
    """An onboarding in flight: the OAuth `state` handed to the automaker, bound to the
    signed-in owner (address and bearer session) and the connection; single-use (the
    callback deletes it), expiring (expired rows are purged on every write). Only the state's
    SHA-256 is kept, so the table cannot be replayed into a callback; the PKCE verifier is
    Fernet-encrypted under OEM_TOKEN_KEYS."""

    __tablename__ = "oem_auth_states"

    state_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    connection_id: Mapped[int] = mapped_column(UInt)
    owner: Mapped[str] = mapped_column(Address)
    #: The bearer session (gateway_sessions.id) that started it: the callback needs it live.
    session_id: Mapped[str] = mapped_column(String(32))
    #: The RFC 7636 code verifier, encrypted; None when the connection does not use PKCE.
    verifier_ciphertext: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[int] = mapped_column(BigInteger)
    expires_at: Mapped[int] = mapped_column(BigInteger, index=True)


class OemLink(Base):
    """A vehicle linked through an automaker: its OEM id, its tokens (Fernet-encrypted), the
    VIN (encrypted too: reading it needs the VIN bit) and the owner who consented.

    `vehicle_id` is filled once the vehicle NFT for `vin_hash` exists. `status`: `active`,
    `reauth_required` (refresh refused: the owner must consent again), `owner_changed` (the
    NFT moved to someone else: their data is not pulled with the old owner's consent).

    `next_pull_at` is when oem.schedule may claim the link next: its products' refreshSeconds
    after the last pull, the lease's end while a claimed pull is queued (a pull that dies is
    claimed again then), or a 429's Retry-After. Only due rows are read: the index serves one
    range per connection (status, connection, time)."""

    __tablename__ = "oem_links"
    __table_args__ = (
        UniqueConstraint("connection_id", "vin_hash", name="uq_oem_links_connection_vin"),
        Index("ix_oem_links_due", "status", "connection_id", "next_pull_at"),
    )

    id: Mapped[int] = mapped_column(_ID, primary_key=True)
    connection_id: Mapped[int] = mapped_column(UInt)
    vin_hash: Mapped[str] = mapped_column(Bytes32, index=True)
    vin_ciphertext: Mapped[str] = mapped_column(Text)
    external_id: Mapped[str] = mapped_column(String(128))
    #: What the automaker says the car is (for the vehicle's profile once it is minted).
    make: Mapped[str | None] = mapped_column(String(64), nullable=True)
    model: Mapped[str | None] = mapped_column(String(64), nullable=True)
    owner: Mapped[str] = mapped_column(Address)
    vehicle_id: Mapped[int | None] = mapped_column(UInt, nullable=True, index=True)
    tokens_ciphertext: Mapped[str] = mapped_column(Text)
    token_expires_at: Mapped[int] = mapped_column(BigInteger)
    status: Mapped[str] = mapped_column(String(24), default="active")
    #: When oem.schedule last claimed the link and queued its pull.
    scheduled_at: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    #: When oem.schedule may claim it next (unix seconds; 0: at once).
    next_pull_at: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    #: The automaker refused this vehicle's calls (429, vehicle scope) until then: no call
    #: goes out before, whoever asks.
    held_until: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    last_pull_at: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[int] = mapped_column(BigInteger)
    updated_at: Mapped[int] = mapped_column(BigInteger)


class OemConnectionHold(Base):
    """An automaker connection that answered 429 for the whole application (connection scope)
    with a Retry-After: none of its links is claimed or called before `until`. Kept in the
    database so a restarted worker or scheduler keeps honouring it."""

    __tablename__ = "oem_connection_holds"

    connection_id: Mapped[int] = mapped_column(UInt, primary_key=True)
    until: Mapped[int] = mapped_column(BigInteger)
    reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    updated_at: Mapped[int] = mapped_column(BigInteger)


class DevicePayload(Base):
    """One verified device telemetry payload: the signed `Telemetry` fields, the canonical
    JSON that `payload_hash` covers, and the signature, so anyone can verify it again."""

    __tablename__ = "device_payloads"
    __table_args__ = (UniqueConstraint("device_id", "sequence", name="uq_device_payloads_device_sequence"),)

    id: Mapped[int] = mapped_column(_ID, primary_key=True)
    device_id: Mapped[int] = mapped_column(UInt)
    vehicle_id: Mapped[int] = mapped_column(UInt, index=True)
    sequence: Mapped[int] = mapped_column(UInt)
    #: The device's signed timestamp (unix seconds).
    timestamp: Mapped[int] = mapped_column(BigInteger)
    payload_hash: Mapped[str] = mapped_column(Bytes32)
    canonical: Mapped[str] = mapped_column(Text)
    signer: Mapped[str] = mapped_column(Address)
    signature: Mapped[str] = mapped_column(String(132))
    received_at: Mapped[int] = mapped_column(BigInteger)


class DeviceSequence(Base):
    """The highest sequence accepted per device; raised only by a conditional update, so
    two deliveries of one payload cannot both be accepted."""

    __tablename__ = "device_sequences"

    device_id: Mapped[int] = mapped_column(UInt, primary_key=True)
    last_sequence: Mapped[int] = mapped_column(UInt)
    updated_at: Mapped[int] = mapped_column(BigInteger)


class OemCommand(Base):
    """A remote command relayed (or refused) by `oem.command`, keyed by the request id the
    gateway gave it so a redelivered task never sends twice.

    `status`: queued, sent, refused (no permission), expired (waited longer than
    OEM_COMMAND_TTL), failed (the OEM or the vehicle said no)."""

    __tablename__ = "oem_commands"

    request_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    vehicle_id: Mapped[int] = mapped_column(UInt, index=True)
    caller: Mapped[str] = mapped_column(Address)
    command: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str | None] = mapped_column(String(48), nullable=True)
    detail: Mapped[str | None] = mapped_column(Text, nullable=True)
    requested_at: Mapped[int] = mapped_column(BigInteger)
    finished_at: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
