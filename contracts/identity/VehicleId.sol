// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {ERC721} from "@openzeppelin/contracts/token/ERC721/ERC721.sol";
import {Base64} from "@openzeppelin/contracts/utils/Base64.sol";
import {Strings} from "@openzeppelin/contracts/utils/Strings.sol";
import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";
import {SignatureChecker} from "@openzeppelin/contracts/utils/cryptography/SignatureChecker.sol";
import {IERC4907} from "../interfaces/IERC4907.sol";
import {IVehicleId} from "../interfaces/IVehicleId.sol";
import {Permissions} from "../libraries/Permissions.sol";
import {Roles} from "../libraries/Roles.sol";
import {DaoAccessControl} from "../governance/DaoAccessControl.sol";
import {UnorderedNonces} from "../libraries/UnorderedNonces.sol";

/// @title VehicleId
/// @notice The vehicle NFT ("DIMO Vehicle", DIMOV): one token per VIN, minted by a minter or on
///         an OEM oracle's attestation, whose owner hands out partial, expiring, signed keys and an
///         ERC-4907 driver. DESIGN.md §3.1, §3.2, §3.7.
/// @dev Every mint, transfer and burn passes `_update`, which bumps the vehicle's generation.
///      Keys and the ERC-4907 user are stored with the generation they were made in and count
///      only while it is current, so a transfer voids all of them without touching them. The
///      generation sits in a record written at mint, so the bump is a rewrite of a warm-able,
///      non-zero slot (about 5,000 gas), whatever the number of keys. A key also records who
///      granted it and, for a key manager, the manager's epoch then: revoking a manager bumps
///      its epoch, which voids every key it granted, again without touching them. Signed
///      messages carry unordered nonces (a bitmap per signer) and `Grant` the generation.
contract VehicleId is IVehicleId, ERC721, DaoAccessControl, EIP712, UnorderedNonces {
    using Strings for uint256;

    /// @notice The DAO: manages OEM connections.
    bytes32 public constant GOVERNOR_ROLE = Roles.GOVERNOR_ROLE;
    /// @notice May mint vehicles without an oracle attestation.
    bytes32 public constant MINTER_ROLE = Roles.MINTER_ROLE;

    /// @notice EIP-712 type of a key grant signed by the owner or a key manager; `generation` is
    ///         the vehicle's when signed, so a sale voids every unused `Grant`.
    bytes32 public constant GRANT_TYPEHASH = keccak256(
        "Grant(uint256 vehicleId,uint64 generation,address grantee,uint256 permissions,uint64 expiresAt,bytes32 termsHash,uint256 nonce,uint256 deadline)"
    );
    /// @notice EIP-712 type of an OEM oracle's mint attestation.
    bytes32 public constant MINT_ATTESTATION_TYPEHASH = keccak256(
        "MintAttestation(address to,uint256 connectionId,bytes32 vinHash,uint256 nonce,uint256 deadline)"
    );

    /// @notice The longest connection name, in bytes.
    uint256 public constant MAX_CONNECTION_NAME_LENGTH = 64;
    /// @dev The first byte that is not an ASCII control character.
    uint8 private constant FIRST_PRINTABLE = 0x20;

    /// @dev Per vehicle, written at mint; `_update` rewrites it on every transfer.
    struct Vehicle {
        uint64 generation; // bumped by every mint, transfer and burn
        uint64 userGeneration; // the generation in which the ERC-4907 user was last set
        uint64 connectionId; // the OEM connection it was minted through
    }

    /// @dev A key; valid while `generation` is the vehicle's, `block.timestamp < expiresAt` and,
    ///      when a key manager granted it (`byManager`), while `managerEpoch` is still that
    ///      `manager`'s epoch. The first slot holds everything but `manager` and `termsHash`, so
    ///      an owner's key leaves `manager` zero (no new slot) and is checked without reading it.
    struct Key {
        uint8 permissions;
        uint64 expiresAt;
        uint64 generation;
        uint64 managerEpoch;
        bool byManager;
        address manager;
        bytes32 termsHash;
    }

    /// @dev The ERC-4907 user; valid while the vehicle's `userGeneration` is its generation.
    struct User {
        address user;
        uint64 expires;
    }

    struct Connection {
        address oracle;
        bool active;
        string name;
    }

    mapping(uint256 vehicleId => Vehicle) private _vehicles;
    mapping(uint256 vehicleId => mapping(address grantee => Key)) private _keys;
    mapping(uint256 vehicleId => mapping(address manager => uint64 epoch)) private _managerEpochs;
    mapping(uint256 vehicleId => User) private _users;
    mapping(uint256 vehicleId => bytes32) private _vins;
    mapping(bytes32 vinHash => uint256) private _vehicleOfVin;
    mapping(uint256 connectionId => Connection) private _connections;

    uint256 private _lastVehicleId;
    uint256 private _lastConnectionId;

    /// @param governor receives the default admin and GOVERNOR_ROLE (the DAO's timelock); a zero
    ///        governor reverts with AccessControlInvalidDefaultAdmin
    constructor(address governor)
        ERC721("DIMO Vehicle", "DIMOV")
        EIP712("DIMO Vehicle", "1")
        DaoAccessControl(governor)
    {}

    // ------------------------------------------------------------------ connections

    /// @inheritdoc IVehicleId
    function addConnection(string calldata name, address oracle)
        external
        onlyRole(GOVERNOR_ROLE)
        returns (uint256 connectionId)
    {
        _checkConnectionName(name);
        if (oracle == address(0)) revert ZeroOracle(0);
        connectionId = ++_lastConnectionId;
        _connections[connectionId] = Connection({oracle: oracle, active: true, name: name});
        emit ConnectionSet(connectionId, name, oracle, true);
    }

    /// @inheritdoc IVehicleId
    function setConnection(uint256 connectionId, address oracle, bool active) external onlyRole(GOVERNOR_ROLE) {
        Connection storage c = _knownConnection(connectionId);
        if (oracle == address(0)) revert ZeroOracle(connectionId);
        c.oracle = oracle;
        c.active = active;
        emit ConnectionSet(connectionId, c.name, oracle, active);
    }

    /// @inheritdoc IVehicleId
    function connection(uint256 connectionId) external view returns (string memory name, address oracle, bool active) {
        Connection storage c = _knownConnection(connectionId);
        return (c.name, c.oracle, c.active);
    }

    /// @notice The number of connections ever added (ids run from 1 to this).
    /// @return the last connection id
    function connectionCount() external view returns (uint256) {
        return _lastConnectionId;
    }

    // ------------------------------------------------------------------ minting and burning

    /// @inheritdoc IVehicleId
    function mint(address to, uint256 connectionId, bytes32 vinHash)
        external
        onlyRole(MINTER_ROLE)
        returns (uint256 vehicleId)
    {
        _activeConnection(connectionId);
        return _mintVehicle(to, connectionId, vinHash);
    }

    /// @inheritdoc IVehicleId
    function mintWithAttestation(
        address to,
        uint256 connectionId,
        bytes32 vinHash,
        uint256 nonce,
        uint256 deadline,
        bytes calldata oracleSig
    ) external returns (uint256 vehicleId) {
        address oracle = _activeConnection(connectionId).oracle;
        _checkDeadline(deadline);
        _useUnorderedNonce(oracle, nonce);
        bytes32 structHash =
            keccak256(abi.encode(MINT_ATTESTATION_TYPEHASH, to, connectionId, vinHash, nonce, deadline));
        _checkSignature(oracle, structHash, oracleSig);
        return _mintVehicle(to, connectionId, vinHash);
    }

    /// @inheritdoc IVehicleId
    function burn(uint256 vehicleId) external {
        address owner = _requireOwned(vehicleId);
        if (msg.sender != owner) revert NotVehicleOwner(vehicleId, msg.sender);
        _burn(vehicleId);
    }

    /// @inheritdoc IVehicleId
    function vehicleOfVin(bytes32 vinHash) external view returns (uint256) {
        return _vehicleOfVin[vinHash];
    }

    /// @inheritdoc IVehicleId
    function vinOf(uint256 vehicleId) external view returns (bytes32) {
        return _vins[vehicleId];
    }

    /// @inheritdoc IVehicleId
    function connectionOf(uint256 vehicleId) external view returns (uint256) {
        return _vehicles[vehicleId].connectionId;
    }

    /// @notice The number of vehicles ever minted (ids run from 1 to this; burned ones included).
    /// @return the last vehicle id
    function totalMinted() external view returns (uint256) {
        return _lastVehicleId;
    }

    // ------------------------------------------------------------------ keys

    /// @inheritdoc IVehicleId
    function grant(uint256 vehicleId, address grantee, uint256 permissions, uint64 expiresAt, bytes32 termsHash)
        external
    {
        _grant(vehicleId, msg.sender, grantee, permissions, expiresAt, termsHash);
    }

    /// @inheritdoc IVehicleId
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
    ) external {
        _checkDeadline(deadline);
        _useUnorderedNonce(signer, nonce);
        bytes32 structHash = keccak256(
            abi.encode(
                GRANT_TYPEHASH,
                vehicleId,
                _vehicles[vehicleId].generation,
                grantee,
                permissions,
                expiresAt,
                termsHash,
                nonce,
                deadline
            )
        );
        _checkSignature(signer, structHash, signature);
        _grant(vehicleId, signer, grantee, permissions, expiresAt, termsHash);
    }

    /// @inheritdoc IVehicleId
    function revoke(uint256 vehicleId, address grantee) external {
        address owner = _requireOwned(vehicleId);
        uint64 gen = _vehicles[vehicleId].generation;
        uint256 managerBits;
        bool manager = msg.sender != owner && msg.sender != grantee;
        if (manager) {
            (managerBits,) = _liveKey(vehicleId, gen, msg.sender);
            if (managerBits & Permissions.MANAGE_KEYS == 0) revert NotKeyManager(vehicleId, msg.sender);
        }
        if (_keys[vehicleId][grantee].generation != gen) revert NoKey(vehicleId, grantee);
        if (manager) _checkNotOutranked(vehicleId, gen, grantee, managerBits);
        (uint256 revokedBits,) = _liveKey(vehicleId, gen, grantee);
        delete _keys[vehicleId][grantee];
        emit KeyRevoked(vehicleId, grantee, gen);
        if (revokedBits & Permissions.MANAGE_KEYS != 0) _voidManagerKeys(vehicleId, grantee);
    }

    /// @inheritdoc IVehicleId
    function permissionsOf(uint256 vehicleId, address account) public view returns (uint256 bits) {
        address owner = _ownerOf(vehicleId);
        // The zero address holds nothing, even when an ERC-4907 user was cleared to it with a
        // future expiry: callers that check a failed `ecrecover` (which yields 0) stay refused.
        if (owner == address(0) || account == address(0)) return 0;
        if (account == owner) return Permissions.ALL;
        Vehicle storage v = _vehicles[vehicleId];
        uint64 gen = v.generation;
        (bits,) = _liveKey(vehicleId, gen, account);
        if (v.userGeneration == gen) {
            User storage u = _users[vehicleId];
            if (u.user == account && block.timestamp < u.expires) bits |= Permissions.USER;
        }
    }

    /// @inheritdoc IVehicleId
    function hasPermissions(uint256 vehicleId, address account, uint256 mask) external view returns (bool) {
        return mask != 0 && Permissions.includes(permissionsOf(vehicleId, account), mask);
    }

    /// @inheritdoc IVehicleId
    function grantOf(uint256 vehicleId, address grantee)
        external
        view
        returns (uint256 permissions, uint64 expiresAt, bytes32 termsHash)
    {
        Key storage key = _keys[vehicleId][grantee];
        uint64 gen = _vehicles[vehicleId].generation;
        address owner = _ownerOf(vehicleId);
        if (gen == 0 || key.generation != gen || owner == address(0) || !_granterCurrent(vehicleId, key)) {
            return (0, 0, bytes32(0));
        }
        return (key.permissions, key.expiresAt, key.termsHash);
    }

    /// @inheritdoc IVehicleId
    function granterOf(uint256 vehicleId, address grantee) external view returns (address granter, bool byOwner) {
        Key storage key = _keys[vehicleId][grantee];
        address owner = _ownerOf(vehicleId);
        if (
            owner == address(0) || key.generation != _vehicles[vehicleId].generation
                || !_granterCurrent(vehicleId, key)
        ) return (address(0), false);
        return key.byManager ? (key.manager, false) : (owner, true);
    }

    /// @inheritdoc IVehicleId
    function managerEpoch(uint256 vehicleId, address manager) external view returns (uint64) {
        return _managerEpochs[vehicleId][manager];
    }

    /// @inheritdoc IVehicleId
    function generation(uint256 vehicleId) external view returns (uint64) {
        return _vehicles[vehicleId].generation;
    }

    /// @notice The EIP-712 domain separator of this contract on this chain.
    /// @return the separator `Grant` and `MintAttestation` digests are built on
    // solhint-disable-next-line func-name-mixedcase
    function DOMAIN_SEPARATOR() external view returns (bytes32) {
        return _domainSeparatorV4();
    }

    // ------------------------------------------------------------------ ERC-4907

    /// @inheritdoc IERC4907
    function setUser(uint256 tokenId, address user, uint64 expires) external {
        address owner = _requireOwned(tokenId);
        _checkAuthorized(owner, msg.sender, tokenId);
        _users[tokenId] = User({user: user, expires: expires});
        Vehicle storage v = _vehicles[tokenId];
        v.userGeneration = v.generation;
        emit UpdateUser(tokenId, user, expires);
    }

    /// @inheritdoc IERC4907
    function userOf(uint256 tokenId) external view returns (address) {
        (address user, uint64 expires) = _currentUser(tokenId);
        return block.timestamp < expires ? user : address(0);
    }

    /// @inheritdoc IERC4907
    function userExpires(uint256 tokenId) external view returns (uint256) {
        (, uint64 expires) = _currentUser(tokenId);
        return expires;
    }

    // ------------------------------------------------------------------ ERC-721 and ERC-165

    /// @inheritdoc IVehicleId
    function ownerOf(uint256 vehicleId) public view override(IVehicleId, ERC721) returns (address) {
        return super.ownerOf(vehicleId);
    }

    /// @notice JSON metadata as a data: URI: name, connection, generation and VIN hash.
    /// @param tokenId the vehicle
    /// @return the `data:application/json;base64,...` URI
    function tokenURI(uint256 tokenId) public view override returns (string memory) {
        _requireOwned(tokenId);
        Vehicle storage v = _vehicles[tokenId];
        string memory connectionName = Strings.escapeJSON(_connections[v.connectionId].name);
        string memory gen = uint256(v.generation).toString();
        bytes memory json = abi.encodePacked(
            '{"name":"DIMO Vehicle #',
            tokenId.toString(),
            '","description":"A vehicle\'s on-chain identity in the DIMO network.","connection":"',
            connectionName,
            '","generation":',
            gen,
            ',"vinHash":"',
            uint256(_vins[tokenId]).toHexString(32),
            '","attributes":[{"trait_type":"Connection","value":"',
            connectionName,
            '"},{"trait_type":"Generation","display_type":"number","value":',
            gen,
            "}]}"
        );
        return string.concat("data:application/json;base64,", Base64.encode(json));
    }

    /// @notice ERC-721, ERC-721 Metadata, ERC-4907, AccessControl and ERC-165.
    /// @param interfaceId the ERC-165 id asked about
    /// @return whether this contract implements it
    function supportsInterface(bytes4 interfaceId) public view override(ERC721, DaoAccessControl) returns (bool) {
        return interfaceId == type(IERC4907).interfaceId || super.supportsInterface(interfaceId);
    }

    // ------------------------------------------------------------------ internals

    /// @dev The one choke point of mint, transfer and burn: bumps the generation, which voids every
    ///      key, the ERC-4907 user and every membership or pairing made before. A burn frees the VIN.
    function _update(address to, uint256 tokenId, address auth) internal override returns (address from) {
        from = super._update(to, tokenId, auth);
        Vehicle storage v = _vehicles[tokenId];
        uint64 previous = v.generation;
        v.generation = previous + 1;
        if (previous != 0 && v.userGeneration == previous) emit UpdateUser(tokenId, address(0), 0);
        if (to == address(0)) {
            bytes32 vinHash = _vins[tokenId];
            delete _vehicleOfVin[vinHash];
            emit VehicleBurned(tokenId, vinHash);
        }
    }

    function _mintVehicle(address to, uint256 connectionId, bytes32 vinHash) private returns (uint256 vehicleId) {
        if (vinHash == bytes32(0)) revert ZeroVinHash();
        uint256 existing = _vehicleOfVin[vinHash];
        if (existing != 0) revert VinAlreadyMinted(vinHash, existing);
        vehicleId = ++_lastVehicleId;
        _vehicleOfVin[vinHash] = vehicleId;
        _vins[vehicleId] = vinHash;
        // Safe: connection ids come from a counter incremented once per governance call.
        _vehicles[vehicleId].connectionId = uint64(connectionId);
        _mint(to, vehicleId);
        emit VehicleMinted(vehicleId, to, connectionId, vinHash);
    }

    function _grant(
        uint256 vehicleId,
        address granter,
        address grantee,
        uint256 permissions,
        uint64 expiresAt,
        bytes32 termsHash
    ) private {
        address owner = _requireOwned(vehicleId);
        uint64 gen = _vehicles[vehicleId].generation;
        {
            (uint256 granterBits, uint64 granterExpiresAt) = (Permissions.ALL, type(uint64).max);
            if (granter != owner) {
                (granterBits, granterExpiresAt) = _liveKey(vehicleId, gen, granter);
                if (granterBits & Permissions.MANAGE_KEYS == 0) revert NotKeyManager(vehicleId, granter);
            }
            if (grantee == address(0)) revert ZeroGrantee(vehicleId);
            if (grantee == owner) revert GranteeIsOwner(vehicleId, grantee);
            uint256 unknown = Permissions.unknownBits(permissions);
            if (unknown != 0) revert UnknownPermissions(permissions, unknown);
            if (permissions == 0) revert EmptyPermissions(vehicleId, grantee);
            if (expiresAt <= block.timestamp) revert ExpiryInPast(expiresAt, block.timestamp);
            if (granter != owner) {
                if (permissions & Permissions.MANAGE_KEYS != 0) revert ManageKeysNotDelegable(vehicleId, granter);
                if (!Permissions.includes(granterBits, permissions)) {
                    revert ExceedsGranterPermissions(granterBits, permissions);
                }
                if (expiresAt > granterExpiresAt) revert ExceedsGranterExpiry(granterExpiresAt, expiresAt);
                _checkNotOutranked(vehicleId, gen, grantee, granterBits);
            }
        }
        bool losesManageKeys = _storeKey(
            vehicleId, gen, grantee, permissions, expiresAt, granter != owner ? granter : address(0), termsHash
        );
        emit KeyGranted(vehicleId, grantee, permissions, expiresAt, termsHash, gen, granter);
        // A manager that loses MANAGE_KEYS by a new key is revoked as a manager.
        if (losesManageKeys) _voidManagerKeys(vehicleId, grantee);
    }

    /// @dev Writes `grantee`'s key of generation `gen`; `manager` is the key manager that granted
    ///      it, zero for the owner. Returns whether the key it replaces held MANAGE_KEYS and the
    ///      new one does not (the grantee is no longer a manager).
    function _storeKey(
        uint256 vehicleId,
        uint64 gen,
        address grantee,
        uint256 permissions,
        uint64 expiresAt,
        address manager,
        bytes32 termsHash
    ) private returns (bool losesManageKeys) {
        (uint256 replacedBits,) = _liveKey(vehicleId, gen, grantee);
        losesManageKeys = replacedBits & Permissions.MANAGE_KEYS != 0 && permissions & Permissions.MANAGE_KEYS == 0;
        bool byManager = manager != address(0);
        // Safe: `permissions` has no bit above Permissions.ALL (8 bits), checked by the caller.
        _keys[vehicleId][grantee] = Key({
            permissions: uint8(permissions),
            expiresAt: expiresAt,
            generation: gen,
            managerEpoch: byManager ? _managerEpochs[vehicleId][manager] : 0,
            byManager: byManager,
            manager: manager,
            termsHash: termsHash
        });
    }

    /// @dev Bumps `manager`'s epoch on `vehicleId`: every key it granted stops counting, in O(1).
    function _voidManagerKeys(uint256 vehicleId, address manager) private {
        uint64 epoch = ++_managerEpochs[vehicleId][manager];
        emit ManagerKeysVoided(vehicleId, manager, epoch);
    }

    /// @dev A key manager may only replace or revoke a live key that a key manager granted, whose
    ///      bits it holds itself and that does not manage keys: managers can neither strip each
    ///      other nor shorten, rewrite or revoke a key the owner issued.
    function _checkNotOutranked(uint256 vehicleId, uint64 gen, address grantee, uint256 managerBits) private view {
        (uint256 keyBits,) = _liveKey(vehicleId, gen, grantee);
        if (keyBits == 0) return;
        if (keyBits & Permissions.MANAGE_KEYS != 0 || !Permissions.includes(managerBits, keyBits)) {
            revert KeyOutranksManager(vehicleId, grantee, keyBits);
        }
        if (!_keys[vehicleId][grantee].byManager) revert KeyIssuedByOwner(vehicleId, grantee);
    }

    /// @dev The bits and expiry of `account`'s key if it is of generation `gen`, not expired, and
    ///      either issued by the owner or by a manager whose epoch has not moved.
    function _liveKey(uint256 vehicleId, uint64 gen, address account)
        private
        view
        returns (uint256 bits, uint64 expiresAt)
    {
        Key storage key = _keys[vehicleId][account];
        if (key.generation == gen && block.timestamp < key.expiresAt && _granterCurrent(vehicleId, key)) {
            return (key.permissions, key.expiresAt);
        }
        return (0, 0);
    }

    /// @dev Whether `key`'s granter still stands behind it: the owner always (a sale bumps the
    ///      generation instead), a key manager while its epoch is the one the key recorded.
    function _granterCurrent(uint256 vehicleId, Key storage key) private view returns (bool) {
        return !key.byManager || _managerEpochs[vehicleId][key.manager] == key.managerEpoch;
    }

    function _currentUser(uint256 tokenId) private view returns (address user, uint64 expires) {
        Vehicle storage v = _vehicles[tokenId];
        if (v.userGeneration != v.generation || _ownerOf(tokenId) == address(0)) return (address(0), 0);
        User storage u = _users[tokenId];
        return (u.user, u.expires);
    }

    function _knownConnection(uint256 connectionId) private view returns (Connection storage c) {
        c = _connections[connectionId];
        if (c.oracle == address(0)) revert UnknownConnection(connectionId);
    }

    function _activeConnection(uint256 connectionId) private view returns (Connection storage c) {
        c = _knownConnection(connectionId);
        if (!c.active) revert ConnectionInactive(connectionId);
    }

    function _checkConnectionName(string calldata name) private pure {
        bytes calldata raw = bytes(name);
        if (raw.length == 0 || raw.length > MAX_CONNECTION_NAME_LENGTH) revert InvalidConnectionName(name);
        for (uint256 i; i < raw.length; ++i) {
            if (uint8(raw[i]) < FIRST_PRINTABLE) revert InvalidConnectionName(name);
        }
    }

    function _checkDeadline(uint256 deadline) private view {
        if (block.timestamp > deadline) revert SignatureExpired(deadline, block.timestamp);
    }

    function _checkSignature(address signer, bytes32 structHash, bytes calldata signature) private view {
        if (!SignatureChecker.isValidSignatureNow(signer, _hashTypedDataV4(structHash), signature)) {
            revert InvalidSignature(signer);
        }
    }
}
