// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

/// @title IVehicleId
/// @notice The vehicle NFT ("DIMO Vehicle", DIMOV): the car's on-chain identity and the keys
///         its holder hands out. DESIGN.md §3.2. A key is a Permissions bit mask, valid while
///         `block.timestamp < expiresAt` and only for the vehicle generation it was made in.
interface IVehicleId {
    /// @notice A vehicle was minted for `vinHash` through OEM connection `connectionId`.
    event VehicleMinted(uint256 indexed vehicleId, address indexed owner, uint256 indexed connectionId, bytes32 vinHash);
    /// @notice `grantee` holds `permissions` on `vehicleId` until `expiresAt`, for `generation`.
    event KeyGranted(
        uint256 indexed vehicleId,
        address indexed grantee,
        uint256 permissions,
        uint64 expiresAt,
        bytes32 termsHash,
        uint64 generation
    );
    /// @notice `grantee`'s key on `vehicleId` was revoked in `generation`.
    event KeyRevoked(uint256 indexed vehicleId, address indexed grantee, uint64 generation);
    /// @notice OEM connection `connectionId` was added or changed.
    event ConnectionSet(uint256 indexed connectionId, string name, address oracle, bool active);

    /// @notice Adds an OEM connection whose `oracle` signs mint attestations. GOVERNOR.
    /// @return connectionId the new connection's id (from 1)
    function addConnection(string calldata name, address oracle) external returns (uint256 connectionId);

    /// @notice Replaces a connection's oracle key and active flag. GOVERNOR.
    function setConnection(uint256 connectionId, address oracle, bool active) external;

    /// @notice A connection's name, oracle key and active flag.
    function connection(uint256 connectionId) external view returns (string memory name, address oracle, bool active);

    /// @notice Mints a vehicle for `vinHash` to `to`. MINTER_ROLE.
    function mint(address to, uint256 connectionId, bytes32 vinHash) external returns (uint256 vehicleId);

    /// @notice Mints a vehicle on the connection oracle's EIP-712 `MintAttestation`; anyone may relay it.
    function mintWithAttestation(
        address to,
        uint256 connectionId,
        bytes32 vinHash,
        uint256 deadline,
        bytes calldata oracleSig
    ) external returns (uint256 vehicleId);

    /// @notice The live vehicle minted for `vinHash`, or 0.
    function vehicleOfVin(bytes32 vinHash) external view returns (uint256);

    /// @notice Gives `grantee` the `permissions` bits on `vehicleId` until `expiresAt`.
    ///         Caller: the owner, or a MANAGE_KEYS holder within its own bits and expiry.
    function grant(uint256 vehicleId, address grantee, uint256 permissions, uint64 expiresAt, bytes32 termsHash)
        external;

    /// @notice `grant` on `signer`'s EIP-712 `Grant` signature (EOA or ERC-1271); anyone may relay it.
    function grantBySig(
        uint256 vehicleId,
        address grantee,
        uint256 permissions,
        uint64 expiresAt,
        bytes32 termsHash,
        address signer,
        uint256 deadline,
        bytes calldata signature
    ) external;

    /// @notice Removes `grantee`'s key on `vehicleId`. Caller: the owner or a MANAGE_KEYS holder.
    function revoke(uint256 vehicleId, address grantee) external;

    /// @notice The bits `account` holds now: all for the owner, 0 for expired or stale keys.
    function permissionsOf(uint256 vehicleId, address account) external view returns (uint256);

    /// @notice Whether `account` holds every bit of `mask` on `vehicleId` now.
    function hasPermissions(uint256 vehicleId, address account, uint256 mask) external view returns (bool);

    /// @notice The live key of `grantee` (zeroes when none, expired keys included as stored).
    function grantOf(uint256 vehicleId, address grantee)
        external
        view
        returns (uint256 permissions, uint64 expiresAt, bytes32 termsHash);

    /// @notice The vehicle's generation: bumped by every transfer, voiding keys, user and memberships.
    function generation(uint256 vehicleId) external view returns (uint64);

    /// @notice The next EIP-712 nonce of `signer`.
    function nonces(address signer) external view returns (uint256);

    /// @notice The owner of `vehicleId` (ERC-721).
    function ownerOf(uint256 vehicleId) external view returns (address);
}
