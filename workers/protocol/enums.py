"""The contracts' enums and enum-like numberings, by their Solidity order: product kinds
(IDataProducts.Kind), staking roles (IStaking.Role), slash subjects and statuses
(IStaking.SlashSubject, IStaking.SlashStatus), proposal and timelock operation states
(IGovernor.ProposalState, TimelockController.OperationState), permitted uses (the bits of a product's
`permittedUses`, DataProducts.KNOWN_USES) and lockup tiers (MarketMath.TIER_*)."""

from __future__ import annotations

from enum import IntEnum


class Kind(IntEnum):
    """IDataProducts.Kind: what a product sells (names as in Solidity, upper-cased)."""

    STREAM = 0
    API = 1
    DATASET = 2
    BUNDLE = 3


class Role(IntEnum):
    """IStaking.Role: what an account stakes and is whitelisted for."""

    OPERATOR = 0
    BROKER = 1
    CONSUMER = 2


class SlashSubject(IntEnum):
    """IStaking.SlashSubject: what a slash proposal names as the misbehaviour's object."""

    PRODUCT = 0
    ORDER = 1


class SlashStatus(IntEnum):
    """IStaking.SlashStatus: where a slash proposal stands."""

    NONE = 0
    PENDING = 1
    EXECUTED = 2
    CANCELLED = 3


class ProposalState(IntEnum):
    """IGovernor.ProposalState: where a DAO proposal stands (DimoGovernor.state)."""

    PENDING = 0
    ACTIVE = 1
    CANCELED = 2
    DEFEATED = 3
    SUCCEEDED = 4
    QUEUED = 5
    EXPIRED = 6
    EXECUTED = 7


class OperationState(IntEnum):
    """TimelockController.OperationState: a DimoTimelock operation's state."""

    UNSET = 0
    WAITING = 1
    READY = 2
    DONE = 3


class Use(IntEnum):
    """A buyer's declared use, as the bit index in a product's `permittedUses`."""

    INSURANCE = 0
    RESEARCH = 1
    FLEET_MANAGEMENT = 2
    MARKETING = 3
    RESALE = 4
    PUBLIC_GOOD = 5


def uses_mask(*uses: Use) -> int:
    """The `permittedUses` value that permits exactly `uses`."""
    mask = 0
    for use in uses:
        mask |= 1 << use
    return mask


#: DataProducts.KNOWN_USES: every use a product may permit.
KNOWN_USES = uses_mask(*Use)


class Tier(IntEnum):
    """Sensitivity tiers of the lockup curve, least to most sensitive (MarketMath.TIER_*):
    the highest class a product's required permissions reach."""

    TELEMETRY = 0
    LOCATION = 1
    LIVE = 2
    COMMANDS = 3
