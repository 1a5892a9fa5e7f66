"""Usage counters (what members' vehicles served), the settlement's accounting (closed periods,
what each account is owed), the cumulative roots with every leaf's proof, and the workers' own
transactions with the nonces recorded before sending."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import (
    BigInteger,
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


class UsageCounter(Base):
    """What one vehicle served one order of a product in one period, paid to `owner` (the
    vehicle's owner when it was served; the zero address when unknown): metered calls add
    their units, stream member-days and dataset rows count once per (order, vehicle, period).
    Written through `workers.ledger.record_usage`, and by the metered call's fused spend
    (`workers/gateway/hotpath.py`, the same upsert); read, aggregated in SQL, by the
    settlement of the period (SPEC15 §7)."""

    __tablename__ = "usage_counters"
    __table_args__ = (Index("ix_usage_counters_product_period", "product_id", "period"),)

    product_id: Mapped[int] = mapped_column(UInt, primary_key=True)
    order_id: Mapped[int] = mapped_column(UInt, primary_key=True)
    vehicle_id: Mapped[int] = mapped_column(UInt, primary_key=True)
    #: floor(t / EPOCH_SECONDS).
    period: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    owner: Mapped[str] = mapped_column(Address, primary_key=True)
    units: Mapped[int] = mapped_column(BigInteger)


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
    #: The fees it was signed with (EIP-1559); a replacement raises both.
    max_fee: Mapped[int | None] = mapped_column(UInt, nullable=True)
    priority_fee: Mapped[int | None] = mapped_column(UInt, nullable=True)
    #: JSON list of the hashes it replaced at the same nonce (any of them may be mined).
    replaced: Mapped[str | None] = mapped_column(Text, nullable=True)
    #: When the current bytes were sent (a transaction not mined in time is replaced).
    sent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    block_number: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, onupdate=utcnow)


class SettlementProduct(Base):
    """Where the accounting of one product stands: every period before `next_period` is
    closed (its shares added to `settlement_accounts`), and `carry` is what their rounding left for
    the next one."""

    __tablename__ = "settlement_products"

    product_id: Mapped[int] = mapped_column(UInt, primary_key=True)
    next_period: Mapped[int] = mapped_column(BigInteger)
    carry: Mapped[int] = mapped_column(UInt)
    #: Σ payouts of the product's closed periods: what roots take from its vested pool.
    taken: Mapped[int] = mapped_column(UInt)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, onupdate=utcnow)


class SettlementPeriod(Base):
    """One closed period of one product that released something (or carried): the audit of
    the share rule."""

    __tablename__ = "settlement_periods"

    product_id: Mapped[int] = mapped_column(UInt, primary_key=True)
    period: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    released: Mapped[int] = mapped_column(UInt)
    carry_in: Mapped[int] = mapped_column(UInt)
    paid: Mapped[int] = mapped_column(UInt)
    carry_out: Mapped[int] = mapped_column(UInt)
    orders: Mapped[int] = mapped_column(Integer)
    accounts: Mapped[int] = mapped_column(Integer)
    closed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class SettlementAccount(Base):
    """What one account is owed in total by every closed period of every product (the leaf of
    the next root): one row per account, raised in the transaction that closes the periods."""

    __tablename__ = "settlement_accounts"

    account: Mapped[str] = mapped_column(Address, primary_key=True)
    owed: Mapped[int] = mapped_column(UInt)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, onupdate=utcnow)


class SettlementRoot(Base):
    """A cumulative root the workers computed over everything owed when it was built, stored
    (with every leaf's proof) before anything is sent.

    status: `computed` → `proposing` (proposeRoot recorded) → `proposed` (mined: pending on
    chain) → `accepting` (acceptRoot recorded) → `accepted`; `failed` (the chain refused or
    reverted it), `revoked` (governance revoked it while pending) and `replaced` (another
    proposal took its place) end it: the accounting is cumulative, the next root includes it."""

    __tablename__ = "settlement_roots"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    root: Mapped[str] = mapped_column(Bytes32, index=True)
    status: Mapped[str] = mapped_column(String(16), index=True)
    #: Σ of every leaf: what all roots up to this one owe members.
    total: Mapped[int] = mapped_column(UInt)
    leaf_count: Mapped[int] = mapped_column(Integer)
    #: JSON lists: the products whose cumulative take moves, ascending, and those takes.
    product_ids: Mapped[str] = mapped_column(Text)
    cumulative_taken: Mapped[str] = mapped_column(Text)
    #: keccak256 of the StandardMerkleTree dump of the leaves (`settlement.roots.root_file`).
    data_hash: Mapped[str] = mapped_column(Bytes32)
    claimable_at: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    propose_tx_id: Mapped[int | None] = mapped_column(ForeignKey("chain_txs.id"), nullable=True)
    accept_tx_id: Mapped[int | None] = mapped_column(ForeignKey("chain_txs.id"), nullable=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, onupdate=utcnow)


class SettlementRootLeaf(Base):
    """One account's leaf `(account, cumulative)` of a root's tree, with its proof."""

    __tablename__ = "settlement_root_leaves"
    __table_args__ = (Index("ix_settlement_root_leaves_account", "account"),)

    root_id: Mapped[int] = mapped_column(ForeignKey("settlement_roots.id"), primary_key=True)
    account: Mapped[str] = mapped_column(Address, primary_key=True)
    cumulative: Mapped[int] = mapped_column(UInt)
    #: JSON list of 0x-hex sibling hashes.
    proof: Mapped[str] = mapped_column(Text)
