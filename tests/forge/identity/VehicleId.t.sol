// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {freeNonce} from "../lib/FreeNonce.sol";
import {
    IAccessControlDefaultAdminRules
} from "@openzeppelin/contracts/access/extensions/IAccessControlDefaultAdminRules.sol";
import {IAccessControl} from "@openzeppelin/contracts/access/IAccessControl.sol";
import {IERC721Errors} from "@openzeppelin/contracts/interfaces/draft-IERC6093.sol";
import {Base64} from "@openzeppelin/contracts/utils/Base64.sol";
import {Strings} from "@openzeppelin/contracts/utils/Strings.sol";
import {IERC4907} from "../../../contracts/interfaces/IERC4907.sol";
import {IVehicleId} from "../../../contracts/interfaces/IVehicleId.sol";
import {IUnorderedNonces} from "../../../contracts/interfaces/IUnorderedNonces.sol";
import {VehicleId} from "../../../contracts/identity/VehicleId.sol";
import {Permissions} from "../../../contracts/libraries/Permissions.sol";
import {IdentityBase} from "./IdentityBase.sol";

/// @notice VehicleId unit tests: one or more per function and one per revert reason.
contract VehicleIdTest is IdentityBase {
    bytes32 internal constant VIN_A = keccak256("1HGCM82633A004352");

    // ------------------------------------------------------------------ constructor, permissions

    function test_constructor_setsNameSymbolAndRoles() public view {
        assertEq(vehicles.name(), "DIMO Vehicle");
        assertEq(vehicles.symbol(), "DIMOV");
        assertTrue(vehicles.hasRole(vehicles.DEFAULT_ADMIN_ROLE(), governor));
        assertTrue(vehicles.hasRole(vehicles.GOVERNOR_ROLE(), governor));
        assertFalse(vehicles.hasRole(vehicles.MINTER_ROLE(), governor));
        assertEq(vehicles.GOVERNOR_ROLE(), keccak256("GOVERNOR_ROLE"));
        assertEq(vehicles.MINTER_ROLE(), keccak256("MINTER_ROLE"));
    }

    function test_constructor_revertsWhenZeroGovernor() public {
        vm.expectRevert(
            abi.encodeWithSelector(
                IAccessControlDefaultAdminRules.AccessControlInvalidDefaultAdmin.selector, address(0)
            )
        );
        new VehicleId(address(0));
    }

    function test_permissions_bitsAreTheDesignTable() public pure {
        assertEq(Permissions.LOCK, 1);
        assertEq(Permissions.UNLOCK, 2);
        assertEq(Permissions.DRIVE, 4);
        assertEq(Permissions.TELEMETRY, 8);
        assertEq(Permissions.LOCATION, 16);
        assertEq(Permissions.LIVE, 32);
        assertEq(Permissions.VIN, 64);
        assertEq(Permissions.MANAGE_KEYS, 128);
        assertEq(Permissions.ALL, 0xff);
        assertEq(Permissions.USER, 7);
        assertEq(Permissions.DELEGABLE, 0x7f);
        assertEq(Permissions.unknownBits(0x1ff), 0x100);
        assertTrue(Permissions.includes(0x0f, 0x05));
        assertFalse(Permissions.includes(0x0f, 0x15));
    }

    // ------------------------------------------------------------------ connections

    function test_addConnection_storesAndEmits() public {
        address oracle2 = makeAddr("oracle2");
        vm.expectEmit(true, false, false, true, address(vehicles));
        emit IVehicleId.ConnectionSet(2, "Ford", oracle2, true);
        vm.prank(governor);
        uint256 id = vehicles.addConnection("Ford", oracle2);
        assertEq(id, 2);
        assertEq(vehicles.connectionCount(), 2);
        (string memory name, address o, bool active) = vehicles.connection(id);
        assertEq(name, "Ford");
        assertEq(o, oracle2);
        assertTrue(active);
    }

    function test_addConnection_firstIdIsOne() public view {
        assertEq(connectionId, 1);
    }

    function test_addConnection_revertsWhenNotGovernor() public {
        vm.expectRevert(
            abi.encodeWithSelector(
                IAccessControl.AccessControlUnauthorizedAccount.selector, stranger, vehicles.GOVERNOR_ROLE()
            )
        );
        vm.prank(stranger);
        vehicles.addConnection("Ford", oracle);
    }

    function test_addConnection_revertsWhenEmptyName() public {
        vm.expectRevert(abi.encodeWithSelector(IVehicleId.InvalidConnectionName.selector, ""));
        vm.prank(governor);
        vehicles.addConnection("", oracle);
    }

    function test_addConnection_revertsWhenNameTooLong() public {
        string memory name = "0123456789012345678901234567890123456789012345678901234567890123X";
        assertEq(bytes(name).length, vehicles.MAX_CONNECTION_NAME_LENGTH() + 1);
        vm.expectRevert(abi.encodeWithSelector(IVehicleId.InvalidConnectionName.selector, name));
        vm.prank(governor);
        vehicles.addConnection(name, oracle);
    }

    function test_addConnection_revertsWhenControlCharacter() public {
        string memory name = "Ford\nMotor";
        vm.expectRevert(abi.encodeWithSelector(IVehicleId.InvalidConnectionName.selector, name));
        vm.prank(governor);
        vehicles.addConnection(name, oracle);
    }

    function test_addConnection_revertsWhenZeroOracle() public {
        vm.expectRevert(abi.encodeWithSelector(IVehicleId.ZeroOracle.selector, 0));
        vm.prank(governor);
        vehicles.addConnection("Ford", address(0));
    }

    function test_setConnection_updatesAndEmits() public {
        address oracle2 = makeAddr("oracle2");
        vm.expectEmit(true, false, false, true, address(vehicles));
        emit IVehicleId.ConnectionSet(connectionId, "Tesla", oracle2, false);
        vm.prank(governor);
        vehicles.setConnection(connectionId, oracle2, false);
        (string memory name, address o, bool active) = vehicles.connection(connectionId);
        assertEq(name, "Tesla");
        assertEq(o, oracle2);
        assertFalse(active);
    }

    function test_setConnection_revertsWhenUnknown() public {
        vm.expectRevert(abi.encodeWithSelector(IVehicleId.UnknownConnection.selector, 7));
        vm.prank(governor);
        vehicles.setConnection(7, oracle, true);
    }

    function test_setConnection_revertsWhenZeroOracle() public {
        vm.expectRevert(abi.encodeWithSelector(IVehicleId.ZeroOracle.selector, connectionId));
        vm.prank(governor);
        vehicles.setConnection(connectionId, address(0), true);
    }

    function test_setConnection_revertsWhenNotGovernor() public {
        vm.expectRevert(
            abi.encodeWithSelector(
                IAccessControl.AccessControlUnauthorizedAccount.selector, minter, vehicles.GOVERNOR_ROLE()
            )
        );
        vm.prank(minter);
        vehicles.setConnection(connectionId, oracle, false);
    }

    function test_connection_revertsWhenUnknown() public {
        vm.expectRevert(abi.encodeWithSelector(IVehicleId.UnknownConnection.selector, 0));
        vehicles.connection(0);
        vm.expectRevert(abi.encodeWithSelector(IVehicleId.UnknownConnection.selector, 2));
        vehicles.connection(2);
    }

    // ------------------------------------------------------------------ mint

    function test_mint_mintsFromIdOneWithGenerationOne() public {
        vm.expectEmit(true, true, true, true, address(vehicles));
        emit IVehicleId.VehicleMinted(1, owner, connectionId, VIN_A);
        vm.prank(minter);
        uint256 id = vehicles.mint(owner, connectionId, VIN_A);
        assertEq(id, 1);
        assertEq(vehicles.ownerOf(id), owner);
        assertEq(vehicles.vehicleOfVin(VIN_A), id);
        assertEq(vehicles.vinOf(id), VIN_A);
        assertEq(vehicles.connectionOf(id), connectionId);
        assertEq(vehicles.generation(id), 1);
        assertEq(vehicles.totalMinted(), 1);
        assertEq(_mintTo(owner), 2);
    }

    function test_mint_revertsWhenNotMinter() public {
        vm.expectRevert(
            abi.encodeWithSelector(
                IAccessControl.AccessControlUnauthorizedAccount.selector, governor, vehicles.MINTER_ROLE()
            )
        );
        vm.prank(governor);
        vehicles.mint(owner, connectionId, VIN_A);
    }

    function test_mint_revertsWhenUnknownConnection() public {
        vm.expectRevert(abi.encodeWithSelector(IVehicleId.UnknownConnection.selector, 9));
        vm.prank(minter);
        vehicles.mint(owner, 9, VIN_A);
    }

    function test_mint_revertsWhenConnectionInactive() public {
        vm.prank(governor);
        vehicles.setConnection(connectionId, oracle, false);
        vm.expectRevert(abi.encodeWithSelector(IVehicleId.ConnectionInactive.selector, connectionId));
        vm.prank(minter);
        vehicles.mint(owner, connectionId, VIN_A);
    }

    function test_mint_revertsWhenZeroVinHash() public {
        vm.expectRevert(IVehicleId.ZeroVinHash.selector);
        vm.prank(minter);
        vehicles.mint(owner, connectionId, bytes32(0));
    }

    function test_mint_revertsWhenVinAlreadyMinted() public {
        vm.prank(minter);
        uint256 id = vehicles.mint(owner, connectionId, VIN_A);
        vm.expectRevert(abi.encodeWithSelector(IVehicleId.VinAlreadyMinted.selector, VIN_A, id));
        vm.prank(minter);
        vehicles.mint(alice, connectionId, VIN_A);
    }

    function test_mint_revertsWhenZeroReceiver() public {
        vm.expectRevert(abi.encodeWithSelector(IERC721Errors.ERC721InvalidReceiver.selector, address(0)));
        vm.prank(minter);
        vehicles.mint(address(0), connectionId, VIN_A);
    }

    // ------------------------------------------------------------------ mintWithAttestation

    function test_mintWithAttestation_mintsOnOracleSignatureRelayedByAnyone() public {
        uint256 deadline = block.timestamp + 1 hours;
        bytes memory sig = _signMint(oracleKey, owner, VIN_A, 0, deadline);
        vm.expectEmit(true, true, true, true, address(vehicles));
        emit IVehicleId.VehicleMinted(1, owner, connectionId, VIN_A);
        vm.prank(relayer);
        uint256 id = vehicles.mintWithAttestation(owner, connectionId, VIN_A, 0, deadline, sig);
        assertEq(vehicles.ownerOf(id), owner);
        assertEq(vehicles.vehicleOfVin(VIN_A), id);
        assertEq(freeNonce(vehicles, oracle), 1);
    }

    function test_mintWithAttestation_acceptsDeadlineEqualToNow() public {
        bytes memory sig = _signMint(oracleKey, owner, VIN_A, 0, block.timestamp);
        vehicles.mintWithAttestation(owner, connectionId, VIN_A, 0, block.timestamp, sig);
        assertEq(vehicles.vehicleOfVin(VIN_A), 1);
    }

    function test_mintWithAttestation_revertsWhenExpired() public {
        uint256 deadline = block.timestamp + 1 hours;
        bytes memory sig = _signMint(oracleKey, owner, VIN_A, 0, deadline);
        vm.warp(deadline + 1);
        vm.expectRevert(abi.encodeWithSelector(IVehicleId.SignatureExpired.selector, deadline, deadline + 1));
        vehicles.mintWithAttestation(owner, connectionId, VIN_A, 0, deadline, sig);
    }

    function test_mintWithAttestation_revertsWhenNonceUsed() public {
        uint256 deadline = block.timestamp + 1 hours;
        bytes memory sig = _signMint(oracleKey, owner, VIN_A, 0, deadline);
        uint256 id = vehicles.mintWithAttestation(owner, connectionId, VIN_A, 0, deadline, sig);
        vm.prank(owner);
        vehicles.burn(id); // the VIN is free again; only the nonce stops the replay
        vm.expectRevert(abi.encodeWithSelector(IUnorderedNonces.NonceAlreadyUsed.selector, oracle, 0));
        vehicles.mintWithAttestation(owner, connectionId, VIN_A, 0, deadline, sig);
    }

    function test_mintWithAttestation_revertsWhenConnectionInactive() public {
        bytes memory sig = _signMint(oracleKey, owner, VIN_A, 0, block.timestamp + 1);
        vm.prank(governor);
        vehicles.setConnection(connectionId, oracle, false);
        vm.expectRevert(abi.encodeWithSelector(IVehicleId.ConnectionInactive.selector, connectionId));
        vehicles.mintWithAttestation(owner, connectionId, VIN_A, 0, block.timestamp + 1, sig);
    }

    function test_mintWithAttestation_revertsWhenUnknownConnection() public {
        bytes memory sig = _signMint(oracleKey, owner, VIN_A, 0, block.timestamp + 1);
        vm.expectRevert(abi.encodeWithSelector(IVehicleId.UnknownConnection.selector, 5));
        vehicles.mintWithAttestation(owner, 5, VIN_A, 0, block.timestamp + 1, sig);
    }

    function test_mintWithAttestation_revertsWhenVinAlreadyMinted() public {
        vm.prank(minter);
        uint256 id = vehicles.mint(alice, connectionId, VIN_A);
        bytes memory sig = _signMint(oracleKey, owner, VIN_A, 0, block.timestamp + 1);
        vm.expectRevert(abi.encodeWithSelector(IVehicleId.VinAlreadyMinted.selector, VIN_A, id));
        vehicles.mintWithAttestation(owner, connectionId, VIN_A, 0, block.timestamp + 1, sig);
    }

    function test_mintWithAttestation_revertsWhenSignedByOtherKey() public {
        bytes memory sig = _signMint(strangerKey, owner, VIN_A, 0, block.timestamp + 1);
        vm.expectRevert(abi.encodeWithSelector(IVehicleId.InvalidSignature.selector, oracle));
        vehicles.mintWithAttestation(owner, connectionId, VIN_A, 0, block.timestamp + 1, sig);
    }

    function test_mintWithAttestation_revertsWhenRecipientDiffersFromSigned() public {
        bytes memory sig = _signMint(oracleKey, owner, VIN_A, 0, block.timestamp + 1);
        vm.expectRevert(abi.encodeWithSelector(IVehicleId.InvalidSignature.selector, oracle));
        vehicles.mintWithAttestation(stranger, connectionId, VIN_A, 0, block.timestamp + 1, sig);
    }

    function test_mintWithAttestation_revertsAfterOracleRotated() public {
        bytes memory sig = _signMint(oracleKey, owner, VIN_A, 0, block.timestamp + 1);
        vm.prank(governor);
        vehicles.setConnection(connectionId, makeAddr("new oracle"), true);
        vm.expectRevert(abi.encodeWithSelector(IVehicleId.InvalidSignature.selector, makeAddr("new oracle")));
        vehicles.mintWithAttestation(owner, connectionId, VIN_A, 0, block.timestamp + 1, sig);
    }

    // ------------------------------------------------------------------ burn

    function test_burn_freesVinAndVoidsEverything() public {
        vm.prank(minter);
        uint256 id = vehicles.mint(owner, connectionId, VIN_A);
        _grantAs(owner, id, alice, Permissions.TELEMETRY, FOREVER);
        vm.expectEmit(true, false, false, true, address(vehicles));
        emit IVehicleId.VehicleBurned(id, VIN_A);
        vm.prank(owner);
        vehicles.burn(id);
        assertEq(vehicles.vehicleOfVin(VIN_A), 0);
        assertEq(vehicles.generation(id), 2);
        assertEq(vehicles.permissionsOf(id, alice), 0);
        assertEq(vehicles.permissionsOf(id, owner), 0);
        (uint256 bits,,) = vehicles.grantOf(id, alice);
        assertEq(bits, 0);
        vm.prank(minter);
        uint256 again = vehicles.mint(bob, connectionId, VIN_A);
        assertEq(again, id + 1);
        assertEq(vehicles.vehicleOfVin(VIN_A), again);
    }

    function test_burn_revertsWhenNotOwner() public {
        uint256 id = _mintTo(owner);
        vm.prank(owner);
        vehicles.approve(alice, id);
        vm.expectRevert(abi.encodeWithSelector(IVehicleId.NotVehicleOwner.selector, id, alice));
        vm.prank(alice);
        vehicles.burn(id);
    }

    function test_burn_revertsWhenNonexistent() public {
        vm.expectRevert(abi.encodeWithSelector(IERC721Errors.ERC721NonexistentToken.selector, 42));
        vm.prank(owner);
        vehicles.burn(42);
    }

    // ------------------------------------------------------------------ grant

    function test_grant_byOwnerStoresKeyAndEmits() public {
        uint256 id = _mintTo(owner);
        uint256 bits = Permissions.LOCK | Permissions.TELEMETRY;
        uint64 expiresAt = uint64(block.timestamp + 1 days);
        vm.expectEmit(true, true, true, true, address(vehicles));
        emit IVehicleId.KeyGranted(id, alice, bits, expiresAt, TERMS, 1, owner);
        _grantAs(owner, id, alice, bits, expiresAt);
        (uint256 p, uint64 e, bytes32 t) = vehicles.grantOf(id, alice);
        assertEq(p, bits);
        assertEq(e, expiresAt);
        assertEq(t, TERMS);
        assertEq(vehicles.permissionsOf(id, alice), bits);
        assertTrue(vehicles.hasPermissions(id, alice, Permissions.LOCK));
        assertFalse(vehicles.hasPermissions(id, alice, Permissions.UNLOCK));
    }

    function test_grant_replacesEarlierKey() public {
        uint256 id = _mintTo(owner);
        _grantAs(owner, id, alice, ALL & ~MANAGE_KEYS, FOREVER);
        vm.prank(owner);
        vehicles.grant(id, alice, Permissions.VIN, uint64(block.timestamp + 5), bytes32(0));
        (uint256 p, uint64 e, bytes32 t) = vehicles.grantOf(id, alice);
        assertEq(p, Permissions.VIN);
        assertEq(e, block.timestamp + 5);
        assertEq(t, bytes32(0));
    }

    function test_grant_ownerMayGiveManageKeys() public {
        uint256 id = _mintTo(owner);
        _grantAs(owner, id, alice, ALL, FOREVER);
        assertEq(vehicles.permissionsOf(id, alice), ALL);
    }

    function test_grant_byManagerWithinItsBits() public {
        uint256 id = _mintTo(owner);
        uint64 managerEnd = uint64(block.timestamp + 10 days);
        _grantAs(owner, id, alice, MANAGE_KEYS | Permissions.LOCK | Permissions.UNLOCK, managerEnd);
        _grantAs(alice, id, bob, Permissions.LOCK, managerEnd);
        assertEq(vehicles.permissionsOf(id, bob), Permissions.LOCK);
    }

    function test_grant_revertsWhenNonexistentVehicle() public {
        vm.expectRevert(abi.encodeWithSelector(IERC721Errors.ERC721NonexistentToken.selector, 3));
        _grantAs(owner, 3, alice, Permissions.LOCK, FOREVER);
    }

    function test_grant_revertsWhenZeroGrantee() public {
        uint256 id = _mintTo(owner);
        vm.expectRevert(abi.encodeWithSelector(IVehicleId.ZeroGrantee.selector, id));
        _grantAs(owner, id, address(0), Permissions.LOCK, FOREVER);
    }

    function test_grant_revertsWhenGranteeIsOwner() public {
        uint256 id = _mintTo(owner);
        vm.expectRevert(abi.encodeWithSelector(IVehicleId.GranteeIsOwner.selector, id, owner));
        _grantAs(owner, id, owner, Permissions.LOCK, FOREVER);
    }

    function test_grant_revertsWhenUnknownBits() public {
        uint256 id = _mintTo(owner);
        uint256 bits = Permissions.LOCK | (1 << 8) | (1 << 255);
        vm.expectRevert(abi.encodeWithSelector(IVehicleId.UnknownPermissions.selector, bits, (1 << 8) | (1 << 255)));
        _grantAs(owner, id, alice, bits, FOREVER);
    }

    function test_grant_revertsWhenEmptyPermissions() public {
        uint256 id = _mintTo(owner);
        vm.expectRevert(abi.encodeWithSelector(IVehicleId.EmptyPermissions.selector, id, alice));
        _grantAs(owner, id, alice, 0, FOREVER);
    }

    function test_grant_revertsWhenExpiryIsNow() public {
        uint256 id = _mintTo(owner);
        vm.expectRevert(abi.encodeWithSelector(IVehicleId.ExpiryInPast.selector, uint64(START), START));
        _grantAs(owner, id, alice, Permissions.LOCK, uint64(START));
    }

    function test_grant_revertsWhenExpiryInPast() public {
        uint256 id = _mintTo(owner);
        vm.expectRevert(abi.encodeWithSelector(IVehicleId.ExpiryInPast.selector, uint64(START - 1), START));
        _grantAs(owner, id, alice, Permissions.LOCK, uint64(START - 1));
    }

    function test_grant_revertsWhenCallerHoldsNoKey() public {
        uint256 id = _mintTo(owner);
        vm.expectRevert(abi.encodeWithSelector(IVehicleId.NotKeyManager.selector, id, stranger));
        _grantAs(stranger, id, alice, Permissions.LOCK, FOREVER);
    }

    function test_grant_revertsWhenCallerKeyLacksManageKeys() public {
        uint256 id = _mintTo(owner);
        _grantAs(owner, id, alice, ALL & ~MANAGE_KEYS, FOREVER);
        vm.expectRevert(abi.encodeWithSelector(IVehicleId.NotKeyManager.selector, id, alice));
        _grantAs(alice, id, bob, Permissions.LOCK, FOREVER);
    }

    function test_grant_revertsWhenManagerKeyExpired() public {
        uint256 id = _mintTo(owner);
        _grantAs(owner, id, alice, ALL, uint64(block.timestamp + 100));
        vm.warp(block.timestamp + 100);
        vm.expectRevert(abi.encodeWithSelector(IVehicleId.NotKeyManager.selector, id, alice));
        _grantAs(alice, id, bob, Permissions.LOCK, FOREVER);
    }

    function test_grant_revertsWhenManagerKeyIsStale() public {
        uint256 id = _mintTo(owner);
        _grantAs(owner, id, alice, ALL, FOREVER);
        vm.prank(owner);
        vehicles.transferFrom(owner, carol, id);
        vm.expectRevert(abi.encodeWithSelector(IVehicleId.NotKeyManager.selector, id, alice));
        _grantAs(alice, id, bob, Permissions.LOCK, FOREVER);
    }

    function test_grant_revertsWhenManagerGivesManageKeys() public {
        uint256 id = _mintTo(owner);
        _grantAs(owner, id, alice, ALL, FOREVER);
        vm.expectRevert(abi.encodeWithSelector(IVehicleId.ManageKeysNotDelegable.selector, id, alice));
        _grantAs(alice, id, bob, MANAGE_KEYS | Permissions.LOCK, FOREVER);
    }

    function test_grant_revertsWhenManagerExceedsItsBits() public {
        uint256 id = _mintTo(owner);
        uint256 managerBits = MANAGE_KEYS | Permissions.LOCK;
        _grantAs(owner, id, alice, managerBits, FOREVER);
        uint256 asked = Permissions.LOCK | Permissions.LOCATION;
        vm.expectRevert(abi.encodeWithSelector(IVehicleId.ExceedsGranterPermissions.selector, managerBits, asked));
        _grantAs(alice, id, bob, asked, FOREVER);
    }

    function test_grant_revertsWhenManagerExceedsItsExpiry() public {
        uint256 id = _mintTo(owner);
        uint64 managerEnd = uint64(block.timestamp + 1 days);
        _grantAs(owner, id, alice, ALL, managerEnd);
        vm.expectRevert(abi.encodeWithSelector(IVehicleId.ExceedsGranterExpiry.selector, managerEnd, managerEnd + 1));
        _grantAs(alice, id, bob, Permissions.LOCK, managerEnd + 1);
    }

    function test_grant_revertsWhenManagerOverwritesStrongerKey() public {
        uint256 id = _mintTo(owner);
        _grantAs(owner, id, alice, MANAGE_KEYS | Permissions.LOCK, FOREVER);
        _grantAs(owner, id, bob, Permissions.LOCK | Permissions.LOCATION, FOREVER);
        vm.expectRevert(
            abi.encodeWithSelector(
                IVehicleId.KeyOutranksManager.selector, id, bob, Permissions.LOCK | Permissions.LOCATION
            )
        );
        _grantAs(alice, id, bob, Permissions.LOCK, FOREVER);
    }

    function test_grant_revertsWhenManagerOverwritesOtherManager() public {
        uint256 id = _mintTo(owner);
        _grantAs(owner, id, alice, ALL, FOREVER);
        _grantAs(owner, id, bob, MANAGE_KEYS | Permissions.LOCK, FOREVER);
        vm.expectRevert(
            abi.encodeWithSelector(IVehicleId.KeyOutranksManager.selector, id, bob, MANAGE_KEYS | Permissions.LOCK)
        );
        _grantAs(alice, id, bob, Permissions.LOCK, FOREVER);
    }

    function test_grant_managerMayOverwriteExpiredStrongerKey() public {
        uint256 id = _mintTo(owner);
        _grantAs(owner, id, alice, MANAGE_KEYS | Permissions.LOCK, FOREVER);
        _grantAs(owner, id, bob, ALL & ~MANAGE_KEYS, uint64(block.timestamp + 1));
        vm.warp(block.timestamp + 1);
        _grantAs(alice, id, bob, Permissions.LOCK, FOREVER);
        assertEq(vehicles.permissionsOf(id, bob), Permissions.LOCK);
    }

    // ------------------------------------------------------------------ revoke

    function test_revoke_byOwnerDeletesAndEmits() public {
        uint256 id = _mintTo(owner);
        _grantAs(owner, id, alice, Permissions.LOCK, FOREVER);
        vm.expectEmit(true, true, false, true, address(vehicles));
        emit IVehicleId.KeyRevoked(id, alice, 1);
        vm.prank(owner);
        vehicles.revoke(id, alice);
        assertEq(vehicles.permissionsOf(id, alice), 0);
        (uint256 p, uint64 e, bytes32 t) = vehicles.grantOf(id, alice);
        assertEq(p + e, 0);
        assertEq(t, bytes32(0));
    }

    function test_revoke_byManagerOfWeakerKeyAManagerGranted() public {
        uint256 id = _mintTo(owner);
        _grantAs(owner, id, alice, MANAGE_KEYS | Permissions.LOCK | Permissions.UNLOCK, FOREVER);
        _grantAs(owner, id, carol, MANAGE_KEYS | Permissions.UNLOCK, FOREVER);
        _grantAs(carol, id, bob, Permissions.UNLOCK, FOREVER);
        vm.prank(alice);
        vehicles.revoke(id, bob);
        assertEq(vehicles.permissionsOf(id, bob), 0);
    }

    function test_revoke_revertsWhenManagerRevokesAKeyTheOwnerIssued() public {
        uint256 id = _mintTo(owner);
        _grantAs(owner, id, alice, MANAGE_KEYS | Permissions.LOCK | Permissions.UNLOCK, FOREVER);
        _grantAs(owner, id, bob, Permissions.UNLOCK, FOREVER);
        vm.expectRevert(abi.encodeWithSelector(IVehicleId.KeyIssuedByOwner.selector, id, bob));
        vm.prank(alice);
        vehicles.revoke(id, bob);
        assertEq(vehicles.permissionsOf(id, bob), Permissions.UNLOCK);
    }

    function test_revoke_byGranteeItself() public {
        uint256 id = _mintTo(owner);
        _grantAs(owner, id, alice, ALL, FOREVER);
        vm.prank(alice);
        vehicles.revoke(id, alice);
        assertEq(vehicles.permissionsOf(id, alice), 0);
    }

    function test_revoke_ofExpiredKeyByOwner() public {
        uint256 id = _mintTo(owner);
        _grantAs(owner, id, alice, Permissions.LOCK, uint64(block.timestamp + 1));
        vm.warp(block.timestamp + 2);
        vm.prank(owner);
        vehicles.revoke(id, alice);
        (, uint64 e,) = vehicles.grantOf(id, alice);
        assertEq(e, 0);
    }

    function test_revoke_revertsWhenNoKey() public {
        uint256 id = _mintTo(owner);
        vm.expectRevert(abi.encodeWithSelector(IVehicleId.NoKey.selector, id, alice));
        vm.prank(owner);
        vehicles.revoke(id, alice);
    }

    function test_revoke_revertsWhenKeyIsStale() public {
        uint256 id = _mintTo(owner);
        _grantAs(owner, id, alice, Permissions.LOCK, FOREVER);
        vm.prank(owner);
        vehicles.transferFrom(owner, carol, id);
        vm.expectRevert(abi.encodeWithSelector(IVehicleId.NoKey.selector, id, alice));
        vm.prank(carol);
        vehicles.revoke(id, alice);
    }

    function test_revoke_revertsWhenCallerIsNotManager() public {
        uint256 id = _mintTo(owner);
        _grantAs(owner, id, alice, ALL & ~MANAGE_KEYS, FOREVER);
        _grantAs(owner, id, bob, Permissions.LOCK, FOREVER);
        vm.expectRevert(abi.encodeWithSelector(IVehicleId.NotKeyManager.selector, id, alice));
        vm.prank(alice);
        vehicles.revoke(id, bob);
    }

    function test_revoke_revertsWhenKeyOutranksManager() public {
        uint256 id = _mintTo(owner);
        _grantAs(owner, id, alice, MANAGE_KEYS | Permissions.LOCK, FOREVER);
        _grantAs(owner, id, bob, Permissions.LOCATION, FOREVER);
        vm.expectRevert(abi.encodeWithSelector(IVehicleId.KeyOutranksManager.selector, id, bob, Permissions.LOCATION));
        vm.prank(alice);
        vehicles.revoke(id, bob);
    }

    function test_revoke_revertsWhenNonexistentVehicle() public {
        vm.expectRevert(abi.encodeWithSelector(IERC721Errors.ERC721NonexistentToken.selector, 8));
        vm.prank(owner);
        vehicles.revoke(8, alice);
    }

    // ------------------------------------------------------------------ permissionsOf / hasPermissions / grantOf

    function test_permissionsOf_ownerHoldsAll() public {
        uint256 id = _mintTo(owner);
        assertEq(vehicles.permissionsOf(id, owner), ALL);
        assertTrue(vehicles.hasPermissions(id, owner, ALL));
    }

    function test_permissionsOf_keyValidStrictlyBeforeExpiry() public {
        uint256 id = _mintTo(owner);
        uint64 end = uint64(block.timestamp + 60);
        _grantAs(owner, id, alice, Permissions.LIVE, end);
        vm.warp(end - 1);
        assertEq(vehicles.permissionsOf(id, alice), Permissions.LIVE);
        vm.warp(end);
        assertEq(vehicles.permissionsOf(id, alice), 0);
        (uint256 stored, uint64 storedEnd,) = vehicles.grantOf(id, alice);
        assertEq(stored, Permissions.LIVE); // expired keys are reported as stored
        assertEq(storedEnd, end);
    }

    function test_permissionsOf_zeroForNonexistentVehicle() public view {
        assertEq(vehicles.permissionsOf(77, address(0)), 0);
        assertEq(vehicles.permissionsOf(77, owner), 0);
    }

    function test_hasPermissions_falseForEmptyOrUnknownMask() public {
        uint256 id = _mintTo(owner);
        assertFalse(vehicles.hasPermissions(id, owner, 0));
        assertFalse(vehicles.hasPermissions(id, owner, 1 << 8));
        assertFalse(vehicles.hasPermissions(id, stranger, 0));
    }

    function test_grantOf_zeroForStaleKey() public {
        uint256 id = _mintTo(owner);
        _grantAs(owner, id, alice, Permissions.LOCK, FOREVER);
        vm.prank(owner);
        vehicles.transferFrom(owner, bob, id);
        (uint256 p, uint64 e, bytes32 t) = vehicles.grantOf(id, alice);
        assertEq(p + e, 0);
        assertEq(t, bytes32(0));
    }

    // ------------------------------------------------------------------ generation and transfer

    function test_transfer_bumpsGenerationAndVoidsKeysAndUser() public {
        uint256 id = _mintTo(owner);
        _grantAs(owner, id, alice, ALL, FOREVER);
        _grantAs(alice, id, bob, Permissions.TELEMETRY, FOREVER);
        vm.prank(owner);
        vehicles.setUser(id, carol, FOREVER);
        assertEq(vehicles.permissionsOf(id, carol), USER_BITS);

        vm.expectEmit(true, true, false, true, address(vehicles));
        emit IERC4907.UpdateUser(id, address(0), 0);
        vm.prank(owner);
        vehicles.safeTransferFrom(owner, stranger, id);

        assertEq(vehicles.generation(id), 2);
        assertEq(vehicles.permissionsOf(id, alice), 0);
        assertEq(vehicles.permissionsOf(id, bob), 0);
        assertEq(vehicles.permissionsOf(id, carol), 0);
        assertEq(vehicles.permissionsOf(id, owner), 0);
        assertEq(vehicles.permissionsOf(id, stranger), ALL);
        assertEq(vehicles.userOf(id), address(0));
        assertEq(vehicles.userExpires(id), 0);
    }

    function test_transfer_toSelfAlsoVoidsKeys() public {
        uint256 id = _mintTo(owner);
        _grantAs(owner, id, alice, Permissions.LOCK, FOREVER);
        vm.prank(owner);
        vehicles.transferFrom(owner, owner, id);
        assertEq(vehicles.generation(id), 2);
        assertEq(vehicles.permissionsOf(id, alice), 0);
    }

    function test_transfer_newOwnerGrantsInNewGeneration() public {
        uint256 id = _mintTo(owner);
        _grantAs(owner, id, alice, Permissions.LOCK, FOREVER);
        vm.prank(owner);
        vehicles.transferFrom(owner, bob, id);
        vm.expectEmit(true, true, true, true, address(vehicles));
        emit IVehicleId.KeyGranted(id, alice, Permissions.UNLOCK, FOREVER, TERMS, 2, bob);
        _grantAs(bob, id, alice, Permissions.UNLOCK, FOREVER);
        assertEq(vehicles.permissionsOf(id, alice), Permissions.UNLOCK);
    }

    function test_generation_zeroForUnmintedIds() public view {
        assertEq(vehicles.generation(1), 0);
    }

    // ------------------------------------------------------------------ ERC-4907

    function test_setUser_byOwnerGivesUserBitsUntilExpiry() public {
        uint256 id = _mintTo(owner);
        uint64 end = uint64(block.timestamp + 3600);
        vm.expectEmit(true, true, false, true, address(vehicles));
        emit IERC4907.UpdateUser(id, alice, end);
        vm.prank(owner);
        vehicles.setUser(id, alice, end);
        assertEq(vehicles.userOf(id), alice);
        assertEq(vehicles.userExpires(id), end);
        assertEq(vehicles.permissionsOf(id, alice), USER_BITS);
        assertTrue(vehicles.hasPermissions(id, alice, Permissions.DRIVE));
        vm.warp(end - 1);
        assertEq(vehicles.userOf(id), alice);
        vm.warp(end);
        assertEq(vehicles.userOf(id), address(0));
        assertEq(vehicles.userExpires(id), end);
        assertEq(vehicles.permissionsOf(id, alice), 0);
    }

    function test_setUser_userBitsCombineWithKey() public {
        uint256 id = _mintTo(owner);
        _grantAs(owner, id, alice, Permissions.TELEMETRY, FOREVER);
        vm.prank(owner);
        vehicles.setUser(id, alice, FOREVER);
        assertEq(vehicles.permissionsOf(id, alice), USER_BITS | Permissions.TELEMETRY);
    }

    function test_setUser_byApprovedOperator() public {
        uint256 id = _mintTo(owner);
        vm.prank(owner);
        vehicles.setApprovalForAll(bob, true);
        vm.prank(bob);
        vehicles.setUser(id, alice, FOREVER);
        assertEq(vehicles.userOf(id), alice);
    }

    function test_setUser_clearWithZeroAddress() public {
        uint256 id = _mintTo(owner);
        vm.startPrank(owner);
        vehicles.setUser(id, alice, FOREVER);
        vehicles.setUser(id, address(0), 0);
        vm.stopPrank();
        assertEq(vehicles.userOf(id), address(0));
        assertEq(vehicles.permissionsOf(id, alice), 0);
    }

    function test_setUser_revertsWhenNotAuthorized() public {
        uint256 id = _mintTo(owner);
        vm.expectRevert(abi.encodeWithSelector(IERC721Errors.ERC721InsufficientApproval.selector, alice, id));
        vm.prank(alice);
        vehicles.setUser(id, alice, FOREVER);
    }

    function test_setUser_revertsWhenNonexistent() public {
        vm.expectRevert(abi.encodeWithSelector(IERC721Errors.ERC721NonexistentToken.selector, 5));
        vm.prank(owner);
        vehicles.setUser(5, alice, FOREVER);
    }

    function test_userOf_zeroAfterBurn() public {
        uint256 id = _mintTo(owner);
        vm.startPrank(owner);
        vehicles.setUser(id, alice, FOREVER);
        vehicles.burn(id);
        vm.stopPrank();
        assertEq(vehicles.userOf(id), address(0));
    }

    // ------------------------------------------------------------------ metadata, ERC-165, EIP-712

    function test_tokenURI_isJsonWithConnectionAndGeneration() public {
        vm.prank(minter);
        uint256 id = vehicles.mint(owner, connectionId, VIN_A);
        vm.prank(owner);
        vehicles.transferFrom(owner, alice, id);
        string memory json = string.concat(
            '{"name":"DIMO Vehicle #1","description":"A vehicle\'s on-chain identity in the DIMO network.",',
            '"connection":"Tesla","generation":2,"vinHash":"',
            Strings.toHexString(uint256(VIN_A), 32),
            '","attributes":[{"trait_type":"Connection","value":"Tesla"},',
            '{"trait_type":"Generation","display_type":"number","value":2}]}'
        );
        assertEq(vehicles.tokenURI(id), string.concat("data:application/json;base64,", Base64.encode(bytes(json))));
    }

    function test_tokenURI_escapesConnectionName() public {
        vm.prank(governor);
        uint256 c = vehicles.addConnection('Q"uote\\', oracle);
        vm.prank(minter);
        uint256 id = vehicles.mint(owner, c, VIN_A);
        string memory json = string.concat(
            '{"name":"DIMO Vehicle #1","description":"A vehicle\'s on-chain identity in the DIMO network.",',
            '"connection":"Q\\"uote\\\\","generation":1,"vinHash":"',
            Strings.toHexString(uint256(VIN_A), 32),
            '","attributes":[{"trait_type":"Connection","value":"Q\\"uote\\\\"},',
            '{"trait_type":"Generation","display_type":"number","value":1}]}'
        );
        assertEq(vehicles.tokenURI(id), string.concat("data:application/json;base64,", Base64.encode(bytes(json))));
    }

    function test_tokenURI_revertsWhenNonexistent() public {
        vm.expectRevert(abi.encodeWithSelector(IERC721Errors.ERC721NonexistentToken.selector, 1));
        vehicles.tokenURI(1);
    }

    function test_supportsInterface_answersTheDesignedSet() public view {
        assertEq(type(IERC4907).interfaceId, bytes4(0xad092b5c));
        assertTrue(vehicles.supportsInterface(0x80ac58cd)); // ERC-721
        assertTrue(vehicles.supportsInterface(0x5b5e139f)); // ERC-721 Metadata
        assertTrue(vehicles.supportsInterface(0xad092b5c)); // ERC-4907
        assertTrue(vehicles.supportsInterface(0x01ffc9a7)); // ERC-165
        assertFalse(vehicles.supportsInterface(0xffffffff));
        assertFalse(vehicles.supportsInterface(0x780e9d63)); // ERC-721 Enumerable: not implemented
    }

    function test_domainSeparator_matchesIndependentComputation() public view {
        assertEq(vehicles.DOMAIN_SEPARATOR(), _vehicleDomain());
        (, string memory name, string memory version, uint256 chainId, address verifying,,) = vehicles.eip712Domain();
        assertEq(name, "DIMO Vehicle");
        assertEq(version, "1");
        assertEq(chainId, block.chainid);
        assertEq(verifying, address(vehicles));
        assertEq(vehicles.GRANT_TYPEHASH(), GRANT_TYPEHASH);
        assertEq(vehicles.MINT_ATTESTATION_TYPEHASH(), MINT_TYPEHASH);
    }
}
