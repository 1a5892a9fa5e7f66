// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {IUnorderedNonces} from "./IUnorderedNonces.sol";

/// @title IAftermarketDevice
/// @notice Plug-in devices ("DIMO Device", DIMOD) bound to a device key, paired to vehicles by
///         the device key's signature. DESIGN.md §3.3.
interface IAftermarketDevice is IUnorderedNonces {
    /// @notice `manufacturer` may (or may no longer) mint devices.
    event ManufacturerSet(address indexed manufacturer, bool allowed);
    /// @notice A device bound to `deviceSigner` was minted to `owner` by `manufacturer`.
    event DeviceMinted(
        uint256 indexed deviceId, address indexed owner, address indexed manufacturer, address deviceSigner, bytes32 serialHash
    );
    /// @notice `deviceId` was paired to `vehicleId`.
    event Paired(uint256 indexed vehicleId, uint256 indexed deviceId);
    /// @notice The pairing of `deviceId` with `vehicleId` ended.
    event Unpaired(uint256 indexed vehicleId, uint256 indexed deviceId);
    /// @notice `proposer` (the device's owner or manufacturer) proposed `newSigner` as its key.
    event DeviceSignerProposed(uint256 indexed deviceId, address indexed proposer, address newSigner);
    /// @notice The device's key is `newSigner` now; `oldSigner`'s signatures no longer count.
    event DeviceSignerRotated(uint256 indexed deviceId, address oldSigner, address newSigner);
    /// @notice `manufacturer` revoked the device it minted: no pairing, no signature counts.
    event DeviceRevoked(uint256 indexed deviceId, address indexed manufacturer);

    /// @notice The governor or the vehicle contract of a new deployment was the zero address.
    error ZeroAddress();
    /// @notice The manufacturer to allow or disallow was the zero address.
    error ZeroManufacturer();
    /// @notice `account` is not an allowed manufacturer.
    error NotManufacturer(address account);
    /// @notice A device needs a signing key.
    error ZeroDeviceSigner();
    /// @notice A device needs the hash of its serial number.
    error ZeroSerialHash();
    /// @notice `manufacturer` already minted `serialHash` as `deviceId`.
    error SerialAlreadyMinted(address manufacturer, bytes32 serialHash, uint256 deviceId);
    /// @notice `deviceSigner` already signs for `deviceId`: one key, one device.
    error SignerAlreadyBound(address deviceSigner, uint256 deviceId);
    /// @notice `account` does not own vehicle `vehicleId`.
    error NotVehicleOwner(uint256 vehicleId, address account);
    /// @notice `account` does not own device `deviceId`.
    error NotDeviceOwner(uint256 deviceId, address account);
    /// @notice `vehicleId` is already paired with `deviceId`: unpair it first.
    error VehicleAlreadyPaired(uint256 vehicleId, uint256 deviceId);
    /// @notice `deviceId` is already paired with `vehicleId`: unpair it first.
    error DeviceAlreadyPaired(uint256 deviceId, uint256 vehicleId);
    /// @notice `vehicleId` has no live pairing.
    error NotPaired(uint256 vehicleId);
    /// @notice `account` owns neither side of `vehicleId`'s pairing.
    error NotPairingParty(uint256 vehicleId, address account);
    /// @notice The signature's `deadline` is before the block's `timestamp`.
    error SignatureExpired(uint256 deadline, uint256 timestamp);
    /// @notice The signature is not `signer`'s over this message.
    error InvalidSignature(address signer);
    /// @notice `deviceId` was revoked by its manufacturer.
    error DeviceIsRevoked(uint256 deviceId);
    /// @notice `account` is not the party of `deviceId`'s key rotation it tried to act as.
    error NotRotationParty(uint256 deviceId, address account);
    /// @notice `deviceId` has no pending key rotation (or the device changed hands since).
    error NoRotationProposed(uint256 deviceId);
    /// @notice `deviceId`'s pending rotation is to `proposed`, not to `accepted`.
    error RotationMismatch(uint256 deviceId, address proposed, address accepted);
    /// @notice `account` did not mint `deviceId`.
    error NotDeviceManufacturer(uint256 deviceId, address account);

    /// @notice Allows or disallows a manufacturer. GOVERNOR.
    /// @param manufacturer the account that mints devices
    /// @param allowed whether it may
    function setManufacturer(address manufacturer, bool allowed) external;

    /// @notice Mints a device NFT bound to `deviceSigner`. Allowed manufacturers only.
    /// @param to the device's first owner
    /// @param deviceSigner the key inside the device (signs pairings and telemetry); one per device
    /// @param serialHash the hash of the device's serial number; one device per serial and manufacturer
    /// @return deviceId the new device's id (from 1)
    function mintDevice(address to, address deviceSigner, bytes32 serialHash) external returns (uint256 deviceId);

    /// @notice Pairs a device with a vehicle; the caller owns both, the device key signed `Pair`.
    ///         The pairing lasts until `unpair` or until either NFT changes hands.
    /// @param vehicleId the vehicle (VehicleId)
    /// @param deviceId the device
    /// @param nonce the device key's unordered nonce, as signed (consumed; see `invalidateNonces`)
    /// @param deadline the last second the signature may be used
    /// @param deviceSig the device key's EIP-712 `Pair`
    function pair(uint256 vehicleId, uint256 deviceId, uint256 nonce, uint256 deadline, bytes calldata deviceSig)
        external;

    /// @notice Proposes `newSigner` as `deviceId`'s key. The device's owner or the manufacturer
    ///         that minted it; the other one accepts. A new proposal replaces the pending one.
    /// @param deviceId a device that is not revoked
    /// @param newSigner a key bound to no device
    function proposeDeviceSigner(uint256 deviceId, address newSigner) external;

    /// @notice Accepts the pending rotation of `deviceId` to `newSigner`: the manufacturer when
    ///         the owner proposed, the owner when the manufacturer did (in the same device
    ///         generation). The old key is unbound and signs nothing from now on.
    /// @param deviceId the device
    /// @param newSigner the proposed key (must match the proposal)
    function acceptDeviceSigner(uint256 deviceId, address newSigner) external;

    /// @notice Revokes `deviceId` for good: no pairing, no rotation, its signatures refused.
    ///         The manufacturer that minted it only.
    /// @param deviceId the device
    function revokeDevice(uint256 deviceId) external;

    /// @notice The pending key rotation of `deviceId` (zero address: none).
    /// @param deviceId the device
    /// @return newSigner the proposed key
    /// @return proposedByOwner whether the owner proposed it (the manufacturer accepts)
    function pendingDeviceSigner(uint256 deviceId) external view returns (address newSigner, bool proposedByOwner);

    /// @notice Whether the manufacturer revoked `deviceId`.
    /// @param deviceId the device
    /// @return whether it is revoked
    function isDeviceRevoked(uint256 deviceId) external view returns (bool);

    /// @notice The manufacturer that minted `deviceId` (zero for ids never minted).
    /// @param deviceId the device
    /// @return the manufacturer
    function manufacturerOf(uint256 deviceId) external view returns (address);

    /// @notice Ends the pairing of `vehicleId`. The vehicle's or the device's owner.
    /// @param vehicleId the paired vehicle
    function unpair(uint256 vehicleId) external;

    /// @notice The device paired with `vehicleId` now, or 0.
    /// @param vehicleId the vehicle
    /// @return the device id
    function deviceOf(uint256 vehicleId) external view returns (uint256);

    /// @notice The vehicle `deviceId` is paired with now, or 0.
    /// @param deviceId the device
    /// @return the vehicle id
    function vehicleOfDevice(uint256 deviceId) external view returns (uint256);

    /// @notice The key that signs `deviceId`'s pairing and telemetry.
    /// @param deviceId an existing device
    /// @return the device key
    function deviceSigner(uint256 deviceId) external view returns (address);

    /// @notice The device bound to `signer`, or 0 (for telemetry checks).
    /// @param signer a device key
    /// @return the device id
    function deviceOfSigner(address signer) external view returns (uint256);

    /// @notice The device `manufacturer` minted for `serialHash`, or 0.
    /// @param manufacturer the manufacturer (serials are its own namespace)
    /// @param serialHash the hash of a serial number
    /// @return the device id
    function deviceOfSerial(address manufacturer, bytes32 serialHash) external view returns (uint256);

    /// @notice The device's generation: bumped by every mint and transfer, ending its pairing.
    /// @param deviceId the device
    /// @return the generation (0 for ids never minted)
    function deviceGeneration(uint256 deviceId) external view returns (uint64);

    /// @notice Whether `account` may mint devices.
    /// @param account anyone
    /// @return whether it is an allowed manufacturer
    function isManufacturer(address account) external view returns (bool);
}
