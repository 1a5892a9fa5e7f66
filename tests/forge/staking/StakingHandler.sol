// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {Test} from "forge-std/Test.sol";
import {DimoToken} from "../../../contracts/token/DimoToken.sol";
import {Staking} from "../../../contracts/staking/Staking.sol";
import {IStaking} from "../../../contracts/interfaces/IStaking.sol";
import {TestMerkle} from "./TestMerkle.sol";

/// @notice Drives random sequences against Staking for the invariant suite: stakes, unstakes,
///         withdrawals, time, governance changes, slashes (sometimes with roots that promise more
///         than their pool), claims, repeated claims and sweeps. Ghost state records what must be
///         conserved and every outcome that must never happen.
contract StakingHandler is Test {
    uint256 internal constant ACTORS = 4;
    uint256 internal constant OWNERS = 5;
    uint256 internal constant ACTOR_FUNDS = 1_000_000 ether;

    DimoToken public immutable token;
    Staking public immutable staking;
    address public immutable governor;
    address public immutable slasher;
    address public immutable market;
    address public immutable treasury;

    address[] public actors;
    address[] public owners;

    // ghost state
    mapping(address account => uint256) public ghostDeposited;
    mapping(address account => uint256) public ghostWithdrawn;
    mapping(address account => uint256) public ghostSlashed;
    uint256 public ghostToTreasury;
    uint256 public ghostClaimedTotal;
    uint256 public ghostDoubleClaims; // a repeated claim that was paid: must stay 0
    uint256 public ghostOverpaidPools; // a pool that paid more than its toImpacted: must stay 0
    uint256 public ghostWrongSlashRefusals; // a slash within active + unbonding that failed: must stay 0
    uint256 public ghostEscapes; // a withdrawal that released stake a slash should have reached
    uint256 public ghostUnexpectedRefusals; // a valid call refused for a reason it should not have
    uint256 public ghostCalls;
    mapping(bytes32 => uint256) public calls;

    struct Pool {
        uint256 toImpacted;
        uint256 claimed;
        uint256 swept;
        TestMerkle.Tree tree;
        address[] accounts;
        uint256[] amounts;
        bool[] paid;
    }

    uint256[] public slashIds;
    mapping(uint256 slashId => Pool) internal pools;

    constructor(DimoToken token_, Staking staking_, address governor_, address slasher_, address market_) {
        token = token_;
        staking = staking_;
        governor = governor_;
        slasher = slasher_;
        market = market_;
        treasury = staking_.treasury();
        for (uint256 i; i < ACTORS; ++i) {
            actors.push(address(uint160(0xA11CE0 + i)));
        }
        for (uint256 i; i < OWNERS; ++i) {
            owners.push(address(uint160(0x0D0E00 + i)));
        }
    }

    /// @notice Funds the actors; called once by the suite after the token was sent here.
    function fundActors() external {
        for (uint256 i; i < ACTORS; ++i) {
            token.transfer(actors[i], ACTOR_FUNDS);
            vm.prank(actors[i]);
            token.approve(address(staking), type(uint256).max);
        }
    }

    modifier counted(bytes32 name) {
        ++ghostCalls;
        ++calls[name];
        _;
    }

    // ------------------------------------------------------------------ staker actions

    function stake(uint256 actorSeed, uint256 amount) external counted("stake") {
        address actor = _actor(actorSeed);
        uint256 balance = token.balanceOf(actor);
        if (balance == 0) return;
        amount = bound(amount, 1, balance);
        vm.prank(actor);
        staking.stake(amount);
        ghostDeposited[actor] += amount;
    }

    function requestUnstake(uint256 actorSeed, uint256 amount) external counted("requestUnstake") {
        address actor = _actor(actorSeed);
        (uint256 active,,) = staking.stakeOf(actor);
        if (active == 0) return;
        amount = bound(amount, 1, active);
        vm.prank(actor);
        try staking.requestUnstake(amount) {}
        catch (bytes memory reason) {
            // The only acceptable refusal: a whitelisted role's requirement.
            if (bytes4(reason) != IStaking.StakeBelowRequired.selector) ++ghostUnexpectedRefusals;
        }
    }

    function withdraw(uint256 actorSeed) external counted("withdraw") {
        address actor = _actor(actorSeed);
        (uint256 active, uint256 unbonding, uint64 releaseAt) = staking.stakeOf(actor);
        if (unbonding == 0 || block.timestamp < releaseAt) return;
        vm.prank(actor);
        staking.withdraw();
        ghostWithdrawn[actor] += unbonding;
        (uint256 activeAfter, uint256 unbondingAfter,) = staking.stakeOf(actor);
        if (activeAfter != active || unbondingAfter != 0) ++ghostEscapes;
    }

    function warp(uint256 seconds_) external counted("warp") {
        vm.warp(block.timestamp + bound(seconds_, 1, 30 days));
    }

    // ------------------------------------------------------------------ governance and market

    function govern(uint256 actorSeed, uint256 roleSeed, uint256 base, bool allowed) external counted("govern") {
        IStaking.Role role = IStaking.Role(bound(roleSeed, 0, 2));
        vm.startPrank(governor);
        staking.setWhitelisted(_actor(actorSeed), role, allowed);
        staking.setCurve(role, bound(base, 0, 200_000 ether), bound(base >> 128, 0, 100 ether));
        vm.stopPrank();
    }

    function setUsage(uint256 actorSeed, uint64 units, uint8 tier) external counted("setUsage") {
        vm.prank(market);
        staking.setUsage(_actor(actorSeed), bound(units, 0, 1_000_000), uint8(bound(tier, 0, 3)));
    }

    function setUnbondingPeriod(uint64 period) external counted("setUnbondingPeriod") {
        vm.prank(governor);
        staking.setUnbondingPeriod(uint64(bound(period, 1 days, 30 days)));
    }

    // ------------------------------------------------------------------ slashing

    /// @param overpromise the leaves add up to more than toImpacted (a faulty root)
    function slash(uint256 actorSeed, uint256 amount, uint256 impactBps, uint256 leafSeed, bool overpromise)
        external
        counted("slash")
    {
        address actor = _actor(actorSeed);
        (uint256 active, uint256 unbonding,) = staking.stakeOf(actor);
        if (active + unbonding == 0) return;
        amount = bound(amount, 1, active + unbonding);
        uint256 toImpacted = (amount * bound(impactBps, 0, 10_000)) / 10_000;

        bytes32 root;
        if (toImpacted > 0) {
            (address[] memory accounts, uint256[] memory amounts) = _leaves(leafSeed, toImpacted, overpromise);
            TestMerkle.Tree memory tree = TestMerkle.build(accounts, amounts);
            root = TestMerkle.root(tree);
            _recordPool(staking.slashCount() + 1, toImpacted, tree, accounts, amounts);
        }

        _proposeAndExecute(actor, amount, toImpacted, root);
    }

    /// @dev Proposed and executed at once: no freeze outlives the call (SlashRaceHandler races them).
    function _proposeAndExecute(address actor, uint256 amount, uint256 toImpacted, bytes32 root) internal {
        vm.startPrank(slasher);
        uint256 slashId = staking.proposeSlash(actor, amount, IStaking.SlashSubject.Order, 1, "ipfs://inv");
        try staking.slash(slashId, toImpacted, root) returns (uint256 taken) {
            slashIds.push(slashId);
            ghostSlashed[actor] += taken;
            ghostToTreasury += taken - toImpacted;
            if (taken != amount) ++ghostWrongSlashRefusals;
        } catch {
            ++ghostWrongSlashRefusals;
        }
        vm.stopPrank();
    }

    function claim(uint256 poolSeed, uint256 leafSeed) external counted("claim") {
        if (slashIds.length == 0) return;
        uint256 slashId = slashIds[bound(poolSeed, 0, slashIds.length - 1)];
        Pool storage pool = pools[slashId];
        if (pool.accounts.length == 0) return;
        uint256 index = bound(leafSeed, 0, pool.accounts.length - 1);
        (, uint256 remaining, uint64 closesAt) = staking.slashPool(slashId);
        bool wasPaid = pool.paid[index];
        uint256 amount = pool.amounts[index];
        try staking.claimSlash(slashId, index, pool.accounts[index], amount, TestMerkle.proof(pool.tree, index)) {
            if (wasPaid) ++ghostDoubleClaims;
            if (block.timestamp >= closesAt || amount > remaining) ++ghostOverpaidPools;
            pool.paid[index] = true;
            pool.claimed += amount;
            ghostClaimedTotal += amount;
            if (pool.claimed > pool.toImpacted) ++ghostOverpaidPools;
        } catch (bytes memory reason) {
            bytes4 selector = bytes4(reason);
            bool expected = (wasPaid && selector == IStaking.AlreadyClaimed.selector)
                || (block.timestamp >= closesAt && selector == IStaking.ClaimWindowClosed.selector)
                || (amount > remaining && selector == IStaking.ClaimExceedsPool.selector);
            if (!expected) ++ghostUnexpectedRefusals;
        }
    }

    /// @notice Replays a leaf that was already paid: must always be refused.
    function claimAgain(uint256 poolSeed) external counted("claimAgain") {
        for (uint256 p; p < slashIds.length; ++p) {
            uint256 slashId = slashIds[(poolSeed % slashIds.length + p) % slashIds.length];
            Pool storage pool = pools[slashId];
            for (uint256 i; i < pool.paid.length; ++i) {
                if (!pool.paid[i]) continue;
                try staking.claimSlash(slashId, i, pool.accounts[i], pool.amounts[i], TestMerkle.proof(pool.tree, i)) {
                    ++ghostDoubleClaims;
                } catch {}
                return;
            }
        }
    }

    function sweep(uint256 poolSeed) external counted("sweep") {
        if (slashIds.length == 0) return;
        uint256 slashId = slashIds[bound(poolSeed, 0, slashIds.length - 1)];
        (bytes32 root, uint256 remaining, uint64 closesAt) = staking.slashPool(slashId);
        if (root == bytes32(0) || remaining == 0) return;
        if (block.timestamp < closesAt) vm.warp(closesAt);
        staking.sweepSlash(slashId);
        pools[slashId].swept += remaining;
        ghostToTreasury += remaining;
    }

    // ------------------------------------------------------------------ read-outs for the suite

    function actorCount() external pure returns (uint256) {
        return ACTORS;
    }

    function slashCountSeen() external view returns (uint256) {
        return slashIds.length;
    }

    function poolBooks(uint256 slashId) external view returns (uint256 toImpacted, uint256 claimed, uint256 swept) {
        Pool storage pool = pools[slashId];
        return (pool.toImpacted, pool.claimed, pool.swept);
    }

    // ------------------------------------------------------------------ internals

    function _actor(uint256 seed) internal view returns (address) {
        return actors[seed % ACTORS];
    }

    /// @dev 1..OWNERS leaves that add up to `toImpacted`, or to more when `overpromise`.
    function _leaves(uint256 leafSeed, uint256 toImpacted, bool overpromise)
        internal
        view
        returns (address[] memory accounts, uint256[] memory amounts)
    {
        uint256 leaves = bound(leafSeed, 1, OWNERS);
        accounts = new address[](leaves);
        amounts = new uint256[](leaves);
        uint256 share = toImpacted / leaves;
        for (uint256 i; i < leaves; ++i) {
            accounts[i] = owners[(leafSeed % OWNERS + i) % OWNERS];
            amounts[i] = (i == 0 ? toImpacted - share * (leaves - 1) : share) + (overpromise ? 1 + i : 0);
            if (amounts[i] == 0) amounts[i] = 1;
        }
    }

    function _recordPool(
        uint256 slashId,
        uint256 toImpacted,
        TestMerkle.Tree memory tree,
        address[] memory accounts,
        uint256[] memory amounts
    ) internal {
        Pool storage pool = pools[slashId];
        pool.toImpacted = toImpacted;
        pool.tree.nodes = tree.nodes;
        pool.tree.treeIndexOf = tree.treeIndexOf;
        pool.accounts = accounts;
        pool.amounts = amounts;
        pool.paid = new bool[](accounts.length);
    }
}
