"""Celery tasks of settlement: close an epoch, submit it, and the periodic sweep."""

from __future__ import annotations

import logging
from typing import Any

from workers.app import TransientError, app
from workers.settlement import NotYetError

log = logging.getLogger(__name__)


@app.task(name="settlement.close_epoch")
def close_epoch_task(product_id: int, epoch: int) -> dict[str, Any]:
    """Computes and stores the epoch (idempotent), then queues its submission."""
    try:
        view = app.runtime.settlement.close_epoch(product_id, epoch)
    except NotYetError as exc:
        raise TransientError(str(exc)) from exc
    if view.status in ("computed", "submitting"):
        submit_task.delay(product_id, epoch)
    return view.as_dict()


@app.task(name="settlement.submit")
def submit_task(product_id: int, epoch: int) -> dict[str, Any]:
    """Sends the epoch's settle transaction with its recorded nonce and confirms it."""
    view = app.runtime.settlement.submit(product_id, epoch)
    if view.status == "computed":  # the transaction was dropped: record a new one, later
        raise TransientError(f"settle of epoch {epoch} of product {product_id} must be sent again")
    return view.as_dict()


@app.task(name="settlement.sweep")
def sweep_task() -> dict[str, Any]:
    """Queues every ended epoch with usage to close, and every unfinished submission."""
    to_close, to_submit = app.runtime.settlement.pending_work()
    for product_id, epoch in to_close:
        close_epoch_task.delay(product_id, epoch)
    for product_id, epoch in to_submit:
        submit_task.delay(product_id, epoch)
    return {"close": to_close, "submit": to_submit}
