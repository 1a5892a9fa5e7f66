"""`datasets.signal_storage`: the signal history's partitions, retention and roll-up
(workers.signals.storage), on the datasets queue (the data plane's batch work)."""

from __future__ import annotations

import logging
import time
from dataclasses import asdict
from typing import Any

from workers.app import app
from workers.signals.storage import maintain

log = logging.getLogger(__name__)


@app.task(name="datasets.signal_storage")
def signal_storage() -> dict[str, Any]:
    runtime = app.runtime
    with runtime.database.session() as session:
        done = maintain(session, runtime.settings, now_ms=int(time.time() * 1000))
    log.info("signal storage: %s", done)
    return asdict(done)
