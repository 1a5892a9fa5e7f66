"""`access.sweep`: expires orders and credits (see workers.access.sweep)."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from workers.access.sweep import sweep
from workers.app import app


@app.task(name="access.sweep")
def access_sweep() -> dict[str, Any]:
    runtime = app.runtime
    return asdict(sweep(runtime.database, runtime.chain, runtime.settler))
