// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {IVehicleId} from "../../../contracts/interfaces/IVehicleId.sol";
import {Permissions} from "../../../contracts/libraries/Permissions.sol";
import {IdentityBase} from "./IdentityBase.sol";

/// @notice Key managers: they cannot shorten, rewrite or revoke a key the owner issued, and
///         losing MANAGE_KEYS voids every key they granted (a per-manager epoch), not the owner's.
contract ManagerKeysTest is IdentityBase {
    uint256 internal constant LOCK = Permissions.LOCK;
    uint256 internal constant UNLOCK = Permissions.UNLOCK;
    uint256 internal vehicleId;

    function setUp() public override {
        super.setUp();
        vehicleId = _mintTo(owner);
        _grantAs(owner, vehicleId, alice, MANAGE_KEYS | LOCK | UNLOCK, FOREVER);
    }

    function test_manager_cannotShortenAnOwnerIssuedKey() public {
        _grantAs(owner, vehicleId, bob, LOCK, FOREVER);
        vm.expectRevert(abi.encodeWithSelector(IVehicleId.KeyIssuedByOwner.selector, vehicleId, bob));
        vm.prank(alice);
        vehicles.grant(vehicleId, bob, LOCK, uint64(block.timestamp + 1), keccak256("worse terms"));
        (uint256 p, uint64 e, bytes32 t) = vehicles.grantOf(vehicleId, bob);
        assertEq(p, LOCK);
        assertEq(e, FOREVER);
        assertEq(t, TERMS);
        (address granter, bool byOwner) = vehicles.granterOf(vehicleId, bob);
        assertEq(granter, owner);
        assertTrue(byOwner);
    }

    function test_manager_canReplaceAKeyAManagerGranted() public {
        _grantAs(alice, vehicleId, bob, LOCK | UNLOCK, FOREVER);
        _grantAs(alice, vehicleId, bob, LOCK, uint64(block.timestamp + 1 days));
        assertEq(vehicles.permissionsOf(vehicleId, bob), LOCK);
        (address granter, bool byOwner) = vehicles.granterOf(vehicleId, bob);
        assertEq(granter, alice);
        assertFalse(byOwner);
    }

    function test_revokingAManager_voidsItsKeysButNotTheOwners() public {
        _grantAs(alice, vehicleId, bob, LOCK, FOREVER);
        _grantAs(owner, vehicleId, carol, UNLOCK, FOREVER);
        vm.expectEmit(true, true, false, true, address(vehicles));
        emit IVehicleId.ManagerKeysVoided(vehicleId, alice, 1);
        vm.prank(owner);
        vehicles.revoke(vehicleId, alice);
        assertEq(vehicles.permissionsOf(vehicleId, bob), 0);
        (uint256 p,,) = vehicles.grantOf(vehicleId, bob);
        assertEq(p, 0);
        assertEq(vehicles.permissionsOf(vehicleId, carol), UNLOCK);
        assertEq(vehicles.managerEpoch(vehicleId, alice), 1);
    }

    function test_reGrantingAManagerWithoutManageKeys_voidsItsKeys() public {
        _grantAs(alice, vehicleId, bob, LOCK, FOREVER);
        _grantAs(owner, vehicleId, alice, LOCK, FOREVER);
        assertEq(vehicles.permissionsOf(vehicleId, bob), 0);
        assertEq(vehicles.permissionsOf(vehicleId, alice), LOCK);
    }

    function test_reGrantingAManagerWithManageKeys_keepsItsKeys() public {
        _grantAs(alice, vehicleId, bob, LOCK, FOREVER);
        _grantAs(owner, vehicleId, alice, MANAGE_KEYS | LOCK, FOREVER);
        assertEq(vehicles.permissionsOf(vehicleId, bob), LOCK);
        assertEq(vehicles.managerEpoch(vehicleId, alice), 0);
    }

    function test_aManagerRenouncing_voidsItsKeys() public {
        _grantAs(alice, vehicleId, bob, LOCK, FOREVER);
        vm.prank(alice);
        vehicles.revoke(vehicleId, alice);
        assertEq(vehicles.permissionsOf(vehicleId, bob), 0);
    }

    function test_aReappointedManager_grantsAfreshButOldKeysStayVoid() public {
        _grantAs(alice, vehicleId, bob, LOCK, FOREVER);
        vm.prank(owner);
        vehicles.revoke(vehicleId, alice);
        _grantAs(owner, vehicleId, alice, MANAGE_KEYS | LOCK | UNLOCK, FOREVER);
        assertEq(vehicles.permissionsOf(vehicleId, bob), 0);
        _grantAs(alice, vehicleId, carol, UNLOCK, FOREVER);
        assertEq(vehicles.permissionsOf(vehicleId, carol), UNLOCK);
        // The voided key no longer counts, so another manager's new key over it is not refused.
        _grantAs(alice, vehicleId, bob, UNLOCK, FOREVER);
        assertEq(vehicles.permissionsOf(vehicleId, bob), UNLOCK);
    }

    function test_aVoidedManagerKeyCannotBeUsedToGrant() public {
        _grantAs(owner, vehicleId, carol, MANAGE_KEYS | LOCK, FOREVER);
        vm.prank(owner);
        vehicles.revoke(vehicleId, carol);
        vm.expectRevert(abi.encodeWithSelector(IVehicleId.NotKeyManager.selector, vehicleId, carol));
        vm.prank(carol);
        vehicles.grant(vehicleId, bob, LOCK, FOREVER, TERMS);
    }

    function testFuzz_revokingAManager_voidsEveryKeyItGranted(uint8 count, uint8 ownerKeys) public {
        count = uint8(bound(count, 1, 24));
        ownerKeys = uint8(bound(ownerKeys, 0, 8));
        for (uint256 i; i < count; ++i) {
            _grantAs(alice, vehicleId, address(uint160(0x5000 + i)), LOCK, FOREVER);
        }
        for (uint256 i; i < ownerKeys; ++i) {
            _grantAs(owner, vehicleId, address(uint160(0x9000 + i)), UNLOCK, FOREVER);
        }
        vm.prank(owner);
        vehicles.revoke(vehicleId, alice);
        for (uint256 i; i < count; ++i) {
            assertEq(vehicles.permissionsOf(vehicleId, address(uint160(0x5000 + i))), 0);
        }
        for (uint256 i; i < ownerKeys; ++i) {
            assertEq(vehicles.permissionsOf(vehicleId, address(uint160(0x9000 + i))), UNLOCK);
        }
    }
}
