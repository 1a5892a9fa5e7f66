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
]
