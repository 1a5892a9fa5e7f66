"""Revenue settlement to members (DESIGN.md §4): epoch accounting from usage rows, Merkle
trees of members' shares, and exactly-once `Marketplace.settle` transactions.

    epoch = floor(timestamp / EPOCH_SECONDS)
    close_epoch(product, epoch) → shares, root and proofs stored (nothing sent)
    submit(product, epoch)      → settle sent with a recorded nonce, confirmed
    unclaimed_claims(session, address) → what the gateway serves to members
"""

from __future__ import annotations

from workers.settlement.claims import unclaimed_claims
from workers.settlement.epochs import EpochView, NotYetError, Settlement, SettlementError, epoch_of
from workers.settlement.shares import Contribution, Shares, compute_shares

__all__ = [
    "Contribution",
    "EpochView",
    "NotYetError",
    "Settlement",
    "SettlementError",
    "Shares",
    "compute_shares",
    "epoch_of",
    "unclaimed_claims",
]
