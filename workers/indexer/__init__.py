"""The event indexer (DESIGN.md §4): deployment events → SQL projections, reorg-safe.

`Indexer.sync()` is what the `indexer.sync` task runs (on the process's runtime's indexer,
workers/runtime.py): one idempotent pass from the cursor to the confirmed head.
"""

from __future__ import annotations

from workers.indexer.sync import Indexer, IndexerError, ReorgTooDeepError, SyncReport

__all__ = ["Indexer", "IndexerError", "ReorgTooDeepError", "SyncReport"]
