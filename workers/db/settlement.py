"""Usage (what members contributed), settlement epochs with their Merkle leaves and proofs,
and the workers' own transactions with the nonces recorded before sending."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from workers.db.base import Address, Base, Bytes32, UInt


def utcnow() -> datetime:
    return datetime.now(UTC)


class Usage(Base):
    """One contribution of one vehicle's data to a product in an epoch: Stream member-days,
    Api calls answered, Dataset rows. Written and taken only through `workers.ledger`.

    `owner` is the vehicle's owner when the data was served: the one who gets paid.
    `source` is the contribution's idempotency key (`kind:…`, see `record_usage`): a repeated
    record of the same contribution meets the unique constraint and is not counted twice.
    `included` is set when a settlement epoch took the row into its shares.
    """

    __tablename__ = "usage"
    __table_args__ = (Index("ix_usage_product_epoch", "product_id", "epoch", "included"),)

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    product_id: Mapped[int] = mapped_column(UInt)
    epoch: Mapped[int] = mapped_column(BigInteger)
    vehicle_id: Mapped[int] = mapped_column(UInt)
    owner: Mapped[str] = mapped_column(Address)
    units: Mapped[int] = mapped_column(UInt)
    kind: Mapped[str] = mapped_column(String(16))
    source: Mapped[str | None] = mapped_column(String(200), nullable=True, unique=True)
    included: Mapped[bool] = mapped_column(Boolean, default=False)
    recorded_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class ChainTx(Base):
    """A transaction the workers send, recorded (signed, with its nonce) before it is sent,
    so a retry re-sends the very same transaction instead of a second one."""

    __tablename__ = "chain_txs"
    __table_args__ = (UniqueConstraint("chain_id", "sender", "nonce", name="uq_chain_txs_sender_nonce"),)

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    #: What the transaction is for, e.g. "settle:<product>:<epoch>".
    purpose: Mapped[str] = mapped_column(String(200), index=True)
    chain_id: Mapped[int] = mapped_column(BigInteger)
    sender: Mapped[str] = mapped_column(Address)
    nonce: Mapped[int] = mapped_column(BigInteger)
    to: Mapped[str] = mapped_column(Address)
    data: Mapped[str] = mapped_column(Text)
    raw: Mapped[str] = mapped_column(Text)
    tx_hash: Mapped[str] = mapped_column(Bytes32, unique=True)
    #: signed → sent → mined | reverted | dropped (its nonce went to another transaction).
    status: Mapped[str] = mapped_column(String(16))
    block_number: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, onupdate=utcnow)


class SettlementEpoch(Base):
    """One product's epoch: the shares computed from its usage rows, the root, and where its
    `Marketplace.settle` transaction stands.

    status: `computed` (root and proofs stored, nothing sent) → `submitting` (transaction
    recorded) → `settled` (mined, Settled emitted); `empty` when nothing is owed (no usage,
    or an empty pool); `failed` when the chain would refuse it (see `error`)."""

    __tablename__ = "settlement_epochs"

    product_id: Mapped[int] = mapped_column(UInt, primary_key=True)
    epoch: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    status: Mapped[str] = mapped_column(String(16))
    #: memberPool(product) at `pool_block`: what this epoch may distribute at most.
    pool: Mapped[int] = mapped_column(UInt)
    pool_block: Mapped[int] = mapped_column(BigInteger)
    #: Sum of the leaves (what settle moves out of the pool); pool - amount stays for later.
    amount: Mapped[int] = mapped_column(UInt)
    remainder: Mapped[int] = mapped_column(UInt)
    total_units: Mapped[int] = mapped_column(UInt)
    usage_rows: Mapped[int] = mapped_column(Integer)
    leaf_count: Mapped[int] = mapped_column(Integer)
    root: Mapped[str | None] = mapped_column(Bytes32, nullable=True)
    tx_id: Mapped[int | None] = mapped_column(ForeignKey("chain_txs.id"), nullable=True)
    settled_block: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, onupdate=utcnow)


class SettlementLeaf(Base):
    """One member's leaf `(index, account, amount)` of an epoch's tree, with its proof."""

    __tablename__ = "settlement_leaves"
    __table_args__ = (Index("ix_settlement_leaves_account", "account"),)

    product_id: Mapped[int] = mapped_column(UInt, primary_key=True)
    epoch: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    index: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    account: Mapped[str] = mapped_column(Address)
    amount: Mapped[int] = mapped_column(UInt)
    #: JSON list of 0x-hex sibling hashes.
    proof: Mapped[str] = mapped_column(Text)
