// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {ERC721} from "@openzeppelin/contracts/token/ERC721/ERC721.sol";
import {Base64} from "@openzeppelin/contracts/utils/Base64.sol";
import {Strings} from "@openzeppelin/contracts/utils/Strings.sol";
import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";
import {SignatureChecker} from "@openzeppelin/contracts/utils/cryptography/SignatureChecker.sol";
import {IAftermarketDevice} from "../interfaces/IAftermarketDevice.sol";
import {IVehicleId} from "../interfaces/IVehicleId.sol";
import {Roles} from "../libraries/Roles.sol";
import {DaoAccessControl} from "../governance/DaoAccessControl.sol";
import {UnorderedNonces} from "../libraries/UnorderedNonces.sol";

/// @title AftermarketDevice
/// @notice Plug-in devices ("DIMO Device", DIMOD), each bound to the key inside it, paired with
///         vehicles on that key's EIP-712 `Pair` signature (proof of physical possession).
///         DESIGN.md §3.3, §3.7.
/// @dev A pairing records the generations of both NFTs when it was made. Each contract bumps its
///      token's generation on every transfer, so the pairing ends in O(1) when either side moves,
///      with no callback between the contracts: `deviceOf` and `vehicleOfDevice` read both
///      generations and answer 0 for a stale pairing. Both views test the same record, so a
///      pairing is always seen from both sides or from neither. The manufacturer that minted a
///      device and its owner rotate its key together (one proposes, the other accepts); the
///      manufacturer alone may revoke it, which ends its pairing and refuses its signatures.
///      Serials are unique per manufacturer.
contract AftermarketDevice is IAftermarketDevice, ERC721, DaoAccessControl, EIP712, UnorderedNonces {
    using Strings for uint256;
    using Strings for address;

    /// @notice The DAO: allows manufacturers.
    bytes32 public constant GOVERNOR_ROLE = Roles.GOVERNOR_ROLE;

    /// @notice EIP-712 type of the device key's consent to a pairing.
    bytes32 public constant PAIR_TYPEHASH =
        keccak256("Pair(uint256 vehicleId,uint256 deviceId,uint256 nonce,uint256 deadline)");

    /// @notice The vehicle NFT whose tokens devices pair with.
    IVehicleId public immutable VEHICLES;

    /// @dev Written at mint; `_update` rewrites it on every transfer.
    struct Device {
        address signer;
        uint64 generation;
        bool revoked;
        address manufacturer;
    }

    /// @dev A proposed key rotation, valid while the device stays in `deviceGeneration` (a
    ///      transfer voids an owner's proposal and an owner's pending acceptance alike).
    struct Rotation {
        address newSigner;
        uint64 deviceGeneration;
        bool proposedByOwner;
    }

    /// @dev One slot. Device ids come from this contract's counter, so 128 bits always hold them.
    struct Pairing {
        uint128 deviceId;
        uint64 vehicleGeneration;
        uint64 deviceGeneration;
    }

    mapping(uint256 deviceId => Device) private _devices;
    mapping(address signer => uint256 deviceId) private _deviceOfSigner;
    mapping(address manufacturer => mapping(bytes32 serialHash => uint256 deviceId)) private _deviceOfSerial;
    mapping(uint256 deviceId => Rotation) private _rotations;
    mapping(address account => bool) private _manufacturers;
    mapping(uint256 vehicleId => Pairing) private _pairingOfVehicle;
    mapping(uint256 deviceId => uint256 vehicleId) private _vehicleOfDevice;

    uint256 private _lastDeviceId;

    /// @param vehicleId the VehicleId contract
    /// @param governor receives DEFAULT_ADMIN_ROLE and GOVERNOR_ROLE
    constructor(address vehicleId, address governor)
        ERC721("DIMO Device", "DIMOD")
        EIP712("DIMO Device", "1")
        DaoAccessControl(governor)
    {
        if (vehicleId == address(0) || governor == address(0)) revert ZeroAddress();
        VEHICLES = IVehicleId(vehicleId);
    }

    /// @inheritdoc IAftermarketDevice
    function setManufacturer(address manufacturer, bool allowed) external onlyRole(GOVERNOR_ROLE) {
        if (manufacturer == address(0)) revert ZeroManufacturer();
        _manufacturers[manufacturer] = allowed;
        emit ManufacturerSet(manufacturer, allowed);
    }

    /// @inheritdoc IAftermarketDevice
    function mintDevice(address to, address deviceSigner_, bytes32 serialHash) external returns (uint256 deviceId) {
        if (!_manufacturers[msg.sender]) revert NotManufacturer(msg.sender);
        if (deviceSigner_ == address(0)) revert ZeroDeviceSigner();
        if (serialHash == bytes32(0)) revert ZeroSerialHash();
        uint256 existing = _deviceOfSerial[msg.sender][serialHash];
        if (existing != 0) revert SerialAlreadyMinted(msg.sender, serialHash, existing);
        existing = _deviceOfSigner[deviceSigner_];
        if (existing != 0) revert SignerAlreadyBound(deviceSigner_, existing);
        deviceId = ++_lastDeviceId;
        _deviceOfSerial[msg.sender][serialHash] = deviceId;
        _deviceOfSigner[deviceSigner_] = deviceId;
        Device storage device = _devices[deviceId];
        device.signer = deviceSigner_;
        device.manufacturer = msg.sender;
        _mint(to, deviceId);
        emit DeviceMinted(deviceId, to, msg.sender, deviceSigner_, serialHash);
    }

    /// @inheritdoc IAftermarketDevice
    function pair(uint256 vehicleId, uint256 deviceId, uint256 nonce, uint256 deadline, bytes calldata deviceSig)
        external
    {
        if (VEHICLES.ownerOf(vehicleId) != msg.sender) revert NotVehicleOwner(vehicleId, msg.sender);
        if (_requireOwned(deviceId) != msg.sender) revert NotDeviceOwner(deviceId, msg.sender);
        uint256 pairedDevice = _livePairing(vehicleId);
        if (pairedDevice != 0) revert VehicleAlreadyPaired(vehicleId, pairedDevice);
        uint256 pairedVehicle = vehicleOfDevice(deviceId);
        if (pairedVehicle != 0) revert DeviceAlreadyPaired(deviceId, pairedVehicle);
        if (block.timestamp > deadline) revert SignatureExpired(deadline, block.timestamp);

        Device storage device = _devices[deviceId];
        if (device.revoked) revert DeviceIsRevoked(deviceId);
        address signer = device.signer;
        _useUnorderedNonce(signer, nonce);
        bytes32 digest = _hashTypedDataV4(keccak256(abi.encode(PAIR_TYPEHASH, vehicleId, deviceId, nonce, deadline)));
        if (!SignatureChecker.isValidSignatureNow(signer, digest, deviceSig)) revert InvalidSignature(signer);

        // Safe: device ids come from `_lastDeviceId`, incremented once per mint.
        _pairingOfVehicle[vehicleId] = Pairing({
            deviceId: uint128(deviceId),
            vehicleGeneration: VEHICLES.generation(vehicleId),
            deviceGeneration: device.generation
        });
        _vehicleOfDevice[deviceId] = vehicleId;
        emit Paired(vehicleId, deviceId);
    }

    /// @inheritdoc IAftermarketDevice
    function unpair(uint256 vehicleId) external {
        uint256 deviceId = _livePairing(vehicleId);
        if (deviceId == 0) revert NotPaired(vehicleId);
        if (msg.sender != _ownerOf(deviceId) && msg.sender != VEHICLES.ownerOf(vehicleId)) {
            revert NotPairingParty(vehicleId, msg.sender);
        }
        delete _pairingOfVehicle[vehicleId];
        delete _vehicleOfDevice[deviceId];
        emit Unpaired(vehicleId, deviceId);
    }

    /// @inheritdoc IAftermarketDevice
    function proposeDeviceSigner(uint256 deviceId, address newSigner) external {
        address owner = _requireOwned(deviceId);
        Device storage device = _devices[deviceId];
        if (device.revoked) revert DeviceIsRevoked(deviceId);
        bool byOwner = msg.sender == owner;
        if (!byOwner && msg.sender != device.manufacturer) revert NotRotationParty(deviceId, msg.sender);
        _checkFreeSigner(newSigner);
        _rotations[deviceId] =
            Rotation({newSigner: newSigner, deviceGeneration: device.generation, proposedByOwner: byOwner});
        emit DeviceSignerProposed(deviceId, msg.sender, newSigner);
    }

    /// @inheritdoc IAftermarketDevice
    function acceptDeviceSigner(uint256 deviceId, address newSigner) external {
        address owner = _requireOwned(deviceId);
        Device storage device = _devices[deviceId];
        if (device.revoked) revert DeviceIsRevoked(deviceId);
        Rotation memory rotation = _rotations[deviceId];
        if (rotation.newSigner == address(0) || rotation.deviceGeneration != device.generation) {
            revert NoRotationProposed(deviceId);
        }
        if (rotation.newSigner != newSigner) revert RotationMismatch(deviceId, rotation.newSigner, newSigner);
        address acceptor = rotation.proposedByOwner ? device.manufacturer : owner;
        if (msg.sender != acceptor) revert NotRotationParty(deviceId, msg.sender);
        _checkFreeSigner(newSigner);
        address oldSigner = device.signer;
        delete _rotations[deviceId];
        delete _deviceOfSigner[oldSigner];
        _deviceOfSigner[newSigner] = deviceId;
        device.signer = newSigner;
        emit DeviceSignerRotated(deviceId, oldSigner, newSigner);
    }

    /// @inheritdoc IAftermarketDevice
    function revokeDevice(uint256 deviceId) external {
        _requireOwned(deviceId);
        Device storage device = _devices[deviceId];
        if (msg.sender != device.manufacturer) revert NotDeviceManufacturer(deviceId, msg.sender);
        if (device.revoked) revert DeviceIsRevoked(deviceId);
        device.revoked = true;
        delete _rotations[deviceId];
        emit DeviceRevoked(deviceId, msg.sender);
    }

    /// @inheritdoc IAftermarketDevice
    function pendingDeviceSigner(uint256 deviceId) external view returns (address newSigner, bool proposedByOwner) {
        Rotation memory rotation = _rotations[deviceId];
        if (rotation.deviceGeneration != _devices[deviceId].generation) return (address(0), false);
        return (rotation.newSigner, rotation.proposedByOwner);
    }

    /// @inheritdoc IAftermarketDevice
    function isDeviceRevoked(uint256 deviceId) external view returns (bool) {
        return _devices[deviceId].revoked;
    }

    /// @inheritdoc IAftermarketDevice
    function manufacturerOf(uint256 deviceId) external view returns (address) {
        return _devices[deviceId].manufacturer;
    }

    /// @inheritdoc IAftermarketDevice
    function deviceOf(uint256 vehicleId) external view returns (uint256) {
        return _livePairing(vehicleId);
    }

    /// @inheritdoc IAftermarketDevice
    function vehicleOfDevice(uint256 deviceId) public view returns (uint256) {
        uint256 vehicleId = _vehicleOfDevice[deviceId];
        if (vehicleId == 0 || _livePairing(vehicleId) != deviceId) return 0;
        return vehicleId;
    }

    /// @inheritdoc IAftermarketDevice
    function deviceSigner(uint256 deviceId) external view returns (address) {
        _requireOwned(deviceId);
        return _devices[deviceId].signer;
    }

    /// @inheritdoc IAftermarketDevice
    function deviceOfSigner(address signer) external view returns (uint256) {
        return _deviceOfSigner[signer];
    }

    /// @inheritdoc IAftermarketDevice
    function deviceOfSerial(address manufacturer, bytes32 serialHash) external view returns (uint256) {
        return _deviceOfSerial[manufacturer][serialHash];
    }

    /// @inheritdoc IAftermarketDevice
    function deviceGeneration(uint256 deviceId) external view returns (uint64) {
        return _devices[deviceId].generation;
    }

    /// @inheritdoc IAftermarketDevice
    function isManufacturer(address account) external view returns (bool) {
        return _manufacturers[account];
    }

    /// @notice The number of devices ever minted (ids run from 1 to this).
    /// @return the last device id
    function totalMinted() external view returns (uint256) {
        return _lastDeviceId;
    }

    /// @notice The EIP-712 domain separator of this contract on this chain.
    /// @return the separator `Pair` digests are built on
    // solhint-disable-next-line func-name-mixedcase
    function DOMAIN_SEPARATOR() external view returns (bytes32) {
        return _domainSeparatorV4();
    }

    /// @notice JSON metadata as a data: URI: name, device key, generation, paired vehicle.
    /// @param tokenId the device
    /// @return the `data:application/json;base64,...` URI
    function tokenURI(uint256 tokenId) public view override returns (string memory) {
        _requireOwned(tokenId);
        Device storage device = _devices[tokenId];
        bytes memory json = abi.encodePacked(
            '{"name":"DIMO Device #',
            tokenId.toString(),
            '","deviceSigner":"',
            device.signer.toHexString(),
            '","generation":',
            uint256(device.generation).toString(),
            ',"vehicleId":',
            vehicleOfDevice(tokenId).toString(),
            "}"
        );
        return string.concat("data:application/json;base64,", Base64.encode(json));
    }

    /// @notice ERC-721, ERC-721 Metadata, AccessControl and ERC-165.
    /// @param interfaceId the ERC-165 id asked about
    /// @return whether this contract implements it
    function supportsInterface(bytes4 interfaceId) public view override(ERC721, DaoAccessControl) returns (bool) {
        return super.supportsInterface(interfaceId);
    }

    /// @dev The one choke point of mint and transfer: bumps the device's generation, which ends
    ///      any pairing it had.
    function _update(address to, uint256 tokenId, address auth) internal override returns (address from) {
        from = super._update(to, tokenId, auth);
        ++_devices[tokenId].generation;
    }

    /// @dev A new device key: not zero and bound to no device.
    function _checkFreeSigner(address signer) private view {
        if (signer == address(0)) revert ZeroDeviceSigner();
        uint256 existing = _deviceOfSigner[signer];
        if (existing != 0) revert SignerAlreadyBound(signer, existing);
    }

    /// @dev The device of `vehicleId`'s pairing if both sides are still in the generation they were
    ///      paired in, the device is not revoked and its back-pointer agrees; 0 otherwise.
    function _livePairing(uint256 vehicleId) private view returns (uint256) {
        Pairing memory p = _pairingOfVehicle[vehicleId];
        uint256 deviceId = p.deviceId;
        if (deviceId == 0 || _vehicleOfDevice[deviceId] != vehicleId) return 0;
        Device storage device = _devices[deviceId];
        if (p.deviceGeneration != device.generation || device.revoked) return 0;
        if (p.vehicleGeneration != VEHICLES.generation(vehicleId)) return 0;
        return deviceId;
    }
}
