// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {IAccessControl} from "@openzeppelin/contracts/access/IAccessControl.sol";
import {IGuardianPausable} from "../../../contracts/interfaces/IGuardianPausable.sol";
import {IStaking} from "../../../contracts/interfaces/IStaking.sol";
import {StakingBase} from "../staking/StakingBase.sol";

/// @notice The guardian's bounded brake, on Staking's new stakes: at most MAX_PAUSE, once until
///         the DAO re-arms it, lifted by the guardian or the DAO, and never a way to move funds.
contract GuardianPausableTest is StakingBase {
    address internal guardian;
    bytes32 internal guardianRole;

    function setUp() public override {
        super.setUp();
        guardian = makeAddr("guardian");
        guardianRole = staking.GUARDIAN_ROLE();
        vm.prank(governor);
        staking.grantRole(guardianRole, guardian);
    }

    function _pause(uint64 duration) internal {
        vm.prank(guardian);
        staking.pause(duration);
    }

    function test_guardianRole_isTheSharedIdentifier() public view {
        assertEq(guardianRole, keccak256("GUARDIAN_ROLE"));
        assertEq(staking.getRoleAdmin(guardianRole), staking.GOVERNOR_ROLE(), "the DAO (GOVERNOR) grants and revokes guardians");
    }

    function test_pause_refusesNewStakesUntilItEnds() public {
        uint64 until = uint64(block.timestamp) + 3 days;
        vm.expectEmit(address(staking));
        emit IGuardianPausable.GuardianPaused(guardian, until);
        _pause(3 days);
        assertTrue(staking.paused());
        assertEq(uint256(staking.pausedUntil()), uint256(until));
        assertFalse(staking.guardianArmed());

        vm.startPrank(alice);
        token.approve(address(staking), 1 ether);
        vm.expectRevert(abi.encodeWithSelector(IGuardianPausable.GuardianPauseActive.selector, until));
        staking.stake(1 ether);
        vm.expectRevert(abi.encodeWithSelector(IGuardianPausable.GuardianPauseActive.selector, until));
        staking.stakeWithPermit(1 ether, block.timestamp, 0, bytes32(0), bytes32(0));
        vm.stopPrank();

        vm.warp(until);
        assertFalse(staking.paused());
        _stake(alice, 1 ether);
    }

    /// @dev A pause never holds anyone's funds: exits, slashes and claims go on.
    function test_pause_neverHoldsFunds() public {
        _stake(alice, 100 ether);
        _requestUnstake(alice, 40 ether);
        vm.warp(block.timestamp + staking.unbondingPeriod());
        _pause(staking.MAX_PAUSE());
        vm.prank(alice);
        staking.withdraw();
        _requestUnstake(alice, 10 ether);
        _slash(alice, 5 ether, 0, bytes32(0));
        assertEq(token.balanceOf(alice), FUNDS - 100 ether + 40 ether);
        assertEq(token.balanceOf(address(treasury)), 5 ether);
    }

    /// @dev The guardian holds no role that moves tokens: every fund-moving entry point refuses it.
    function test_guardian_cannotMoveFunds() public {
        _stake(alice, 100 ether);
        _pause(1 days);
        bytes32 slasherRole = staking.SLASHER_ROLE();
        bytes32 governorRole = staking.GOVERNOR_ROLE();
        bytes32 adminRole = staking.DEFAULT_ADMIN_ROLE();
        vm.startPrank(guardian);
        vm.expectRevert(
            abi.encodeWithSelector(IAccessControl.AccessControlUnauthorizedAccount.selector, guardian, slasherRole)
        );
        staking.proposeSlash(alice, 1, IStaking.SlashSubject.Product, 1, "x");
        vm.expectRevert(
            abi.encodeWithSelector(IAccessControl.AccessControlUnauthorizedAccount.selector, guardian, slasherRole)
        );
        staking.slash(1, 0, bytes32(0));
        vm.expectRevert(
            abi.encodeWithSelector(IAccessControl.AccessControlUnauthorizedAccount.selector, guardian, governorRole)
        );
        staking.cancelSlash(1);
        vm.expectRevert(
            abi.encodeWithSelector(IAccessControl.AccessControlUnauthorizedAccount.selector, guardian, governorRole)
        );
        staking.grantRole(slasherRole, guardian); // GOVERNOR administers SLASHER (DaoAccessControl)
        vm.expectRevert(
            abi.encodeWithSelector(IAccessControl.AccessControlUnauthorizedAccount.selector, guardian, adminRole)
        );
        staking.grantRole(governorRole, guardian); // only the default admin makes governors
        vm.expectRevert(abi.encodeWithSelector(IStaking.NothingUnbonding.selector, guardian));
        staking.withdraw();
        vm.stopPrank();
        assertEq(token.balanceOf(guardian), 0);
        assertEq(token.balanceOf(address(staking)), 100 ether);
    }

    function test_pause_isBoundedByMaxPause() public {
        uint64 max = staking.MAX_PAUSE();
        assertEq(uint256(max), 14 days);
        vm.startPrank(guardian);
        vm.expectRevert(abi.encodeWithSelector(IGuardianPausable.PauseDurationOutOfRange.selector, max + 1, max));
        staking.pause(max + 1);
        vm.expectRevert(abi.encodeWithSelector(IGuardianPausable.PauseDurationOutOfRange.selector, 0, max));
        staking.pause(0);
        staking.pause(max);
        vm.stopPrank();
        assertEq(uint256(staking.pausedUntil()), block.timestamp + max);
    }

    function testFuzz_pause_neverOutlastsMaxPause(uint64 duration) public {
        uint64 max = staking.MAX_PAUSE();
        vm.prank(guardian);
        if (duration == 0 || duration > max) {
            vm.expectRevert(abi.encodeWithSelector(IGuardianPausable.PauseDurationOutOfRange.selector, duration, max));
            staking.pause(duration);
            assertFalse(staking.paused());
        } else {
            staking.pause(duration);
            vm.warp(block.timestamp + max);
            assertFalse(staking.paused(), "a pause outlasted MAX_PAUSE");
        }
    }

    function test_pause_cannotBeRenewedWithoutTheDao() public {
        uint64 pausedAt = uint64(block.timestamp);
        _pause(14 days);
        vm.warp(block.timestamp + 14 days);
        vm.prank(guardian);
        vm.expectRevert(abi.encodeWithSelector(IGuardianPausable.GuardianDisarmed.selector, pausedAt));
        staking.pause(14 days);

        // Even lifting the pause early does not re-arm the guardian.
        vm.warp(block.timestamp + 1 days);
        vm.prank(guardian);
        vm.expectRevert(abi.encodeWithSelector(IGuardianPausable.GuardianDisarmed.selector, pausedAt));
        staking.pause(1);

        // A second guardian shares the same single pause.
        address other = makeAddr("other guardian");
        vm.prank(governor);
        staking.grantRole(guardianRole, other);
        vm.prank(other);
        vm.expectRevert(abi.encodeWithSelector(IGuardianPausable.GuardianDisarmed.selector, pausedAt));
        staking.pause(1);

        vm.expectEmit(address(staking));
        emit IGuardianPausable.GuardianRearmed(governor);
        vm.prank(governor);
        staking.rearmGuardian();
        assertTrue(staking.guardianArmed());
        _pause(1 days);
        assertTrue(staking.paused());
    }

    function test_rearmGuardian_isTheDaos() public {
        _pause(1 days);
        bytes32 governorRole = staking.GOVERNOR_ROLE();
        vm.prank(guardian);
        vm.expectRevert(
            abi.encodeWithSelector(IAccessControl.AccessControlUnauthorizedAccount.selector, guardian, governorRole)
        );
        staking.rearmGuardian();
    }

    function test_rearmGuardian_refusesAnArmedGuardian() public {
        vm.prank(governor);
        vm.expectRevert(IGuardianPausable.GuardianAlreadyArmed.selector);
        staking.rearmGuardian();
    }

    function test_unpause_byTheGuardianOrTheDao() public {
        _pause(5 days);
        vm.expectEmit(address(staking));
        emit IGuardianPausable.GuardianUnpaused(guardian);
        vm.prank(guardian);
        staking.unpause();
        assertFalse(staking.paused());
        assertEq(uint256(staking.pausedUntil()), 0);
        _stake(alice, 1 ether);

        vm.prank(governor);
        staking.rearmGuardian();
        _pause(5 days);
        vm.prank(governor);
        staking.unpause();
        assertFalse(staking.paused());
    }

    function test_unpause_refusesOthersAndNoPause() public {
        _pause(5 days);
        vm.prank(stranger);
        vm.expectRevert(abi.encodeWithSelector(IGuardianPausable.NotGuardianOrGovernor.selector, stranger));
        staking.unpause();
        vm.prank(slasher);
        vm.expectRevert(abi.encodeWithSelector(IGuardianPausable.NotGuardianOrGovernor.selector, slasher));
        staking.unpause();

        vm.warp(block.timestamp + 5 days);
        vm.prank(governor);
        vm.expectRevert(IGuardianPausable.NotPaused.selector);
        staking.unpause();
    }

    function test_aRevokedGuardianCannotPause() public {
        vm.prank(governor);
        staking.revokeRole(guardianRole, guardian);
        vm.prank(guardian);
        vm.expectRevert(
            abi.encodeWithSelector(IAccessControl.AccessControlUnauthorizedAccount.selector, guardian, guardianRole)
        );
        staking.pause(1 days);
    }
}
