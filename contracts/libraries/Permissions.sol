// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

/// @title Permissions
/// @notice The bits of a vehicle key (DESIGN.md §3.1) and the pure checks on masks. A key is a
///         `uint256` mask of the eight key bits below, any other bit is refused. A product's
///         terms may also require HISTORY, a consent bit that no key carries.
library Permissions {
    /// @notice Send the lock command.
    uint256 internal constant LOCK = 1 << 0;
    /// @notice Send the unlock command.
    uint256 internal constant UNLOCK = 1 << 1;
    /// @notice Remote start / use as driver; also held by the ERC-4907 user.
    uint256 internal constant DRIVE = 1 << 2;
    /// @notice Read non-location signals, current and history.
    uint256 internal constant TELEMETRY = 1 << 3;
    /// @notice Read location, current and history.
    uint256 internal constant LOCATION = 1 << 4;
    /// @notice Receive the live stream.
    uint256 internal constant LIVE = 1 << 5;
    /// @notice Read the VIN credential.
    uint256 internal constant VIN = 1 << 6;
    /// @notice Grant and revoke keys holding at most the holder's own bits, never MANAGE_KEYS itself.
    uint256 internal constant MANAGE_KEYS = 1 << 7;

    /// @notice Product terms only (never a key bit): the buyer may read the current owner's
    ///         data from before the vehicle joined the product, never a previous owner's.
    uint256 internal constant HISTORY = 1 << 8;

    /// @notice Every key bit: what the owner holds.
    uint256 internal constant ALL = LOCK | UNLOCK | DRIVE | TELEMETRY | LOCATION | LIVE | VIN | MANAGE_KEYS;
    /// @notice What an ERC-4907 user holds until its expiry.
    uint256 internal constant USER = LOCK | UNLOCK | DRIVE;
    /// @notice The bits a MANAGE_KEYS holder may pass on (when it holds them).
    uint256 internal constant DELEGABLE = ALL & ~MANAGE_KEYS;
    /// @notice Every bit a product's terms may require: the key bits and HISTORY.
    uint256 internal constant TERMS = ALL | HISTORY;

    /// @notice The bits of key mask `mask` that name no key permission (zero when well formed).
    function unknownBits(uint256 mask) internal pure returns (uint256) {
        return mask & ~ALL;
    }

    /// @notice The bits of terms mask `mask` that name no permission (zero when well formed).
    function unknownTermsBits(uint256 mask) internal pure returns (uint256) {
        return mask & ~TERMS;
    }

    /// @notice Whether `held` contains every bit of `wanted`.
    function includes(uint256 held, uint256 wanted) internal pure returns (bool) {
        return held & wanted == wanted;
    }
}
