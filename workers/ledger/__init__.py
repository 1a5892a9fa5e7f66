"""The usage ledger: the hinge between serving members' data and paying them (DESIGN.md §4).

Serving records: the gateway's metered calls, streams' member-days and datasets' rows each
count one contribution through `record_usage`, once (one idempotency key per contribution).
Paying takes: settlement finds the ended epochs with usage (`latest_untaken_epochs`) and takes
an epoch's contributions (`take_usage`). Members read what they can claim from settled epochs
(`unclaimed_claims`).

    epoch = floor(timestamp / EPOCH_SECONDS)
"""

from __future__ import annotations

from workers.ledger.claims import unclaimed_claims
from workers.ledger.usage import (
    Contribution,
    UsageKind,
    epoch_of,
    latest_untaken_epochs,
    record_usage,
    take_usage,
)

__all__ = [
    "Contribution",
    "UsageKind",
    "epoch_of",
    "latest_untaken_epochs",
    "record_usage",
    "take_usage",
    "unclaimed_claims",
]
