// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

/// @title IStaking
/// @notice Stake-based whitelisting of Data Union Operators, Data Brokers and consumers, with
///         unbonding, a lockup curve that follows consumption, and DAO slashing paid to the
///         impacted vehicle owners through a Merkle distribution. DESIGN.md §3.4.
interface IStaking {
    /// @notice The roles an account can be whitelisted for.
    enum Role {
        Operator,
        Broker,
        Consumer
    }

    event Staked(address indexed account, uint256 amount);
    event UnstakeRequested(address indexed account, uint256 amount, uint64 releaseAt);
    event Withdrawn(address indexed account, uint256 amount);
    event Whitelisted(address indexed account, Role indexed role, bool allowed);
    event CurveSet(Role indexed role, uint256 base, uint256 perSqrtUnit);
    event TierMultiplierSet(uint8 indexed tier, uint16 bps);
    event UsageSet(address indexed account, uint256 units, uint8 tier);
    event UnbondingPeriodSet(uint64 period);
    event Slashed(
        uint256 indexed slashId, address indexed account, uint256 amount, uint256 toImpacted, bytes32 impactRoot, string reason
    );
    event SlashClaimed(uint256 indexed slashId, uint256 indexed index, address indexed account, uint256 amount);

    /// @notice Locks `amount` DIMO of the caller (after `approve`).
    function stake(uint256 amount) external;

    /// @notice Starts unbonding `amount` of active stake; refused if it would leave less than
    ///         `requiredStake` for any role the caller is whitelisted in.
    function requestUnstake(uint256 amount) external;

    /// @notice Releases the caller's unbonding stake once `releaseAt` has passed.
    function withdraw() external;

    /// @notice An account's active stake, unbonding stake and when the unbonding matures.
    function stakeOf(address account) external view returns (uint256 active, uint256 unbonding, uint64 releaseAt);

    /// @notice Adds or removes `account` from `role`'s whitelist. GOVERNOR.
    function setWhitelisted(address account, Role role, bool allowed) external;

    /// @notice Whether `account` is whitelisted for `role`.
    function isWhitelisted(address account, Role role) external view returns (bool);

    /// @notice Sets `role`'s lockup curve. GOVERNOR.
    function setCurve(Role role, uint256 base, uint256 perSqrtUnit) external;

    /// @notice Sets the multiplier of sensitivity `tier` (0 telemetry … 3 commands). GOVERNOR.
    function setTierMultiplier(uint8 tier, uint16 bps) external;

    /// @notice Records `account`'s consumption: vehicle-subscriptions in force and the most
    ///         sensitive tier it reaches. MARKET_ROLE (the Marketplace).
    function setUsage(address account, uint256 units, uint8 tier) external;

    /// @notice base[role] + perSqrtUnit[role] × √units × tierMultiplierBps[tier] / 10,000.
    function requiredStake(address account, Role role) external view returns (uint256);

    /// @notice Whitelisted for `role` and active stake ≥ `requiredStake(account, role)`.
    function isActive(address account, Role role) external view returns (bool);

    /// @notice Slashes `amount` (active first, then unbonding): `toImpacted` to the owners in
    ///         `impactRoot`, the rest to the Treasury. SLASHER_ROLE.
    function slash(address account, uint256 amount, uint256 toImpacted, bytes32 impactRoot, string calldata reason)
        external
        returns (uint256 slashId);

    /// @notice Pays one `(index, account, amount)` leaf of a slash's impact distribution, once.
    function claimSlash(uint256 slashId, uint256 index, address account, uint256 amount, bytes32[] calldata proof)
        external;

    /// @notice How long unbonding lasts, in seconds.
    function unbondingPeriod() external view returns (uint64);

    /// @notice Sets the unbonding period. GOVERNOR.
    function setUnbondingPeriod(uint64 period) external;
}
