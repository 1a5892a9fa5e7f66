// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {IAccessControl} from "@openzeppelin/contracts/access/IAccessControl.sol";
import {IERC721Errors} from "@openzeppelin/contracts/interfaces/draft-IERC6093.sol";
import {IAftermarketDevice} from "../../../contracts/interfaces/IAftermarketDevice.sol";
import {IVehicleId} from "../../../contracts/interfaces/IVehicleId.sol";
import {Permissions} from "../../../contracts/libraries/Permissions.sol";
import {IdentityBase} from "./IdentityBase.sol";

/// @notice The access matrix: every privileged function of VehicleId and AftermarketDevice, called
///         by every account that must not pass, reverts with the named error carrying that account.
contract IdentityAccessTest is IdentityBase {
    uint256 internal vehicleId;
    uint256 internal deviceId;

    address internal keyHolder; // every bit but MANAGE_KEYS
    address internal driver; // the ERC-4907 user
    address internal operator; // approved for all of the owner's vehicles and devices
    address internal previousOwner; // owned the vehicle a generation ago, held MANAGE_KEYS then
    address internal expiredManager; // held MANAGE_KEYS, expired
    address internal target; // holds a plain key others try to revoke

    mapping(address => uint256) internal keyOf;

    /// @dev Everyone in the matrix who is not the owner, with the key it signs with.
    address[] internal outsiders;

    function setUp() public override {
        super.setUp();
        uint256 k;
        (keyHolder, k) = makeAccount("key holder");
        keyOf[keyHolder] = k;
        (driver, k) = makeAccount("driver");
        keyOf[driver] = k;
        (operator, k) = makeAccount("operator");
        keyOf[operator] = k;
        (previousOwner, k) = makeAccount("previous owner");
        keyOf[previousOwner] = k;
        (expiredManager, k) = makeAccount("expired manager");
        keyOf[expiredManager] = k;
        (target,) = makeAccount("target");
        keyOf[stranger] = strangerKey;
        (, k) = makeAccount("minter");
        keyOf[minter] = k;
        (, k) = makeAccount("governor");
        keyOf[governor] = k;

        vehicleId = _mintTo(previousOwner);
        _grantAs(previousOwner, vehicleId, owner, ALL, FOREVER);
        vm.prank(previousOwner);
        vehicles.transferFrom(previousOwner, owner, vehicleId);
        _grantAs(owner, vehicleId, previousOwner, Permissions.LOCK, FOREVER);
        vm.prank(owner);
        vehicles.revoke(vehicleId, previousOwner); // held a key this generation too, now revoked

        _grantAs(owner, vehicleId, keyHolder, ALL & ~MANAGE_KEYS, FOREVER);
        _grantAs(owner, vehicleId, expiredManager, ALL, uint64(block.timestamp + 1));
        _grantAs(owner, vehicleId, target, Permissions.LOCK, FOREVER);
        vm.startPrank(owner);
        vehicles.setUser(vehicleId, driver, FOREVER);
        vehicles.setApprovalForAll(operator, true);
        devices.setApprovalForAll(operator, true);
        vm.stopPrank();
        deviceId = _mintDevice(owner, deviceKeyAddr);
        bytes memory sig = _signPair(deviceKey, vehicleId, deviceId, 0, block.timestamp);
        vm.prank(owner);
        devices.pair(vehicleId, deviceId, 0, block.timestamp, sig);
        vm.warp(block.timestamp + 1);

        outsiders = [stranger, keyHolder, driver, operator, previousOwner, expiredManager, minter, governor];
    }

    function _unauthorized(address caller, bytes32 role) internal pure returns (bytes memory) {
        return abi.encodeWithSelector(IAccessControl.AccessControlUnauthorizedAccount.selector, caller, role);
    }

    // ------------------------------------------------------------------ VehicleId: roles

    function test_access_addConnection() public {
        address[] memory callers = _with(owner, true, governor);
        for (uint256 i; i < callers.length; ++i) {
            vm.expectRevert(_unauthorized(callers[i], vehicles.GOVERNOR_ROLE()));
            vm.prank(callers[i]);
            vehicles.addConnection("Rivian", oracle);
        }
    }

    function test_access_setConnection() public {
        address[] memory callers = _with(owner, true, governor);
        for (uint256 i; i < callers.length; ++i) {
            vm.expectRevert(_unauthorized(callers[i], vehicles.GOVERNOR_ROLE()));
            vm.prank(callers[i]);
            vehicles.setConnection(connectionId, callers[i], true);
        }
    }

    function test_access_grantRole() public {
        address[] memory callers = _with(owner, true, governor);
        for (uint256 i; i < callers.length; ++i) {
            bytes32 minterRole = vehicles.MINTER_ROLE();
            vm.expectRevert(_unauthorized(callers[i], vehicles.GOVERNOR_ROLE()));
            vm.prank(callers[i]);
            vehicles.grantRole(minterRole, callers[i]);
        }
    }

    function test_access_mint() public {
        address[] memory callers = _with(owner, true, minter);
        for (uint256 i; i < callers.length; ++i) {
            vm.expectRevert(_unauthorized(callers[i], vehicles.MINTER_ROLE()));
            vm.prank(callers[i]);
            vehicles.mint(callers[i], connectionId, keccak256(abi.encode(i)));
        }
    }

    // ------------------------------------------------------------------ VehicleId: the owner's powers

    function test_access_grant() public {
        for (uint256 i; i < outsiders.length; ++i) {
            vm.expectRevert(abi.encodeWithSelector(IVehicleId.NotKeyManager.selector, vehicleId, outsiders[i]));
            _grantAs(outsiders[i], vehicleId, carol, Permissions.LOCK, FOREVER);
        }
    }

    function test_access_grantBySig() public {
        for (uint256 i; i < outsiders.length; ++i) {
            address signer = outsiders[i];
            GrantMsg memory m = _grantMsg(vehicleId, carol, Permissions.LOCK, signer);
            bytes memory sig = _signGrant(keyOf[signer], m);
            vm.expectRevert(abi.encodeWithSelector(IVehicleId.NotKeyManager.selector, vehicleId, signer));
            _submitGrant(m, signer, sig);
        }
    }

    function test_access_revoke() public {
        for (uint256 i; i < outsiders.length; ++i) {
            vm.expectRevert(abi.encodeWithSelector(IVehicleId.NotKeyManager.selector, vehicleId, outsiders[i]));
            vm.prank(outsiders[i]);
            vehicles.revoke(vehicleId, target);
        }
    }

    function test_access_setUser() public {
        for (uint256 i; i < outsiders.length; ++i) {
            if (outsiders[i] == operator) continue; // ERC-4907: approved operators may set the user
            vm.expectRevert(
                abi.encodeWithSelector(IERC721Errors.ERC721InsufficientApproval.selector, outsiders[i], vehicleId)
            );
            vm.prank(outsiders[i]);
            vehicles.setUser(vehicleId, outsiders[i], FOREVER);
        }
    }

    function test_access_burn() public {
        for (uint256 i; i < outsiders.length; ++i) {
            vm.expectRevert(abi.encodeWithSelector(IVehicleId.NotVehicleOwner.selector, vehicleId, outsiders[i]));
            vm.prank(outsiders[i]);
            vehicles.burn(vehicleId);
        }
    }

    function test_access_transferFrom() public {
        for (uint256 i; i < outsiders.length; ++i) {
            if (outsiders[i] == operator) continue; // ERC-721: approved operators may transfer
            vm.expectRevert(
                abi.encodeWithSelector(IERC721Errors.ERC721InsufficientApproval.selector, outsiders[i], vehicleId)
            );
            vm.prank(outsiders[i]);
            vehicles.transferFrom(owner, outsiders[i], vehicleId);
        }
    }

    // ------------------------------------------------------------------ AftermarketDevice

    function test_access_setManufacturer() public {
        address[] memory callers = _with(owner, true, governor);
        for (uint256 i; i < callers.length; ++i) {
            vm.expectRevert(_unauthorized(callers[i], devices.GOVERNOR_ROLE()));
            vm.prank(callers[i]);
            devices.setManufacturer(callers[i], true);
        }
    }

    function test_access_mintDevice() public {
        address[] memory callers = _with(owner, true, address(0));
        for (uint256 i; i < callers.length; ++i) {
            vm.expectRevert(abi.encodeWithSelector(IAftermarketDevice.NotManufacturer.selector, callers[i]));
            vm.prank(callers[i]);
            devices.mintDevice(callers[i], makeAddr("some key"), keccak256(abi.encode(i)));
        }
    }

    function test_access_pair() public {
        uint256 freeVehicle = _mintTo(owner);
        for (uint256 i; i < outsiders.length; ++i) {
            vm.expectRevert(
                abi.encodeWithSelector(IAftermarketDevice.NotVehicleOwner.selector, freeVehicle, outsiders[i])
            );
            vm.prank(outsiders[i]);
            devices.pair(freeVehicle, deviceId, 0, block.timestamp, "");
        }
    }

    function test_access_unpair() public {
        for (uint256 i; i < outsiders.length; ++i) {
            vm.expectRevert(
                abi.encodeWithSelector(IAftermarketDevice.NotPairingParty.selector, vehicleId, outsiders[i])
            );
            vm.prank(outsiders[i]);
            devices.unpair(vehicleId);
        }
    }

    function test_access_proposeDeviceSigner() public {
        for (uint256 i; i < outsiders.length; ++i) {
            vm.expectRevert(
                abi.encodeWithSelector(IAftermarketDevice.NotRotationParty.selector, deviceId, outsiders[i])
            );
            vm.prank(outsiders[i]);
            devices.proposeDeviceSigner(deviceId, makeAddr("rotated key"));
        }
    }

    function test_access_acceptDeviceSigner() public {
        address rotated = makeAddr("rotated key");
        vm.prank(owner);
        devices.proposeDeviceSigner(deviceId, rotated);
        address[] memory callers = _with(owner, true, address(0));
        for (uint256 i; i < callers.length; ++i) {
            vm.expectRevert(
                abi.encodeWithSelector(IAftermarketDevice.NotRotationParty.selector, deviceId, callers[i])
            );
            vm.prank(callers[i]);
            devices.acceptDeviceSigner(deviceId, rotated);
        }
    }

    function test_access_revokeDevice() public {
        address[] memory callers = _with(owner, true, address(0));
        for (uint256 i; i < callers.length; ++i) {
            vm.expectRevert(
                abi.encodeWithSelector(IAftermarketDevice.NotDeviceManufacturer.selector, deviceId, callers[i])
            );
            vm.prank(callers[i]);
            devices.revokeDevice(deviceId);
        }
    }

    /// @dev The outsiders, plus `extra` when `include`, minus `allowed`.
    function _with(address extra, bool include, address allowed) internal view returns (address[] memory out) {
        out = new address[](outsiders.length + (include ? 1 : 0));
        uint256 n;
        for (uint256 i; i < outsiders.length; ++i) {
            if (outsiders[i] != allowed) out[n++] = outsiders[i];
        }
        if (include) out[n++] = extra;
        assembly {
            mstore(out, n)
        }
    }
}
