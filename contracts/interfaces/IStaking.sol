// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

/// @title IStaking
/// @notice Stake-based whitelisting of Data Union Operators, Data Brokers and consumers, with
///         unbonding, a lockup curve that follows consumption, and DAO slashing paid to the
///         impacted vehicle owners through a Merkle distribution. DESIGN.md §3.4.
/// @dev Everything named in DESIGN.md §3.4 is kept exactly; the rest (permit staking, the
///      claim window and its sweep, read-outs of the configuration) are backward-compatible
///      extensions.
interface IStaking {
    /// @notice The roles an account can be whitelisted for.
    enum Role {
        Operator,
        Broker,
        Consumer
    }

    // ------------------------------------------------------------------ events (DESIGN.md §3.4)

    event Staked(address indexed account, uint256 amount);
    event UnstakeRequested(address indexed account, uint256 amount, uint64 releaseAt);
    event Withdrawn(address indexed account, uint256 amount);
    event Whitelisted(address indexed account, Role indexed role, bool allowed);
    event CurveSet(Role indexed role, uint256 base, uint256 perSqrtUnit);
    event TierMultiplierSet(uint8 indexed tier, uint16 bps);
    event UsageSet(address indexed account, uint256 units, uint8 tier);
    event UnbondingPeriodSet(uint64 period);
    event Slashed(
        uint256 indexed slashId,
        address indexed account,
        uint256 amount,
        uint256 toImpacted,
        bytes32 impactRoot,
        string reason
    );
    event SlashClaimed(uint256 indexed slashId, uint256 indexed index, address indexed account, uint256 amount);

    // ------------------------------------------------------------------ events (extensions)

    /// @notice How slash `slashId` was taken from `account`'s stake, and until when its impacted
    ///         owners may claim (0 when nothing went to them).
    event SlashApplied(
        uint256 indexed slashId,
        address indexed account,
        uint256 fromActive,
        uint256 fromUnbonding,
        uint64 claimClosesAt
    );
    /// @notice The unclaimed rest of slash `slashId`'s impact pool went to the Treasury.
    event SlashSwept(uint256 indexed slashId, uint256 amount);
    /// @notice How long the impacted owners of future slashes may claim, in seconds.
    event ClaimWindowSet(uint64 window);

    // ------------------------------------------------------------------ errors

    /// @notice An address argument was the zero address.
    error ZeroAddress();
    /// @notice An amount of zero was given where a positive amount is required.
    error ZeroAmount();
    /// @notice The permit was refused and the allowance it should have set is short.
    error PermitRefused(address owner, uint256 allowance, uint256 amount);
    /// @notice `account` asked to unstake more than its active stake.
    error InsufficientActiveStake(address account, uint256 active, uint256 requested);
    /// @notice The unstake would leave `remaining` active stake, below `required` for `role`.
    error StakeBelowRequired(address account, Role role, uint256 remaining, uint256 required);
    /// @notice `account` has no unbonding stake to withdraw.
    error NothingUnbonding(address account);
    /// @notice `account`'s unbonding stake matures at `releaseAt`; it is `nowTime`.
    error UnbondingNotMatured(address account, uint64 releaseAt, uint256 nowTime);
    /// @notice The unbonding period is outside [min, max].
    error UnbondingPeriodOutOfRange(uint64 period, uint64 min, uint64 max);
    /// @notice The claim window is outside [min, max].
    error ClaimWindowOutOfRange(uint64 window, uint64 min, uint64 max);
    /// @notice A curve parameter exceeds `max` (keeps `requiredStake` free of overflow).
    error CurveParameterTooLarge(uint256 base, uint256 perSqrtUnit, uint256 max);
    /// @notice `tier` is not one of the sensitivity tiers 0..`count`-1.
    error UnknownTier(uint8 tier, uint8 count);
    /// @notice Tier multipliers must not decrease with the tier: `bps` lies outside [lower, upper].
    error TierMultiplierOutOfOrder(uint8 tier, uint16 bps, uint16 lower, uint16 upper);
    /// @notice `units` exceeds `max` (keeps `requiredStake` free of overflow).
    error UnitsTooLarge(uint256 units, uint256 max);
    /// @notice The impacted owners' share exceeds the slashed amount.
    error ImpactExceedsSlash(uint256 toImpacted, uint256 amount);
    /// @notice An impact share needs a root, and a root needs an impact share.
    error ImpactRootMismatch(uint256 toImpacted, bytes32 impactRoot);
    /// @notice The slash asks for more than `account` has: active + unbonding.
    error SlashExceedsStake(address account, uint256 amount, uint256 active, uint256 unbonding);
    /// @notice Slash `slashId` has no impact distribution (unknown id, or nothing went to owners).
    error NoImpactPool(uint256 slashId);
    /// @notice Slash `slashId`'s claim window closed at `closesAt`.
    error ClaimWindowClosed(uint256 slashId, uint64 closesAt);
    /// @notice Slash `slashId`'s claim window is still open until `closesAt`.
    error ClaimWindowOpen(uint256 slashId, uint64 closesAt);
    /// @notice Leaf `index` of slash `slashId` was already paid.
    error AlreadyClaimed(uint256 slashId, uint256 index);
    /// @notice The proof does not lead from the `(index, account, amount)` leaf to slash `slashId`'s root.
    error InvalidProof(uint256 slashId, uint256 index, address account, uint256 amount);
    /// @notice The leaf asks for more than slash `slashId`'s pool still holds.
    error ClaimExceedsPool(uint256 slashId, uint256 amount, uint256 remaining);
    /// @notice A leaf cannot pay `account` (the zero address, or Staking itself: its balance is the stakes).
    error InvalidClaimant(address account);
    /// @notice Slash `slashId`'s pool holds nothing to sweep.
    error NothingToSweep(uint256 slashId);

    // ------------------------------------------------------------------ staking

    /// @notice Locks `amount` DIMO of the caller (after `approve`).
    /// @param amount DIMO base units, taken from the caller
    function stake(uint256 amount) external;

    /// @notice Locks `amount` DIMO of the caller through the token's EIP-2612 permit, in one
    ///         transaction. A permit that was front-run (already used) is tolerated as long as the
    ///         allowance it set still covers `amount`.
    /// @param amount DIMO base units, taken from the caller
    /// @param deadline the permit's deadline
    /// @param v the permit signature's recovery id
    /// @param r the permit signature's r
    /// @param s the permit signature's s
    function stakeWithPermit(uint256 amount, uint256 deadline, uint8 v, bytes32 r, bytes32 s) external;

    /// @notice Starts unbonding `amount` of active stake; refused if it would leave less than
    ///         `requiredStake` for any role the caller is whitelisted in.
    /// @dev A new request adds to what is already unbonding and restarts the whole period.
    /// @param amount DIMO base units moved from active to unbonding
    function requestUnstake(uint256 amount) external;

    /// @notice Releases the caller's unbonding stake once `releaseAt` has passed
    ///         (`block.timestamp >= releaseAt`).
    function withdraw() external;

    /// @notice An account's active stake, unbonding stake and when the unbonding matures.
    /// @param account the staker
    /// @return active stake that counts toward `isActive` and can be slashed first
    /// @return unbonding stake on its way out, still slashable
    /// @return releaseAt when `withdraw` may release `unbonding`
    function stakeOf(address account) external view returns (uint256 active, uint256 unbonding, uint64 releaseAt);

    // ------------------------------------------------------------------ whitelist and curve

    /// @notice Adds or removes `account` from `role`'s whitelist. GOVERNOR.
    /// @param account the Operator, Broker or Consumer
    /// @param role the role
    /// @param allowed whether `account` is whitelisted for `role`
    function setWhitelisted(address account, Role role, bool allowed) external;

    /// @notice Whether `account` is whitelisted for `role`.
    /// @param account the account
    /// @param role the role
    /// @return whether the DAO whitelisted `account` for `role`
    function isWhitelisted(address account, Role role) external view returns (bool);

    /// @notice Sets `role`'s lockup curve. GOVERNOR.
    /// @param role the role
    /// @param base stake required with no usage (at most `type(uint128).max`)
    /// @param perSqrtUnit stake per square-rooted unit at a 1x tier (at most `type(uint128).max`)
    function setCurve(Role role, uint256 base, uint256 perSqrtUnit) external;

    /// @notice Sets the multiplier of sensitivity `tier` (0 telemetry … 3 commands). GOVERNOR.
    /// @dev Multipliers never decrease with the tier, so the curve is monotonic in the tier.
    /// @param tier 0..3
    /// @param bps the multiplier in basis points (10,000 = 1x)
    function setTierMultiplier(uint8 tier, uint16 bps) external;

    /// @notice Records `account`'s consumption: vehicle-subscriptions in force and the most
    ///         sensitive tier it reaches. MARKET_ROLE (the Marketplace).
    /// @param account the buyer
    /// @param units vehicle-subscriptions in force (below 2^64)
    /// @param tier 0 telemetry, 1 location, 2 live, 3 commands
    function setUsage(address account, uint256 units, uint8 tier) external;

    /// @notice base[role] + perSqrtUnit[role] × √units × tierMultiplierBps[tier] / 10,000.
    /// @param account the account whose usage counts
    /// @param role the role whose curve applies
    /// @return the active stake `account` needs to be active in `role`
    function requiredStake(address account, Role role) external view returns (uint256);

    /// @notice Whitelisted for `role` and active stake ≥ `requiredStake(account, role)`.
    /// @param account the account
    /// @param role the role
    /// @return whether `account` may act in `role` now
    function isActive(address account, Role role) external view returns (bool);

    /// @notice `role`'s lockup curve.
    /// @param role the role
    /// @return base stake required with no usage
    /// @return perSqrtUnit stake per square-rooted unit at a 1x tier
    function curve(Role role) external view returns (uint256 base, uint256 perSqrtUnit);

    /// @notice The multiplier of sensitivity `tier`, in basis points.
    /// @param tier 0..3
    /// @return the multiplier (10,000 = 1x)
    function tierMultiplierBps(uint8 tier) external view returns (uint16);

    /// @notice `account`'s consumption as the Marketplace last recorded it.
    /// @param account the buyer
    /// @return units vehicle-subscriptions in force
    /// @return tier the most sensitive tier reached
    function usageOf(address account) external view returns (uint256 units, uint8 tier);

    // ------------------------------------------------------------------ slashing

    /// @notice Slashes `amount` (active first, then unbonding): `toImpacted` to the owners in
    ///         `impactRoot`, the rest to the Treasury. SLASHER_ROLE.
    /// @dev Gas does not depend on how many owners the root holds.
    /// @param account the slashed staker
    /// @param amount total taken; refused when above active + unbonding
    /// @param toImpacted the part owed to impacted owners (≤ amount), claimable with `claimSlash`
    /// @param impactRoot StandardMerkleTree root over `(uint256 index, address account, uint256 amount)`
    /// @param reason a human-readable reason (e.g. a governance proposal link)
    /// @return slashId the new slash's id, counting from 1
    function slash(address account, uint256 amount, uint256 toImpacted, bytes32 impactRoot, string calldata reason)
        external
        returns (uint256 slashId);

    /// @notice Pays one `(index, account, amount)` leaf of a slash's impact distribution, once.
    ///         Anyone may submit it; the tokens go to `account`. Refused once the claim window closed.
    /// @param slashId the slash
    /// @param index the leaf's index (its bit in the claimed bitmap)
    /// @param account the impacted owner, who receives `amount`
    /// @param amount the leaf's amount
    /// @param proof the sibling hashes from the leaf up to the root (sorted-pair hashing)
    function claimSlash(uint256 slashId, uint256 index, address account, uint256 amount, bytes32[] calldata proof)
        external;

    /// @notice Sends what is unclaimed of slash `slashId`'s pool to the Treasury, once its claim
    ///         window has closed. Anyone.
    /// @param slashId the slash
    function sweepSlash(uint256 slashId) external;

    /// @notice A slash's impact distribution.
    /// @param slashId the slash
    /// @return root the Merkle root of its `(index, account, amount)` leaves (zero: no pool)
    /// @return remaining what the pool still holds
    /// @return closesAt when claims stop and the rest may be swept
    function slashPool(uint256 slashId) external view returns (bytes32 root, uint256 remaining, uint64 closesAt);

    /// @notice Whether leaf `index` of slash `slashId` was paid.
    /// @param slashId the slash
    /// @param index the leaf's index
    /// @return whether it was claimed
    function isSlashClaimed(uint256 slashId, uint256 index) external view returns (bool);

    /// @notice How many slashes there have been (the last slash id).
    /// @return the count
    function slashCount() external view returns (uint256);

    /// @notice When `account` was last slashed (0: never). The Marketplace lets buyers refund
    ///         orders of an operator slashed after they started.
    /// @param account the staker
    /// @return the timestamp of its last slash
    function lastSlashedAt(address account) external view returns (uint64);

    // ------------------------------------------------------------------ periods and wiring

    /// @notice How long unbonding lasts, in seconds.
    /// @return the period
    function unbondingPeriod() external view returns (uint64);

    /// @notice Sets the unbonding period. GOVERNOR.
    /// @param period seconds, within [1 day, 365 days]
    function setUnbondingPeriod(uint64 period) external;

    /// @notice How long impacted owners may claim after a slash, in seconds.
    /// @return the window
    function claimWindow() external view returns (uint64);

    /// @notice Sets the claim window of future slashes. GOVERNOR.
    /// @param window seconds, within [7 days, 3650 days]
    function setClaimWindow(uint64 window) external;

    /// @notice The staked token (DIMO).
    /// @return its address
    function token() external view returns (address);

    /// @notice Where the Treasury's share of slashes goes.
    /// @return its address
    function treasury() external view returns (address);
}
