"""`datasets.build`: computes one queued dataset job (idempotent: a finished job stays)."""

from __future__ import annotations

import logging

from workers.access.views import ChainViews
from workers.app import app
from workers.config import get_settings
from workers.datasets.build import build
from workers.db.session import session_scope

log = logging.getLogger(__name__)


@app.task(name="datasets.build")
def build_dataset(job_id: str) -> str:
    settings = get_settings()
    views = ChainViews.from_settings(settings)
    with session_scope(settings.database_url) as session:
        status = build(session, job_id, views.operator_active, settings.epoch_seconds)
    log.info("dataset job %s: %s", job_id, status)
    return status
