// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {freeNonce} from "../lib/FreeNonce.sol";
import {IVehicleId} from "../../../contracts/interfaces/IVehicleId.sol";
import {IUnorderedNonces} from "../../../contracts/interfaces/IUnorderedNonces.sol";
import {VehicleId} from "../../../contracts/identity/VehicleId.sol";
import {Permissions} from "../../../contracts/libraries/Permissions.sol";
import {IdentityBase, OwnerWallet, RefusingWallet} from "./IdentityBase.sol";

/// @notice EIP-712 `Grant` and `MintAttestation`: what is accepted, and every way a signature
///         is refused (replay, expiry, chain, contract, signer, malleability, ERC-1271 refusal).
contract VehicleIdSignaturesTest is IdentityBase {
    uint256 internal vehicleId;

    function setUp() public override {
        super.setUp();
        vehicleId = _mintTo(owner);
    }

    function _ownerGrant() internal view returns (GrantMsg memory m, bytes memory sig) {
        m = _grantMsg(vehicleId, alice, Permissions.LOCK | Permissions.TELEMETRY, owner);
        sig = _signGrant(ownerKey, m);
    }

    function _expectInvalid(address signer) internal {
        vm.expectRevert(abi.encodeWithSelector(IVehicleId.InvalidSignature.selector, signer));
    }

    // ------------------------------------------------------------------ grantBySig: accepted

    function test_grantBySig_ownerSignatureRelayedGivesExactlyWhatWasSigned() public {
        (GrantMsg memory m, bytes memory sig) = _ownerGrant();
        vm.expectEmit(true, true, true, true, address(vehicles));
        emit IVehicleId.KeyGranted(vehicleId, alice, m.permissions, m.expiresAt, m.termsHash, 1, owner);
        _submitGrant(m, owner, sig);
        (uint256 p, uint64 e, bytes32 t) = vehicles.grantOf(vehicleId, alice);
        assertEq(p, m.permissions);
        assertEq(e, m.expiresAt);
        assertEq(t, m.termsHash);
        assertEq(freeNonce(vehicles, owner), 1);
        assertEq(vehicles.permissionsOf(vehicleId, relayer), 0);
    }

    function test_grantBySig_managerSignature() public {
        _grantAs(owner, vehicleId, bob, MANAGE_KEYS | Permissions.LOCK | Permissions.TELEMETRY, FOREVER);
        GrantMsg memory m = _grantMsg(vehicleId, alice, Permissions.TELEMETRY, bob);
        _submitGrant(m, bob, _signGrant(bobKey, m));
        assertEq(vehicles.permissionsOf(vehicleId, alice), Permissions.TELEMETRY);
        assertEq(freeNonce(vehicles, bob), 1);
    }

    function test_grantBySig_managerSignatureStillBoundByItsBits() public {
        uint256 managerBits = MANAGE_KEYS | Permissions.LOCK;
        _grantAs(owner, vehicleId, bob, managerBits, FOREVER);
        GrantMsg memory m = _grantMsg(vehicleId, alice, Permissions.LOCATION, bob);
        bytes memory sig = _signGrant(bobKey, m);
        vm.expectRevert(
            abi.encodeWithSelector(IVehicleId.ExceedsGranterPermissions.selector, managerBits, Permissions.LOCATION)
        );
        _submitGrant(m, bob, sig);
    }

    function test_grantBySig_acceptsDeadlineEqualToNow() public {
        (GrantMsg memory m,) = _ownerGrant();
        m.deadline = block.timestamp;
        _submitGrant(m, owner, _signGrant(ownerKey, m));
        assertEq(vehicles.permissionsOf(vehicleId, alice), m.permissions);
    }

    function test_grantBySig_erc1271WalletThatApproves() public {
        OwnerWallet wallet = new OwnerWallet(owner);
        vm.prank(owner);
        vehicles.transferFrom(owner, address(wallet), vehicleId);
        GrantMsg memory m = _grantMsg(vehicleId, alice, Permissions.DRIVE, address(wallet));
        _submitGrant(m, address(wallet), _signGrant(ownerKey, m));
        assertEq(vehicles.permissionsOf(vehicleId, alice), Permissions.DRIVE);
        assertEq(freeNonce(vehicles, address(wallet)), 1);
    }

    // ------------------------------------------------------------------ grantBySig: refused

    function test_grantBySig_revertsWhenErc1271WalletRefuses() public {
        RefusingWallet wallet = new RefusingWallet();
        vm.prank(owner);
        vehicles.transferFrom(owner, address(wallet), vehicleId);
        GrantMsg memory m = _grantMsg(vehicleId, alice, Permissions.DRIVE, address(wallet));
        bytes memory sig = _signGrant(ownerKey, m);
        _expectInvalid(address(wallet));
        _submitGrant(m, address(wallet), sig);
    }

    function test_grantBySig_revertsWhenReplayed() public {
        (GrantMsg memory m, bytes memory sig) = _ownerGrant();
        _submitGrant(m, owner, sig);
        vm.prank(owner);
        vehicles.revoke(vehicleId, alice);
        vm.expectRevert(abi.encodeWithSelector(IUnorderedNonces.NonceAlreadyUsed.selector, owner, m.nonce));
        _submitGrant(m, owner, sig);
    }

    function test_grantBySig_acceptsNoncesOutOfOrder() public {
        (GrantMsg memory m,) = _ownerGrant();
        m.nonce = 1;
        _submitGrant(m, owner, _signGrant(ownerKey, m));
        assertTrue(vehicles.isNonceUsed(owner, 1));
        assertFalse(vehicles.isNonceUsed(owner, 0));
        m.grantee = bob;
        m.nonce = 0;
        _submitGrant(m, owner, _signGrant(ownerKey, m));
        assertEq(vehicles.nonceBitmap(owner, 0), 3);
        assertEq(vehicles.permissionsOf(vehicleId, bob), m.permissions);
    }

    function test_grantBySig_revertsWhenExpired() public {
        (GrantMsg memory m, bytes memory sig) = _ownerGrant();
        vm.warp(m.deadline + 1);
        vm.expectRevert(abi.encodeWithSelector(IVehicleId.SignatureExpired.selector, m.deadline, m.deadline + 1));
        _submitGrant(m, owner, sig);
    }

    function test_grantBySig_revertsWhenSignedForOtherChain() public {
        (GrantMsg memory m,) = _ownerGrant();
        bytes memory sig = signDigest(ownerKey, _digest(_domain("DIMO Vehicle", 1, address(vehicles)), _grantStructHash(m)));
        _expectInvalid(owner);
        _submitGrant(m, owner, sig);
    }

    function test_grantBySig_revertsWhenChainIdChangesAfterSigning() public {
        (GrantMsg memory m, bytes memory sig) = _ownerGrant();
        vm.chainId(block.chainid + 1);
        _expectInvalid(owner);
        _submitGrant(m, owner, sig);
    }

    function test_grantBySig_revertsWhenSignedForOtherContract() public {
        VehicleId other = new VehicleId(governor);
        (GrantMsg memory m,) = _ownerGrant();
        bytes memory sig =
            signDigest(ownerKey, _digest(_domain("DIMO Vehicle", block.chainid, address(other)), _grantStructHash(m)));
        _expectInvalid(owner);
        _submitGrant(m, owner, sig);
    }

    function test_grantBySig_revertsWhenSignedForOtherDomainName() public {
        (GrantMsg memory m,) = _ownerGrant();
        bytes memory sig =
            signDigest(ownerKey, _digest(_domain("DIMO Device", block.chainid, address(vehicles)), _grantStructHash(m)));
        _expectInvalid(owner);
        _submitGrant(m, owner, sig);
    }

    function test_grantBySig_revertsWhenSignerIsNotNamedSigner() public {
        (GrantMsg memory m,) = _ownerGrant();
        bytes memory sig = _signGrant(strangerKey, m);
        _expectInvalid(owner);
        _submitGrant(m, owner, sig);
    }

    function test_grantBySig_revertsWhenValidSignerHasNoRight() public {
        GrantMsg memory m = _grantMsg(vehicleId, alice, Permissions.LOCK, stranger);
        bytes memory sig = _signGrant(strangerKey, m);
        vm.expectRevert(abi.encodeWithSelector(IVehicleId.NotKeyManager.selector, vehicleId, stranger));
        _submitGrant(m, stranger, sig);
    }

    function test_grantBySig_revertsWhenFieldTampered() public {
        (GrantMsg memory m, bytes memory sig) = _ownerGrant();
        m.permissions = Permissions.ALL & ~MANAGE_KEYS;
        _expectInvalid(owner);
        _submitGrant(m, owner, sig);
    }

    function test_grantBySig_revertsWhenMalleable() public {
        (GrantMsg memory m, bytes memory sig) = _ownerGrant();
        _expectInvalid(owner);
        _submitGrant(m, owner, _malleable(sig));
    }

    function test_grantBySig_revertsWhenSignatureGarbage() public {
        (GrantMsg memory m,) = _ownerGrant();
        _expectInvalid(owner);
        _submitGrant(m, owner, hex"1234");
    }

    function test_grantBySig_revertsWhenSignerZero() public {
        (GrantMsg memory m, bytes memory sig) = _ownerGrant();
        _expectInvalid(address(0));
        _submitGrant(m, address(0), sig);
    }

    function test_grantBySig_ownerSignatureVoidAfterTransfer() public {
        (GrantMsg memory m, bytes memory sig) = _ownerGrant();
        vm.prank(owner);
        vehicles.transferFrom(owner, bob, vehicleId);
        _expectInvalid(owner); // signed for the generation before the sale
        _submitGrant(m, owner, sig);
    }

    // ------------------------------------------------------------------ mintWithAttestation

    function test_mintWithAttestation_revertsWhenSignedForOtherChain() public {
        bytes32 vin = keccak256("VIN-CHAIN");
        bytes32 structHash = _mintStructHash(owner, connectionId, vin, 0, block.timestamp);
        bytes memory sig = signDigest(oracleKey, _digest(_domain("DIMO Vehicle", 5, address(vehicles)), structHash));
        _expectInvalid(oracle);
        vehicles.mintWithAttestation(owner, connectionId, vin, 0, block.timestamp, sig);
    }

    function test_mintWithAttestation_revertsWhenSignedForOtherContract() public {
        bytes32 vin = keccak256("VIN-CONTRACT");
        bytes32 structHash = _mintStructHash(owner, connectionId, vin, 0, block.timestamp);
        bytes memory sig =
            signDigest(oracleKey, _digest(_domain("DIMO Vehicle", block.chainid, address(devices)), structHash));
        _expectInvalid(oracle);
        vehicles.mintWithAttestation(owner, connectionId, vin, 0, block.timestamp, sig);
    }

    function test_mintWithAttestation_revertsWhenMalleable() public {
        bytes32 vin = keccak256("VIN-MALLEABLE");
        bytes memory sig = _signMint(oracleKey, owner, vin, 0, block.timestamp);
        _expectInvalid(oracle);
        vehicles.mintWithAttestation(owner, connectionId, vin, 0, block.timestamp, _malleable(sig));
    }

    function test_mintWithAttestation_revertsWhenReplayedForAnotherOwner() public {
        bytes32 vin = keccak256("VIN-REPLAY");
        bytes memory sig = _signMint(oracleKey, owner, vin, 0, block.timestamp);
        vehicles.mintWithAttestation(owner, connectionId, vin, 0, block.timestamp, sig);
        vm.expectRevert(abi.encodeWithSelector(IUnorderedNonces.NonceAlreadyUsed.selector, oracle, 0));
        vehicles.mintWithAttestation(stranger, connectionId, keccak256("VIN-OTHER"), 0, block.timestamp, sig);
        _expectInvalid(oracle); // under another nonce the fields no longer match the signature
        vehicles.mintWithAttestation(stranger, connectionId, keccak256("VIN-OTHER"), 1, block.timestamp, sig);
    }

    function test_mintWithAttestation_erc1271OracleThatApproves() public {
        OwnerWallet wallet = new OwnerWallet(oracle);
        vm.prank(governor);
        vehicles.setConnection(connectionId, address(wallet), true);
        bytes32 vin = keccak256("VIN-1271");
        bytes memory sig = _signMint(oracleKey, owner, vin, 0, block.timestamp);
        uint256 id = vehicles.mintWithAttestation(owner, connectionId, vin, 0, block.timestamp, sig);
        assertEq(vehicles.ownerOf(id), owner);
        assertEq(freeNonce(vehicles, address(wallet)), 1);
    }

    function test_mintWithAttestation_revertsWhenErc1271OracleRefuses() public {
        RefusingWallet wallet = new RefusingWallet();
        vm.prank(governor);
        vehicles.setConnection(connectionId, address(wallet), true);
        bytes32 vin = keccak256("VIN-1271-NO");
        bytes memory sig = _signMint(oracleKey, owner, vin, 0, block.timestamp);
        _expectInvalid(address(wallet));
        vehicles.mintWithAttestation(owner, connectionId, vin, 0, block.timestamp, sig);
    }

    function test_nonces_sharedAcrossMessageTypesOfOneSigner() public {
        // An oracle that also owns a vehicle spends one nonce bitmap for both message types.
        uint256 oracleVehicle = _mintTo(oracle);
        GrantMsg memory m = _grantMsg(oracleVehicle, alice, Permissions.LOCK, oracle);
        _submitGrant(m, oracle, _signGrant(oracleKey, m));
        bytes32 vin = keccak256("VIN-SHARED");
        bytes memory stale = _signMint(oracleKey, owner, vin, 0, block.timestamp);
        vm.expectRevert(abi.encodeWithSelector(IUnorderedNonces.NonceAlreadyUsed.selector, oracle, 0));
        vehicles.mintWithAttestation(owner, connectionId, vin, 0, block.timestamp, stale);
        bytes memory fresh = _signMint(oracleKey, owner, vin, 1, block.timestamp);
        vehicles.mintWithAttestation(owner, connectionId, vin, 1, block.timestamp, fresh);
        assertEq(freeNonce(vehicles, oracle), 2);
    }
}
