// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

/// @title IAftermarketDevice
/// @notice Plug-in devices ("DIMO Device", DIMOD) bound to a device key, paired to vehicles by
///         the device key's signature. DESIGN.md §3.3.
interface IAftermarketDevice {
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
    /// @notice `serialHash` was already minted as `deviceId`.
    error SerialAlreadyMinted(bytes32 serialHash, uint256 deviceId);
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
    /// @notice The signature is not `signer`'s over this message and `signer`'s current nonce.
    error InvalidSignature(address signer);

    /// @notice Allows or disallows a manufacturer. GOVERNOR.
    /// @param manufacturer the account that mints devices
    /// @param allowed whether it may
    function setManufacturer(address manufacturer, bool allowed) external;

    /// @notice Mints a device NFT bound to `deviceSigner`. Allowed manufacturers only.
    /// @param to the device's first owner
    /// @param deviceSigner the key inside the device (signs pairings and telemetry); one per device
    /// @param serialHash the hash of the device's serial number; one device per serial
    /// @return deviceId the new device's id (from 1)
    function mintDevice(address to, address deviceSigner, bytes32 serialHash) external returns (uint256 deviceId);

    /// @notice Pairs a device with a vehicle; the caller owns both, the device key signed `Pair`.
    ///         The pairing lasts until `unpair` or until either NFT changes hands.
    /// @param vehicleId the vehicle (VehicleId)
    /// @param deviceId the device
    /// @param deadline the last second the signature may be used
    /// @param deviceSig the device key's EIP-712 `Pair` with `nonce = nonces(deviceSigner)`
    function pair(uint256 vehicleId, uint256 deviceId, uint256 deadline, bytes calldata deviceSig) external;

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

    /// @notice The device minted for `serialHash`, or 0.
    /// @param serialHash the hash of a serial number
    /// @return the device id
    function deviceOfSerial(bytes32 serialHash) external view returns (uint256);

    /// @notice The device's generation: bumped by every mint and transfer, ending its pairing.
    /// @param deviceId the device
    /// @return the generation (0 for ids never minted)
    function deviceGeneration(uint256 deviceId) external view returns (uint64);

    /// @notice Whether `account` may mint devices.
    /// @param account anyone
    /// @return whether it is an allowed manufacturer
    function isManufacturer(address account) external view returns (bool);

    /// @notice The next EIP-712 nonce of `signer` (a device key).
    /// @param signer the device key
    /// @return the nonce its next `Pair` must carry
    function nonces(address signer) external view returns (uint256);
}
