// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {ERC20Capped} from "@openzeppelin/contracts/token/ERC20/extensions/ERC20Capped.sol";
import {IERC20Permit} from "@openzeppelin/contracts/token/ERC20/extensions/IERC20Permit.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {ReentrancyGuardTransient} from "@openzeppelin/contracts/utils/ReentrancyGuardTransient.sol";
import {SafeCast} from "@openzeppelin/contracts/utils/math/SafeCast.sol";
import {IVotes} from "@openzeppelin/contracts/governance/utils/IVotes.sol";
import {Votes} from "@openzeppelin/contracts/governance/utils/Votes.sol";
import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";
import {GuardianPausable} from "../governance/GuardianPausable.sol";
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
///         distribution and the Treasury the rest. A slash is proposed first, which freezes the
///         target's stake (no withdraw, no unstake request) for a dispute window, then
///         executed; a guardian may pause new stakes for a bounded time. DESIGN.md §3.4;
///         documented in IStaking.
/// @dev Conservation, to the wei: the token balance of this contract equals the sum of every
///      account's active and unbonding stake plus the `remaining` of every slash pool.
///      Staked votes (OpenZeppelin `Votes`): an account's active and unbonding stake are its
///      voting units until withdrawn or slashed, counted for its delegate here (the Governor
///      adds them to the token's votes). A first stake delegates to the staker's delegate on
///      the token, so delegation survives staking; `delegate` here moves the staked votes only.
contract Staking is IStaking, DaoAccessControl, Votes, ReentrancyGuardTransient, GuardianPausable {
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
    /// @notice Upper bound of recorded units: 2^40 − 1, over a trillion vehicle-subscriptions
    ///         for one buyer; low enough that useful curves stay within the token's supply cap
    ///         at the maximum (`setCurve`), and within LockupCurve's overflow-free range.
    uint256 public constant MAX_UNITS = type(uint40).max;
    /// @notice Dispute window of slash proposals at deployment.
    uint64 public constant DEFAULT_DISPUTE_WINDOW = 14 days;
    /// @notice Shortest dispute window governance may set.
    uint64 public constant MIN_DISPUTE_WINDOW = 1 days;
    /// @notice Longest dispute window governance may set: bounds how long a proposal freezes a stake.
    uint64 public constant MAX_DISPUTE_WINDOW = 30 days;

    uint8 private constant ROLE_COUNT = uint8(type(Role).max) + 1;

    /// @dev `releaseAt`, `frozenUntil` and `pendingSlash` share one slot: `withdraw` and
    ///      `requestUnstake` read the freeze with the release time.
    struct StakeInfo {
        uint256 active;
        uint256 unbonding;
        uint64 releaseAt;
        uint64 frozenUntil;
        uint64 pendingSlash;
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
    /// @notice The token's supply cap, read once: no curve may require more than this.
    uint256 public immutable supplyCap;

    /// @inheritdoc IStaking
    uint64 public override unbondingPeriod;
    /// @inheritdoc IStaking
    uint64 public override claimWindow;
    /// @inheritdoc IStaking
    uint256 public override slashCount;
    /// @inheritdoc IStaking
    mapping(address account => uint64) public override lastSlashedAt;
    uint64 public override disputeWindow;

    uint16[TIER_COUNT] private _tierMultiplierBps;
    mapping(address account => StakeInfo) private _stakes;
    mapping(address account => uint8 roleBits) private _roles;
    mapping(Role role => Curve) private _curves;
    mapping(address account => Usage) private _usage;
    mapping(uint256 slashId => bytes32 root) private _impactRoots;
    mapping(bytes32 fundsKey => SlashFunds) private _funds;
    mapping(uint256 slashId => ClaimBitmap.Bitmap) private _claimedLeaves;
    mapping(uint256 slashId => SlashProposal) private _proposals;

    /// @param token_ the staked ERC-20 (DIMO; ERC20Capped for `cap`, EIP-2612 for `stakeWithPermit`)
    /// @param treasury_ receives the Treasury's share of slashes and swept pools
    /// @param governor receives DEFAULT_ADMIN_ROLE and GOVERNOR_ROLE (the DAO's timelock in production)
    constructor(address token_, address treasury_, address governor)
        DaoAccessControl(governor)
        EIP712("DIMO Staking", "1")
    {
        if (token_ == address(0) || treasury_ == address(0) || governor == address(0)) revert ZeroAddress();
        token = token_;
        treasury = treasury_;
        supplyCap = ERC20Capped(token_).cap();
        _setUnbondingPeriod(DEFAULT_UNBONDING_PERIOD);
        _setClaimWindow(DEFAULT_CLAIM_WINDOW);
        _setDisputeWindow(DEFAULT_DISPUTE_WINDOW);
        uint16[TIER_COUNT] memory defaults =
            [DEFAULT_TIER0_BPS, DEFAULT_TIER1_BPS, DEFAULT_TIER2_BPS, DEFAULT_TIER3_BPS];
        for (uint8 tier; tier < TIER_COUNT; ++tier) {
            _tierMultiplierBps[tier] = defaults[tier];
            emit TierMultiplierSet(tier, defaults[tier]);
        }
    }

    // ------------------------------------------------------------------ staking

    /// @inheritdoc IStaking
    function stake(uint256 amount) external override nonReentrant whenNotPaused {
        _stake(amount);
    }

    /// @inheritdoc IStaking
    function stakeWithPermit(uint256 amount, uint256 deadline, uint8 v, bytes32 r, bytes32 s)
        external
        override
        nonReentrant
        whenNotPaused
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
        _requireNotFrozen(msg.sender, info);
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
        _requireNotFrozen(msg.sender, info);
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
    function resign(Role role) external override {
        uint8 bit = _roleBit(role);
        uint8 bits = _roles[msg.sender];
        if (bits & bit == 0) revert NotWhitelisted(msg.sender, role);
        _roles[msg.sender] = bits & ~bit;
        emit Whitelisted(msg.sender, role, false);
        emit Resigned(msg.sender, role);
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
        Curve memory c = Curve(uint128(base), uint128(perSqrtUnit));
        _requireWithinSupply(role, c, _tierMultiplierBps[TIER_COUNT - 1]);
        _curves[role] = c;
        emit CurveSet(role, base, perSqrtUnit);
    }

    /// @inheritdoc IStaking
    function setTierMultiplier(uint8 tier, uint16 bps) external override onlyRole(GOVERNOR_ROLE) {
        if (tier >= TIER_COUNT) revert UnknownTier(tier, TIER_COUNT);
        uint16 lower = tier == 0 ? 0 : _tierMultiplierBps[tier - 1];
        uint16 upper = tier == TIER_COUNT - 1 ? type(uint16).max : _tierMultiplierBps[tier + 1];
        if (bps < lower || bps > upper) revert TierMultiplierOutOfOrder(tier, bps, lower, upper);
        if (tier == TIER_COUNT - 1) {
            for (uint8 r; r < ROLE_COUNT; ++r) {
                _requireWithinSupply(Role(r), _curves[Role(r)], bps);
            }
        }
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
    function proposeSlash(
        address account,
        uint256 amount,
        SlashSubject subject,
        uint256 subjectId,
        string calldata reasonURI
    ) external override onlyRole(SLASHER_ROLE) returns (uint256 slashId) {
        if (account == address(0)) revert ZeroAddress();
        if (amount == 0) revert ZeroAmount();
        if (bytes(reasonURI).length == 0) revert EmptyReason();
        StakeInfo storage info = _stakes[account];
        uint64 pending = info.pendingSlash;
        uint64 frozenUntil = info.frozenUntil;
        if (pending != 0 && block.timestamp < frozenUntil) revert SlashAlreadyPending(account, pending, frozenUntil);

        slashId = ++slashCount;
        uint64 expiresAt = uint64(block.timestamp) + disputeWindow;
        info.frozenUntil = expiresAt;
        info.pendingSlash = SafeCast.toUint64(slashId);
        _proposals[slashId] = SlashProposal({
            account: account,
            expiresAt: expiresAt,
            status: SlashStatus.Pending,
            subject: subject,
            amount: amount,
            subjectId: subjectId,
            reasonURI: reasonURI
        });
        emit SlashProposed(slashId, account, amount, subject, subjectId, reasonURI, expiresAt);
    }

    /// @inheritdoc IStaking
    function slash(uint256 slashId, uint256 toImpacted, bytes32 impactRoot)
        external
        override
        onlyRole(SLASHER_ROLE)
        nonReentrant
        returns (uint256 taken)
    {
        SlashProposal storage proposal = _liveProposal(slashId);
        address account = proposal.account;
        lastSlashedAt[account] = uint64(block.timestamp);
        uint256 fromActive;
        uint256 fromUnbonding;
        {
            uint256 amount = proposal.amount;
            if (toImpacted > amount) revert ImpactExceedsSlash(toImpacted, amount);
            if ((toImpacted == 0) != (impactRoot == bytes32(0))) revert ImpactRootMismatch(toImpacted, impactRoot);
            proposal.status = SlashStatus.Executed;
            // The proposal is live, so it is the one freezing the account: executing ends the freeze.
            (fromActive, fromUnbonding) = _takeAndUnfreeze(_stakes[account], amount);
        }
        taken = fromActive + fromUnbonding;
        _transferVotingUnits(account, address(0), taken);
        // The impacted owners' share is capped at what was taken; nothing taken, no pool.
        if (toImpacted > taken) toImpacted = taken;
        if (toImpacted == 0) impactRoot = bytes32(0);
        uint64 closesAt = _openPool(slashId, impactRoot, toImpacted);
        emit SlashApplied(slashId, account, fromActive, fromUnbonding, closesAt);
        emit Slashed(slashId, account, taken, toImpacted, impactRoot, proposal.reasonURI);

        uint256 toTreasury = taken - toImpacted;
        if (toTreasury != 0) IERC20(token).safeTransfer(treasury, toTreasury);
    }

    /// @inheritdoc IStaking
    function cancelSlash(uint256 slashId) external override onlyRole(GOVERNOR_ROLE) {
        SlashProposal storage proposal = _proposals[slashId];
        SlashStatus status = proposal.status;
        if (status != SlashStatus.Pending) revert SlashNotPending(slashId, status);
        proposal.status = SlashStatus.Cancelled;
        address account = proposal.account;
        StakeInfo storage info = _stakes[account];
        // An expired proposal may have been replaced by a newer one: only its own freeze ends.
        if (info.pendingSlash == slashId) {
            info.frozenUntil = 0;
            info.pendingSlash = 0;
        }
        emit SlashCancelled(slashId, account);
    }

    /// @inheritdoc IStaking
    function slashProposal(uint256 slashId) external view override returns (SlashProposal memory) {
        return _proposals[slashId];
    }

    /// @inheritdoc IStaking
    function freezeOf(address account) external view override returns (uint256 slashId, uint64 frozenUntil) {
        StakeInfo storage info = _stakes[account];
        if (info.pendingSlash == 0 || block.timestamp >= info.frozenUntil) return (0, 0);
        return (info.pendingSlash, info.frozenUntil);
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

    /// @inheritdoc IStaking
    function setDisputeWindow(uint64 window) external override onlyRole(GOVERNOR_ROLE) {
        _setDisputeWindow(window);
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

    /// @dev The pending proposal `slashId`, refusing one that is not pending or whose dispute
    ///      window closed.
    function _liveProposal(uint256 slashId) private view returns (SlashProposal storage proposal) {
        proposal = _proposals[slashId];
        SlashStatus status = proposal.status;
        if (status != SlashStatus.Pending) revert SlashNotPending(slashId, status);
        uint64 expiresAt = proposal.expiresAt;
        if (block.timestamp >= expiresAt) revert SlashProposalExpired(slashId, expiresAt);
    }

    /// @dev Takes up to `amount` from `info`, capped at what is there: active stake first, then
    ///      unbonding, so requesting an unstake never escapes a slash (and the freeze kept both);
    ///      then lifts the freeze.
    function _takeAndUnfreeze(StakeInfo storage info, uint256 amount)
        private
        returns (uint256 fromActive, uint256 fromUnbonding)
    {
        uint256 active = info.active;
        uint256 unbonding = info.unbonding;
        fromActive = amount < active ? amount : active;
        uint256 rest = amount - fromActive;
        fromUnbonding = rest < unbonding ? rest : unbonding;
        info.active = active - fromActive;
        if (fromUnbonding != 0) info.unbonding = unbonding - fromUnbonding;
        info.frozenUntil = 0;
        info.pendingSlash = 0;
    }

    /// @dev Opens slash `slashId`'s impact pool of `impacted` under `root`; returns when it
    ///      closes (0, and no pool, when nothing goes to impacted owners).
    function _openPool(uint256 slashId, bytes32 root, uint256 impacted) private returns (uint64 closesAt) {
        if (impacted == 0) return 0;
        closesAt = uint64(block.timestamp) + claimWindow;
        _impactRoots[slashId] = root;
        _funds[_fundsKey(root, slashId)] = SlashFunds(SafeCast.toUint192(impacted), closesAt);
    }

    /// @dev Refuses while a live slash proposal freezes `account`'s stake.
    function _requireNotFrozen(address account, StakeInfo storage info) private view {
        uint64 pending = info.pendingSlash;
        if (pending == 0) return;
        uint64 frozenUntil = info.frozenUntil;
        if (block.timestamp < frozenUntil) revert StakeFrozen(account, pending, frozenUntil);
    }

    /// @dev Refuses a curve whose requirement at MAX_UNITS on a tier of `topBps` exceeds the
    ///      token's supply cap: such a curve would freeze every whitelisted stake for good.
    function _requireWithinSupply(Role role, Curve memory c, uint16 topBps) private view {
        uint256 atMax = LockupCurve.requiredStake(c.base, c.perSqrtUnit, uint64(MAX_UNITS), topBps);
        if (atMax > supplyCap) revert CurveBeyondSupply(role, atMax, supplyCap);
    }

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

    function _setDisputeWindow(uint64 window) private {
        if (window < MIN_DISPUTE_WINDOW || window > MAX_DISPUTE_WINDOW) {
            revert DisputeWindowOutOfRange(window, MIN_DISPUTE_WINDOW, MAX_DISPUTE_WINDOW);
        }
        disputeWindow = window;
        emit DisputeWindowSet(window);
    }

    function _roleBit(Role role) private pure returns (uint8) {
        return uint8(1) << uint8(role);
    }
}
