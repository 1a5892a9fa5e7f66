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
import {IAftermarketDevice} from "../../../contracts/interfaces/IAftermarketDevice.sol";
import {IUnorderedNonces} from "../../../contracts/interfaces/IUnorderedNonces.sol";
import {AftermarketDevice} from "../../../contracts/identity/AftermarketDevice.sol";
import {IdentityBase, OwnerWallet, RefusingWallet} from "./IdentityBase.sol";

/// @notice AftermarketDevice unit tests: per function and per revert reason, pairing signatures.
contract AftermarketDeviceTest is IdentityBase {
    bytes32 internal constant SERIAL = keccak256("SN-0001");

    uint256 internal vehicleId;
    uint256 internal deviceId;

    function setUp() public override {
        super.setUp();
        vehicleId = _mintTo(owner);
        deviceId = _mintDevice(owner, deviceKeyAddr);
    }

    function _pair() internal {
        uint256 deadline = block.timestamp + 1 hours;
        uint256 nonce = freeNonce(devices, deviceKeyAddr);
        bytes memory sig = _signPair(deviceKey, vehicleId, deviceId, nonce, deadline);
        vm.prank(owner);
        devices.pair(vehicleId, deviceId, nonce, deadline, sig);
    }

    // ------------------------------------------------------------------ constructor, manufacturers

    function test_constructor_setsNameSymbolRolesAndVehicles() public view {
        assertEq(devices.name(), "DIMO Device");
        assertEq(devices.symbol(), "DIMOD");
        assertEq(address(devices.VEHICLES()), address(vehicles));
        assertTrue(devices.hasRole(devices.GOVERNOR_ROLE(), governor));
        assertTrue(devices.hasRole(devices.DEFAULT_ADMIN_ROLE(), governor));
    }

    function test_constructor_revertsWhenZeroAddress() public {
        vm.expectRevert(IAftermarketDevice.ZeroAddress.selector);
        new AftermarketDevice(address(0), governor);
        vm.expectRevert(
            abi.encodeWithSelector(
                IAccessControlDefaultAdminRules.AccessControlInvalidDefaultAdmin.selector, address(0)
            )
        );
        new AftermarketDevice(address(vehicles), address(0));
    }

    function test_setManufacturer_allowsAndDisallows() public {
        address m = makeAddr("m2");
        vm.expectEmit(true, false, false, true, address(devices));
        emit IAftermarketDevice.ManufacturerSet(m, true);
        vm.prank(governor);
        devices.setManufacturer(m, true);
        assertTrue(devices.isManufacturer(m));
        vm.prank(governor);
        devices.setManufacturer(m, false);
        assertFalse(devices.isManufacturer(m));
        vm.expectRevert(abi.encodeWithSelector(IAftermarketDevice.NotManufacturer.selector, m));
        vm.prank(m);
        devices.mintDevice(owner, makeAddr("k"), keccak256("s"));
    }

    function test_setManufacturer_revertsWhenNotGovernor() public {
        vm.expectRevert(
            abi.encodeWithSelector(
                IAccessControl.AccessControlUnauthorizedAccount.selector, manufacturer, devices.GOVERNOR_ROLE()
            )
        );
        vm.prank(manufacturer);
        devices.setManufacturer(stranger, true);
    }

    function test_setManufacturer_revertsWhenZero() public {
        vm.expectRevert(IAftermarketDevice.ZeroManufacturer.selector);
        vm.prank(governor);
        devices.setManufacturer(address(0), true);
    }

    // ------------------------------------------------------------------ mintDevice

    function test_mintDevice_bindsKeyAndSerial() public {
        address key = makeAddr("key 2");
        vm.expectEmit(true, true, true, true, address(devices));
        emit IAftermarketDevice.DeviceMinted(2, alice, manufacturer, key, SERIAL);
        vm.prank(manufacturer);
        uint256 id = devices.mintDevice(alice, key, SERIAL);
        assertEq(id, 2);
        assertEq(devices.ownerOf(id), alice);
        assertEq(devices.deviceSigner(id), key);
        assertEq(devices.deviceOfSigner(key), id);
        assertEq(devices.deviceOfSerial(manufacturer, SERIAL), id);
        assertEq(devices.deviceGeneration(id), 1);
        assertEq(devices.totalMinted(), 2);
    }

    function test_mintDevice_revertsWhenNotManufacturer() public {
        vm.expectRevert(abi.encodeWithSelector(IAftermarketDevice.NotManufacturer.selector, governor));
        vm.prank(governor);
        devices.mintDevice(owner, makeAddr("k"), SERIAL);
    }

    function test_mintDevice_revertsWhenZeroSigner() public {
        vm.expectRevert(IAftermarketDevice.ZeroDeviceSigner.selector);
        vm.prank(manufacturer);
        devices.mintDevice(owner, address(0), SERIAL);
    }

    function test_mintDevice_revertsWhenZeroSerial() public {
        vm.expectRevert(IAftermarketDevice.ZeroSerialHash.selector);
        vm.prank(manufacturer);
        devices.mintDevice(owner, makeAddr("k"), bytes32(0));
    }

    function test_mintDevice_revertsWhenSerialTaken() public {
        vm.prank(manufacturer);
        uint256 id = devices.mintDevice(owner, makeAddr("k"), SERIAL);
        vm.expectRevert(abi.encodeWithSelector(IAftermarketDevice.SerialAlreadyMinted.selector, manufacturer, SERIAL, id));
        vm.prank(manufacturer);
        devices.mintDevice(owner, makeAddr("k2"), SERIAL);
    }

    function test_mintDevice_revertsWhenSignerBound() public {
        vm.expectRevert(abi.encodeWithSelector(IAftermarketDevice.SignerAlreadyBound.selector, deviceKeyAddr, deviceId));
        vm.prank(manufacturer);
        devices.mintDevice(owner, deviceKeyAddr, SERIAL);
    }

    function test_mintDevice_revertsWhenZeroReceiver() public {
        vm.expectRevert(abi.encodeWithSelector(IERC721Errors.ERC721InvalidReceiver.selector, address(0)));
        vm.prank(manufacturer);
        devices.mintDevice(address(0), makeAddr("k"), SERIAL);
    }

    function test_deviceSigner_revertsWhenNonexistent() public {
        vm.expectRevert(abi.encodeWithSelector(IERC721Errors.ERC721NonexistentToken.selector, 9));
        devices.deviceSigner(9);
    }

    // ------------------------------------------------------------------ pair

    function test_pair_pairsBothWaysAndConsumesNonce() public {
        vm.expectEmit(true, true, false, true, address(devices));
        emit IAftermarketDevice.Paired(vehicleId, deviceId);
        _pair();
        assertEq(devices.deviceOf(vehicleId), deviceId);
        assertEq(devices.vehicleOfDevice(deviceId), vehicleId);
        assertEq(freeNonce(devices, deviceKeyAddr), 1);
    }

    function test_pair_acceptsErc1271DeviceKey() public {
        OwnerWallet wallet = new OwnerWallet(deviceKeyAddr);
        vm.prank(manufacturer);
        uint256 d = devices.mintDevice(owner, address(wallet), keccak256("wallet device"));
        bytes memory sig = _signPair(deviceKey, vehicleId, d, 0, block.timestamp);
        vm.prank(owner);
        devices.pair(vehicleId, d, 0, block.timestamp, sig);
        assertEq(devices.deviceOf(vehicleId), d);
    }

    function test_pair_revertsWhenErc1271DeviceKeyRefuses() public {
        RefusingWallet wallet = new RefusingWallet();
        vm.prank(manufacturer);
        uint256 d = devices.mintDevice(owner, address(wallet), keccak256("refusing device"));
        bytes memory sig = _signPair(deviceKey, vehicleId, d, 0, block.timestamp);
        vm.expectRevert(abi.encodeWithSelector(IAftermarketDevice.InvalidSignature.selector, address(wallet)));
        vm.prank(owner);
        devices.pair(vehicleId, d, 0, block.timestamp, sig);
    }

    function test_pair_revertsWhenCallerDoesNotOwnVehicle() public {
        uint256 d = _mintDevice(alice, makeAddr("alice device"));
        vm.expectRevert(abi.encodeWithSelector(IAftermarketDevice.NotVehicleOwner.selector, vehicleId, alice));
        vm.prank(alice);
        devices.pair(vehicleId, d, 0, block.timestamp, "");
    }

    function test_pair_revertsWhenCallerDoesNotOwnDevice() public {
        uint256 d = _mintDevice(alice, makeAddr("alice device"));
        vm.expectRevert(abi.encodeWithSelector(IAftermarketDevice.NotDeviceOwner.selector, d, owner));
        vm.prank(owner);
        devices.pair(vehicleId, d, 0, block.timestamp, "");
    }

    function test_pair_revertsWhenVehicleMissing() public {
        vm.expectRevert(abi.encodeWithSelector(IERC721Errors.ERC721NonexistentToken.selector, 99));
        vm.prank(owner);
        devices.pair(99, deviceId, 0, block.timestamp, "");
    }

    function test_pair_revertsWhenVehicleAlreadyPaired() public {
        _pair();
        (address k2, uint256 k2Key) = makeAccount("device key 2");
        uint256 d2 = _mintDevice(owner, k2);
        bytes memory sig = _signPair(k2Key, vehicleId, d2, 0, block.timestamp);
        vm.expectRevert(abi.encodeWithSelector(IAftermarketDevice.VehicleAlreadyPaired.selector, vehicleId, deviceId));
        vm.prank(owner);
        devices.pair(vehicleId, d2, 0, block.timestamp, sig);
    }

    function test_pair_revertsWhenDeviceAlreadyPaired() public {
        _pair();
        uint256 v2 = _mintTo(owner);
        bytes memory sig = _signPair(deviceKey, v2, deviceId, 1, block.timestamp);
        vm.expectRevert(abi.encodeWithSelector(IAftermarketDevice.DeviceAlreadyPaired.selector, deviceId, vehicleId));
        vm.prank(owner);
        devices.pair(v2, deviceId, 0, block.timestamp, sig);
    }

    function test_pair_revertsWhenExpired() public {
        uint256 deadline = block.timestamp - 1;
        bytes memory sig = _signPair(deviceKey, vehicleId, deviceId, 0, deadline);
        vm.expectRevert(abi.encodeWithSelector(IAftermarketDevice.SignatureExpired.selector, deadline, block.timestamp));
        vm.prank(owner);
        devices.pair(vehicleId, deviceId, 0, deadline, sig);
    }

    function test_pair_revertsWhenSignedByOwnerNotDevice() public {
        bytes memory sig = _signPair(ownerKey, vehicleId, deviceId, 0, block.timestamp);
        vm.expectRevert(abi.encodeWithSelector(IAftermarketDevice.InvalidSignature.selector, deviceKeyAddr));
        vm.prank(owner);
        devices.pair(vehicleId, deviceId, 0, block.timestamp, sig);
    }

    function test_pair_revertsWhenReplayed() public {
        bytes memory sig = _signPair(deviceKey, vehicleId, deviceId, 0, block.timestamp + 10);
        vm.startPrank(owner);
        devices.pair(vehicleId, deviceId, 0, block.timestamp + 10, sig);
        devices.unpair(vehicleId);
        vm.expectRevert(abi.encodeWithSelector(IUnorderedNonces.NonceAlreadyUsed.selector, deviceKeyAddr, 0));
        devices.pair(vehicleId, deviceId, 0, block.timestamp + 10, sig);
        vm.stopPrank();
    }

    function test_pair_revertsWhenSignedForOtherVehicle() public {
        uint256 v2 = _mintTo(owner);
        bytes memory sig = _signPair(deviceKey, v2, deviceId, 0, block.timestamp);
        vm.expectRevert(abi.encodeWithSelector(IAftermarketDevice.InvalidSignature.selector, deviceKeyAddr));
        vm.prank(owner);
        devices.pair(vehicleId, deviceId, 0, block.timestamp, sig);
    }

    function test_pair_revertsWhenMalleable() public {
        bytes memory sig = _signPair(deviceKey, vehicleId, deviceId, 0, block.timestamp);
        vm.expectRevert(abi.encodeWithSelector(IAftermarketDevice.InvalidSignature.selector, deviceKeyAddr));
        vm.prank(owner);
        devices.pair(vehicleId, deviceId, 0, block.timestamp, _malleable(sig));
    }

    function test_pair_revertsWhenWrongChain() public {
        bytes32 structHash = keccak256(abi.encode(PAIR_TYPEHASH, vehicleId, deviceId, 0, block.timestamp));
        bytes memory sig = signDigest(deviceKey, _digest(_domain("DIMO Device", 1, address(devices)), structHash));
        vm.expectRevert(abi.encodeWithSelector(IAftermarketDevice.InvalidSignature.selector, deviceKeyAddr));
        vm.prank(owner);
        devices.pair(vehicleId, deviceId, 0, block.timestamp, sig);
    }

    function test_pair_revertsWhenSignedForVehicleDomain() public {
        bytes32 structHash = keccak256(abi.encode(PAIR_TYPEHASH, vehicleId, deviceId, 0, block.timestamp));
        bytes memory sig = signDigest(deviceKey, _digest(_domain("DIMO Device", block.chainid, address(vehicles)), structHash));
        vm.expectRevert(abi.encodeWithSelector(IAftermarketDevice.InvalidSignature.selector, deviceKeyAddr));
        vm.prank(owner);
        devices.pair(vehicleId, deviceId, 0, block.timestamp, sig);
    }

    // ------------------------------------------------------------------ pairing ends on transfer

    function test_vehicleTransfer_endsPairingBothWays() public {
        _pair();
        vm.prank(owner);
        vehicles.transferFrom(owner, alice, vehicleId);
        assertEq(devices.deviceOf(vehicleId), 0);
        assertEq(devices.vehicleOfDevice(deviceId), 0);
    }

    function test_deviceTransfer_endsPairingBothWays() public {
        _pair();
        vm.prank(owner);
        devices.transferFrom(owner, alice, deviceId);
        assertEq(devices.deviceGeneration(deviceId), 2);
        assertEq(devices.deviceOf(vehicleId), 0);
        assertEq(devices.vehicleOfDevice(deviceId), 0);
    }

    function test_vehicleBurn_endsPairing() public {
        _pair();
        vm.prank(owner);
        vehicles.burn(vehicleId);
        assertEq(devices.deviceOf(vehicleId), 0);
        assertEq(devices.vehicleOfDevice(deviceId), 0);
    }

    function test_transferBack_doesNotRevivePairing() public {
        _pair();
        vm.prank(owner);
        devices.transferFrom(owner, alice, deviceId);
        vm.prank(alice);
        devices.transferFrom(alice, owner, deviceId);
        assertEq(devices.deviceOf(vehicleId), 0);
        assertEq(devices.vehicleOfDevice(deviceId), 0);
    }

    function test_pair_afterStalePairingRepairsCleanly() public {
        _pair();
        uint256 v2 = _mintTo(owner);
        vm.prank(owner);
        vehicles.transferFrom(owner, owner, vehicleId); // stale: the device is free again
        bytes memory sig = _signPair(deviceKey, v2, deviceId, 1, block.timestamp);
        vm.prank(owner);
        devices.pair(v2, deviceId, 1, block.timestamp, sig);
        assertEq(devices.deviceOf(v2), deviceId);
        assertEq(devices.vehicleOfDevice(deviceId), v2);
        assertEq(devices.deviceOf(vehicleId), 0);
    }

    // ------------------------------------------------------------------ unpair

    function test_unpair_byVehicleOwnerEmits() public {
        _pair();
        vm.expectEmit(true, true, false, true, address(devices));
        emit IAftermarketDevice.Unpaired(vehicleId, deviceId);
        vm.prank(owner);
        devices.unpair(vehicleId);
        assertEq(devices.deviceOf(vehicleId), 0);
        assertEq(devices.vehicleOfDevice(deviceId), 0);
    }

    function test_unpair_revertsWhenNotPaired() public {
        vm.expectRevert(abi.encodeWithSelector(IAftermarketDevice.NotPaired.selector, vehicleId));
        vm.prank(owner);
        devices.unpair(vehicleId);
    }

    function test_unpair_revertsWhenPairingStale() public {
        _pair();
        vm.prank(owner);
        devices.transferFrom(owner, alice, deviceId);
        vm.expectRevert(abi.encodeWithSelector(IAftermarketDevice.NotPaired.selector, vehicleId));
        vm.prank(owner);
        devices.unpair(vehicleId);
    }

    function test_unpair_revertsWhenNotParty() public {
        _pair();
        vm.expectRevert(abi.encodeWithSelector(IAftermarketDevice.NotPairingParty.selector, vehicleId, stranger));
        vm.prank(stranger);
        devices.unpair(vehicleId);
    }

    // ------------------------------------------------------------------ metadata, ERC-165, EIP-712

    function test_tokenURI_isJsonWithSignerAndPairing() public {
        _pair();
        string memory json = string.concat(
            '{"name":"DIMO Device #1","deviceSigner":"',
            Strings.toHexString(deviceKeyAddr),
            '","generation":1,"vehicleId":1}'
        );
        assertEq(devices.tokenURI(deviceId), string.concat("data:application/json;base64,", Base64.encode(bytes(json))));
    }

    function test_supportsInterface_erc721AndMetadata() public view {
        assertTrue(devices.supportsInterface(0x80ac58cd));
        assertTrue(devices.supportsInterface(0x5b5e139f));
        assertTrue(devices.supportsInterface(0x01ffc9a7));
        assertFalse(devices.supportsInterface(0xffffffff));
    }

    function test_domainSeparator_matchesIndependentComputation() public view {
        assertEq(devices.DOMAIN_SEPARATOR(), _domain("DIMO Device", block.chainid, address(devices)));
        assertEq(devices.PAIR_TYPEHASH(), PAIR_TYPEHASH);
    }
}
