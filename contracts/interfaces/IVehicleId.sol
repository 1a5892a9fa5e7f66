// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {IERC4907} from "./IERC4907.sol";
import {IUnorderedNonces} from "./IUnorderedNonces.sol";

/// @title IVehicleId
/// @notice The vehicle NFT ("DIMO Vehicle", DIMOV): the car's on-chain identity and the keys
///         its holder hands out. DESIGN.md §3.2. A key is a Permissions bit mask, valid while
///         `block.timestamp < expiresAt` and only for the vehicle generation it was made in.
/// @dev Every mint, transfer and burn bumps the vehicle's generation: keys, the ERC-4907 user,
///      device pairings and data-union memberships made in an earlier generation are void.
interface IVehicleId is IERC4907, IUnorderedNonces {
    /// @notice A vehicle was minted for `vinHash` through OEM connection `connectionId`.
    event VehicleMinted(uint256 indexed vehicleId, address indexed owner, uint256 indexed connectionId, bytes32 vinHash);
    /// @notice `grantee` holds `permissions` on `vehicleId` until `expiresAt`, for `generation`,
    ///         granted by `granter` (the owner, or a key manager whose revocation voids it).
    event KeyGranted(
        uint256 indexed vehicleId,
        address indexed grantee,
        uint256 permissions,
        uint64 expiresAt,
        bytes32 termsHash,
        uint64 generation,
        address indexed granter
    );
    /// @notice `manager` lost MANAGE_KEYS on `vehicleId` (revoked, renounced or re-granted without
    ///         it): every key it granted is void; its keys from now on record `epoch`.
    event ManagerKeysVoided(uint256 indexed vehicleId, address indexed manager, uint64 epoch);
    /// @notice `grantee`'s key on `vehicleId` was revoked in `generation`.
    event KeyRevoked(uint256 indexed vehicleId, address indexed grantee, uint64 generation);
    /// @notice OEM connection `connectionId` was added or changed.
    event ConnectionSet(uint256 indexed connectionId, string name, address oracle, bool active);
    /// @notice The owner burned `vehicleId`; its `vinHash` may be minted again.
    event VehicleBurned(uint256 indexed vehicleId, bytes32 vinHash);

    /// @notice No OEM connection has id `connectionId`.
    error UnknownConnection(uint256 connectionId);
    /// @notice OEM connection `connectionId` is switched off: it mints nothing.
    error ConnectionInactive(uint256 connectionId);
    /// @notice A connection name is 1 to 64 bytes with no control characters; `name` is not.
    error InvalidConnectionName(string name);
    /// @notice A connection needs an oracle key (`connectionId` 0: a new connection).
    error ZeroOracle(uint256 connectionId);
    /// @notice A vehicle needs the hash of its VIN.
    error ZeroVinHash();
    /// @notice `vinHash` already has the live vehicle `vehicleId`.
    error VinAlreadyMinted(bytes32 vinHash, uint256 vehicleId);
    /// @notice The signature's `deadline` is before the block's `timestamp`.
    error SignatureExpired(uint256 deadline, uint256 timestamp);
    /// @notice The signature is not `signer`'s over this message (a `Grant` with the vehicle's current generation).
    error InvalidSignature(address signer);
    /// @notice A key cannot be granted to the zero address.
    error ZeroGrantee(uint256 vehicleId);
    /// @notice The owner of `vehicleId` already holds every bit; `grantee` is that owner.
    error GranteeIsOwner(uint256 vehicleId, address grantee);
    /// @notice `permissions` has `unknownBits` that name no permission.
    error UnknownPermissions(uint256 permissions, uint256 unknownBits);
    /// @notice A key must carry at least one bit (use `revoke` to remove one).
    error EmptyPermissions(uint256 vehicleId, address grantee);
    /// @notice `expiresAt` is not after the block's `timestamp`: the key would never be valid.
    error ExpiryInPast(uint64 expiresAt, uint256 timestamp);
    /// @notice `account` is neither the owner of `vehicleId` nor a live MANAGE_KEYS holder.
    error NotKeyManager(uint256 vehicleId, address account);
    /// @notice `granter` holds MANAGE_KEYS by a key, and MANAGE_KEYS is only the owner's to give.
    error ManageKeysNotDelegable(uint256 vehicleId, address granter);
    /// @notice A key manager holding `granterPermissions` asked to give `requested`.
    error ExceedsGranterPermissions(uint256 granterPermissions, uint256 requested);
    /// @notice A key manager whose own key ends at `granterExpiresAt` asked for a key ending at `requested`.
    error ExceedsGranterExpiry(uint64 granterExpiresAt, uint64 requested);
    /// @notice `grantee`'s live key (`keyPermissions`) holds bits its would-be manager does not.
    error KeyOutranksManager(uint256 vehicleId, address grantee, uint256 keyPermissions);
    /// @notice `grantee` holds no key on `vehicleId` in its current generation.
    error NoKey(uint256 vehicleId, address grantee);
    /// @notice The owner of `vehicleId` issued `grantee`'s live key: no key manager may replace or
    ///         revoke it.
    error KeyIssuedByOwner(uint256 vehicleId, address grantee);
    /// @notice `account` does not own `vehicleId`.
    error NotVehicleOwner(uint256 vehicleId, address account);

    /// @notice Adds an OEM connection whose `oracle` signs mint attestations. GOVERNOR.
    /// @param name the connection's display name (the automaker or integration)
    /// @param oracle the key that signs `MintAttestation`s for this connection (EOA or ERC-1271)
    /// @return connectionId the new connection's id (from 1)
    function addConnection(string calldata name, address oracle) external returns (uint256 connectionId);

    /// @notice Replaces a connection's oracle key and active flag. GOVERNOR.
    /// @param connectionId the connection
    /// @param oracle the new oracle key
    /// @param active whether the connection may mint
    function setConnection(uint256 connectionId, address oracle, bool active) external;

    /// @notice A connection's name, oracle key and active flag.
    /// @param connectionId the connection
    /// @return name its display name
    /// @return oracle its oracle key
    /// @return active whether it may mint
    function connection(uint256 connectionId) external view returns (string memory name, address oracle, bool active);

    /// @notice Mints a vehicle for `vinHash` to `to`. MINTER_ROLE.
    /// @param to the first owner
    /// @param connectionId an active connection
    /// @param vinHash keccak256 of the upper-case 17-character VIN
    /// @return vehicleId the new vehicle's id (from 1)
    function mint(address to, uint256 connectionId, bytes32 vinHash) external returns (uint256 vehicleId);

    /// @notice Mints a vehicle on the connection oracle's EIP-712 `MintAttestation`; anyone may relay it.
    /// @param to the first owner, as signed
    /// @param connectionId an active connection whose oracle signed
    /// @param vinHash the VIN hash, as signed
    /// @param nonce the oracle's unordered nonce, as signed (consumed; see `invalidateNonces`)
    /// @param deadline the last second the attestation may be used, as signed
    /// @param oracleSig the oracle's signature over `MintAttestation`
    /// @return vehicleId the new vehicle's id
    function mintWithAttestation(
        address to,
        uint256 connectionId,
        bytes32 vinHash,
        uint256 nonce,
        uint256 deadline,
        bytes calldata oracleSig
    ) external returns (uint256 vehicleId);

    /// @notice The live vehicle minted for `vinHash`, or 0.
    /// @param vinHash keccak256 of the VIN
    /// @return the vehicle id
    function vehicleOfVin(bytes32 vinHash) external view returns (uint256);

    /// @notice Gives `grantee` the `permissions` bits on `vehicleId` until `expiresAt`, replacing
    ///         any key it held. Caller: the owner, or a MANAGE_KEYS holder within its own bits and
    ///         expiry (never MANAGE_KEYS), over a key that does not outrank it and that the owner
    ///         did not issue. A manager's keys count only while it keeps MANAGE_KEYS.
    /// @param vehicleId the vehicle
    /// @param grantee who receives the key
    /// @param permissions the Permissions bits
    /// @param expiresAt the key is valid while `block.timestamp < expiresAt` (`type(uint64).max`: no end)
    /// @param termsHash the hash of the terms the key was given under (free for the granter)
    function grant(uint256 vehicleId, address grantee, uint256 permissions, uint64 expiresAt, bytes32 termsHash)
        external;

    /// @notice `grant` on `signer`'s EIP-712 `Grant` signature (EOA or ERC-1271); anyone may relay it.
    ///         The signed `generation` is the vehicle's current one (a sale voids unused grants).
    /// @param vehicleId the vehicle
    /// @param grantee who receives the key
    /// @param permissions the Permissions bits
    /// @param expiresAt the key's end
    /// @param termsHash the terms' hash
    /// @param signer the owner or a MANAGE_KEYS holder who signed
    /// @param nonce the signer's unordered nonce, as signed (consumed; see `invalidateNonces`)
    /// @param deadline the last second the signature may be used
    /// @param signature over `Grant` with the vehicle's current generation
    function grantBySig(
        uint256 vehicleId,
        address grantee,
        uint256 permissions,
        uint64 expiresAt,
        bytes32 termsHash,
        address signer,
        uint256 nonce,
        uint256 deadline,
        bytes calldata signature
    ) external;

    /// @notice Removes `grantee`'s key on `vehicleId`. Caller: the owner, a MANAGE_KEYS holder the
    ///         key does not outrank (and the owner did not issue), or the grantee itself
    ///         (renouncing). Removing a MANAGE_KEYS key voids every key that manager granted.
    /// @param vehicleId the vehicle
    /// @param grantee whose key ends
    function revoke(uint256 vehicleId, address grantee) external;

    /// @notice The bits `account` holds now: all for the owner, 0 for expired or stale keys
    ///         and for the zero address.
    /// @param vehicleId the vehicle (0 bits for a vehicle that does not exist)
    /// @param account anyone
    /// @return the Permissions bits, the ERC-4907 user's included
    function permissionsOf(uint256 vehicleId, address account) external view returns (uint256);

    /// @notice Whether `account` holds every bit of `mask` on `vehicleId` now (false for an empty mask).
    /// @param vehicleId the vehicle
    /// @param account anyone
    /// @param mask the bits asked for
    /// @return whether all of them are held
    function hasPermissions(uint256 vehicleId, address account, uint256 mask) external view returns (bool);

    /// @notice The key of `grantee` in the current generation (zeroes when none; expired keys as stored).
    /// @param vehicleId the vehicle
    /// @param grantee the key holder
    /// @return permissions its bits
    /// @return expiresAt its end
    /// @return termsHash the terms it was given under
    function grantOf(uint256 vehicleId, address grantee)
        external
        view
        returns (uint256 permissions, uint64 expiresAt, bytes32 termsHash);

    /// @notice The vehicle's generation: bumped by every mint, transfer and burn, voiding keys,
    ///         user, pairings and memberships of earlier generations. 0 for ids never minted.
    /// @param vehicleId the vehicle
    /// @return the generation
    function generation(uint256 vehicleId) external view returns (uint64);

    /// @notice Who granted `grantee`'s live key (zeroes when it has none).
    /// @param vehicleId the vehicle
    /// @param grantee the key holder
    /// @return granter the owner or the key manager that granted it
    /// @return byOwner whether the current owner issued it (no manager may replace or revoke it)
    function granterOf(uint256 vehicleId, address grantee) external view returns (address granter, bool byOwner);

    /// @notice `manager`'s epoch on `vehicleId`: bumped each time it loses MANAGE_KEYS, voiding
    ///         the keys it granted under the previous epoch.
    /// @param vehicleId the vehicle
    /// @param manager a (past) key manager
    /// @return the epoch its new grants record
    function managerEpoch(uint256 vehicleId, address manager) external view returns (uint64);

    /// @notice The owner of `vehicleId` (ERC-721).
    /// @param vehicleId the vehicle
    /// @return the owner
    function ownerOf(uint256 vehicleId) external view returns (address);

    /// @notice Burns `vehicleId` and frees its VIN. The owner only.
    /// @param vehicleId the vehicle
    function burn(uint256 vehicleId) external;

    /// @notice The VIN hash `vehicleId` was minted for (kept after a burn).
    /// @param vehicleId the vehicle
    /// @return the VIN hash, or zero for ids never minted
    function vinOf(uint256 vehicleId) external view returns (bytes32);

    /// @notice The connection `vehicleId` was minted through.
    /// @param vehicleId the vehicle
    /// @return the connection id, or 0 for ids never minted
    function connectionOf(uint256 vehicleId) external view returns (uint256);
}
