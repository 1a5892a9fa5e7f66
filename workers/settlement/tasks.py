"""Celery tasks of settlement: close a product's ended periods, move the cumulative root along,
and the periodic sweep that queues both."""

from __future__ import annotations

import logging
from typing import Any

from workers.app import TransientError, app
from workers.settlement import NotYetError

log = logging.getLogger(__name__)


@app.task(name="settlement.close")
def close_task(product_id: int) -> dict[str, Any]:
    """Closes the product's ended periods into the accounting (a batch, exactly once)."""
    return app.runtime.settlement.close_periods(product_id).as_dict()


@app.task(name="settlement.root")
def root_task() -> dict[str, Any] | None:
    """Advances the root in flight (propose, confirm, accept once claimable), or builds and
    proposes a new one when the accounting moved. Retried while the root is not claimable."""
    try:
        view = app.runtime.settlement.settle()
    except NotYetError as exc:
        raise TransientError(str(exc)) from exc
    return None if view is None else view.as_dict()


@app.task(name="settlement.sweep")
def sweep_task() -> dict[str, Any]:
    """Closes every product's ended periods, then queues the root step."""
    closed = [
        app.runtime.settlement.close_periods(p).as_dict() for p in app.runtime.settlement.products_to_close()
    ]
    root_task.delay()
    return {"closed": closed}
