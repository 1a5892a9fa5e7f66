"""The one access rule (DESIGN.md §4): may this caller do this to this vehicle now?

Reads: `may_read` (per vehicle) and `may_use_order` (streams, datasets), over `Facts` —
answered from the indexer's projections by `IndexedFacts`; what an allowed read may carry in
time: `window_start`. Aggregates: `cohort_decision`.
Commands: `may_command`, which asks `VehicleId.hasPermissions` on the latest block.
Every endpoint and task decides through these functions and nothing else.
"""

from __future__ import annotations

from web3.exceptions import ContractLogicError

from workers.access.rule import (
    Decision,
    Entitlement,
    Facts,
    OrderFacts,
    ProductFacts,
    Purpose,
    cohort_decision,
    may_read,
    may_use_order,
    refuse,
    window_start,
)
from workers.chain.views import Chain
from workers.protocol import UINT256_MAX
from workers.protocol.permissions import DRIVE, LOCK, UNLOCK

__all__ = [
    "COMMAND_BITS",
    "Decision",
    "Entitlement",
    "Facts",
    "OrderFacts",
    "ProductFacts",
    "Purpose",
    "cohort_decision",
    "may_command",
    "may_read",
    "may_use_order",
    "window_start",
]

#: The bit each remote command needs (POST /v1/vehicles/{id}/commands/{command}).
COMMAND_BITS: dict[str, int] = {"lock": LOCK, "unlock": UNLOCK, "start": DRIVE}


def may_command(chain: Chain, vehicle_id: int, caller: str, command: str) -> Decision:
    """A command is allowed iff `VehicleId.hasPermissions(V, C, bit)` on the latest block."""
    bit = COMMAND_BITS.get(command)
    if bit is None:
        return refuse("bad_request", f"unknown command {command!r}; one of {sorted(COMMAND_BITS)}")
    if not 0 < vehicle_id <= UINT256_MAX:
        return refuse("no_permission", f"{caller} holds no key on vehicle {vehicle_id}")
    try:
        allowed = chain.has_permissions(vehicle_id, caller, bit, "latest")
    except ContractLogicError:  # no such vehicle (ownerOf reverts)
        allowed = False
    if allowed:
        return Decision(True)
    return refuse(
        "no_permission", f"{caller} lacks the {command} permission (bit {bit:#x}) on vehicle {vehicle_id}"
    )
