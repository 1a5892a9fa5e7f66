"""`datasets.build`: computes one queued dataset job (idempotent: a finished job stays)."""

from __future__ import annotations

import logging

from workers.app import app
from workers.datasets.build import build

log = logging.getLogger(__name__)


@app.task(name="datasets.build")
def build_dataset(job_id: str) -> str:
    runtime = app.runtime
    with runtime.database.session() as session:
        status = build(session, job_id, runtime.chain.is_active, runtime.settings.epoch_seconds)
    log.info("dataset job %s: %s", job_id, status)
    return status
