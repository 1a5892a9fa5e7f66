// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {
    IAccessControlDefaultAdminRules
} from "@openzeppelin/contracts/access/extensions/IAccessControlDefaultAdminRules.sol";
import {Test} from "../lib/Test.sol";
import {DimoToken} from "../../../contracts/token/DimoToken.sol";
import {Treasury} from "../../../contracts/governance/Treasury.sol";
import {IAccessControl} from "@openzeppelin/contracts/access/IAccessControl.sol";

contract TreasuryTest is Test {
    DimoToken internal token;
    Treasury internal treasury;
    address internal governor;
    address internal alice;

    event Received(address indexed token, address indexed from, uint256 amount);
    event Released(address indexed token, address indexed to, uint256 amount);

    function setUp() public {
        governor = makeAddr("governor");
        alice = makeAddr("alice");
        token = new DimoToken(address(this), 1_000 ether);
        treasury = new Treasury(governor);
        token.transfer(address(treasury), 100 ether);
    }

    function test_constructor_grantsGovernorRoles() public view {
        assertTrue(treasury.hasRole(treasury.GOVERNOR_ROLE(), governor));
        assertTrue(treasury.hasRole(treasury.DEFAULT_ADMIN_ROLE(), governor));
        assertEq(treasury.GOVERNOR_ROLE(), keccak256("GOVERNOR_ROLE"));
    }

    function test_constructor_revertsOnZeroGovernor() public {
        vm.expectRevert(
            abi.encodeWithSelector(
                IAccessControlDefaultAdminRules.AccessControlInvalidDefaultAdmin.selector, address(0)
            )
        );
        new Treasury(address(0));
    }

    function test_release_sendsAndEmits() public {
        vm.expectEmit(true, true, false, true, address(treasury));
        emit Released(address(token), alice, 40 ether);
        vm.prank(governor);
        treasury.release(address(token), alice, 40 ether);
        assertEq(token.balanceOf(alice), 40 ether);
        assertEq(token.balanceOf(address(treasury)), 60 ether);
    }

    function test_release_revertsWhenBalanceTooLow() public {
        vm.prank(governor);
        vm.expectRevert(
            abi.encodeWithSelector(Treasury.InsufficientBalance.selector, address(token), 100 ether, 101 ether)
        );
        treasury.release(address(token), alice, 101 ether);
    }

    function test_release_revertsOnZeroAmountOrAddress() public {
        vm.startPrank(governor);
        vm.expectRevert(Treasury.ZeroAmount.selector);
        treasury.release(address(token), alice, 0);
        vm.expectRevert(Treasury.ZeroAddress.selector);
        treasury.release(address(token), address(0), 1);
        vm.expectRevert(Treasury.ZeroAddress.selector);
        treasury.release(address(0), alice, 1);
        vm.stopPrank();
    }

    /// Every non-governor caller is refused with AccessControlUnauthorizedAccount.
    function testFuzz_release_revertsForNonGovernor(address caller) public {
        vm.assume(caller != governor);
        bytes32 role = treasury.GOVERNOR_ROLE();
        vm.prank(caller);
        vm.expectRevert(
            abi.encodeWithSelector(IAccessControl.AccessControlUnauthorizedAccount.selector, caller, role)
        );
        treasury.release(address(token), caller, 1 ether);
        assertEq(token.balanceOf(address(treasury)), 100 ether);
    }

    function test_release_revertsForNamedNonGovernors() public {
        address[3] memory callers = [alice, address(this), address(token)];
        bytes32 role = treasury.GOVERNOR_ROLE();
        for (uint256 i; i < callers.length; ++i) {
            vm.prank(callers[i]);
            vm.expectRevert(
                abi.encodeWithSelector(IAccessControl.AccessControlUnauthorizedAccount.selector, callers[i], role)
            );
            treasury.release(address(token), callers[i], 1);
        }
    }

    function test_grantRole_revertsForNonAdmin() public {
        bytes32 role = treasury.GOVERNOR_ROLE();
        bytes32 admin = treasury.DEFAULT_ADMIN_ROLE();
        vm.prank(alice);
        vm.expectRevert(
            abi.encodeWithSelector(IAccessControl.AccessControlUnauthorizedAccount.selector, alice, admin)
        );
        treasury.grantRole(role, alice);
    }

    function test_deposit_pullsAndEmits() public {
        token.approve(address(treasury), 5 ether);
        vm.expectEmit(true, true, false, true, address(treasury));
        emit Received(address(token), address(this), 5 ether);
        treasury.deposit(address(token), 5 ether);
        assertEq(token.balanceOf(address(treasury)), 105 ether);
    }

    function test_deposit_revertsOnZero() public {
        vm.expectRevert(Treasury.ZeroAmount.selector);
        treasury.deposit(address(token), 0);
        vm.expectRevert(Treasury.ZeroAddress.selector);
        treasury.deposit(address(0), 1);
    }

    function testFuzz_release_conserves(uint256 amount) public {
        amount = bound(amount, 1, 100 ether);
        vm.prank(governor);
        treasury.release(address(token), alice, amount);
        assertEq(token.balanceOf(alice) + token.balanceOf(address(treasury)), 100 ether);
    }
}
