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
    DATASET_DELIVERY_WINDOW,
    DATASET_TERM_SECONDS,
    DAY_SECONDS,
    DEFAULT_ADMIN_ROLE,
    DEFAULT_CREDIT_VALIDITY,
    DEFAULT_PROTOCOL_FEE_BPS,
    DEFAULT_ROOT_DELAY,
    DIMO,
    GOVERNOR_ROLE,
    GUARDIAN_ROLE,
    MARKET_ROLE,
    MAX_BPS,
    MAX_CREDIT_VALIDITY,
    MAX_PROTOCOL_FEE_BPS,
    MAX_ROOT_DELAY,
    MIN_CREDIT_VALIDITY,
    MIN_ROOT_DELAY,
    MINTER_ROLE,
    MONTH_SECONDS,
    NO_END,
    ROLE_IDS,
    SETTLER_ROLE,
    SLASHER_ROLE,
    UINT64_MAX,
    UINT256_MAX,
    VESTING_PRECISION,
    ZERO_ADDRESS,
)
from workers.protocol.enums import (
    KNOWN_USES,
    Kind,
    OperationState,
    ProposalState,
    Role,
    SlashStatus,
    SlashSubject,
    Tier,
    Use,
    uses_mask,
)

__all__ = [
    "DATASET_DELIVERY_WINDOW",
    "DATASET_TERM_SECONDS",
    "DAY_SECONDS",
    "DEFAULT_ADMIN_ROLE",
    "DEFAULT_CREDIT_VALIDITY",
    "DEFAULT_PROTOCOL_FEE_BPS",
    "DEFAULT_ROOT_DELAY",
    "DIMO",
    "GOVERNOR_ROLE",
    "GUARDIAN_ROLE",
    "KNOWN_USES",
    "MARKET_ROLE",
    "MAX_BPS",
    "MAX_CREDIT_VALIDITY",
    "MAX_PROTOCOL_FEE_BPS",
    "MAX_ROOT_DELAY",
    "MINTER_ROLE",
    "MIN_CREDIT_VALIDITY",
    "MIN_ROOT_DELAY",
    "MONTH_SECONDS",
    "NO_END",
    "ROLE_IDS",
    "SETTLER_ROLE",
    "SLASHER_ROLE",
    "UINT64_MAX",
    "UINT256_MAX",
    "VESTING_PRECISION",
    "ZERO_ADDRESS",
    "Kind",
    "OperationState",
    "ProposalState",
    "Role",
    "SlashStatus",
    "SlashSubject",
    "Tier",
    "Use",
    "uses_mask",
]
