"""`datasets.build`: computes one queued dataset job (idempotent: a finished job stays), then
delivers a Dataset order on chain after its first published result (workers/datasets/delivery.py)."""

from __future__ import annotations

import logging

from workers.app import TransientError, app
from workers.datasets.build import build
from workers.datasets.delivery import deliver_order
from workers.db.gateway import DatasetJob

log = logging.getLogger(__name__)


@app.task(name="datasets.build")
def build_dataset(job_id: str) -> str:
    runtime = app.runtime
    with runtime.database.session() as session:
        status = build(session, job_id, runtime.chain.is_active, runtime.settings.epoch_seconds)
        job = session.get(DatasetJob, job_id)
        order_id = None if job is None else int(job.order_id)
    log.info("dataset job %s: %s", job_id, status)
    if status == "done" and order_id is not None:
        deliver_dataset.delay(order_id)
    return status


@app.task(name="datasets.deliver")
def deliver_dataset(order_id: int) -> dict[str, object]:
    """Sends (or re-sends) `deliverDataset` for one order; safe to repeat. Retried (the same
    recorded transaction) while it is not mined."""
    runtime = app.runtime
    delivery = deliver_order(runtime.database, runtime.chain, runtime.settler, order_id)
    log.info("dataset order %d: %s %s", order_id, delivery.status, delivery.detail or "")
    if delivery.status == "pending":
        raise TransientError(f"deliverDataset({order_id}) {delivery.tx_hash} not mined yet")
    return {"order_id": order_id, "status": delivery.status, "tx_hash": delivery.tx_hash}
