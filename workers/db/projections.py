"""What the chain says now, as the indexer last confirmed it (DESIGN.md §3, §4).

Every table is written by the indexer's event handlers only; everything else reads. Rows
carry the chain's values exactly (`UInt` columns hold any uint256, addresses are lower-case).
"Live" rules stay with the reader because they depend on the time of the read: a key is live
while `generation == vehicles.generation`, `now < expires_at` and, when a key manager granted
it, `granter_epoch` is still that manager's epoch (`key_manager_epochs`); a membership while
`version == products.version` and `generation == vehicles.generation`.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Boolean, Index, Integer, SmallInteger, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from workers.db.base import Address, Base, Bytes32, UInt


class RoleMember(Base):
    """AccessControl roles held now, per contract (RoleGranted / RoleRevoked)."""

    __tablename__ = "role_members"

    contract: Mapped[str] = mapped_column(String(40), primary_key=True)
    role: Mapped[str] = mapped_column(Bytes32, primary_key=True)
    account: Mapped[str] = mapped_column(Address, primary_key=True)
    block_number: Mapped[int] = mapped_column(BigInteger)


class ProtocolParam(Base):
    """Single-valued protocol parameters set by events (unbonding period, protocol fee, …)."""

    __tablename__ = "protocol_params"

    contract: Mapped[str] = mapped_column(String(40), primary_key=True)
    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[int] = mapped_column(UInt)
    block_number: Mapped[int] = mapped_column(BigInteger)


class TokenBalance(Base):
    """ERC-20 balances of the deployment's tokens (Transfer), per token contract."""

    __tablename__ = "token_balances"

    token: Mapped[str] = mapped_column(String(40), primary_key=True)
    account: Mapped[str] = mapped_column(Address, primary_key=True)
    balance: Mapped[int] = mapped_column(UInt)
    block_number: Mapped[int] = mapped_column(BigInteger)


# --- identity ------------------------------------------------------------------------------


class Connection(Base):
    """OEM connections of VehicleId (ConnectionSet)."""

    __tablename__ = "connections"

    connection_id: Mapped[int] = mapped_column(UInt, primary_key=True)
    name: Mapped[str] = mapped_column(Text)
    oracle: Mapped[str] = mapped_column(Address)
    active: Mapped[bool] = mapped_column(Boolean)
    block_number: Mapped[int] = mapped_column(BigInteger)


class Vehicle(Base):
    """Vehicle NFTs: owner and generation (bumped by every mint, transfer and burn), and when
    the current generation began (the current owner's tenure: the block time of its Transfer)."""

    __tablename__ = "vehicles"

    vehicle_id: Mapped[int] = mapped_column(UInt, primary_key=True)
    #: None once burned.
    owner: Mapped[str | None] = mapped_column(Address, nullable=True, index=True)
    generation: Mapped[int] = mapped_column(UInt)
    #: Unix seconds; None when unknown (nothing of the vehicle is served then).
    tenure_started_at: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    connection_id: Mapped[int | None] = mapped_column(UInt, nullable=True)
    vin_hash: Mapped[str | None] = mapped_column(Bytes32, nullable=True)
    burned: Mapped[bool] = mapped_column(Boolean, default=False)
    minted_block: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    block_number: Mapped[int] = mapped_column(BigInteger)


class VehicleKey(Base):
    """Keys as granted (KeyGranted) for the generation they were made in; revoked keys go."""

    __tablename__ = "vehicle_keys"

    vehicle_id: Mapped[int] = mapped_column(UInt, primary_key=True)
    grantee: Mapped[str] = mapped_column(Address, primary_key=True)
    permissions: Mapped[int] = mapped_column(UInt)
    expires_at: Mapped[int] = mapped_column(UInt)
    terms_hash: Mapped[str] = mapped_column(Bytes32)
    generation: Mapped[int] = mapped_column(UInt)
    #: The key manager that granted it; None when the owner did (no manager's revocation voids it).
    granted_by: Mapped[str | None] = mapped_column(Address, nullable=True, default=None)
    #: `granted_by`'s epoch when it granted the key: live while `key_manager_epochs` agrees.
    granter_epoch: Mapped[int] = mapped_column(UInt, default=0)
    block_number: Mapped[int] = mapped_column(BigInteger)

    __table_args__ = (Index("ix_vehicle_keys_grantee", "grantee"),)


class KeyManagerEpoch(Base):
    """A key manager's epoch on a vehicle (ManagerKeysVoided): bumped each time it loses
    MANAGE_KEYS, voiding every key it granted before. No row: epoch 0."""

    __tablename__ = "key_manager_epochs"

    vehicle_id: Mapped[int] = mapped_column(UInt, primary_key=True)
    manager: Mapped[str] = mapped_column(Address, primary_key=True)
    epoch: Mapped[int] = mapped_column(UInt)
    block_number: Mapped[int] = mapped_column(BigInteger)


class VehicleUser(Base):
    """The ERC-4907 user of a vehicle (UpdateUser), for the generation it was set in."""

    __tablename__ = "vehicle_users"

    vehicle_id: Mapped[int] = mapped_column(UInt, primary_key=True)
    user: Mapped[str] = mapped_column(Address)
    expires: Mapped[int] = mapped_column(UInt)
    generation: Mapped[int] = mapped_column(UInt)
    block_number: Mapped[int] = mapped_column(BigInteger)


class Manufacturer(Base):
    """Device manufacturers allowed to mint (ManufacturerSet)."""

    __tablename__ = "manufacturers"

    address: Mapped[str] = mapped_column(Address, primary_key=True)
    allowed: Mapped[bool] = mapped_column(Boolean)
    block_number: Mapped[int] = mapped_column(BigInteger)


class Device(Base):
    """Aftermarket device NFTs and the vehicle each is paired with now."""

    __tablename__ = "devices"

    device_id: Mapped[int] = mapped_column(UInt, primary_key=True)
    owner: Mapped[str | None] = mapped_column(Address, nullable=True, index=True)
    manufacturer: Mapped[str | None] = mapped_column(Address, nullable=True)
    device_signer: Mapped[str | None] = mapped_column(Address, nullable=True)
    serial_hash: Mapped[str | None] = mapped_column(Bytes32, nullable=True)
    #: The vehicle of the device's last pairing (stale once either side's generation moved).
    vehicle_id: Mapped[int | None] = mapped_column(UInt, nullable=True)
    #: Bumped by every mint and transfer of the device, ending its pairing.
    generation: Mapped[int | None] = mapped_column(UInt, nullable=True)
    #: Revoked by its manufacturer (DeviceRevoked): no pairing, its signatures refused.
    revoked: Mapped[bool] = mapped_column(Boolean, default=False)
    block_number: Mapped[int] = mapped_column(BigInteger)


class Pairing(Base):
    """Vehicle ↔ device pairings (Paired / Unpaired) with both sides' generations when made: live
    while `generation == vehicles.generation` and `device_generation == devices.generation`."""

    __tablename__ = "pairings"

    vehicle_id: Mapped[int] = mapped_column(UInt, primary_key=True)
    device_id: Mapped[int] = mapped_column(UInt, unique=True)
    generation: Mapped[int | None] = mapped_column(UInt, nullable=True)
    device_generation: Mapped[int | None] = mapped_column(UInt, nullable=True)
    block_number: Mapped[int] = mapped_column(BigInteger)


# --- staking -------------------------------------------------------------------------------


class Stake(Base):
    """Staking.stakeOf: active stake, unbonding stake and its release time."""

    __tablename__ = "stakes"

    account: Mapped[str] = mapped_column(Address, primary_key=True)
    active: Mapped[int] = mapped_column(UInt)
    unbonding: Mapped[int] = mapped_column(UInt)
    release_at: Mapped[int] = mapped_column(UInt)
    block_number: Mapped[int] = mapped_column(BigInteger)


class Whitelist(Base):
    """Staking whitelist per role (0 Operator, 1 Broker, 2 Consumer)."""

    __tablename__ = "whitelist"

    account: Mapped[str] = mapped_column(Address, primary_key=True)
    role: Mapped[int] = mapped_column(SmallInteger, primary_key=True, autoincrement=False)
    allowed: Mapped[bool] = mapped_column(Boolean)
    block_number: Mapped[int] = mapped_column(BigInteger)


class StakeUsage(Base):
    """A buyer's consumption as the Marketplace last reported it (UsageSet)."""

    __tablename__ = "stake_usage"

    account: Mapped[str] = mapped_column(Address, primary_key=True)
    units: Mapped[int] = mapped_column(UInt)
    tier: Mapped[int] = mapped_column(SmallInteger)
    block_number: Mapped[int] = mapped_column(BigInteger)


class StakingCurve(Base):
    """The lockup curve per role (CurveSet)."""

    __tablename__ = "staking_curves"

    role: Mapped[int] = mapped_column(SmallInteger, primary_key=True, autoincrement=False)
    base: Mapped[int] = mapped_column(UInt)
    per_sqrt_unit: Mapped[int] = mapped_column(UInt)
    block_number: Mapped[int] = mapped_column(BigInteger)


class TierMultiplier(Base):
    """Lockup multiplier per sensitivity tier, in bps (TierMultiplierSet)."""

    __tablename__ = "tier_multipliers"

    tier: Mapped[int] = mapped_column(SmallInteger, primary_key=True, autoincrement=False)
    bps: Mapped[int] = mapped_column(Integer)
    block_number: Mapped[int] = mapped_column(BigInteger)


class Slash(Base):
    """Slashes (Slashed): who, how much, the impacted owners' root and the reason."""

    __tablename__ = "slashes"

    slash_id: Mapped[int] = mapped_column(UInt, primary_key=True)
    account: Mapped[str] = mapped_column(Address, index=True)
    amount: Mapped[int] = mapped_column(UInt)
    to_impacted: Mapped[int] = mapped_column(UInt)
    impact_root: Mapped[str] = mapped_column(Bytes32)
    reason: Mapped[str] = mapped_column(Text)
    #: How the amount was taken (SlashApplied): active stake first, then unbonding.
    from_active: Mapped[int | None] = mapped_column(UInt, nullable=True)
    from_unbonding: Mapped[int | None] = mapped_column(UInt, nullable=True)
    #: The impacted owners may claim until then (0: no impact pool).
    claim_closes_at: Mapped[int | None] = mapped_column(UInt, nullable=True)
    #: What is left in the impact pool; swept to the Treasury after the window (SlashSwept).
    remaining: Mapped[int | None] = mapped_column(UInt, nullable=True)
    swept: Mapped[bool | None] = mapped_column(Boolean, nullable=True)
    tx_hash: Mapped[str] = mapped_column(Bytes32)
    block_number: Mapped[int] = mapped_column(BigInteger)


class SlashProposal(Base):
    """Slash proposals (SlashProposed, Slashed, SlashCancelled): each freezes its account's stake
    from its block until executed, cancelled or `expires_at` (chain time) passes."""

    __tablename__ = "slash_proposals"

    slash_id: Mapped[int] = mapped_column(UInt, primary_key=True)
    account: Mapped[str] = mapped_column(Address, index=True)
    #: The most the slash may take (it takes what is there, up to this).
    amount: Mapped[int] = mapped_column(UInt)
    #: 0 a product, 1 an order (IStaking.SlashSubject), and its id.
    subject: Mapped[int] = mapped_column(SmallInteger)
    subject_id: Mapped[int] = mapped_column(UInt)
    reason_uri: Mapped[str] = mapped_column(Text)
    #: The end of the dispute window: the freeze lapses then unless executed or cancelled first.
    expires_at: Mapped[int] = mapped_column(UInt)
    #: 1 pending, 2 executed, 3 cancelled (IStaking.SlashStatus).
    status: Mapped[int] = mapped_column(SmallInteger)
    tx_hash: Mapped[str] = mapped_column(Bytes32)
    block_number: Mapped[int] = mapped_column(BigInteger)


class SlashClaim(Base):
    """Paid leaves of slash distributions (SlashClaimed)."""

    __tablename__ = "slash_claims"

    slash_id: Mapped[int] = mapped_column(UInt, primary_key=True)
    index: Mapped[int] = mapped_column(UInt, primary_key=True)
    account: Mapped[str] = mapped_column(Address, index=True)
    amount: Mapped[int] = mapped_column(UInt)
    block_number: Mapped[int] = mapped_column(BigInteger)


# --- data products -------------------------------------------------------------------------


class Product(Base):
    """Data products and bundles with their current terms (kind 0 Stream, 1 Api, 2 Dataset,
    3 Bundle). Terms columns are None until the terms are known to the indexer."""

    __tablename__ = "products"

    product_id: Mapped[int] = mapped_column(UInt, primary_key=True)
    operator: Mapped[str] = mapped_column(Address, index=True)
    kind: Mapped[int] = mapped_column(SmallInteger)
    version: Mapped[int] = mapped_column(UInt)
    active: Mapped[bool] = mapped_column(Boolean)
    price: Mapped[int | None] = mapped_column(UInt, nullable=True)
    members_bps: Mapped[int | None] = mapped_column(Integer, nullable=True)
    operator_bps: Mapped[int | None] = mapped_column(Integer, nullable=True)
    broker_bps: Mapped[int | None] = mapped_column(Integer, nullable=True)
    permitted_uses: Mapped[int | None] = mapped_column(UInt, nullable=True)
    required_permissions: Mapped[int | None] = mapped_column(UInt, nullable=True)
    refresh_seconds: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    min_cohort: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    terms_hash: Mapped[str | None] = mapped_column(Bytes32, nullable=True)
    terms_uri: Mapped[str | None] = mapped_column(Text, nullable=True)
    #: Api: how long bought credits stay valid (Terms.validitySeconds); 0 for other kinds.
    validity_seconds: Mapped[int | None] = mapped_column(UInt, nullable=True)
    created_block: Mapped[int] = mapped_column(BigInteger)
    block_number: Mapped[int] = mapped_column(BigInteger)


class ProductTerms(Base):
    """Every version of every product's terms (what each consent was given to)."""

    __tablename__ = "product_terms"

    product_id: Mapped[int] = mapped_column(UInt, primary_key=True)
    version: Mapped[int] = mapped_column(UInt, primary_key=True)
    kind: Mapped[int] = mapped_column(SmallInteger)
    price: Mapped[int | None] = mapped_column(UInt, nullable=True)
    members_bps: Mapped[int | None] = mapped_column(Integer, nullable=True)
    operator_bps: Mapped[int | None] = mapped_column(Integer, nullable=True)
    broker_bps: Mapped[int | None] = mapped_column(Integer, nullable=True)
    permitted_uses: Mapped[int | None] = mapped_column(UInt, nullable=True)
    required_permissions: Mapped[int | None] = mapped_column(UInt, nullable=True)
    refresh_seconds: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    min_cohort: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    terms_hash: Mapped[str | None] = mapped_column(Bytes32, nullable=True)
    terms_uri: Mapped[str | None] = mapped_column(Text, nullable=True)
    #: Api: how long bought credits stay valid (Terms.validitySeconds); 0 for other kinds.
    validity_seconds: Mapped[int | None] = mapped_column(UInt, nullable=True)
    block_number: Mapped[int] = mapped_column(BigInteger)


class BundleComponent(Base):
    """The products a bundle packages, in order, with monthly call quantities (Api)."""

    __tablename__ = "bundle_components"

    bundle_id: Mapped[int] = mapped_column(UInt, primary_key=True)
    position: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    component_id: Mapped[int] = mapped_column(UInt, index=True)
    monthly_quantity: Mapped[int | None] = mapped_column(UInt, nullable=True)
    block_number: Mapped[int] = mapped_column(BigInteger)


class Membership(Base):
    """Consents (Joined) for the product version and vehicle generation they were given in."""

    __tablename__ = "memberships"

    product_id: Mapped[int] = mapped_column(UInt, primary_key=True)
    vehicle_id: Mapped[int] = mapped_column(UInt, primary_key=True)
    owner: Mapped[str] = mapped_column(Address, index=True)
    version: Mapped[int] = mapped_column(UInt)
    generation: Mapped[int | None] = mapped_column(UInt, nullable=True)
    joined_at: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    block_number: Mapped[int] = mapped_column(BigInteger)

    __table_args__ = (Index("ix_memberships_vehicle", "vehicle_id"),)


class DemandSignal(Base):
    """Requests for data (DemandSignaled); `withdrawn` once its author withdrew it."""

    __tablename__ = "demand_signals"

    signal_id: Mapped[int] = mapped_column(UInt, primary_key=True)
    account: Mapped[str] = mapped_column(Address, index=True)
    spec_hash: Mapped[str] = mapped_column(Bytes32)
    uri: Mapped[str] = mapped_column(Text)
    budget: Mapped[int] = mapped_column(UInt)
    withdrawn: Mapped[bool] = mapped_column(Boolean, default=False)
    created_block: Mapped[int] = mapped_column(BigInteger)
    block_number: Mapped[int] = mapped_column(BigInteger)


# --- marketplace ---------------------------------------------------------------------------


class Order(Base):
    """Orders (OrderPlaced) with the buyer's declared use (a permittedUses bit index), the
    vesting of their member share (OrderVesting, SPEC15 §3) and their refund (Refunded).

    An order ends for the gateway at min(ends_at, refunded_at)."""

    __tablename__ = "orders"

    order_id: Mapped[int] = mapped_column(UInt, primary_key=True)
    product_id: Mapped[int] = mapped_column(UInt, index=True)
    buyer: Mapped[str] = mapped_column(Address, index=True)
    broker: Mapped[str] = mapped_column(Address)
    quantity: Mapped[int] = mapped_column(UInt)
    paid: Mapped[int] = mapped_column(UInt)
    #: The block timestamp of the purchase.
    starts_at: Mapped[int | None] = mapped_column(UInt, nullable=True)
    ends_at: Mapped[int] = mapped_column(UInt)
    use: Mapped[int] = mapped_column(SmallInteger)
    #: Subscriptions count in the buyer's usage until expired (OrderExpired).
    in_force: Mapped[bool | None] = mapped_column(Boolean, nullable=True)
    #: The dataset build asked for (DatasetOrdered).
    spec_hash: Mapped[str | None] = mapped_column(Bytes32, nullable=True)
    #: How the payment was divided (PaymentSplit).
    to_members: Mapped[int | None] = mapped_column(UInt, nullable=True)
    to_operator: Mapped[int | None] = mapped_column(UInt, nullable=True)
    to_broker: Mapped[int | None] = mapped_column(UInt, nullable=True)
    to_treasury: Mapped[int | None] = mapped_column(UInt, nullable=True)
    #: The terms version the order was bought under (OrderVesting's view, Terms at purchase).
    terms_version: Mapped[int | None] = mapped_column(UInt, nullable=True)
    #: The member share released linearly from vest_starts_at to vest_ends_at (OrderVesting);
    #: a dataset's vests all at once at delivery (both times 0 until then).
    member_share: Mapped[int | None] = mapped_column(UInt, nullable=True)
    vest_starts_at: Mapped[int | None] = mapped_column(UInt, nullable=True)
    vest_ends_at: Mapped[int | None] = mapped_column(UInt, nullable=True)
    #: Dataset orders: when the settler delivered it (DatasetDelivered) and the result's hash.
    delivered_at: Mapped[int | None] = mapped_column(UInt, nullable=True)
    result_hash: Mapped[str | None] = mapped_column(Bytes32, nullable=True)
    #: When the buyer took back the unvested remainder (Refunded), and how much.
    refunded_at: Mapped[int | None] = mapped_column(UInt, nullable=True)
    refunded_amount: Mapped[int | None] = mapped_column(UInt, nullable=True)
    tx_hash: Mapped[str] = mapped_column(Bytes32)
    block_number: Mapped[int] = mapped_column(BigInteger)


class Steward(Base):
    """Brokers the DAO marked as its stewards (StewardSet)."""

    __tablename__ = "stewards"

    broker: Mapped[str] = mapped_column(Address, primary_key=True)
    steward: Mapped[bool] = mapped_column(Boolean)
    block_number: Mapped[int] = mapped_column(BigInteger)


class Earnings(Base):
    """Marketplace.claimable: operators' and brokers' shares not yet withdrawn."""

    __tablename__ = "earnings"

    account: Mapped[str] = mapped_column(Address, primary_key=True)
    claimable: Mapped[int] = mapped_column(UInt)
    block_number: Mapped[int] = mapped_column(BigInteger)


class MarketRoot(Base):
    """Cumulative member roots proposed on chain (RootProposed), pending until accepted
    (RootAccepted) or revoked (RootRevoked); a newer proposal replaces a pending one. The last
    `accepted` root is THE root members claim against (SPEC15 §4)."""

    __tablename__ = "market_roots"

    root: Mapped[str] = mapped_column(Bytes32, primary_key=True)
    #: `pending` | `accepted` | `revoked` | `replaced` (see ROOT_STATUSES in the indexer).
    status: Mapped[str] = mapped_column(String(16), index=True)
    claimable_at: Mapped[int] = mapped_column(UInt)
    #: Hash of the off-chain file with every leaf (for anyone to rebuild the tree).
    data_hash: Mapped[str] = mapped_column(Bytes32)
    #: JSON list of the product ids the root takes from, ascending.
    product_ids: Mapped[str] = mapped_column(Text)
    #: JSON list of decimal strings: what all roots up to this one take from each product.
    cumulative_taken: Mapped[str] = mapped_column(Text)
    #: Marketplace.totalTaken once accepted.
    total_taken: Mapped[int | None] = mapped_column(UInt, nullable=True)
    tx_hash: Mapped[str] = mapped_column(Bytes32)
    block_number: Mapped[int] = mapped_column(BigInteger)


class ProductTaken(Base):
    """Marketplace.takenMemberAmount per product: what accepted roots take from its vested
    member pool in total (RootAccepted with the root's arrays)."""

    __tablename__ = "product_taken"

    product_id: Mapped[int] = mapped_column(UInt, primary_key=True)
    taken: Mapped[int] = mapped_column(UInt)
    block_number: Mapped[int] = mapped_column(BigInteger)


class MemberClaim(Base):
    """Marketplace.claimed per account: the cumulative amount paid to it (Claimed)."""

    __tablename__ = "member_claims"

    account: Mapped[str] = mapped_column(Address, primary_key=True)
    claimed: Mapped[int] = mapped_column(UInt)
    block_number: Mapped[int] = mapped_column(BigInteger)


class Claim(Base):
    """Members' claims paid on chain (Claimed), one row per event."""

    __tablename__ = "claims"

    block_number: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    log_index: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    account: Mapped[str] = mapped_column(Address, index=True)
    #: The leaf's cumulative amount the claim proved.
    cumulative: Mapped[int] = mapped_column(UInt)
    #: What it paid: cumulative - claimed before.
    amount: Mapped[int] = mapped_column(UInt)
    tx_hash: Mapped[str] = mapped_column(Bytes32)
