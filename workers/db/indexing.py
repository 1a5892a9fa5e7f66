"""The indexer's own bookkeeping: its cursor, the hash of every block it applied, the undo
records that make a rollback exact, every decoded event, and a change counter per projection
table (what processes that cache projections poll)."""

from __future__ import annotations

from sqlalchemy import BigInteger, Float, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from workers.db.base import Address, Base, Bytes32


class IndexerCursor(Base):
    """Where one indexer stands: which chain and deployment, and the last block applied."""

    __tablename__ = "indexer_cursor"

    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    chain_id: Mapped[int] = mapped_column(BigInteger)
    #: Hash of the deployment's contract addresses: another deployment needs a fresh index.
    deployment: Mapped[str] = mapped_column(String(66))
    start_block: Mapped[int] = mapped_column(BigInteger)
    #: The last block applied (start_block - 1 before the first).
    last_block: Mapped[int] = mapped_column(BigInteger)
    last_hash: Mapped[str | None] = mapped_column(Bytes32, nullable=True)
    #: The first block applied with undo records; every later block has them, so a fork at
    #: or after `undo_from - 1` rolls back exactly (None: no block has them yet).
    undo_from: Mapped[int | None] = mapped_column(BigInteger, nullable=True)


class IndexerHealth(Base):
    """What the indexer last saw, written at the end of every sync (and when it halts): the
    chain head, the block it indexed, when it looked, and why it stopped if it did. The
    gateway reads this one row to fail closed on a stale index (workers/indexer/health.py)."""

    __tablename__ = "indexer_health"

    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    #: The chain head (number and timestamp) the indexer read in its last sync.
    chain_head: Mapped[int] = mapped_column(BigInteger)
    chain_head_timestamp: Mapped[int] = mapped_column(BigInteger)
    #: The last block applied and its timestamp.
    indexed_block: Mapped[int] = mapped_column(BigInteger)
    indexed_timestamp: Mapped[int] = mapped_column(BigInteger)
    #: Unix seconds (wall clock) of the sync that wrote the row: an indexer that stopped
    #: ticking leaves an old row behind.
    checked_at: Mapped[float] = mapped_column(Float)
    #: Why indexing stopped (a reorg deeper than the window, …); None while it runs.
    halted: Mapped[str | None] = mapped_column(Text, nullable=True)


class IndexedBlock(Base):
    """A block the indexer applied, committed in the same transaction as its rows.

    Blocks with events are always recorded; blocks inside the reorg window are all recorded
    (with their parent hash), so a changed hash is found and the fork point located."""

    __tablename__ = "indexer_blocks"

    number: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    hash: Mapped[str] = mapped_column(Bytes32)
    parent_hash: Mapped[str | None] = mapped_column(Bytes32, nullable=True)
    timestamp: Mapped[int | None] = mapped_column(BigInteger, nullable=True)


class UndoRecord(Base):
    """The image of one projection row before block `block_number` changed it (None: the row
    did not exist). Kept for blocks inside the reorg window; replayed newest-first on rollback."""

    __tablename__ = "indexer_undo"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    block_number: Mapped[int] = mapped_column(BigInteger, index=True)
    table_name: Mapped[str] = mapped_column(String(64))
    key: Mapped[str] = mapped_column(Text)
    before: Mapped[str | None] = mapped_column(Text, nullable=True)


class ChainEvent(Base):
    """Every decoded event of the deployment's contracts, in chain order (the audit trail)."""

    __tablename__ = "chain_events"
    __table_args__ = (Index("ix_chain_events_contract_name", "contract", "name"),)

    block_number: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    log_index: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    tx_hash: Mapped[str] = mapped_column(Bytes32)
    block_timestamp: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    contract: Mapped[str] = mapped_column(String(40))
    address: Mapped[str] = mapped_column(Address)
    name: Mapped[str] = mapped_column(String(64))
    #: The event's arguments as JSON (integers beyond 2**53 as decimal strings).
    args: Mapped[str] = mapped_column(Text)


class ProjectionVersion(Base):
    """How many times the indexer changed a projection table: bumped in the transaction that
    writes the table's rows (an applied batch or a reorg rollback), so a reader that sees the
    new rows sees the new version too. Processes that cache projection rows (device ingest
    caches `devices` and `pairings`) read the versions of the tables they cache before using
    the cache and drop it when one moved: the indexer needs to know nothing of them. The
    gateway's zone writes bump `privacy_zones` the same way (`workers.signals.zones.CHANGES`,
    read by the stream hubs)."""

    __tablename__ = "projection_versions"

    table_name: Mapped[str] = mapped_column(String(64), primary_key=True)
    version: Mapped[int] = mapped_column(BigInteger)
