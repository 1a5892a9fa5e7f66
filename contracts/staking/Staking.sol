// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {IERC20Permit} from "@openzeppelin/contracts/token/ERC20/extensions/IERC20Permit.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {ReentrancyGuardTransient} from "@openzeppelin/contracts/utils/ReentrancyGuardTransient.sol";
import {SafeCast} from "@openzeppelin/contracts/utils/math/SafeCast.sol";
import {IVotes} from "@openzeppelin/contracts/governance/utils/IVotes.sol";
import {Votes} from "@openzeppelin/contracts/governance/utils/Votes.sol";
import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";
import {IStaking} from "../interfaces/IStaking.sol";
import {ClaimBitmap} from "../libraries/ClaimBitmap.sol";
import {LockupCurve} from "../libraries/LockupCurve.sol";
import {PayoutProof} from "../libraries/PayoutProof.sol";
import {Roles} from "../libraries/Roles.sol";
import {DaoAccessControl} from "../governance/DaoAccessControl.sol";

/// @title Staking
/// @notice Operators, brokers and consumers lock DIMO to be active in their whitelisted roles;
///         the stake a buyer needs follows its consumption along a square-root curve; the DAO
///         slashes misbehaviour, paying the impacted vehicle owners through a Merkle
///         distribution and the Treasury the rest. DESIGN.md §3.4; documented in IStaking.
/// @dev Conservation, to the wei: the token balance of this contract equals the sum of every
///      account's active and unbonding stake plus the `remaining` of every slash pool.
///      Staked votes (OpenZeppelin `Votes`): an account's active and unbonding stake are its
///      voting units until withdrawn or slashed, counted for its delegate here (the Governor
///      adds them to the token's votes). A first stake delegates to the staker's delegate on
///      the token, so delegation survives staking; `delegate` here moves the staked votes only.
contract Staking is IStaking, DaoAccessControl, Votes, ReentrancyGuardTransient {
    using SafeERC20 for IERC20;
    using ClaimBitmap for ClaimBitmap.Bitmap;

    /// @notice The DAO: whitelists, curve, tiers, periods.
    bytes32 public constant GOVERNOR_ROLE = Roles.GOVERNOR_ROLE;
    /// @notice May slash stake (the DAO).
    bytes32 public constant SLASHER_ROLE = Roles.SLASHER_ROLE;
    /// @notice May record buyers' usage (the Marketplace).
    bytes32 public constant MARKET_ROLE = Roles.MARKET_ROLE;

    /// @notice Unbonding period at deployment.
    uint64 public constant DEFAULT_UNBONDING_PERIOD = 7 days;
    /// @notice Shortest unbonding period governance may set: a slash must have time to land.
    uint64 public constant MIN_UNBONDING_PERIOD = 1 days;
    /// @notice Longest unbonding period governance may set.
    uint64 public constant MAX_UNBONDING_PERIOD = 365 days;
    /// @notice Claim window of slash pools at deployment.
    uint64 public constant DEFAULT_CLAIM_WINDOW = 90 days;
    /// @notice Shortest claim window governance may set.
    uint64 public constant MIN_CLAIM_WINDOW = 7 days;
    /// @notice Longest claim window governance may set.
    uint64 public constant MAX_CLAIM_WINDOW = 3650 days;

    /// @notice Sensitivity tiers: 0 telemetry, 1 location, 2 live, 3 commands.
    uint8 public constant TIER_COUNT = 4;
    /// @notice Default multiplier of tier 0, telemetry: 1x.
    uint16 public constant DEFAULT_TIER0_BPS = 10_000;
    /// @notice Default multiplier of tier 1, location: 1.5x.
    uint16 public constant DEFAULT_TIER1_BPS = 15_000;
    /// @notice Default multiplier of tier 2, live stream: 2x.
    uint16 public constant DEFAULT_TIER2_BPS = 20_000;
    /// @notice Default multiplier of tier 3, commands: 3x.
    uint16 public constant DEFAULT_TIER3_BPS = 30_000;
    /// @notice Upper bound of `base` and `perSqrtUnit` (see LockupCurve: no overflow).
    uint256 public constant MAX_CURVE_PARAMETER = type(uint128).max;
    /// @notice Upper bound of recorded units (see LockupCurve: no overflow).
    uint256 public constant MAX_UNITS = type(uint64).max;

    uint8 private constant ROLE_COUNT = uint8(type(Role).max) + 1;

    struct StakeInfo {
        uint256 active;
        uint256 unbonding;
        uint64 releaseAt;
    }

    struct Curve {
        uint128 base;
        uint128 perSqrtUnit;
    }

    struct Usage {
        uint64 units;
        uint8 tier;
    }

    /// @dev What a slash's impact distribution still pays and when its claims close, in one
    ///      slot, stored under `_fundsKey(root, slashId)`: a claim finds it from the root its
    ///      proof leads to, so the proof check and the cap read one storage word.
    struct SlashFunds {
        uint192 remaining;
        uint64 closesAt;
    }

    /// @inheritdoc IStaking
    address public immutable override token;
    /// @inheritdoc IStaking
    address public immutable override treasury;

    /// @inheritdoc IStaking
    uint64 public override unbondingPeriod;
    /// @inheritdoc IStaking
    uint64 public override claimWindow;
    /// @inheritdoc IStaking
    uint256 public override slashCount;

    uint16[TIER_COUNT] private _tierMultiplierBps;
    mapping(address account => StakeInfo) private _stakes;
    mapping(address account => uint8 roleBits) private _roles;
    mapping(Role role => Curve) private _curves;
    mapping(address account => Usage) private _usage;
    mapping(uint256 slashId => bytes32 root) private _impactRoots;
    mapping(bytes32 fundsKey => SlashFunds) private _funds;
    mapping(uint256 slashId => ClaimBitmap.Bitmap) private _claimedLeaves;

    /// @param token_ the staked ERC-20 (DIMO; EIP-2612 for `stakeWithPermit`)
    /// @param treasury_ receives the Treasury's share of slashes and swept pools
    /// @param governor receives DEFAULT_ADMIN_ROLE and GOVERNOR_ROLE (the DAO's timelock in production)
    constructor(address token_, address treasury_, address governor)
        DaoAccessControl(governor)
        EIP712("DIMO Staking", "1")
    {
        if (token_ == address(0) || treasury_ == address(0) || governor == address(0)) revert ZeroAddress();
        token = token_;
        treasury = treasury_;
        _setUnbondingPeriod(DEFAULT_UNBONDING_PERIOD);
        _setClaimWindow(DEFAULT_CLAIM_WINDOW);
        uint16[TIER_COUNT] memory defaults =
            [DEFAULT_TIER0_BPS, DEFAULT_TIER1_BPS, DEFAULT_TIER2_BPS, DEFAULT_TIER3_BPS];
        for (uint8 tier; tier < TIER_COUNT; ++tier) {
            _tierMultiplierBps[tier] = defaults[tier];
            emit TierMultiplierSet(tier, defaults[tier]);
        }
    }

    // ------------------------------------------------------------------ staking

    /// @inheritdoc IStaking
    function stake(uint256 amount) external override nonReentrant {
        _stake(amount);
    }

    /// @inheritdoc IStaking
    function stakeWithPermit(uint256 amount, uint256 deadline, uint8 v, bytes32 r, bytes32 s)
        external
        override
        nonReentrant
    {
        try IERC20Permit(token).permit(msg.sender, address(this), amount, deadline, v, r, s) {}
        catch {
            // Someone may have submitted the same permit first; what matters is the allowance.
            uint256 allowance = IERC20(token).allowance(msg.sender, address(this));
            if (allowance < amount) revert PermitRefused(msg.sender, allowance, amount);
        }
        _stake(amount);
    }

    /// @inheritdoc IStaking
    function requestUnstake(uint256 amount) external override {
        if (amount == 0) revert ZeroAmount();
        StakeInfo storage info = _stakes[msg.sender];
        uint256 active = info.active;
        if (amount > active) revert InsufficientActiveStake(msg.sender, active, amount);
        uint256 remaining = active - amount;
        _requireCovers(msg.sender, remaining);

        uint64 releaseAt = uint64(block.timestamp) + unbondingPeriod;
        info.active = remaining;
        info.unbonding += amount;
        info.releaseAt = releaseAt;
        emit UnstakeRequested(msg.sender, amount, releaseAt);
    }

    /// @inheritdoc IStaking
    function withdraw() external override nonReentrant {
        StakeInfo storage info = _stakes[msg.sender];
        uint256 amount = info.unbonding;
        if (amount == 0) revert NothingUnbonding(msg.sender);
        uint64 releaseAt = info.releaseAt;
        if (block.timestamp < releaseAt) revert UnbondingNotMatured(msg.sender, releaseAt, block.timestamp);

        info.unbonding = 0;
        info.releaseAt = 0;
        _transferVotingUnits(msg.sender, address(0), amount);
        emit Withdrawn(msg.sender, amount);
        IERC20(token).safeTransfer(msg.sender, amount);
    }

    /// @inheritdoc IStaking
    function stakeOf(address account)
        external
        view
        override
        returns (uint256 active, uint256 unbonding, uint64 releaseAt)
    {
        StakeInfo storage info = _stakes[account];
        return (info.active, info.unbonding, info.releaseAt);
    }

    // ------------------------------------------------------------------ whitelist and curve

    /// @inheritdoc IStaking
    function setWhitelisted(address account, Role role, bool allowed) external override onlyRole(GOVERNOR_ROLE) {
        if (account == address(0)) revert ZeroAddress();
        uint8 bit = _roleBit(role);
        _roles[account] = allowed ? _roles[account] | bit : _roles[account] & ~bit;
        emit Whitelisted(account, role, allowed);
    }

    /// @inheritdoc IStaking
    function isWhitelisted(address account, Role role) public view override returns (bool) {
        return _roles[account] & _roleBit(role) != 0;
    }

    /// @inheritdoc IStaking
    function setCurve(Role role, uint256 base, uint256 perSqrtUnit) external override onlyRole(GOVERNOR_ROLE) {
        if (base > MAX_CURVE_PARAMETER || perSqrtUnit > MAX_CURVE_PARAMETER) {
            revert CurveParameterTooLarge(base, perSqrtUnit, MAX_CURVE_PARAMETER);
        }
        _curves[role] = Curve(uint128(base), uint128(perSqrtUnit));
        emit CurveSet(role, base, perSqrtUnit);
    }

    /// @inheritdoc IStaking
    function setTierMultiplier(uint8 tier, uint16 bps) external override onlyRole(GOVERNOR_ROLE) {
        if (tier >= TIER_COUNT) revert UnknownTier(tier, TIER_COUNT);
        uint16 lower = tier == 0 ? 0 : _tierMultiplierBps[tier - 1];
        uint16 upper = tier == TIER_COUNT - 1 ? type(uint16).max : _tierMultiplierBps[tier + 1];
        if (bps < lower || bps > upper) revert TierMultiplierOutOfOrder(tier, bps, lower, upper);
        _tierMultiplierBps[tier] = bps;
        emit TierMultiplierSet(tier, bps);
    }

    /// @inheritdoc IStaking
    function setUsage(address account, uint256 units, uint8 tier) external override onlyRole(MARKET_ROLE) {
        if (account == address(0)) revert ZeroAddress();
        if (units > MAX_UNITS) revert UnitsTooLarge(units, MAX_UNITS);
        if (tier >= TIER_COUNT) revert UnknownTier(tier, TIER_COUNT);
        _usage[account] = Usage(uint64(units), tier);
        emit UsageSet(account, units, tier);
    }

    /// @inheritdoc IStaking
    function requiredStake(address account, Role role) public view override returns (uint256) {
        Usage memory usage = _usage[account];
        Curve memory c = _curves[role];
        return LockupCurve.requiredStake(c.base, c.perSqrtUnit, usage.units, _tierMultiplierBps[usage.tier]);
    }

    /// @inheritdoc IStaking
    function isActive(address account, Role role) external view override returns (bool) {
        return isWhitelisted(account, role) && _stakes[account].active >= requiredStake(account, role);
    }

    /// @inheritdoc IStaking
    function curve(Role role) external view override returns (uint256 base, uint256 perSqrtUnit) {
        Curve memory c = _curves[role];
        return (c.base, c.perSqrtUnit);
    }

    /// @inheritdoc IStaking
    function tierMultiplierBps(uint8 tier) external view override returns (uint16) {
        if (tier >= TIER_COUNT) revert UnknownTier(tier, TIER_COUNT);
        return _tierMultiplierBps[tier];
    }

    /// @inheritdoc IStaking
    function usageOf(address account) external view override returns (uint256 units, uint8 tier) {
        Usage memory usage = _usage[account];
        return (usage.units, usage.tier);
    }

    // ------------------------------------------------------------------ slashing

    /// @inheritdoc IStaking
    function slash(address account, uint256 amount, uint256 toImpacted, bytes32 impactRoot, string calldata reason)
        external
        override
        onlyRole(SLASHER_ROLE)
        nonReentrant
        returns (uint256 slashId)
    {
        if (amount == 0) revert ZeroAmount();
        if (toImpacted > amount) revert ImpactExceedsSlash(toImpacted, amount);
        if ((toImpacted == 0) != (impactRoot == bytes32(0))) revert ImpactRootMismatch(toImpacted, impactRoot);
        StakeInfo storage info = _stakes[account];
        uint256 active = info.active;
        uint256 unbonding = info.unbonding;
        if (amount > active + unbonding) revert SlashExceedsStake(account, amount, active, unbonding);

        // Active stake first, then unbonding: requesting an unstake never escapes a slash.
        uint256 fromActive = amount < active ? amount : active;
        uint256 fromUnbonding = amount - fromActive;
        info.active = active - fromActive;
        if (fromUnbonding != 0) info.unbonding = unbonding - fromUnbonding;
        _transferVotingUnits(account, address(0), amount);

        slashId = ++slashCount;
        uint64 closesAt;
        if (toImpacted != 0) {
            closesAt = uint64(block.timestamp) + claimWindow;
            _impactRoots[slashId] = impactRoot;
            _funds[_fundsKey(impactRoot, slashId)] = SlashFunds(SafeCast.toUint192(toImpacted), closesAt);
        }
        emit SlashApplied(slashId, account, fromActive, fromUnbonding, closesAt);
        emit Slashed(slashId, account, amount, toImpacted, impactRoot, reason);

        uint256 toTreasury = amount - toImpacted;
        if (toTreasury != 0) IERC20(token).safeTransfer(treasury, toTreasury);
    }

    /// @inheritdoc IStaking
    function claimSlash(uint256 slashId, uint256 index, address account, uint256 amount, bytes32[] calldata proof)
        external
        override
        nonReentrant
    {
        bytes32 root = PayoutProof.processProof(proof, PayoutProof.leaf(index, account, amount));
        SlashFunds storage funds = _funds[_fundsKey(root, slashId)];
        uint64 closesAt = funds.closesAt;
        // No funds under this root: the proof does not lead to the slash's root (or there is
        // none). Refuse with the reason the checks below would have given a correct root.
        if (closesAt == 0) _refuseClaim(slashId, index, account, amount);
        if (block.timestamp >= closesAt) revert ClaimWindowClosed(slashId, closesAt);
        if (!_claimedLeaves[slashId].setClaimed(index)) revert AlreadyClaimed(slashId, index);
        if (amount == 0) revert ZeroAmount();
        if (account == address(0) || account == address(this)) revert InvalidClaimant(account);
        // The root may promise more than the pool: it never pays out more than toImpacted.
        uint256 remaining = funds.remaining;
        if (amount > remaining) revert ClaimExceedsPool(slashId, amount, remaining);

        funds.remaining = uint192(remaining - amount);
        emit SlashClaimed(slashId, index, account, amount);
        IERC20(token).safeTransfer(account, amount);
    }

    /// @inheritdoc IStaking
    function sweepSlash(uint256 slashId) external override nonReentrant {
        SlashFunds storage funds = _openFunds(slashId);
        uint64 closesAt = funds.closesAt;
        if (block.timestamp < closesAt) revert ClaimWindowOpen(slashId, closesAt);
        uint256 amount = funds.remaining;
        if (amount == 0) revert NothingToSweep(slashId);

        funds.remaining = 0;
        emit SlashSwept(slashId, amount);
        IERC20(token).safeTransfer(treasury, amount);
    }

    /// @inheritdoc IStaking
    function slashPool(uint256 slashId)
        external
        view
        override
        returns (bytes32 root, uint256 remaining, uint64 closesAt)
    {
        root = _impactRoots[slashId];
        SlashFunds storage funds = _funds[_fundsKey(root, slashId)];
        return (root, funds.remaining, funds.closesAt);
    }

    /// @inheritdoc IStaking
    function isSlashClaimed(uint256 slashId, uint256 index) external view override returns (bool) {
        return _claimedLeaves[slashId].isClaimed(index);
    }

    // ------------------------------------------------------------------ periods

    /// @inheritdoc IStaking
    function setUnbondingPeriod(uint64 period) external override onlyRole(GOVERNOR_ROLE) {
        _setUnbondingPeriod(period);
    }

    /// @inheritdoc IStaking
    function setClaimWindow(uint64 window) external override onlyRole(GOVERNOR_ROLE) {
        _setClaimWindow(window);
    }

    // ------------------------------------------------------------------ staked votes

    /// @notice Votes are counted by timestamp, as DimoToken's: one clock for the Governor.
    /// @return the current timestamp as the ERC-6372 clock
    function clock() public view override returns (uint48) {
        return uint48(block.timestamp);
    }

    /// @notice The ERC-6372 clock description, the same as DimoToken's.
    /// @return the machine-readable clock mode
    // solhint-disable-next-line func-name-mixedcase
    function CLOCK_MODE() public pure override returns (string memory) {
        return "mode=timestamp";
    }

    /// @dev An account's voting units: its active and unbonding stake (what a slash can take).
    function _getVotingUnits(address account) internal view override returns (uint256) {
        StakeInfo storage info = _stakes[account];
        return info.active + info.unbonding;
    }

    // ------------------------------------------------------------------ internals

    function _stake(uint256 amount) private {
        if (amount == 0) revert ZeroAmount();
        // Staked DIMO votes where the staker's DIMO votes: its delegate on the token, unless it
        // already chose a delegate for its stake here. Delegating first moves only what was
        // staked before; the new amount is added once, below.
        if (delegates(msg.sender) == address(0)) {
            // A token without votes (none in production: DIMO is ERC20Votes) leaves it undelegated.
            try IVotes(token).delegates(msg.sender) returns (address tokenDelegate) {
                if (tokenDelegate != address(0)) _delegate(msg.sender, tokenDelegate);
            } catch {}
        }
        _stakes[msg.sender].active += amount;
        _transferVotingUnits(address(0), msg.sender, amount);
        emit Staked(msg.sender, amount);
        IERC20(token).safeTransferFrom(msg.sender, address(this), amount);
    }

    /// @dev Refuses when `remaining` active stake is below the requirement of any role the
    ///      account is whitelisted in (at most ROLE_COUNT iterations).
    function _requireCovers(address account, uint256 remaining) private view {
        uint8 bits = _roles[account];
        if (bits == 0) return;
        for (uint8 r; r < ROLE_COUNT; ++r) {
            Role role = Role(r);
            if (bits & _roleBit(role) == 0) continue;
            uint256 required = requiredStake(account, role);
            if (remaining < required) revert StakeBelowRequired(account, role, remaining, required);
        }
    }

    /// @dev The pool's root and remaining amount, refusing unknown pools and closed windows.
    /// @dev The funds of `slashId`'s impact distribution; refuses a slash without one.
    function _openFunds(uint256 slashId) private view returns (SlashFunds storage funds) {
        bytes32 root = _impactRoots[slashId];
        if (root == bytes32(0)) revert NoImpactPool(slashId);
        return _funds[_fundsKey(root, slashId)];
    }

    /// @dev A claim whose proof leads to no funds: the first reason in claim order (no pool,
    ///      window closed, already claimed, zero amount, bad claimant), else the proof itself.
    function _refuseClaim(uint256 slashId, uint256 index, address account, uint256 amount) private view {
        uint64 closesAt = _openFunds(slashId).closesAt;
        if (block.timestamp >= closesAt) revert ClaimWindowClosed(slashId, closesAt);
        if (_claimedLeaves[slashId].isClaimed(index)) revert AlreadyClaimed(slashId, index);
        if (amount == 0) revert ZeroAmount();
        if (account == address(0) || account == address(this)) revert InvalidClaimant(account);
        revert InvalidProof(slashId, index, account, amount);
    }

    /// @dev Where a slash's funds live: keyed by its root, so only a proof to that root finds them.
    function _fundsKey(bytes32 root, uint256 slashId) private pure returns (bytes32) {
        return keccak256(abi.encode(root, slashId));
    }

    function _setUnbondingPeriod(uint64 period) private {
        if (period < MIN_UNBONDING_PERIOD || period > MAX_UNBONDING_PERIOD) {
            revert UnbondingPeriodOutOfRange(period, MIN_UNBONDING_PERIOD, MAX_UNBONDING_PERIOD);
        }
        unbondingPeriod = period;
        emit UnbondingPeriodSet(period);
    }

    function _setClaimWindow(uint64 window) private {
        if (window < MIN_CLAIM_WINDOW || window > MAX_CLAIM_WINDOW) {
            revert ClaimWindowOutOfRange(window, MIN_CLAIM_WINDOW, MAX_CLAIM_WINDOW);
        }
        claimWindow = window;
        emit ClaimWindowSet(window);
    }

    function _roleBit(Role role) private pure returns (uint8) {
        return uint8(1) << uint8(role);
    }
}
