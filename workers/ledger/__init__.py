"""The usage ledger: the hinge between serving members' data and paying them (DESIGN.md §4).

Serving counts: the gateway's metered calls, streams' member-days and datasets' rows each add
to the counter of (product, order, vehicle, period, owner) through `record_usage`. Paying
reads: settlement aggregates a closed period's counters per order (`served_in`). Members read
what they can claim under the accepted cumulative root (`member_claim`).

    period = floor(timestamp / EPOCH_SECONDS)
"""

from __future__ import annotations

from workers.ledger.claims import member_claim
from workers.ledger.usage import Served, UsageKind, period_of, periods_with_usage, record_usage, served_in

__all__ = [
    "Served",
    "UsageKind",
    "member_claim",
    "period_of",
    "periods_with_usage",
    "record_usage",
    "served_in",
]
