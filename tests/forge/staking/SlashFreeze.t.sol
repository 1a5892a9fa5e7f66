// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {IAccessControl} from "@openzeppelin/contracts/access/IAccessControl.sol";
import {IStaking} from "../../../contracts/interfaces/IStaking.sol";
import {StakingBase} from "./StakingBase.sol";

/// @notice Slashing that bites: a proposal freezes the target's stake until the slash executes,
///         the DAO cancels it or the dispute window passes; `resign` lets an account leave its
///         roles and unbond when it is not frozen.
contract SlashFreezeTest is StakingBase {
    // ================================================================ proposeSlash

    function test_proposeSlash_recordsTheProposalAndFreezes() public {
        _stake(alice, 100 ether);
        uint64 expiresAt = uint64(block.timestamp) + staking.disputeWindow();
        vm.expectEmit(address(staking));
        emit IStaking.SlashProposed(1, alice, 40 ether, IStaking.SlashSubject.Order, 42, "ipfs://report", expiresAt);
        vm.prank(slasher);
        uint256 slashId = staking.proposeSlash(alice, 40 ether, IStaking.SlashSubject.Order, 42, "ipfs://report");
        assertEq(slashId, 1);
        assertEq(staking.slashCount(), 1);

        IStaking.SlashProposal memory p = staking.slashProposal(slashId);
        assertEq(p.account, alice);
        assertEq(p.amount, 40 ether);
        assertEq(uint8(p.subject), uint8(IStaking.SlashSubject.Order));
        assertEq(p.subjectId, 42);
        assertEq(p.reasonURI, "ipfs://report");
        assertEq(uint256(p.expiresAt), uint256(expiresAt));
        assertEq(uint8(p.status), uint8(IStaking.SlashStatus.Pending));
        (uint256 pending, uint64 until) = staking.freezeOf(alice);
        assertEq(pending, slashId);
        assertEq(uint256(until), uint256(expiresAt));
    }

    function test_frozen_refusesUnstakeRequestsAndWithdrawals() public {
        _stake(alice, 100 ether);
        _requestUnstake(alice, 30 ether);
        vm.warp(block.timestamp + staking.unbondingPeriod()); // matured
        uint256 slashId = _propose(alice, 100 ether);
        uint64 until = uint64(block.timestamp) + staking.disputeWindow();

        vm.prank(alice);
        vm.expectRevert(abi.encodeWithSelector(IStaking.StakeFrozen.selector, alice, slashId, until));
        staking.withdraw();
        vm.prank(alice);
        vm.expectRevert(abi.encodeWithSelector(IStaking.StakeFrozen.selector, alice, slashId, until));
        staking.requestUnstake(1 ether);

        // What was there when the slash was proposed is still there when it executes.
        vm.warp(until - 1);
        assertEq(_execute(slashId, 0, bytes32(0)), 100 ether);
        assertEq(token.balanceOf(address(treasury)), 100 ether);
    }

    function test_frozen_stillAcceptsNewStake() public {
        _stake(alice, 10 ether);
        _propose(alice, 100 ether);
        _stake(alice, 5 ether);
        assertEq(_active(alice), 15 ether);
    }

    function test_executingTheSlashEndsTheFreeze() public {
        _stake(alice, 100 ether);
        _requestUnstake(alice, 20 ether);
        uint256 slashId = _propose(alice, 10 ether);
        _execute(slashId, 0, bytes32(0));
        (uint256 pending, uint64 until) = staking.freezeOf(alice);
        assertEq(pending, 0);
        assertEq(uint256(until), 0);
        assertEq(uint8(staking.slashProposal(slashId).status), uint8(IStaking.SlashStatus.Executed));
        _requestUnstake(alice, 70 ether);
        vm.warp(block.timestamp + staking.unbondingPeriod());
        vm.prank(alice);
        staking.withdraw();
        assertEq(token.balanceOf(alice), FUNDS - 10 ether);
    }

    function test_theFreezeLapsesWithTheDisputeWindow() public {
        _stake(alice, 100 ether);
        uint256 slashId = _propose(alice, 10 ether);
        uint64 until = uint64(block.timestamp) + staking.disputeWindow();
        vm.warp(until - 1);
        vm.expectRevert(abi.encodeWithSelector(IStaking.StakeFrozen.selector, alice, slashId, until));
        _requestUnstake(alice, 1 ether);
        vm.warp(until);
        _requestUnstake(alice, 1 ether);
        (uint256 pending,) = staking.freezeOf(alice);
        assertEq(pending, 0);

        vm.prank(slasher);
        vm.expectRevert(abi.encodeWithSelector(IStaking.SlashProposalExpired.selector, slashId, until));
        staking.slash(slashId, 0, bytes32(0));
    }

    function test_aSecondProposalWaitsForTheFirst() public {
        _stake(alice, 100 ether);
        uint256 first = _propose(alice, 10 ether);
        uint64 until = uint64(block.timestamp) + staking.disputeWindow();
        vm.prank(slasher);
        vm.expectRevert(abi.encodeWithSelector(IStaking.SlashAlreadyPending.selector, alice, first, until));
        staking.proposeSlash(alice, 5 ether, IStaking.SlashSubject.Product, 1, "x");

        // Another account is unaffected.
        assertEq(_propose(bob, 1), first + 1);

        // Once the first expired, a new proposal freezes again, under its own id.
        vm.warp(until);
        uint256 second = _propose(alice, 5 ether);
        (uint256 pending,) = staking.freezeOf(alice);
        assertEq(pending, second);
    }

    function test_slash_cannotRunTwice() public {
        _stake(alice, 100 ether);
        uint256 slashId = _slash(alice, 10 ether, 0, bytes32(0));
        vm.prank(slasher);
        vm.expectRevert(
            abi.encodeWithSelector(IStaking.SlashNotPending.selector, slashId, IStaking.SlashStatus.Executed)
        );
        staking.slash(slashId, 0, bytes32(0));
    }

    /// @dev The issue's race, as the DAO saw it: a slash decided by vote was public for the
    ///      voting period; the target withdrew what had matured, and the slash then reverted
    ///      for asking more than was left. Proposed first, it takes the whole amount.
    function test_aSlashProposedWhileTheTargetRacesToWithdrawStillTakesTheStake() public {
        _stake(alice, 100 ether);
        _requestUnstake(alice, 100 ether);
        vm.warp(block.timestamp + staking.unbondingPeriod() - 1 hours);
        uint256 slashId = _propose(alice, 100 ether); // the vote starts
        uint64 until = uint64(block.timestamp) + staking.disputeWindow();
        vm.warp(block.timestamp + 1 hours); // the unbonding matured during the vote
        vm.prank(alice);
        vm.expectRevert(abi.encodeWithSelector(IStaking.StakeFrozen.selector, alice, slashId, until));
        staking.withdraw();
        vm.warp(block.timestamp + 9 days); // voting period and timelock delay
        assertEq(_execute(slashId, 0, bytes32(0)), 100 ether);
        assertEq(token.balanceOf(alice), FUNDS - 100 ether);
    }

    // ================================================================ cancelSlash

    function test_cancelSlash_endsTheFreeze() public {
        _stake(alice, 100 ether);
        uint256 slashId = _propose(alice, 10 ether);
        vm.expectEmit(address(staking));
        emit IStaking.SlashCancelled(slashId, alice);
        vm.prank(governor);
        staking.cancelSlash(slashId);
        assertEq(uint8(staking.slashProposal(slashId).status), uint8(IStaking.SlashStatus.Cancelled));
        _requestUnstake(alice, 100 ether);
        vm.prank(slasher);
        vm.expectRevert(
            abi.encodeWithSelector(IStaking.SlashNotPending.selector, slashId, IStaking.SlashStatus.Cancelled)
        );
        staking.slash(slashId, 0, bytes32(0));
    }

    function test_cancelSlash_ofAReplacedProposalLeavesTheNewFreeze() public {
        _stake(alice, 100 ether);
        uint256 first = _propose(alice, 10 ether);
        vm.warp(block.timestamp + staking.disputeWindow());
        uint256 second = _propose(alice, 10 ether);
        vm.prank(governor);
        staking.cancelSlash(first);
        (uint256 pending,) = staking.freezeOf(alice);
        assertEq(pending, second);
    }

    function test_cancelSlash_isTheDaos() public {
        _stake(alice, 100 ether);
        uint256 slashId = _propose(alice, 10 ether);
        bytes32 role = staking.GOVERNOR_ROLE();
        vm.prank(slasher);
        vm.expectRevert(abi.encodeWithSelector(IAccessControl.AccessControlUnauthorizedAccount.selector, slasher, role));
        staking.cancelSlash(slashId);
    }

    // ================================================================ dispute window

    function test_setDisputeWindow_boundsAndEvent() public {
        assertEq(uint256(staking.disputeWindow()), 14 days);
        vm.expectEmit(address(staking));
        emit IStaking.DisputeWindowSet(3 days);
        vm.prank(governor);
        staking.setDisputeWindow(3 days);
        assertEq(uint256(staking.disputeWindow()), 3 days);

        uint64 min = staking.MIN_DISPUTE_WINDOW();
        uint64 max = staking.MAX_DISPUTE_WINDOW();
        vm.startPrank(governor);
        vm.expectRevert(abi.encodeWithSelector(IStaking.DisputeWindowOutOfRange.selector, min - 1, min, max));
        staking.setDisputeWindow(min - 1);
        vm.expectRevert(abi.encodeWithSelector(IStaking.DisputeWindowOutOfRange.selector, max + 1, min, max));
        staking.setDisputeWindow(max + 1);
        vm.stopPrank();
    }

    function test_setDisputeWindow_appliesToLaterProposalsOnly() public {
        _propose(alice, 1);
        (, uint64 before) = staking.freezeOf(alice);
        vm.prank(governor);
        staking.setDisputeWindow(1 days);
        (, uint64 after_) = staking.freezeOf(alice);
        assertEq(uint256(after_), uint256(before));
    }

    // ================================================================ resign

    function test_resign_leavesTheRoleAndLetsTheStakeUnbond() public {
        _setCurve(IStaking.Role.Operator, 100 ether, 0);
        _whitelist(alice, IStaking.Role.Operator);
        _stake(alice, 100 ether);
        vm.expectRevert(
            abi.encodeWithSelector(IStaking.StakeBelowRequired.selector, alice, IStaking.Role.Operator, 0, 100 ether)
        );
        _requestUnstake(alice, 100 ether);

        vm.expectEmit(address(staking));
        emit IStaking.Whitelisted(alice, IStaking.Role.Operator, false);
        vm.expectEmit(address(staking));
        emit IStaking.Resigned(alice, IStaking.Role.Operator);
        vm.prank(alice);
        staking.resign(IStaking.Role.Operator);
        assertFalse(staking.isWhitelisted(alice, IStaking.Role.Operator));
        _requestUnstake(alice, 100 ether);
    }

    function test_resign_keepsTheOtherRoles() public {
        _whitelist(alice, IStaking.Role.Operator);
        _whitelist(alice, IStaking.Role.Broker);
        vm.prank(alice);
        staking.resign(IStaking.Role.Broker);
        assertTrue(staking.isWhitelisted(alice, IStaking.Role.Operator));
        assertFalse(staking.isWhitelisted(alice, IStaking.Role.Broker));
    }

    function test_resign_refusesARoleNotHeld() public {
        vm.prank(alice);
        vm.expectRevert(abi.encodeWithSelector(IStaking.NotWhitelisted.selector, alice, IStaking.Role.Consumer));
        staking.resign(IStaking.Role.Consumer);
    }

    function test_resign_whileFrozen_stillCannotUnbond() public {
        _setCurve(IStaking.Role.Operator, 100 ether, 0);
        _whitelist(alice, IStaking.Role.Operator);
        _stake(alice, 100 ether);
        uint256 slashId = _propose(alice, 50 ether);
        vm.prank(alice);
        staking.resign(IStaking.Role.Operator);
        vm.expectRevert(
            abi.encodeWithSelector(
                IStaking.StakeFrozen.selector, alice, slashId, uint64(block.timestamp) + staking.disputeWindow()
            )
        );
        _requestUnstake(alice, 100 ether);
    }

    /// @dev The issue's freeze by curve: once the DAO raised a curve out of reach, a whitelisted
    ///      operator could not leave. Now the curve is bounded and the operator can resign.
    function test_anOperatorCanLeaveAfterTheCurveRose() public {
        _setCurve(IStaking.Role.Operator, 100 ether, 0);
        _whitelist(alice, IStaking.Role.Operator);
        _stake(alice, 100 ether);
        _setCurve(IStaking.Role.Operator, 1_000_000 ether, 0);
        vm.prank(alice);
        staking.resign(IStaking.Role.Operator);
        _requestUnstake(alice, 100 ether);
        vm.warp(block.timestamp + staking.unbondingPeriod());
        vm.prank(alice);
        staking.withdraw();
        assertEq(token.balanceOf(alice), FUNDS);
    }
}
