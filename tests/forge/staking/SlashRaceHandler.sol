// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {Test} from "forge-std/Test.sol";
import {DimoToken} from "../../../contracts/token/DimoToken.sol";
import {Staking} from "../../../contracts/staking/Staking.sol";
import {IStaking} from "../../../contracts/interfaces/IStaking.sol";

/// @notice Races slash proposals against their targets' unstake requests and withdrawals, with
///         time moving between them, executions, cancellations and lapsed dispute windows. Ghost
///         state records what each frozen account held when its slash was proposed, every call
///         that let frozen stake leave, every slash that found less than was frozen, and every
///         refusal that was not the one the state calls for.
contract SlashRaceHandler is Test {
    uint256 internal constant ACTORS = 3;
    uint256 internal constant ACTOR_FUNDS = 1_000_000 ether;

    DimoToken public immutable token;
    Staking public immutable staking;
    address public immutable governor;
    address public immutable slasher;

    address[] public actors;

    // ghost state
    /// @notice active + unbonding of an account when its live proposal was made (plus later stakes).
    mapping(address account => uint256) public frozenFloor;
    mapping(address account => uint256) public ghostDeposited;
    mapping(address account => uint256) public ghostWithdrawn;
    mapping(address account => uint256) public ghostSlashed;
    uint256 public ghostToTreasury;
    uint256 public ghostFrozenEscapes; // an unstake request or withdrawal that went through while frozen
    uint256 public ghostShortSlashes; // a slash that took less than min(amount, frozen stake)
    uint256 public ghostUnexpectedRefusals; // a refusal other than the one the state calls for

    /// @notice How often each handler function ran, and how often the outcomes the race is about
    ///         happened (checked by the suite's afterInvariant).
    mapping(bytes32 name => uint256) public calls;
    /// @notice Handler calls in this run.
    uint256 public totalCalls;

    constructor(DimoToken token_, Staking staking_, address governor_, address slasher_) {
        token = token_;
        staking = staking_;
        governor = governor_;
        slasher = slasher_;
        for (uint256 i; i < ACTORS; ++i) {
            actors.push(address(uint160(0xACE0 + i)));
        }
    }

    /// @notice Funds and approves the actors, once, after the suite sent the tokens here.
    function fundActors() external {
        for (uint256 i; i < ACTORS; ++i) {
            token.transfer(actors[i], ACTOR_FUNDS);
            vm.prank(actors[i]);
            token.approve(address(staking), type(uint256).max);
        }
    }

    modifier counted(bytes32 name) {
        ++totalCalls;
        ++calls[name];
        _;
    }

    // ------------------------------------------------------------------ the target's moves

    function stake(uint256 actorSeed, uint256 amount) external counted("stake") {
        address actor = _actor(actorSeed);
        uint256 balance = token.balanceOf(actor);
        if (balance == 0) return;
        amount = bound(amount, 1, balance / 4 + 1);
        vm.prank(actor);
        staking.stake(amount);
        ghostDeposited[actor] += amount;
        if (_frozen(actor)) frozenFloor[actor] += amount; // new stake joins what the slash may take
    }

    function requestUnstake(uint256 actorSeed, uint256 amount) external counted("requestUnstake") {
        address actor = _actor(actorSeed);
        (uint256 active,,) = staking.stakeOf(actor);
        if (active == 0) return;
        amount = bound(amount, 1, active);
        bool frozen = _frozen(actor);
        vm.prank(actor);
        try staking.requestUnstake(amount) {
            if (frozen) ++ghostFrozenEscapes;
        } catch (bytes memory reason) {
            if (frozen && bytes4(reason) == IStaking.StakeFrozen.selector) ++calls["frozenRefusal"];
            else ++ghostUnexpectedRefusals;
        }
    }

    /// @notice Tries to withdraw whatever is unbonding, matured or not, frozen or not.
    function withdraw(uint256 actorSeed) external counted("withdraw") {
        address actor = _actor(actorSeed);
        (uint256 active, uint256 unbonding, uint64 releaseAt) = staking.stakeOf(actor);
        if (unbonding == 0) return;
        bool frozen = _frozen(actor);
        vm.prank(actor);
        try staking.withdraw() {
            if (frozen || block.timestamp < releaseAt) ++ghostFrozenEscapes;
            ghostWithdrawn[actor] += unbonding;
            ++calls["withdrawn"];
            (uint256 activeAfter, uint256 unbondingAfter,) = staking.stakeOf(actor);
            if (activeAfter != active || unbondingAfter != 0) ++ghostFrozenEscapes;
        } catch (bytes memory reason) {
            bytes4 selector = bytes4(reason);
            if (frozen && selector == IStaking.StakeFrozen.selector) {
                ++calls["frozenRefusal"];
            } else if (!frozen && block.timestamp < releaseAt && selector == IStaking.UnbondingNotMatured.selector) {} else {
                ++ghostUnexpectedRefusals;
            }
        }
    }

    /// @notice The whole escape at once: unstake everything, wait the unbonding out, withdraw.
    function raceToLeave(uint256 actorSeed) external counted("raceToLeave") {
        address actor = _actor(actorSeed);
        (uint256 active,,) = staking.stakeOf(actor);
        bool frozen = _frozen(actor);
        if (active != 0) {
            vm.prank(actor);
            try staking.requestUnstake(active) {
                if (frozen) ++ghostFrozenEscapes;
            } catch (bytes memory reason) {
                if (!(frozen && bytes4(reason) == IStaking.StakeFrozen.selector)) ++ghostUnexpectedRefusals;
            }
        }
        (,, uint64 releaseAt) = staking.stakeOf(actor);
        if (releaseAt > block.timestamp) vm.warp(releaseAt);
        this.withdraw(actorSeed);
    }

    function warp(uint256 seconds_) external counted("warp") {
        vm.warp(block.timestamp + bound(seconds_, 1 hours, 2 days));
    }

    // ------------------------------------------------------------------ the DAO's moves

    function proposeSlash(uint256 actorSeed, uint256 amount) external counted("proposeSlash") {
        address actor = _actor(actorSeed);
        (uint256 active, uint256 unbonding,) = staking.stakeOf(actor);
        amount = bound(amount, 1, active + unbonding + 1_000 ether); // sometimes more than is there
        bool frozen = _frozen(actor);
        vm.prank(slasher);
        try staking.proposeSlash(actor, amount, IStaking.SlashSubject.Product, actorSeed, "ipfs://race") {
            if (frozen) ++ghostUnexpectedRefusals; // a second live proposal must be refused
            frozenFloor[actor] = active + unbonding;
            ++calls["proposed"];
        } catch (bytes memory reason) {
            if (!(frozen && bytes4(reason) == IStaking.SlashAlreadyPending.selector)) ++ghostUnexpectedRefusals;
        }
    }

    function executeSlash(uint256 actorSeed) external counted("executeSlash") {
        address actor = _actor(actorSeed);
        uint256 slashId = _latest(actor);
        if (slashId == 0) return;
        IStaking.SlashProposal memory p = staking.slashProposal(slashId);
        bool live = p.status == IStaking.SlashStatus.Pending && block.timestamp < p.expiresAt;
        (uint256 active, uint256 unbonding,) = staking.stakeOf(actor);
        uint256 treasuryBefore = token.balanceOf(staking.treasury());
        vm.prank(slasher);
        try staking.slash(slashId, 0, bytes32(0)) returns (uint256 taken) {
            if (!live) ++ghostUnexpectedRefusals;
            uint256 floor = frozenFloor[actor];
            uint256 due = p.amount < floor ? p.amount : floor;
            if (taken < due) ++ghostShortSlashes; // frozen stake had left
            uint256 there = active + unbonding;
            if (taken != (p.amount < there ? p.amount : there)) ++ghostShortSlashes;
            if (token.balanceOf(staking.treasury()) - treasuryBefore != taken) ++ghostShortSlashes;
            ghostSlashed[actor] += taken;
            ghostToTreasury += taken;
            ++calls["executed"];
        } catch (bytes memory reason) {
            bytes4 selector = bytes4(reason);
            bool expected = (p.status != IStaking.SlashStatus.Pending && selector == IStaking.SlashNotPending.selector)
                || (p.status == IStaking.SlashStatus.Pending
                    && !live
                    && selector == IStaking.SlashProposalExpired.selector);
            if (!expected) ++ghostUnexpectedRefusals;
            if (selector == IStaking.SlashProposalExpired.selector) ++calls["lapsed"];
        }
    }

    function cancelSlash(uint256 actorSeed) external counted("cancelSlash") {
        address actor = _actor(actorSeed);
        uint256 slashId = _latest(actor);
        if (slashId == 0) return;
        IStaking.SlashStatus status = staking.slashProposal(slashId).status;
        vm.prank(governor);
        try staking.cancelSlash(slashId) {
            if (status != IStaking.SlashStatus.Pending) ++ghostUnexpectedRefusals;
            if (_frozen(actor)) ++ghostUnexpectedRefusals; // cancelling must end the freeze
            ++calls["cancelled"];
        } catch (bytes memory reason) {
            if (!(status != IStaking.SlashStatus.Pending && bytes4(reason) == IStaking.SlashNotPending.selector)) {
                ++ghostUnexpectedRefusals;
            }
        }
    }

    // ------------------------------------------------------------------ read-outs for the suite

    function actorCount() external pure returns (uint256) {
        return ACTORS;
    }

    // ------------------------------------------------------------------ internals

    function _actor(uint256 seed) internal view returns (address) {
        return actors[seed % ACTORS];
    }

    function _frozen(address actor) internal view returns (bool) {
        (uint256 slashId,) = staking.freezeOf(actor);
        return slashId != 0;
    }

    /// @dev The latest proposal against `actor` (live or not), 0 when none.
    function _latest(address actor) internal view returns (uint256) {
        for (uint256 id = staking.slashCount(); id != 0; --id) {
            if (staking.slashProposal(id).account == actor) return id;
        }
        return 0;
    }
}
