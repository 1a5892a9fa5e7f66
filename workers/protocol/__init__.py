"""What the contracts define, in Python, once: the enums (product kinds, staking roles,
permitted uses, lockup tiers), the role identifiers and the market's constants (here), the
permission bits of a vehicle key (`workers.protocol.permissions`) and the terms a product is
created with (`workers.protocol.terms`).

The contracts in `contracts/` are the source of truth; `tests/workers/test_protocol.py` reads
the compiled build (`.build/__local__.json`: ABIs and sources) and fails when anything here
differs from them. Workers, scripts, benchmarks, tests and the console import from here and
restate nothing.
"""

from __future__ import annotations

from workers.protocol.constants import (
    DEFAULT_ADMIN_ROLE,
    DEFAULT_PROTOCOL_FEE_BPS,
    DIMO,
    GOVERNOR_ROLE,
    MARKET_ROLE,
    MAX_BPS,
    MAX_PROTOCOL_FEE_BPS,
    MINTER_ROLE,
    MONTH_SECONDS,
    NO_END,
    ROLE_IDS,
    SETTLER_ROLE,
    SLASHER_ROLE,
    UINT64_MAX,
    UINT256_MAX,
    ZERO_ADDRESS,
)
from workers.protocol.enums import KNOWN_USES, Kind, OperationState, ProposalState, Role, Tier, Use, uses_mask

__all__ = [
    "DEFAULT_ADMIN_ROLE",
    "DEFAULT_PROTOCOL_FEE_BPS",
    "DIMO",
    "GOVERNOR_ROLE",
    "KNOWN_USES",
    "MARKET_ROLE",
    "MAX_BPS",
    "MAX_PROTOCOL_FEE_BPS",
    "MINTER_ROLE",
    "MONTH_SECONDS",
    "NO_END",
    "ROLE_IDS",
    "SETTLER_ROLE",
    "SLASHER_ROLE",
    "UINT64_MAX",
    "UINT256_MAX",
    "ZERO_ADDRESS",
    "Kind",
    "OperationState",
    "ProposalState",
    "Role",
    "Tier",
    "Use",
    "uses_mask",
]
