// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {IUnorderedNonces} from "../../../contracts/interfaces/IUnorderedNonces.sol";
import {IVehicleId} from "../../../contracts/interfaces/IVehicleId.sol";
import {IAftermarketDevice} from "../../../contracts/interfaces/IAftermarketDevice.sol";
import {Permissions} from "../../../contracts/libraries/Permissions.sol";
import {IdentityBase} from "./IdentityBase.sol";

/// @notice Unordered nonces on VehicleId (`Grant`, `MintAttestation`) and AftermarketDevice
///         (`Pair`): many outstanding, any order, each once, any cancellable; `Grant` bound to
///         the vehicle's generation.
contract UnorderedNoncesTest is IdentityBase {
    uint256 internal vehicleId;

    function setUp() public override {
        super.setUp();
        vehicleId = _mintTo(owner);
    }

    function _expectUsed(address signer, uint256 nonce) internal {
        vm.expectRevert(abi.encodeWithSelector(IUnorderedNonces.NonceAlreadyUsed.selector, signer, nonce));
    }

    function _grantWithNonce(address grantee, uint256 nonce) internal view returns (GrantMsg memory m) {
        m = _grantMsg(vehicleId, grantee, Permissions.LOCK, owner);
        m.nonce = nonce;
    }

    // ------------------------------------------------------------------ invalidateNonces

    function test_invalidateNonces_cancelsAnOutstandingGrantAndEmits() public {
        GrantMsg memory m = _grantWithNonce(alice, 5);
        bytes memory sig = _signGrant(ownerKey, m);
        vm.expectEmit(true, true, false, true, address(vehicles));
        emit IUnorderedNonces.NoncesInvalidated(owner, 0, 1 << 5);
        vm.prank(owner);
        vehicles.invalidateNonces(0, 1 << 5);
        _expectUsed(owner, 5);
        _submitGrant(m, owner, sig);
        assertEq(vehicles.permissionsOf(vehicleId, alice), 0);
    }

    function test_invalidateNonces_leavesOtherNoncesUsable() public {
        GrantMsg memory kept = _grantWithNonce(alice, 256 + 7);
        bytes memory keptSig = _signGrant(ownerKey, kept);
        vm.prank(owner);
        vehicles.invalidateNonces(1, 1 << 6); // nonce 262, the neighbour of 263
        _submitGrant(kept, owner, keptSig);
        assertEq(vehicles.permissionsOf(vehicleId, alice), Permissions.LOCK);
        assertEq(vehicles.nonceBitmap(owner, 1), (1 << 6) | (1 << 7));
    }

    function test_invalidateNonces_onlyTouchesTheCallersBitmap() public {
        vm.prank(stranger);
        vehicles.invalidateNonces(0, type(uint256).max);
        assertEq(vehicles.nonceBitmap(owner, 0), 0);
        GrantMsg memory m = _grantWithNonce(alice, 0);
        _submitGrant(m, owner, _signGrant(ownerKey, m));
        assertEq(vehicles.permissionsOf(vehicleId, alice), Permissions.LOCK);
    }

    function test_invalidateNonces_revertsOnEmptyMask() public {
        vm.expectRevert(abi.encodeWithSelector(IUnorderedNonces.EmptyNonceMask.selector, 3));
        vm.prank(owner);
        vehicles.invalidateNonces(3, 0);
    }

    function test_invalidateNonces_cancelsAMintAttestation() public {
        bytes32 vin = keccak256("VIN-CANCEL");
        uint256 deadline = block.timestamp + 1 hours;
        bytes memory sig = _signMint(oracleKey, alice, vin, 9, deadline);
        vm.prank(oracle);
        vehicles.invalidateNonces(0, 1 << 9);
        _expectUsed(oracle, 9);
        vehicles.mintWithAttestation(alice, connectionId, vin, 9, deadline, sig);
    }

    function test_invalidateNonces_cancelsAPair() public {
        uint256 deviceId = _mintDevice(owner, deviceKeyAddr);
        uint256 deadline = block.timestamp + 1 hours;
        bytes memory sig = _signPair(deviceKey, vehicleId, deviceId, 300, deadline);
        vm.prank(deviceKeyAddr);
        devices.invalidateNonces(1, 1 << 44);
        assertTrue(devices.isNonceUsed(deviceKeyAddr, 300));
        _expectUsed(deviceKeyAddr, 300);
        vm.prank(owner);
        devices.pair(vehicleId, deviceId, 300, deadline, sig);
    }

    // ------------------------------------------------------------------ many outstanding, any order

    function test_grants_manyOutstandingUsedInAnyOrder() public {
        address[3] memory grantees = [alice, bob, carol];
        uint256[3] memory nonces = [uint256(2), 1000, 0];
        bytes[3] memory sigs;
        GrantMsg[3] memory msgs;
        for (uint256 i; i < 3; ++i) {
            msgs[i] = _grantWithNonce(grantees[i], nonces[i]);
            sigs[i] = _signGrant(ownerKey, msgs[i]);
        }
        for (uint256 i = 3; i > 0; --i) {
            _submitGrant(msgs[i - 1], owner, sigs[i - 1]);
        }
        for (uint256 i; i < 3; ++i) {
            assertEq(vehicles.permissionsOf(vehicleId, grantees[i]), Permissions.LOCK);
            assertTrue(vehicles.isNonceUsed(owner, nonces[i]));
        }
        assertFalse(vehicles.isNonceUsed(owner, 1));
    }

    // ------------------------------------------------------------------ generation binding

    function test_grant_signedBeforeASaleIsVoidAfterABuyBack() public {
        GrantMsg memory m = _grantWithNonce(alice, 0);
        bytes memory sig = _signGrant(ownerKey, m);
        vm.prank(owner);
        vehicles.transferFrom(owner, bob, vehicleId);
        vm.prank(bob);
        vehicles.transferFrom(bob, owner, vehicleId);
        vm.expectRevert(abi.encodeWithSelector(IVehicleId.InvalidSignature.selector, owner));
        _submitGrant(m, owner, sig);
        // Signed again for the generation now, the same nonce is still free.
        m.generation = vehicles.generation(vehicleId);
        _submitGrant(m, owner, _signGrant(ownerKey, m));
        assertEq(vehicles.permissionsOf(vehicleId, alice), Permissions.LOCK);
    }

    // ------------------------------------------------------------------ fuzz

    function testFuzz_grant_eachNonceOnceWhateverItsValue(uint256 nonce, uint256 other) public {
        vm.assume(nonce != other);
        GrantMsg memory m = _grantWithNonce(alice, nonce);
        bytes memory sig = _signGrant(ownerKey, m);
        _submitGrant(m, owner, sig);
        assertTrue(vehicles.isNonceUsed(owner, nonce));
        assertFalse(vehicles.isNonceUsed(owner, other));
        vm.prank(owner);
        vehicles.revoke(vehicleId, alice);
        _expectUsed(owner, nonce);
        _submitGrant(m, owner, sig);
    }

    function testFuzz_invalidateNonces_refusesExactlyTheMaskedNonces(uint256 wordPos, uint256 mask, uint8 bit)
        public
    {
        vm.assume(mask != 0);
        wordPos = bound(wordPos, 0, type(uint256).max >> 8);
        vm.prank(owner);
        vehicles.invalidateNonces(wordPos, mask);
        uint256 nonce = (wordPos << 8) | bit;
        GrantMsg memory m = _grantWithNonce(alice, nonce);
        bytes memory sig = _signGrant(ownerKey, m);
        bool masked = mask & (1 << bit) != 0;
        assertEq(vehicles.isNonceUsed(owner, nonce), masked);
        if (masked) _expectUsed(owner, nonce);
        _submitGrant(m, owner, sig);
        assertEq(vehicles.permissionsOf(vehicleId, alice), masked ? 0 : Permissions.LOCK);
    }
}
