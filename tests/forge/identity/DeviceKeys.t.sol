// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {IAftermarketDevice} from "../../../contracts/interfaces/IAftermarketDevice.sol";
import {IdentityBase} from "./IdentityBase.sol";

/// @notice Device keys: rotated by the owner and the manufacturer together, revoked by the
///         manufacturer that minted the device only; serials are per manufacturer.
contract DeviceKeysTest is IdentityBase {
    uint256 internal vehicleId;
    uint256 internal deviceId;
    address internal newKeyAddr;
    uint256 internal newKey;
    address internal otherManufacturer;

    function setUp() public override {
        super.setUp();
        vehicleId = _mintTo(owner);
        deviceId = _mintDevice(owner, deviceKeyAddr);
        (newKeyAddr, newKey) = makeAccount("new device key");
        otherManufacturer = makeAddr("other manufacturer");
        vm.prank(governor);
        devices.setManufacturer(otherManufacturer, true);
    }

    function _pairWith(uint256 key, uint256 nonce) internal {
        uint256 deadline = block.timestamp + 1 hours;
        bytes memory sig = _signPair(key, vehicleId, deviceId, nonce, deadline);
        vm.prank(owner);
        devices.pair(vehicleId, deviceId, nonce, deadline, sig);
    }

    // ------------------------------------------------------------------ rotation

    function test_rotation_ownerProposesManufacturerAccepts() public {
        vm.expectEmit(true, true, false, true, address(devices));
        emit IAftermarketDevice.DeviceSignerProposed(deviceId, owner, newKeyAddr);
        vm.prank(owner);
        devices.proposeDeviceSigner(deviceId, newKeyAddr);
        assertEq(devices.deviceSigner(deviceId), deviceKeyAddr); // nothing moves on one party
        vm.expectEmit(true, false, false, true, address(devices));
        emit IAftermarketDevice.DeviceSignerRotated(deviceId, deviceKeyAddr, newKeyAddr);
        vm.prank(manufacturer);
        devices.acceptDeviceSigner(deviceId, newKeyAddr);
        assertEq(devices.deviceSigner(deviceId), newKeyAddr);
        assertEq(devices.deviceOfSigner(newKeyAddr), deviceId);
        assertEq(devices.deviceOfSigner(deviceKeyAddr), 0);
        (address pending,) = devices.pendingDeviceSigner(deviceId);
        assertEq(pending, address(0));
    }

    function test_rotation_manufacturerProposesOwnerAccepts() public {
        vm.prank(manufacturer);
        devices.proposeDeviceSigner(deviceId, newKeyAddr);
        (address pending, bool byOwner) = devices.pendingDeviceSigner(deviceId);
        assertEq(pending, newKeyAddr);
        assertFalse(byOwner);
        vm.prank(owner);
        devices.acceptDeviceSigner(deviceId, newKeyAddr);
        assertEq(devices.deviceSigner(deviceId), newKeyAddr);
    }

    function test_rotation_theProposerCannotAcceptAlone() public {
        vm.prank(owner);
        devices.proposeDeviceSigner(deviceId, newKeyAddr);
        vm.expectRevert(abi.encodeWithSelector(IAftermarketDevice.NotRotationParty.selector, deviceId, owner));
        vm.prank(owner);
        devices.acceptDeviceSigner(deviceId, newKeyAddr);

        vm.prank(manufacturer);
        devices.proposeDeviceSigner(deviceId, newKeyAddr);
        vm.expectRevert(abi.encodeWithSelector(IAftermarketDevice.NotRotationParty.selector, deviceId, manufacturer));
        vm.prank(manufacturer);
        devices.acceptDeviceSigner(deviceId, newKeyAddr);
        assertEq(devices.deviceSigner(deviceId), deviceKeyAddr);
    }

    function test_rotation_outsidersAndOtherManufacturersRefused() public {
        vm.expectRevert(abi.encodeWithSelector(IAftermarketDevice.NotRotationParty.selector, deviceId, stranger));
        vm.prank(stranger);
        devices.proposeDeviceSigner(deviceId, newKeyAddr);
        vm.prank(owner);
        devices.proposeDeviceSigner(deviceId, newKeyAddr);
        vm.expectRevert(
            abi.encodeWithSelector(IAftermarketDevice.NotRotationParty.selector, deviceId, otherManufacturer)
        );
        vm.prank(otherManufacturer);
        devices.acceptDeviceSigner(deviceId, newKeyAddr);
    }

    function test_rotation_acceptMustNameTheProposedKey() public {
        vm.prank(owner);
        devices.proposeDeviceSigner(deviceId, newKeyAddr);
        address swapped = makeAddr("swapped");
        vm.expectRevert(
            abi.encodeWithSelector(IAftermarketDevice.RotationMismatch.selector, deviceId, newKeyAddr, swapped)
        );
        vm.prank(manufacturer);
        devices.acceptDeviceSigner(deviceId, swapped);
    }

    function test_rotation_aTransferVoidsTheProposal() public {
        vm.prank(owner);
        devices.proposeDeviceSigner(deviceId, newKeyAddr);
        vm.prank(owner);
        devices.transferFrom(owner, alice, deviceId);
        vm.expectRevert(abi.encodeWithSelector(IAftermarketDevice.NoRotationProposed.selector, deviceId));
        vm.prank(manufacturer);
        devices.acceptDeviceSigner(deviceId, newKeyAddr);
    }

    function test_rotation_refusesABoundOrZeroKey() public {
        address otherKey = makeAddr("other device key");
        uint256 other = _mintDevice(alice, otherKey);
        vm.expectRevert(abi.encodeWithSelector(IAftermarketDevice.SignerAlreadyBound.selector, otherKey, other));
        vm.prank(owner);
        devices.proposeDeviceSigner(deviceId, otherKey);
        vm.expectRevert(IAftermarketDevice.ZeroDeviceSigner.selector);
        vm.prank(owner);
        devices.proposeDeviceSigner(deviceId, address(0));
    }

    function test_rotation_theOldKeySignsNothingAndTheNewOnePairs() public {
        vm.prank(owner);
        devices.proposeDeviceSigner(deviceId, newKeyAddr);
        vm.prank(manufacturer);
        devices.acceptDeviceSigner(deviceId, newKeyAddr);
        uint256 deadline = block.timestamp + 1 hours;
        bytes memory oldSig = _signPair(deviceKey, vehicleId, deviceId, 0, deadline);
        vm.expectRevert(abi.encodeWithSelector(IAftermarketDevice.InvalidSignature.selector, newKeyAddr));
        vm.prank(owner);
        devices.pair(vehicleId, deviceId, 0, deadline, oldSig);
        _pairWith(newKey, 0);
        assertEq(devices.deviceOf(vehicleId), deviceId);
    }

    // ------------------------------------------------------------------ revocation

    function test_revoke_byItsManufacturerEndsPairingAndRefusesSignatures() public {
        _pairWith(deviceKey, 0);
        vm.expectEmit(true, true, false, true, address(devices));
        emit IAftermarketDevice.DeviceRevoked(deviceId, manufacturer);
        vm.prank(manufacturer);
        devices.revokeDevice(deviceId);
        assertTrue(devices.isDeviceRevoked(deviceId));
        assertEq(devices.deviceOf(vehicleId), 0);
        assertEq(devices.vehicleOfDevice(deviceId), 0);
        vm.expectRevert(abi.encodeWithSelector(IAftermarketDevice.NotPaired.selector, vehicleId));
        vm.prank(owner);
        devices.unpair(vehicleId);
    }

    function test_revoke_refusesPairingAndRotationAfterwards() public {
        vm.prank(manufacturer);
        devices.revokeDevice(deviceId);
        uint256 deadline = block.timestamp + 1 hours;
        bytes memory sig = _signPair(deviceKey, vehicleId, deviceId, 0, deadline);
        vm.expectRevert(abi.encodeWithSelector(IAftermarketDevice.DeviceIsRevoked.selector, deviceId));
        vm.prank(owner);
        devices.pair(vehicleId, deviceId, 0, deadline, sig);
        vm.expectRevert(abi.encodeWithSelector(IAftermarketDevice.DeviceIsRevoked.selector, deviceId));
        vm.prank(owner);
        devices.proposeDeviceSigner(deviceId, newKeyAddr);
        vm.expectRevert(abi.encodeWithSelector(IAftermarketDevice.DeviceIsRevoked.selector, deviceId));
        vm.prank(manufacturer);
        devices.revokeDevice(deviceId);
    }

    function test_revoke_refusedToAnotherManufacturerTheOwnerAndOutsiders() public {
        address[3] memory callers = [otherManufacturer, owner, stranger];
        for (uint256 i; i < callers.length; ++i) {
            vm.expectRevert(
                abi.encodeWithSelector(IAftermarketDevice.NotDeviceManufacturer.selector, deviceId, callers[i])
            );
            vm.prank(callers[i]);
            devices.revokeDevice(deviceId);
        }
        assertFalse(devices.isDeviceRevoked(deviceId));
    }

    function test_revoke_aPendingRotationDies() public {
        vm.prank(owner);
        devices.proposeDeviceSigner(deviceId, newKeyAddr);
        vm.prank(manufacturer);
        devices.revokeDevice(deviceId);
        vm.expectRevert(abi.encodeWithSelector(IAftermarketDevice.DeviceIsRevoked.selector, deviceId));
        vm.prank(owner);
        devices.acceptDeviceSigner(deviceId, newKeyAddr);
    }

    // ------------------------------------------------------------------ serials

    function test_serials_areNamespacedPerManufacturer() public {
        bytes32 serial = keccak256("SN-SHARED");
        vm.prank(manufacturer);
        uint256 a = devices.mintDevice(owner, makeAddr("key a"), serial);
        vm.prank(otherManufacturer);
        uint256 b = devices.mintDevice(owner, makeAddr("key b"), serial);
        assertTrue(a != b);
        assertEq(devices.deviceOfSerial(manufacturer, serial), a);
        assertEq(devices.deviceOfSerial(otherManufacturer, serial), b);
        assertEq(devices.manufacturerOf(a), manufacturer);
        assertEq(devices.manufacturerOf(b), otherManufacturer);
        vm.expectRevert(
            abi.encodeWithSelector(IAftermarketDevice.SerialAlreadyMinted.selector, otherManufacturer, serial, b)
        );
        vm.prank(otherManufacturer);
        devices.mintDevice(owner, makeAddr("key c"), serial);
    }

    function testFuzz_rotation_onlyTheOtherPartyCompletesIt(address caller, bool ownerProposes) public {
        address proposer = ownerProposes ? owner : manufacturer;
        address acceptor = ownerProposes ? manufacturer : owner;
        vm.prank(proposer);
        devices.proposeDeviceSigner(deviceId, newKeyAddr);
        bool accepted;
        vm.prank(caller);
        try devices.acceptDeviceSigner(deviceId, newKeyAddr) {
            accepted = true;
        } catch {}
        assertEq(accepted, caller == acceptor);
        assertEq(devices.deviceSigner(deviceId), accepted ? newKeyAddr : deviceKeyAddr);
    }
}
