"""The index's health: how far the indexed head is behind the chain head, and whether indexing
halted. The indexer writes one row at the end of every sync (`report`); the gateway reads it
(`read`) and refuses to serve from a stale index (`assess`, enforced by
`workers.gateway.deps.require_fresh_index`).

The index is stale when any of these holds:
- the indexer halted (a reorg deeper than its window, a node it cannot read logs from, …);
- the indexed block is more than INDEX_MAX_BLOCKS_BEHIND blocks behind the chain head the
  indexer last read, or its timestamp more than INDEX_MAX_SECONDS_BEHIND seconds behind the
  head's;
- the row is older than INDEX_MAX_SECONDS_BEHIND (the indexer stopped ticking), or missing.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, delete, insert, select
from sqlalchemy.orm import Session

from workers.config import Settings
from workers.db.indexing import IndexerHealth


@dataclass(frozen=True)
class Health:
    """The gateway's reading of the index: fresh or not, why, and the numbers behind it."""

    fresh: bool
    detail: str
    chain_head: int | None = None
    indexed_block: int | None = None
    blocks_behind: int | None = None
    seconds_behind: int | None = None
    report_age: float | None = None
    halted: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


def report(
    conn: Connection,
    name: str,
    *,
    chain_head: int,
    chain_head_timestamp: int,
    indexed_block: int,
    indexed_timestamp: int,
    halted: str | None,
    now: float | None = None,
) -> None:
    """Replaces the indexer's health row (in the caller's transaction)."""
    table = IndexerHealth.__table__
    conn.execute(delete(table).where(table.c.name == name))
    conn.execute(
        insert(table).values(
            name=name,
            chain_head=chain_head,
            chain_head_timestamp=chain_head_timestamp,
            indexed_block=indexed_block,
            indexed_timestamp=indexed_timestamp,
            checked_at=time.time() if now is None else now,
            halted=halted,
        )
    )


def read(session: Session) -> IndexerHealth | None:
    """The health row of the indexer (the one with the highest indexed block, as
    `workers.access.facts.indexed_head` takes the highest cursor)."""
    return session.scalars(
        select(IndexerHealth).order_by(IndexerHealth.indexed_block.desc()).limit(1)
    ).first()


def assess(row: IndexerHealth | None, settings: Settings, now: float | None = None) -> Health:
    """Whether the index may serve reads, by the settings' limits."""
    if row is None:
        return Health(False, "the indexer has not reported its health yet")
    now = time.time() if now is None else now
    blocks = int(row.chain_head) - int(row.indexed_block)
    seconds = int(row.chain_head_timestamp) - int(row.indexed_timestamp)
    age = now - float(row.checked_at)
    numbers = {
        "chain_head": int(row.chain_head),
        "indexed_block": int(row.indexed_block),
        "blocks_behind": blocks,
        "seconds_behind": seconds,
        "report_age": round(age, 3),
        "halted": row.halted,
    }
    if row.halted:
        return Health(False, f"indexing halted: {row.halted}", **numbers)
    if blocks > settings.index_max_blocks_behind:
        return Health(
            False,
            f"the index is {blocks} blocks behind the chain head (at most "
            f"{settings.index_max_blocks_behind})",
            **numbers,
        )
    if seconds > settings.index_max_seconds_behind:
        return Health(
            False,
            f"the indexed block is {seconds}s older than the chain head (at most "
            f"{settings.index_max_seconds_behind:g}s)",
            **numbers,
        )
    if age > settings.index_max_seconds_behind:
        return Health(
            False,
            f"the indexer last reported {age:.0f}s ago (at most {settings.index_max_seconds_behind:g}s)",
            **numbers,
        )
    return Health(True, "the index follows the chain", **numbers)
