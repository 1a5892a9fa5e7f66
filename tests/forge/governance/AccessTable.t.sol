// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {IAccessControl} from "@openzeppelin/contracts/access/IAccessControl.sol";
import {
    IAccessControlDefaultAdminRules
} from "@openzeppelin/contracts/access/extensions/IAccessControlDefaultAdminRules.sol";
import {IGovernor} from "@openzeppelin/contracts/governance/IGovernor.sol";
import {TimelockController} from "@openzeppelin/contracts/governance/TimelockController.sol";
import {IGuardianPausable} from "../../../contracts/interfaces/IGuardianPausable.sol";
import {IStaking} from "../../../contracts/interfaces/IStaking.sol";
import {Roles} from "../../../contracts/libraries/Roles.sol";
import {ProductId} from "../../../contracts/types/ProductId.sol";
import {DaoAccessControl} from "../../../contracts/governance/DaoAccessControl.sol";
import {GovernanceBase} from "./GovernanceBase.sol";

/// @notice The access table of the whole protocol as deployed for production: every privileged
///         function of every contract (role administration included) against every role holder
///         and an outsider. Each cell runs from the same state. A caller the function admits
///         gets past access control (and, where the state allows, succeeds); every other caller
///         is refused with the exact error that names it and what it lacks.
contract AccessTableTest is GovernanceBase {
    /// @dev How a function decides who may call it.
    enum Gate {
        Role, // AccessControl: AccessControlUnauthorizedAccount(caller, role)
        TimelockItself, // TimelockController.onlyRoleOrOpenRole / updateDelay: TimelockUnauthorizedCaller
        GovernorExecutor, // Governor.onlyGovernance: GovernorOnlyExecutor(caller)
        GovernorOrGuardian, // GOVERNOR or GUARDIAN: Marketplace.revokePendingRoot's AccessControl error
        GuardianOrGovernorUnpause, // GuardianPausable.unpause: NotGuardianOrGovernor(caller)
        Nobody // grantRole(DEFAULT_ADMIN_ROLE): AccessControlEnforcedDefaultAdminRules, for anyone
    }

    struct Entry {
        string name;
        address target;
        bytes data;
        Gate gate;
        bytes32 role;
        /// @dev The admitted caller's call succeeds from the table's state (else it only gets
        ///      past access control and meets the function's own checks).
        bool succeeds;
    }

    Entry[] internal _table;
    address internal operatorAccount;

    function setUp() public override {
        super.setUp();
        operatorAccount = makeAddr("operator");
        vm.startPrank(address(timelock));
        vehicles.addConnection("smartcar", makeAddr("oracle"));
        vm.stopPrank();
        _stake(alice, 10 ether);
        _build();
    }

    function _add(string memory name, address target, bytes memory data, bytes32 role, bool succeeds) internal {
        _table.push(Entry(name, target, data, Gate.Role, role, succeeds));
    }

    function _build() internal {
        bytes32 gov = treasury.GOVERNOR_ROLE();
        bytes32 admin = treasury.DEFAULT_ADMIN_ROLE();
        // Treasury
        _add(
            "Treasury.release", address(treasury), abi.encodeCall(treasury.release, (address(token), bob, 1)), gov, true
        );
        // VehicleId
        _add(
            "VehicleId.addConnection",
            address(vehicles),
            abi.encodeCall(vehicles.addConnection, ("tesla", bob)),
            gov,
            true
        );
        _add(
            "VehicleId.setConnection",
            address(vehicles),
            abi.encodeCall(vehicles.setConnection, (1, bob, false)),
            gov,
            true
        );
        _add(
            "VehicleId.mint",
            address(vehicles),
            abi.encodeCall(vehicles.mint, (bob, 1, keccak256("VIN"))),
            vehicles.MINTER_ROLE(),
            true
        );
        // AftermarketDevice
        _add(
            "AftermarketDevice.setManufacturer",
            address(devices),
            abi.encodeCall(devices.setManufacturer, (bob, true)),
            gov,
            true
        );
        // Staking
        _add(
            "Staking.setWhitelisted",
            address(staking),
            abi.encodeCall(IStaking.setWhitelisted, (bob, IStaking.Role.Operator, true)),
            gov,
            true
        );
        _add(
            "Staking.setCurve",
            address(staking),
            abi.encodeCall(IStaking.setCurve, (IStaking.Role.Broker, 1, 2)),
            gov,
            true
        );
        _add(
            "Staking.setTierMultiplier",
            address(staking),
            abi.encodeCall(IStaking.setTierMultiplier, (1, 12_000)),
            gov,
            true
        );
        _add(
            "Staking.setUnbondingPeriod",
            address(staking),
            abi.encodeCall(IStaking.setUnbondingPeriod, (3 days)),
            gov,
            true
        );
        _add("Staking.setClaimWindow", address(staking), abi.encodeCall(IStaking.setClaimWindow, (30 days)), gov, true);
        _add(
            "Staking.setUsage",
            address(staking),
            abi.encodeCall(IStaking.setUsage, (alice, 10, 2)),
            staking.MARKET_ROLE(),
            true
        );
        _add(
            "Staking.proposeSlash",
            address(staking),
            abi.encodeCall(IStaking.proposeSlash, (alice, 1 ether, IStaking.SlashSubject.Product, 1, "x")),
            staking.SLASHER_ROLE(),
            true
        );
        _add(
            "Staking.slash",
            address(staking),
            abi.encodeCall(IStaking.slash, (1, 0, bytes32(0))),
            staking.SLASHER_ROLE(),
            false // no proposal 1: the slasher meets SlashNotPending
        );
        _add("Staking.cancelSlash", address(staking), abi.encodeCall(IStaking.cancelSlash, (1)), gov, false);
        _add(
            "Staking.setDisputeWindow",
            address(staking),
            abi.encodeCall(IStaking.setDisputeWindow, (3 days)),
            gov,
            true
        );
        _add(
            "Staking.rearmGuardian",
            address(staking),
            abi.encodeCall(IGuardianPausable.rearmGuardian, ()),
            gov,
            false // never paused: GuardianAlreadyArmed
        );
        _add(
            "Staking.pause",
            address(staking),
            abi.encodeCall(IGuardianPausable.pause, (1 days)),
            staking.GUARDIAN_ROLE(),
            true
        );
        _table.push(
            Entry(
                "Staking.unpause",
                address(staking),
                abi.encodeCall(IGuardianPausable.unpause, ()),
                Gate.GuardianOrGovernorUnpause,
                bytes32(0),
                false // not paused: NotPaused
            )
        );
        // DataProducts
        _add(
            "DataProducts.setProtocolFeeBps",
            address(products),
            abi.encodeCall(products.setProtocolFeeBps, (250)),
            gov,
            true
        );
        // Marketplace
        _add("Marketplace.setSteward", address(market), abi.encodeCall(market.setSteward, (bob, true)), gov, true);
        _add(
            "Marketplace.proposeRoot",
            address(market),
            abi.encodeCall(market.proposeRoot, (bytes32(uint256(1)), new ProductId[](0), new uint256[](0), bytes32(0))),
            market.SETTLER_ROLE(),
            true
        );
        _add(
            "Marketplace.deliverDataset",
            address(market),
            abi.encodeCall(market.deliverDataset, (1, bytes32(0))),
            market.SETTLER_ROLE(),
            false // no order 1: UnknownOrder
        );
        _add("Marketplace.setRootDelay", address(market), abi.encodeCall(market.setRootDelay, (2 days)), gov, true);
        _table.push(
            Entry(
                "Marketplace.revokePendingRoot",
                address(market),
                abi.encodeCall(market.revokePendingRoot, ()),
                Gate.GovernorOrGuardian,
                bytes32(0),
                false // nothing pending: NoPendingRoot
            )
        );
        // Role administration, the same on every role-holding contract.
        address[6] memory governed = [
            address(treasury), address(vehicles), address(devices), address(staking), address(products), address(market)
        ];
        string[6] memory names =
            ["Treasury", "VehicleId", "AftermarketDevice", "Staking", "DataProducts", "Marketplace"];
        bytes32 slasherRole = staking.SLASHER_ROLE();
        for (uint256 i; i < governed.length; ++i) {
            address target = governed[i];
            _add(
                string.concat(names[i], ".grantRole(SLASHER)"),
                target,
                abi.encodeCall(IAccessControl.grantRole, (slasherRole, bob)),
                gov,
                true
            );
            _add(
                string.concat(names[i], ".revokeRole(SLASHER)"),
                target,
                abi.encodeCall(IAccessControl.revokeRole, (slasherRole, slasher)),
                gov,
                true
            );
            _add(
                string.concat(names[i], ".grantRole(GOVERNOR)"),
                target,
                abi.encodeCall(IAccessControl.grantRole, (gov, bob)),
                admin,
                true
            );
            _add(
                string.concat(names[i], ".revokeRole(GOVERNOR)"),
                target,
                abi.encodeCall(IAccessControl.revokeRole, (gov, address(timelock))),
                admin,
                true
            );
            _add(
                string.concat(names[i], ".beginDefaultAdminTransfer"),
                target,
                abi.encodeCall(IAccessControlDefaultAdminRules.beginDefaultAdminTransfer, (bob)),
                admin,
                true
            );
            _add(
                string.concat(names[i], ".changeDefaultAdminDelay"),
                target,
                abi.encodeCall(IAccessControlDefaultAdminRules.changeDefaultAdminDelay, (1 days)),
                admin,
                true
            );
            _table.push(
                Entry(
                    string.concat(names[i], ".grantRole(DEFAULT_ADMIN)"),
                    target,
                    abi.encodeCall(IAccessControl.grantRole, (admin, bob)),
                    Gate.Nobody,
                    admin,
                    false
                )
            );
        }
        // The timelock
        _add(
            "DimoTimelock.schedule",
            address(timelock),
            abi.encodeCall(timelock.schedule, (address(treasury), 0, "", 0, 0, TIMELOCK_DELAY)),
            timelock.PROPOSER_ROLE(),
            true
        );
        _add(
            "DimoTimelock.cancel",
            address(timelock),
            abi.encodeCall(timelock.cancel, (bytes32(uint256(1)))),
            timelock.CANCELLER_ROLE(),
            false // nothing pending: the canceller meets TimelockUnexpectedOperationState
        );
        _add(
            "DimoTimelock.grantRole(PROPOSER)",
            address(timelock),
            abi.encodeCall(IAccessControl.grantRole, (timelock.PROPOSER_ROLE(), bob)),
            timelock.DEFAULT_ADMIN_ROLE(),
            true
        );
        _table.push(
            Entry(
                "DimoTimelock.updateDelay",
                address(timelock),
                abi.encodeCall(timelock.updateDelay, (0)),
                Gate.TimelockItself,
                bytes32(0),
                true
            )
        );
        // The Governor's own settings: only its executor (the timelock), inside a proposal.
        bytes[6] memory governance = [
            abi.encodeCall(governor.setVotingDelay, (2 days)),
            abi.encodeCall(governor.setVotingPeriod, (2 days)),
            abi.encodeCall(governor.setProposalThreshold, (1)),
            abi.encodeCall(governor.updateQuorumNumerator, (10)),
            abi.encodeCall(governor.updateTimelock, (timelock)),
            abi.encodeCall(governor.relay, (address(treasury), 0, ""))
        ];
        string[6] memory governanceNames = [
            "setVotingDelay",
            "setVotingPeriod",
            "setProposalThreshold",
            "updateQuorumNumerator",
            "updateTimelock",
            "relay"
        ];
        for (uint256 i; i < governance.length; ++i) {
            _table.push(
                Entry(
                    string.concat("DimoGovernor.", governanceNames[i]),
                    address(governor),
                    governance[i],
                    Gate.GovernorExecutor,
                    bytes32(0),
                    false // outside a proposal even the executor meets an empty governance queue
                )
            );
        }
    }

    function _callers() internal view returns (address[8] memory) {
        return [address(timelock), address(governor), minter, slasher, address(market), settler, outsider, alice];
    }

    /// @return admitted whether access control lets `caller` through; refusal the error otherwise
    function _gate(Entry memory entry, address caller) internal view returns (bool admitted, bytes memory refusal) {
        if (entry.gate == Gate.Role) {
            admitted = IAccessControl(entry.target).hasRole(entry.role, caller);
            refusal =
                abi.encodeWithSelector(IAccessControl.AccessControlUnauthorizedAccount.selector, caller, entry.role);
        } else if (entry.gate == Gate.TimelockItself) {
            admitted = caller == address(timelock);
            refusal = abi.encodeWithSelector(TimelockController.TimelockUnauthorizedCaller.selector, caller);
        } else if (entry.gate == Gate.GovernorOrGuardian || entry.gate == Gate.GuardianOrGovernorUnpause) {
            IAccessControl target = IAccessControl(entry.target);
            admitted = target.hasRole(Roles.GOVERNOR_ROLE, caller) || target.hasRole(Roles.GUARDIAN_ROLE, caller);
            refusal = entry.gate == Gate.GovernorOrGuardian
                ? abi.encodeWithSelector(
                    IAccessControl.AccessControlUnauthorizedAccount.selector, caller, Roles.GUARDIAN_ROLE
                )
                : abi.encodeWithSelector(IGuardianPausable.NotGuardianOrGovernor.selector, caller);
        } else if (entry.gate == Gate.GovernorExecutor) {
            admitted = caller == address(timelock);
            refusal = abi.encodeWithSelector(IGovernor.GovernorOnlyExecutor.selector, caller);
        } else {
            refusal =
                abi.encodeWithSelector(IAccessControlDefaultAdminRules.AccessControlEnforcedDefaultAdminRules.selector);
        }
    }

    function test_accessTable() public {
        address[8] memory callers = _callers();
        uint256 admittedCells;
        uint256 refusedCells;
        for (uint256 e; e < _table.length; ++e) {
            Entry memory entry = _table[e];
            for (uint256 c; c < callers.length; ++c) {
                uint256 snapshot = vm.snapshotState();
                (bool admitted, bytes memory refusal) = _gate(entry, callers[c]);
                vm.prank(callers[c]);
                (bool ok, bytes memory returned) = entry.target.call(entry.data);
                if (admitted) {
                    if (entry.succeeds) assertTrue(ok, string.concat(entry.name, " refused its holder"));
                    bytes4 unauthorized = IAccessControl.AccessControlUnauthorizedAccount.selector;
                    assertTrue(ok || bytes4(returned) != unauthorized, string.concat(entry.name, " holder refused"));
                    ++admittedCells;
                } else {
                    assertFalse(ok, string.concat(entry.name, " let an unentitled caller through"));
                    assertEq(keccak256(returned), keccak256(refusal), entry.name);
                    ++refusedCells;
                }
                vm.revertToState(snapshot);
            }
        }
        // 24 functions + 7 administration rows x 6 contracts + 4 timelock + 6 governor rows.
        assertEq(_table.length, 24 + 7 * 6 + 4 + 6);
        assertEq(admittedCells + refusedCells, _table.length * callers.length);
        // Admitted: the timelock everywhere but grantRole(DEFAULT_ADMIN) (6 rows), the
        // proposer/canceller rows (2), where the Governor is, the 6 hot-key rows (mint,
        // proposeSlash, slash, setUsage, proposeRoot, deliverDataset), where only the minter,
        // slasher, Marketplace, settler are, and the guardian's pause (1), where no caller is.
        assertEq(admittedCells, (_table.length - 6 - 2 - 6 - 1) + 2 + 6);
    }

    /// @dev The outsider row, fuzzed: no address without a role passes any gate.
    function testFuzz_anyOutsiderIsRefusedEverywhere(address caller) public {
        address[8] memory callers = _callers();
        for (uint256 c; c < callers.length; ++c) {
            vm.assume(caller != callers[c]);
        }
        vm.assume(caller != bob && caller != address(this));
        for (uint256 e; e < _table.length; ++e) {
            Entry memory entry = _table[e];
            (bool admitted, bytes memory refusal) = _gate(entry, caller);
            assertFalse(admitted);
            vm.prank(caller);
            (bool ok, bytes memory returned) = entry.target.call(entry.data);
            assertFalse(ok, entry.name);
            assertEq(keccak256(returned), keccak256(refusal), entry.name);
        }
    }

    function test_adminDelay_isTheConstant() public view {
        assertEq(treasury.defaultAdminDelay(), treasury.ADMIN_TRANSFER_DELAY());
        assertEq(DaoAccessControl(address(market)).ADMIN_TRANSFER_DELAY(), 3 days);
    }
}
