"""Celery tasks of the indexer."""

from __future__ import annotations

import logging
from typing import Any

from workers.app import app

log = logging.getLogger(__name__)


@app.task(name="indexer.sync")
def sync_task(max_blocks: int | None = None) -> dict[str, Any]:
    """One idempotent pass from the cursor to the confirmed head; returns what it did."""
    report = app.runtime.indexer.sync(max_blocks)
    if report.events or report.rollbacks:
        log.info(
            "indexer.sync: blocks %d..%d, %d events, rollbacks %s",
            report.from_block,
            report.last_block,
            report.events,
            report.rollbacks,
        )
    return report.as_dict()
