"""The contracts' numbers and identifiers the off-chain side needs: the market's month and
"no end", basis points and the default protocol fee, the AccessControl role ids, the DIMO
unit, and the EVM's own bounds (uint64, uint256, the zero address)."""

from __future__ import annotations

from eth_utils import keccak

#: The largest uint64 (`type(uint64).max`).
UINT64_MAX = 2**64 - 1
#: The largest uint256 (`type(uint256).max`): every id on chain is at most this.
UINT256_MAX = 2**256 - 1
#: The zero address, lower-case: "nobody" (mints, burns, no broker, no known owner).
ZERO_ADDRESS = "0x" + "00" * 20

#: One DIMO in base units (the token has 18 decimals).
DIMO = 10**18

#: Marketplace.MONTH: seconds in the month streams and bundles are sold by (30 days).
MONTH_SECONDS = 30 * 86_400
#: A key's `expiresAt` that never comes (IVehicleId.grant). No order is endless any more.
NO_END = UINT64_MAX
#: One day in seconds: the grid vesting ends are rounded up to (Marketplace DAY).
DAY_SECONDS = 86_400
#: DataProducts.MIN_CREDIT_VALIDITY / MAX_CREDIT_VALIDITY: how long Api credits may stay valid.
MIN_CREDIT_VALIDITY = DAY_SECONDS
MAX_CREDIT_VALIDITY = 730 * DAY_SECONDS
#: The credit validity `terms()` gives Api products unless told otherwise (off-chain default).
DEFAULT_CREDIT_VALIDITY = MONTH_SECONDS
#: Marketplace.DATASET_TERM: a dataset order ends this long after its purchase.
DATASET_TERM_SECONDS = 30 * DAY_SECONDS
#: Marketplace.DATASET_DELIVERY_WINDOW: undelivered after this long, its buyer may refund.
DATASET_DELIVERY_WINDOW = 7 * DAY_SECONDS
#: Marketplace PRECISION: member shares vest in units of 1e-18 wei (SPEC15 §3).
VESTING_PRECISION = 10**18
#: Marketplace MIN_ROOT_DELAY / MAX_ROOT_DELAY / the default: how long a root stays pending.
MIN_ROOT_DELAY = 3_600
MAX_ROOT_DELAY = 7 * DAY_SECONDS
DEFAULT_ROOT_DELAY = DAY_SECONDS

#: MarketMath.MAX_BPS: basis points in a whole (shares and the fee add up to this).
MAX_BPS = 10_000
#: DataProducts.DEFAULT_PROTOCOL_FEE_BPS: the protocol fee at deployment.
DEFAULT_PROTOCOL_FEE_BPS = 500
#: DataProducts.MAX_PROTOCOL_FEE_BPS: the highest protocol fee the DAO may set (20 %).
MAX_PROTOCOL_FEE_BPS = 2_000

#: OpenZeppelin AccessControl's admin role of every role.
DEFAULT_ADMIN_ROLE = bytes(32)
#: contracts/libraries/Roles.sol: the DAO.
GOVERNOR_ROLE = keccak(text="GOVERNOR_ROLE")
#: May mint vehicle NFTs without an oracle attestation.
MINTER_ROLE = keccak(text="MINTER_ROLE")
#: May slash stake (the DAO).
SLASHER_ROLE = keccak(text="SLASHER_ROLE")
#: May record buyers' usage on Staking (the Marketplace).
MARKET_ROLE = keccak(text="MARKET_ROLE")
#: May propose member roots and deliver datasets (the workers' hot wallet).
SETTLER_ROLE = keccak(text="SETTLER_ROLE")
#: May pause guarded entry points once, for at most 14 days, until the DAO re-arms it;
#: may revoke a pending member root (with the DAO).
GUARDIAN_ROLE = keccak(text="GUARDIAN_ROLE")
#: DimoTimelock (TimelockController): may schedule operations (the Governor).
PROPOSER_ROLE = keccak(text="PROPOSER_ROLE")
#: DimoTimelock: may cancel pending operations (the Governor).
CANCELLER_ROLE = keccak(text="CANCELLER_ROLE")
#: DimoTimelock: may execute ready operations (address(0): anyone).
EXECUTOR_ROLE = keccak(text="EXECUTOR_ROLE")
#: Every role id by the name the contracts expose it under.
ROLE_IDS = {
    "DEFAULT_ADMIN_ROLE": DEFAULT_ADMIN_ROLE,
    "GOVERNOR_ROLE": GOVERNOR_ROLE,
    "MINTER_ROLE": MINTER_ROLE,
    "SLASHER_ROLE": SLASHER_ROLE,
    "MARKET_ROLE": MARKET_ROLE,
    "SETTLER_ROLE": SETTLER_ROLE,
    "GUARDIAN_ROLE": GUARDIAN_ROLE,
    "PROPOSER_ROLE": PROPOSER_ROLE,
    "CANCELLER_ROLE": CANCELLER_ROLE,
    "EXECUTOR_ROLE": EXECUTOR_ROLE,
}
