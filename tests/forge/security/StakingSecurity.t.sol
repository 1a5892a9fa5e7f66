// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {IAccessControl} from "@openzeppelin/contracts/access/IAccessControl.sol";
import {IStaking} from "../../../contracts/interfaces/IStaking.sol";
import {StakingBase} from "../staking/StakingBase.sol";

/// @notice Security review of Staking (docs/security.md): the threat-model statements about
///         roles, the slash window and the deployment defaults, pinned against the real contract.
contract StakingSecurityTest is StakingBase {
    uint256 internal constant BASE = 1_000 ether;

    /// @dev SEC-06: with no curve set (the deployment sets none) `requiredStake` is 0, so a
    ///      whitelisted account is active with nothing at stake, hence nothing to slash.
    function test_sec06_noCurveMeansActiveWithoutStake() public {
        _whitelist(alice, IStaking.Role.Operator);
        assertEq(staking.requiredStake(alice, IStaking.Role.Operator), 0);
        assertEq(_active(alice), 0);
        assertTrue(staking.isActive(alice, IStaking.Role.Operator));
    }

    /// @dev Accepted risk 6: only `requiredStake` is held while whitelisted; anything above it
    ///      unbonds at will and is out of reach once withdrawn after the unbonding period.
    function test_slashWindow_onlyTheRequiredStakeStaysWithinReach() public {
        _setCurve(IStaking.Role.Operator, BASE, 0);
        _whitelist(alice, IStaking.Role.Operator);
        _stake(alice, 10 * BASE);

        vm.expectRevert(
            abi.encodeWithSelector(IStaking.StakeBelowRequired.selector, alice, IStaking.Role.Operator, BASE - 1, BASE)
        );
        _requestUnstake(alice, 9 * BASE + 1);

        _requestUnstake(alice, 9 * BASE);
        vm.warp(block.timestamp + staking.unbondingPeriod());
        vm.prank(alice);
        staking.withdraw();
        _slash(alice, BASE + 1, 0, bytes32(0)); // takes what is there: the required stake
        assertEq(_active(alice), 0);
        assertEq(token.balanceOf(address(treasury)), BASE);
    }

    /// @dev Accepted risk 6: de-whitelisting lifts the requirement, so it must come after the
    ///      slash; until the unbonding period has run, the slash still reaches the stake.
    function test_deWhitelistBeforeSlash_freesTheStakeAfterUnbonding() public {
        _setCurve(IStaking.Role.Operator, BASE, 0);
        _whitelist(alice, IStaking.Role.Operator);
        _stake(alice, BASE);
        vm.prank(governor);
        staking.setWhitelisted(alice, IStaking.Role.Operator, false);
        _requestUnstake(alice, BASE);

        uint256 snap = vm.snapshotState();
        _slash(alice, BASE, 0, bytes32(0)); // still within reach while unbonding
        assertEq(_unbonding(alice), 0);
        vm.revertToState(snap);

        vm.warp(block.timestamp + staking.unbondingPeriod());
        vm.prank(alice);
        staking.withdraw();
        uint256 slashId = _propose(alice, 1);
        assertEq(_execute(slashId, 0, bytes32(0)), 0, "nothing left to take");
    }

    /// @dev A stolen SLASHER key takes a staker's whole stake (active and unbonding) into a root
    ///      of its own: the reason SLASHER belongs to the DAO's timelock. Revocation stops it.
    function test_stolenSlasher_takesTheWholeStakeUntilRevoked() public {
        _stake(alice, 100 ether);
        _requestUnstake(alice, 40 ether);
        address thief = makeAddr("thief");
        bytes32 root = keccak256(bytes.concat(keccak256(abi.encode(uint256(0), thief, uint256(100 ether)))));
        uint256 id = _slash(alice, 100 ether, 100 ether, root);
        staking.claimSlash(id, 0, thief, 100 ether, new bytes32[](0));
        assertEq(token.balanceOf(thief), 100 ether);
        assertEq(_active(alice) + _unbonding(alice), 0);

        bytes32 slasherRole = staking.SLASHER_ROLE();
        vm.prank(governor);
        staking.revokeRole(slasherRole, slasher);
        _stake(bob, 1 ether);
        vm.expectRevert(
            abi.encodeWithSelector(IAccessControl.AccessControlUnauthorizedAccount.selector, slasher, slasherRole)
        );
        _propose(bob, 1 ether);
    }

    /// @dev MARKET_ROLE belongs to the Marketplace only: whoever holds it sets any account's
    ///      usage, which makes it inactive and freezes its `requestUnstake` while whitelisted.
    function test_marketRole_freezesAWhitelistedStakersUnstaking() public {
        _setCurve(IStaking.Role.Consumer, BASE, 1 ether);
        _whitelist(alice, IStaking.Role.Consumer);
        _stake(alice, 2 * BASE);
        _setUsage(alice, staking.MAX_UNITS(), 3);
        assertFalse(staking.isActive(alice, IStaking.Role.Consumer));
        uint256 required = staking.requiredStake(alice, IStaking.Role.Consumer);
        vm.expectRevert(
            abi.encodeWithSelector(
                IStaking.StakeBelowRequired.selector, alice, IStaking.Role.Consumer, 2 * BASE - 1, required
            )
        );
        _requestUnstake(alice, 1);
        _setUsage(alice, 0, 0);
        _requestUnstake(alice, BASE);
    }

    /// @dev DEFAULT_ADMIN is the admin of every role: it can hand itself SLASHER (and thus the
    ///      stakes). A GOVERNOR without DEFAULT_ADMIN cannot.
    /// @dev GOVERNOR_ROLE rotates the operational keys (slasher, market); only the default
    ///      admin (the timelock, alone) makes a governor, so a governor cannot make another.
    function test_governorRotatesOperationalRoles_onlyTheDefaultAdminMakesGovernors() public {
        address council = makeAddr("council");
        bytes32 slasherRole = staking.SLASHER_ROLE();
        bytes32 governorRole = staking.GOVERNOR_ROLE();
        bytes32 adminRole = staking.DEFAULT_ADMIN_ROLE();
        assertEq(staking.getRoleAdmin(slasherRole), governorRole);
        assertEq(staking.getRoleAdmin(staking.MARKET_ROLE()), governorRole);
        assertEq(staking.getRoleAdmin(governorRole), adminRole);

        vm.prank(governor);
        staking.grantRole(slasherRole, council);
        assertTrue(staking.hasRole(slasherRole, council));
        vm.expectRevert(
            abi.encodeWithSelector(IAccessControl.AccessControlUnauthorizedAccount.selector, council, adminRole)
        );
        vm.prank(council);
        staking.grantRole(governorRole, council);
    }
}
