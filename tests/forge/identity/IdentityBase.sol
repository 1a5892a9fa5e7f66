// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {Test} from "../lib/Test.sol";
import {freeNonce} from "../lib/FreeNonce.sol";
import {AftermarketDevice} from "../../../contracts/identity/AftermarketDevice.sol";
import {VehicleId} from "../../../contracts/identity/VehicleId.sol";
import {Permissions} from "../../../contracts/libraries/Permissions.sol";

/// @notice Shared fixture of the identity suites: a VehicleId and an AftermarketDevice, a governor,
///         a minter, one OEM connection with its oracle key, a manufacturer and named accounts, with
///         EIP-712 digests computed here independently of the contracts.
abstract contract IdentityBase is Test {
    bytes32 internal constant EIP712_DOMAIN_TYPEHASH =
        keccak256("EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)");
    bytes32 internal constant GRANT_TYPEHASH = keccak256(
        "Grant(uint256 vehicleId,uint64 generation,address grantee,uint256 permissions,uint64 expiresAt,bytes32 termsHash,uint256 nonce,uint256 deadline)"
    );
    bytes32 internal constant MINT_TYPEHASH =
        keccak256("MintAttestation(address to,uint256 connectionId,bytes32 vinHash,uint256 nonce,uint256 deadline)");
    bytes32 internal constant PAIR_TYPEHASH =
        keccak256("Pair(uint256 vehicleId,uint256 deviceId,uint256 nonce,uint256 deadline)");
    /// @dev secp256k1 group order, for building malleable signatures.
    uint256 internal constant SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141;

    uint256 internal constant ALL = Permissions.ALL;
    uint256 internal constant MANAGE_KEYS = Permissions.MANAGE_KEYS;
    uint256 internal constant USER_BITS = Permissions.USER;
    uint64 internal constant FOREVER = type(uint64).max;
    uint256 internal constant START = 1_700_000_000;
    bytes32 internal constant TERMS = keccak256("terms v1");

    VehicleId internal vehicles;
    AftermarketDevice internal devices;

    address internal governor;
    address internal minter;
    address internal owner;
    uint256 internal ownerKey;
    address internal alice;
    uint256 internal aliceKey;
    address internal bob;
    uint256 internal bobKey;
    address internal carol;
    address internal stranger;
    uint256 internal strangerKey;
    address internal relayer;
    address internal oracle;
    uint256 internal oracleKey;
    address internal manufacturer;
    address internal deviceKeyAddr;
    uint256 internal deviceKey;

    uint256 internal connectionId;
    uint256 private _vinCounter;

    function setUp() public virtual {
        vm.warp(START);
        governor = makeAddr("governor");
        minter = makeAddr("minter");
        (owner, ownerKey) = makeAccount("owner");
        (alice, aliceKey) = makeAccount("alice");
        (bob, bobKey) = makeAccount("bob");
        carol = makeAddr("carol");
        (stranger, strangerKey) = makeAccount("stranger");
        relayer = makeAddr("relayer");
        (oracle, oracleKey) = makeAccount("oracle");
        manufacturer = makeAddr("manufacturer");
        (deviceKeyAddr, deviceKey) = makeAccount("device key");

        vehicles = new VehicleId(governor);
        devices = new AftermarketDevice(address(vehicles), governor);
        vm.startPrank(governor);
        vehicles.grantRole(vehicles.MINTER_ROLE(), minter);
        connectionId = vehicles.addConnection("Tesla", oracle);
        devices.setManufacturer(manufacturer, true);
        vm.stopPrank();
    }

    // ------------------------------------------------------------------ fixtures

    function _nextVin() internal returns (bytes32) {
        return keccak256(abi.encodePacked("VIN", ++_vinCounter));
    }

    function _mintTo(address to) internal returns (uint256 vehicleId) {
        bytes32 vin = _nextVin();
        vm.prank(minter);
        vehicleId = vehicles.mint(to, connectionId, vin);
    }

    function _grantAs(address granter, uint256 vehicleId, address grantee, uint256 bits, uint64 expiresAt) internal {
        vm.prank(granter);
        vehicles.grant(vehicleId, grantee, bits, expiresAt, TERMS);
    }

    function _mintDevice(address to, address signer) internal returns (uint256 deviceId) {
        vm.prank(manufacturer);
        deviceId = devices.mintDevice(to, signer, keccak256(abi.encodePacked("serial", signer)));
    }

    // ------------------------------------------------------------------ EIP-712

    function _domain(string memory name, uint256 chainId, address verifying) internal pure returns (bytes32) {
        return keccak256(abi.encode(EIP712_DOMAIN_TYPEHASH, keccak256(bytes(name)), keccak256("1"), chainId, verifying));
    }

    function _vehicleDomain() internal view returns (bytes32) {
        return _domain("DIMO Vehicle", block.chainid, address(vehicles));
    }

    function _digest(bytes32 domainSeparator, bytes32 structHash) internal pure returns (bytes32) {
        return keccak256(abi.encodePacked("\x19\x01", domainSeparator, structHash));
    }

    struct GrantMsg {
        uint256 vehicleId;
        uint64 generation;
        address grantee;
        uint256 permissions;
        uint64 expiresAt;
        bytes32 termsHash;
        uint256 nonce;
        uint256 deadline;
    }

    function _grantMsg(uint256 vehicleId, address grantee, uint256 bits, address signer)
        internal
        view
        returns (GrantMsg memory)
    {
        return GrantMsg(
            vehicleId,
            vehicles.generation(vehicleId),
            grantee,
            bits,
            FOREVER,
            TERMS,
            freeNonce(vehicles, signer),
            block.timestamp + 1 hours
        );
    }

    function _grantStructHash(GrantMsg memory m) internal pure returns (bytes32) {
        return keccak256(
            abi.encode(
                GRANT_TYPEHASH,
                m.vehicleId,
                m.generation,
                m.grantee,
                m.permissions,
                m.expiresAt,
                m.termsHash,
                m.nonce,
                m.deadline
            )
        );
    }

    function _signGrant(uint256 key, GrantMsg memory m) internal view returns (bytes memory) {
        return signDigest(key, _digest(_vehicleDomain(), _grantStructHash(m)));
    }

    function _submitGrant(GrantMsg memory m, address signer, bytes memory sig) internal {
        vm.prank(relayer);
        vehicles.grantBySig(
            m.vehicleId, m.grantee, m.permissions, m.expiresAt, m.termsHash, signer, m.nonce, m.deadline, sig
        );
    }

    function _mintStructHash(address to, uint256 connection, bytes32 vin, uint256 nonce, uint256 deadline)
        internal
        pure
        returns (bytes32)
    {
        return keccak256(abi.encode(MINT_TYPEHASH, to, connection, vin, nonce, deadline));
    }

    function _signMint(uint256 key, address to, bytes32 vin, uint256 nonce, uint256 deadline)
        internal
        view
        returns (bytes memory)
    {
        return signDigest(key, _digest(_vehicleDomain(), _mintStructHash(to, connectionId, vin, nonce, deadline)));
    }

    function _signPair(uint256 key, uint256 vehicleId, uint256 deviceId, uint256 nonce, uint256 deadline)
        internal
        view
        returns (bytes memory)
    {
        bytes32 structHash = keccak256(abi.encode(PAIR_TYPEHASH, vehicleId, deviceId, nonce, deadline));
        return signDigest(key, _digest(_domain("DIMO Device", block.chainid, address(devices)), structHash));
    }

    /// @dev The same signature with s' = n - s and the other v: valid for ecrecover, refused by OZ ECDSA.
    function _malleable(bytes memory sig) internal pure returns (bytes memory) {
        bytes32 r;
        bytes32 s;
        uint8 v;
        assembly {
            r := mload(add(sig, 0x20))
            s := mload(add(sig, 0x40))
            v := byte(0, mload(add(sig, 0x60)))
        }
        return abi.encodePacked(r, bytes32(SECP256K1_N - uint256(s)), v == 27 ? uint8(28) : uint8(27));
    }
}

/// @notice An ERC-1271 smart wallet with one EOA owner: approves what that owner signed.
contract OwnerWallet {
    address public immutable signer;

    constructor(address signer_) {
        signer = signer_;
    }

    function isValidSignature(bytes32 hash, bytes calldata signature) external view returns (bytes4) {
        (bytes32 r, bytes32 s, uint8 v) = (bytes32(signature[0:32]), bytes32(signature[32:64]), uint8(signature[64]));
        return ecrecover(hash, v, r, s) == signer ? bytes4(0x1626ba7e) : bytes4(0xffffffff);
    }

    function onERC721Received(address, address, uint256, bytes calldata) external pure returns (bytes4) {
        return this.onERC721Received.selector;
    }
}

/// @notice An ERC-1271 wallet that refuses every signature.
contract RefusingWallet {
    function isValidSignature(bytes32, bytes calldata) external pure returns (bytes4) {
        return 0xffffffff;
    }
}
