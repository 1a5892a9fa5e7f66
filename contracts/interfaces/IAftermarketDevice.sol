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

    /// @notice Allows or disallows a manufacturer. GOVERNOR.
    function setManufacturer(address manufacturer, bool allowed) external;

    /// @notice Mints a device NFT bound to `deviceSigner`. Allowed manufacturers only.
    function mintDevice(address to, address deviceSigner, bytes32 serialHash) external returns (uint256 deviceId);

    /// @notice Pairs a device with a vehicle; the caller owns both, the device key signed `Pair`.
    function pair(uint256 vehicleId, uint256 deviceId, uint256 deadline, bytes calldata deviceSig) external;

    /// @notice Ends the pairing of `vehicleId`. The vehicle's or the device's owner.
    function unpair(uint256 vehicleId) external;

    /// @notice The device paired with `vehicleId` now, or 0.
    function deviceOf(uint256 vehicleId) external view returns (uint256);

    /// @notice The vehicle `deviceId` is paired with now, or 0.
    function vehicleOfDevice(uint256 deviceId) external view returns (uint256);

    /// @notice The key that signs `deviceId`'s pairing and telemetry.
    function deviceSigner(uint256 deviceId) external view returns (address);
}
