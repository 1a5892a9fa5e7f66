"""The event indexer (DESIGN.md §4): deployment events → SQL projections, reorg-safe.

`sync()` is what the `indexer.sync` task runs: one idempotent pass from the cursor to the
confirmed head with the process's settings, chain and database.
"""

from __future__ import annotations

from workers.indexer.sync import Indexer, IndexerError, ReorgTooDeepError, SyncReport

__all__ = ["Indexer", "IndexerError", "ReorgTooDeepError", "SyncReport", "get_indexer", "sync"]

_indexers: dict[tuple[str, str, str], Indexer] = {}


def get_indexer() -> Indexer:
    """The process's indexer for the current settings (kept for its warm row cache)."""
    from workers.chain import get_chain  # noqa: PLC0415
    from workers.config import get_settings  # noqa: PLC0415
    from workers.db import get_engine  # noqa: PLC0415

    settings = get_settings()
    key = (settings.rpc_url, str(settings.deployment_file or ""), settings.database_url)
    if key not in _indexers:
        _indexers[key] = Indexer(get_chain(settings), get_engine(settings.database_url), settings)
    return _indexers[key]


def sync(max_blocks: int | None = None) -> SyncReport:
    """One pass of the indexer with the current settings."""
    return get_indexer().sync(max_blocks)
