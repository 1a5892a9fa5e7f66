// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {IAccessControl} from "@openzeppelin/contracts/access/IAccessControl.sol";
import {IGuardianPausable} from "../../../contracts/interfaces/IGuardianPausable.sol";
import {IStaking} from "../../../contracts/interfaces/IStaking.sol";
import {StakingBase} from "./StakingBase.sol";

/// @notice The access matrix: every restricted entry point against every kind of caller. Each
///         cell runs from the same state; only the role holder's call may succeed, every other
///         caller is refused with AccessControlUnauthorizedAccount(caller, role).
contract StakingAccessTest is StakingBase {
    struct Entry {
        string name;
        bytes data;
        bytes32 role;
    }

    function _entries() internal view returns (Entry[] memory entries) {
        entries = new Entry[](15);
        bytes32 gov = staking.GOVERNOR_ROLE();
        bytes32 admin = staking.DEFAULT_ADMIN_ROLE();
        entries[0] = Entry(
            "setWhitelisted", abi.encodeCall(IStaking.setWhitelisted, (alice, IStaking.Role.Operator, true)), gov
        );
        entries[1] = Entry("setCurve", abi.encodeCall(IStaking.setCurve, (IStaking.Role.Broker, 1, 2)), gov);
        entries[2] = Entry("setTierMultiplier", abi.encodeCall(IStaking.setTierMultiplier, (1, 12_000)), gov);
        entries[3] = Entry("setUnbondingPeriod", abi.encodeCall(IStaking.setUnbondingPeriod, (3 days)), gov);
        entries[4] = Entry("setClaimWindow", abi.encodeCall(IStaking.setClaimWindow, (30 days)), gov);
        entries[5] = Entry("setUsage", abi.encodeCall(IStaking.setUsage, (alice, 10, 2)), staking.MARKET_ROLE());
        entries[6] = Entry(
            "proposeSlash",
            abi.encodeCall(IStaking.proposeSlash, (alice, 1 ether, IStaking.SlashSubject.Order, 3, "x")),
            staking.SLASHER_ROLE()
        );
        entries[7] =
            Entry("grantRole", abi.encodeCall(IAccessControl.grantRole, (staking.SLASHER_ROLE(), stranger)), gov);
        entries[8] =
            Entry("revokeRole", abi.encodeCall(IAccessControl.revokeRole, (staking.MARKET_ROLE(), market)), gov);
        entries[9] = Entry("grantRole(GOVERNOR)", abi.encodeCall(IAccessControl.grantRole, (gov, stranger)), admin);
        // Slash 1 is the proposal against bob made in test_accessMatrix's state.
        entries[10] = Entry("slash", abi.encodeCall(IStaking.slash, (1, 0, bytes32(0))), staking.SLASHER_ROLE());
        entries[11] = Entry("cancelSlash", abi.encodeCall(IStaking.cancelSlash, (1)), gov);
        entries[12] = Entry("setDisputeWindow", abi.encodeCall(IStaking.setDisputeWindow, (3 days)), gov);
        entries[13] = Entry("pause", abi.encodeCall(IGuardianPausable.pause, (1 days)), staking.GUARDIAN_ROLE());
        // rearmGuardian needs a spent guardian: its access is in GuardianPausable.t.sol.
        entries[14] = Entry(
            "grantRole(GUARDIAN)", abi.encodeCall(IAccessControl.grantRole, (staking.GUARDIAN_ROLE(), stranger)), gov
        );
    }

    function _callers() internal view returns (address[] memory callers) {
        callers = new address[](7);
        (callers[0], callers[1], callers[2]) = (governor, slasher, market);
        (callers[3], callers[4], callers[5]) = (stranger, alice, address(treasury));
        callers[6] = guardian;
    }

    address internal guardian = makeAddr("guardian");

    function test_accessMatrix() public {
        _stake(alice, 10 ether);
        _stake(bob, 10 ether);
        _propose(bob, 1 ether);
        bytes32 guardianRole = staking.GUARDIAN_ROLE();
        vm.prank(governor);
        staking.grantRole(guardianRole, guardian);
        Entry[] memory entries = _entries();
        address[] memory callers = _callers();
        uint256 allowedCells;
        for (uint256 e; e < entries.length; ++e) {
            for (uint256 c; c < callers.length; ++c) {
                uint256 snapshot = vm.snapshotState();
                bool holder = staking.hasRole(entries[e].role, callers[c]);
                vm.prank(callers[c]);
                (bool ok, bytes memory returned) = address(staking).call(entries[e].data);
                if (holder) {
                    assertTrue(ok, string.concat(entries[e].name, " refused its role holder"));
                    ++allowedCells;
                } else {
                    assertFalse(ok, string.concat(entries[e].name, " let a caller without the role through"));
                    bytes memory expected = abi.encodeWithSelector(
                        IAccessControl.AccessControlUnauthorizedAccount.selector, callers[c], entries[e].role
                    );
                    assertEq(keccak256(returned), keccak256(expected), entries[e].name);
                }
                vm.revertToState(snapshot);
            }
        }
        // governor: 6 setters, cancelSlash and 4 admin calls; market: setUsage; slasher:
        // proposeSlash and slash; guardian: pause.
        assertEq(allowedCells, 15);
    }

    function test_accessMatrix_openEntryPointsNeedNoRole() public {
        // stake, requestUnstake, withdraw, claimSlash and sweepSlash are open to anyone: a
        // caller without any role gets past access control and meets the function's own checks.
        vm.startPrank(stranger);
        vm.expectRevert(IStaking.ZeroAmount.selector);
        staking.stake(0);
        vm.expectRevert(IStaking.ZeroAmount.selector);
        staking.requestUnstake(0);
        vm.expectRevert(abi.encodeWithSelector(IStaking.NothingUnbonding.selector, stranger));
        staking.withdraw();
        vm.expectRevert(abi.encodeWithSelector(IStaking.NoImpactPool.selector, 1));
        staking.claimSlash(1, 0, stranger, 1, new bytes32[](0));
        vm.expectRevert(abi.encodeWithSelector(IStaking.NoImpactPool.selector, 1));
        staking.sweepSlash(1);
        vm.stopPrank();
    }

    function test_revokedSlasherLosesAccess() public {
        _stake(alice, 10 ether);
        vm.startPrank(governor);
        staking.revokeRole(staking.SLASHER_ROLE(), slasher);
        vm.stopPrank();
        bytes32 role = staking.SLASHER_ROLE();
        vm.prank(slasher);
        vm.expectRevert(abi.encodeWithSelector(IAccessControl.AccessControlUnauthorizedAccount.selector, slasher, role));
        staking.proposeSlash(alice, 1 ether, IStaking.SlashSubject.Product, 1, "x");
    }
}
