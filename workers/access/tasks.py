"""`access.sweep`: expires orders and credits (see workers.access.sweep)."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from workers.access.sweep import sweep
from workers.app import app
from workers.chain import TxSender, get_chain
from workers.config import get_settings


@app.task(name="access.sweep")
def access_sweep() -> dict[str, Any]:
    settings = get_settings()
    chain = get_chain(settings)
    sender = TxSender(chain, settings.settler_key.get_secret_value(), settings)
    return asdict(sweep(settings.database_url, chain, sender))
