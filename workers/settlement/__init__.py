"""Revenue settlement to members (DESIGN.md §4): an ended epoch's usage taken from the ledger
(`workers.ledger`), Merkle trees of members' shares, and exactly-once `Marketplace.settle`
transactions.

    close_epoch(product, epoch) → usage taken, shares, root and proofs stored (nothing sent)
    submit(product, epoch)      → settle sent with a recorded nonce, confirmed
"""

from __future__ import annotations

from workers.settlement.epochs import EpochView, NotYetError, Settlement, SettlementError
from workers.settlement.shares import Shares, compute_shares

__all__ = [
    "EpochView",
    "NotYetError",
    "Settlement",
    "SettlementError",
    "Shares",
    "compute_shares",
    "get_settlement",
]

_services: dict[tuple[str, str, str], Settlement] = {}


def get_settlement() -> Settlement:
    """The process's settlement service for the current settings."""
    from workers.chain import get_chain  # noqa: PLC0415
    from workers.config import get_settings  # noqa: PLC0415

    settings = get_settings()
    key = (settings.rpc_url, str(settings.deployment_file or ""), settings.database_url)
    if key not in _services:
        _services[key] = Settlement(get_chain(settings), settings=settings)
    return _services[key]
