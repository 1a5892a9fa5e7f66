"""Revenue settlement to members (DESIGN.md §4): each order's vested member share paid, period
by period, to the vehicles that served it (the share rule of `workers.ledger`, from its usage
counters); one cumulative Merkle root over everything owed, proposed and accepted on
chain through exactly-once transactions (`roots.py`).

    close_periods(product) → ended periods closed into the accounting (one DB transaction)
    build_root()           → leaves, proofs, takes and data hash stored (nothing sent)
    advance(root)          → proposeRoot sent and confirmed; acceptRoot once claimable
"""

from __future__ import annotations

from workers.ledger.shares import (
    PRECISION,
    OrderPeriod,
    PeriodShares,
    Vesting,
    period_release,
    released,
    released_scaled,
    split_period,
)
from workers.settlement.roots import ClosedView, NotYetError, RootView, Settlement, SettlementError

__all__ = [
    "PRECISION",
    "ClosedView",
    "NotYetError",
    "OrderPeriod",
    "PeriodShares",
    "RootView",
    "Settlement",
    "SettlementError",
    "Vesting",
    "period_release",
    "released",
    "released_scaled",
    "split_period",
]
