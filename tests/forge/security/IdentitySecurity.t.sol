// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {IERC721Receiver} from "@openzeppelin/contracts/token/ERC721/IERC721Receiver.sol";
import {IVehicleId} from "../../../contracts/interfaces/IVehicleId.sol";
import {IAftermarketDevice} from "../../../contracts/interfaces/IAftermarketDevice.sol";
import {AftermarketDevice} from "../../../contracts/identity/AftermarketDevice.sol";
import {VehicleId} from "../../../contracts/identity/VehicleId.sol";
import {DataProducts} from "../../../contracts/market/DataProducts.sol";
import {Permissions} from "../../../contracts/libraries/Permissions.sol";
import {IdentityBase} from "../identity/IdentityBase.sol";

/// @notice Security review of the identity contracts (docs/security.md): regression tests for
///         the fixed findings (SEC-xx ids in the doc), the attacks the review tried that the
///         contracts refuse, and the accepted risks, pinned so that a change to any of them
///         shows up here.
contract IdentitySecurityTest is IdentityBase {
    uint256 internal constant LOCK = Permissions.LOCK;

    // ------------------------------------------------------------------ SEC-01 (fixed)

    /// @dev ERC-4907 lets the owner "clear" the user to the zero address with any expiry. Before
    ///      the fix, the zero address then held LOCK|UNLOCK|DRIVE until that expiry, so a caller
    ///      that checks `hasPermissions(v, ecrecover(...), bit)` authorised every bad signature.
    function test_sec01_zeroAddressHoldsNothingWhenUserClearedWithFutureExpiry() public {
        uint256 id = _mintTo(owner);
        vm.prank(owner);
        vehicles.setUser(id, address(0), FOREVER);
        assertEq(vehicles.permissionsOf(id, address(0)), 0, "zero address holds bits");
        assertFalse(vehicles.hasPermissions(id, address(0), LOCK), "zero address may lock");
        assertEq(vehicles.userOf(id), address(0));
    }

    function test_sec01_failedEcrecoverNeverAuthorisesACommand() public {
        uint256 id = _mintTo(owner);
        vm.prank(owner);
        vehicles.setUser(id, address(0), FOREVER);
        // A garbage signature (s = 0) makes ecrecover answer the zero address.
        address recovered = ecrecover(keccak256("lock vehicle"), 27, bytes32(uint256(1)), bytes32(0));
        assertEq(recovered, address(0));
        assertFalse(vehicles.hasPermissions(id, recovered, LOCK | Permissions.UNLOCK | Permissions.DRIVE));
    }

    function testFuzz_sec01_zeroAddressNeverHoldsBits(uint64 expires, uint256 warpBy) public {
        uint256 id = _mintTo(owner);
        vm.prank(owner);
        vehicles.setUser(id, address(0), expires);
        vm.warp(block.timestamp + bound(warpBy, 0, 3650 days));
        assertEq(vehicles.permissionsOf(id, address(0)), 0);
    }

    // ------------------------------------------------------------------ receiver hooks

    /// @dev By the time `onERC721Received` runs, the transfer has bumped the generation: the old
    ///      keys, the ERC-4907 user and the device pairing are already void, and the previous
    ///      owner's unused signed grant no longer verifies (the signer is not the owner).
    function test_receiverHook_seesEverythingAlreadyVoid() public {
        uint256 id = _mintTo(owner);
        _grantAs(owner, id, alice, ALL & ~MANAGE_KEYS, FOREVER);
        vm.prank(owner);
        vehicles.setUser(id, bob, FOREVER);
        uint256 deviceId = _mintDevice(owner, deviceKeyAddr);
        bytes memory pairSig = _signPair(deviceKey, id, deviceId, 0, block.timestamp + 1 hours);
        vm.prank(owner);
        devices.pair(id, deviceId, 0, block.timestamp + 1 hours, pairSig);

        GrantMsg memory m = _grantMsg(id, carol, LOCK, owner);
        bytes memory sig = _signGrant(ownerKey, m);
        HookProbe probe = new HookProbe(vehicles, devices, alice, bob, m, owner, sig);

        vm.prank(owner);
        vehicles.safeTransferFrom(owner, address(probe), id);

        assertTrue(probe.called());
        assertEq(probe.keyBitsSeen(), 0, "old key alive inside the hook");
        assertEq(probe.userBitsSeen(), 0, "old user alive inside the hook");
        assertEq(probe.userSeen(), address(0));
        assertEq(probe.deviceSeen(), 0, "old pairing alive inside the hook");
        assertFalse(probe.oldGrantAccepted(), "previous owner's signed grant accepted inside the hook");
        assertEq(vehicles.permissionsOf(id, carol), 0);
    }

    // ------------------------------------------------------------------ ERC-1271 callbacks

    /// @dev SignatureChecker calls `isValidSignature` with STATICCALL: a wallet cannot change
    ///      state from it, so approving "only if my re-entry went through" is always a refusal.
    function test_erc1271_walletCannotReenterDuringTheCheck() public {
        ReenteringWallet wallet = new ReenteringWallet(vehicles);
        uint256 id = _mintTo(address(wallet));
        wallet.setTarget(id, alice);
        GrantMsg memory m = _grantMsg(id, bob, LOCK, address(wallet));
        vm.expectRevert(abi.encodeWithSelector(IVehicleId.InvalidSignature.selector, address(wallet)));
        _submitGrant(m, address(wallet), hex"01");
        assertEq(vehicles.permissionsOf(id, alice), 0);
        assertEq(vehicles.permissionsOf(id, bob), 0);
    }

    // ------------------------------------------------------------------ burn and re-mint

    /// @dev Burning frees the VIN; the re-mint is a new id with nothing of the old one: keys,
    ///      user, pairing and signed grants of the burned id stay dead.
    function test_reMintAfterBurn_startsCleanUnderANewId() public {
        bytes32 vin = keccak256("VIN-REMINT");
        vm.prank(minter);
        uint256 oldId = vehicles.mint(owner, connectionId, vin);
        _grantAs(owner, oldId, alice, LOCK, FOREVER);
        uint256 deviceId = _mintDevice(owner, deviceKeyAddr);
        uint256 deadline = block.timestamp + 1 hours;
        vm.prank(owner);
        devices.pair(oldId, deviceId, 0, deadline, _signPair(deviceKey, oldId, deviceId, 0, deadline));
        GrantMsg memory m = _grantMsg(oldId, bob, LOCK, owner);
        bytes memory sig = _signGrant(ownerKey, m);

        vm.prank(owner);
        vehicles.burn(oldId);
        vm.prank(minter);
        uint256 newId = vehicles.mint(owner, connectionId, vin);

        assertNotEq(newId, oldId);
        assertEq(vehicles.vehicleOfVin(vin), newId);
        assertEq(vehicles.permissionsOf(newId, alice), 0);
        assertEq(vehicles.permissionsOf(oldId, alice), 0);
        assertEq(devices.deviceOf(newId), 0);
        assertEq(devices.deviceOf(oldId), 0);
        assertEq(devices.vehicleOfDevice(deviceId), 0);
        vm.expectRevert(); // ERC721NonexistentToken(oldId)
        _submitGrant(m, owner, sig);
    }

    // ------------------------------------------------------------------ key managers

    /// @dev A manager cannot lift itself: it may not give MANAGE_KEYS, may not rewrite its own
    ///      key (it outranks itself), and may not outlive its own expiry.
    function test_manager_cannotEscalateItself() public {
        uint256 id = _mintTo(owner);
        uint64 until = uint64(block.timestamp + 1 days);
        _grantAs(owner, id, alice, LOCK | MANAGE_KEYS, until);

        vm.startPrank(alice);
        vm.expectRevert(abi.encodeWithSelector(IVehicleId.ManageKeysNotDelegable.selector, id, alice));
        vehicles.grant(id, bob, LOCK | MANAGE_KEYS, until, TERMS);
        vm.expectRevert(abi.encodeWithSelector(IVehicleId.KeyOutranksManager.selector, id, alice, LOCK | MANAGE_KEYS));
        vehicles.grant(id, alice, LOCK, until, TERMS);
        vm.expectRevert(abi.encodeWithSelector(IVehicleId.ExceedsGranterExpiry.selector, until, until + 1));
        vehicles.grant(id, bob, LOCK, until + 1, TERMS);
        vm.expectRevert(
            abi.encodeWithSelector(
                IVehicleId.ExceedsGranterPermissions.selector, LOCK | MANAGE_KEYS, LOCK | Permissions.UNLOCK
            )
        );
        vehicles.grant(id, bob, LOCK | Permissions.UNLOCK, until, TERMS);
        vm.stopPrank();
    }

    /// @dev The owner's panic button: a transfer to itself bumps the generation and voids every
    ///      key a compromised manager handed out, in one call, however many there are.
    function test_selfTransfer_voidsEveryKeyAManagerHandedOut() public {
        uint256 id = _mintTo(owner);
        _grantAs(owner, id, alice, LOCK | MANAGE_KEYS, FOREVER);
        for (uint256 i; i < 20; ++i) {
            _grantAs(alice, id, address(uint160(0x1000 + i)), LOCK, FOREVER);
        }
        vm.prank(owner);
        vehicles.transferFrom(owner, owner, id);
        for (uint256 i; i < 20; ++i) {
            assertEq(vehicles.permissionsOf(id, address(uint160(0x1000 + i))), 0);
        }
        assertEq(vehicles.permissionsOf(id, alice), 0);
    }

    // ------------------------------------------------------------------ accepted risks (pinned)

    /// @dev `Grant` is bound to the vehicle's generation: an owner who signs a grant, sells the
    ///      car and buys it back before the deadline finds the unused signature void.
    function test_unusedGrantStaysVoidAfterSellAndBuyBack() public {
        uint256 id = _mintTo(owner);
        GrantMsg memory m = _grantMsg(id, alice, LOCK, owner);
        bytes memory sig = _signGrant(ownerKey, m);
        vm.prank(owner);
        vehicles.transferFrom(owner, bob, id);
        vm.prank(bob);
        vehicles.transferFrom(bob, owner, id);
        vm.expectRevert(abi.encodeWithSelector(IVehicleId.InvalidSignature.selector, owner));
        _submitGrant(m, owner, sig);
        assertEq(vehicles.permissionsOf(id, alice), 0);
        assertFalse(vehicles.isNonceUsed(owner, m.nonce));
    }

    /// @dev Attestations carry unordered nonces: an oracle has many outstanding at once, used in
    ///      any order; one stalled user stalls nobody else.
    function test_manyOutstandingAttestationsPerOracle() public {
        bytes32 vinA = keccak256("VIN-A");
        bytes32 vinB = keccak256("VIN-B");
        uint256 deadline = block.timestamp + 1 hours;
        bytes memory sigA = _signMint(oracleKey, alice, vinA, 0, deadline);
        bytes memory sigB = _signMint(oracleKey, bob, vinB, 1, deadline);
        vehicles.mintWithAttestation(bob, connectionId, vinB, 1, deadline, sigB);
        vehicles.mintWithAttestation(alice, connectionId, vinA, 0, deadline, sigA);
        assertEq(vehicles.ownerOf(vehicles.vehicleOfVin(vinA)), alice);
        assertEq(vehicles.ownerOf(vehicles.vehicleOfVin(vinB)), bob);
    }

    /// @dev A stolen oracle key mints any VIN of its connection to anyone (squatting it: the VIN
    ///      cannot be minted again while that token lives). Governance's lever is to deactivate or
    ///      rotate the connection; nothing on chain takes a squatted vehicle back.
    function test_stolenOracleKey_limitedByConnectionDeactivation() public {
        uint256 deadline = block.timestamp + 1 hours;
        bytes32 vin = keccak256("VIN-SQUAT");
        vehicles.mintWithAttestation(
            stranger, connectionId, vin, 0, deadline, _signMint(oracleKey, stranger, vin, 0, deadline)
        );
        assertEq(vehicles.ownerOf(vehicles.vehicleOfVin(vin)), stranger);

        vm.prank(governor);
        vehicles.setConnection(connectionId, oracle, false);
        bytes32 vin2 = keccak256("VIN-SQUAT-2");
        bytes memory sig2 = _signMint(oracleKey, stranger, vin2, 1, deadline);
        vm.expectRevert(abi.encodeWithSelector(IVehicleId.ConnectionInactive.selector, connectionId));
        vehicles.mintWithAttestation(stranger, connectionId, vin2, 1, deadline, sig2);
    }

    /// @dev The minting key cannot steal an existing vehicle: a VIN mints once while it lives.
    function test_minter_cannotMintAnExistingVinAgain() public {
        bytes32 vin = keccak256("VIN-OWNED");
        vm.prank(minter);
        uint256 id = vehicles.mint(owner, connectionId, vin);
        vm.expectRevert(abi.encodeWithSelector(IVehicleId.VinAlreadyMinted.selector, vin, id));
        vm.prank(minter);
        vehicles.mint(stranger, connectionId, vin);
    }

    // ------------------------------------------------------------------ EIP-712 types vs DESIGN §3.7

    function test_typehashes_areTheDesignStrings() public {
        assertEq(
            vehicles.GRANT_TYPEHASH(),
            keccak256(
                "Grant(uint256 vehicleId,uint64 generation,address grantee,uint256 permissions,uint64 expiresAt,bytes32 termsHash,uint256 nonce,uint256 deadline)"
            )
        );
        assertEq(
            vehicles.MINT_ATTESTATION_TYPEHASH(),
            keccak256("MintAttestation(address to,uint256 connectionId,bytes32 vinHash,uint256 nonce,uint256 deadline)")
        );
        assertEq(
            devices.PAIR_TYPEHASH(),
            keccak256("Pair(uint256 vehicleId,uint256 deviceId,uint256 nonce,uint256 deadline)")
        );
        DataProducts dp = new DataProducts(address(vehicles), makeAddr("staking"), governor);
        assertEq(
            dp.JOIN_TYPEHASH(),
            keccak256(
                "Join(uint256 productId,uint256 vehicleId,uint64 generation,uint64 version,uint256 nonce,uint256 deadline)"
            )
        );
        // Each contract signs under its own domain name, version "1", chain id and address.
        assertEq(vehicles.DOMAIN_SEPARATOR(), _domain("DIMO Vehicle", block.chainid, address(vehicles)));
        assertEq(devices.DOMAIN_SEPARATOR(), _domain("DIMO Device", block.chainid, address(devices)));
        (, string memory name, string memory version, uint256 chainId, address verifying,,) = dp.eip712Domain();
        assertEq(name, "DIMO Data Products");
        assertEq(version, "1");
        assertEq(chainId, block.chainid);
        assertEq(verifying, address(dp));
    }

    /// @dev One key signing for two contracts: a Pair signature is not a Grant, and a Grant
    ///      signed for VehicleId does not verify against AftermarketDevice's domain.
    function test_crossContract_signatureOfOneTypeIsUselessForAnother() public {
        uint256 id = _mintTo(owner);
        uint256 deviceId = _mintDevice(owner, owner);
        uint256 deadline = block.timestamp + 1 hours;
        // The owner's key is also this device's key: a Grant signature offered as the Pair.
        GrantMsg memory m = _grantMsg(id, alice, LOCK, owner);
        m.deadline = deadline;
        bytes memory grantSig = _signGrant(ownerKey, m);
        vm.expectRevert(abi.encodeWithSelector(IAftermarketDevice.InvalidSignature.selector, owner));
        vm.prank(owner);
        devices.pair(id, deviceId, 0, deadline, grantSig);
        // And a Pair signature offered as a Grant.
        bytes memory pairSig = _signPair(ownerKey, id, deviceId, 0, deadline);
        vm.expectRevert(abi.encodeWithSelector(IVehicleId.InvalidSignature.selector, owner));
        _submitGrant(m, owner, pairSig);
    }
}

/// @notice Receives a vehicle and, inside the hook, records what the previous owner's grantees,
///         user and device still hold, and tries to use the previous owner's signed grant.
contract HookProbe is IERC721Receiver {
    VehicleId private immutable _vehicles;
    AftermarketDevice private immutable _devices;
    address private immutable _grantee;
    address private immutable _user;
    address private immutable _oldOwner;
    IdentityBase.GrantMsg private _grant;
    bytes private _sig;

    bool public called;
    uint256 public keyBitsSeen;
    uint256 public userBitsSeen;
    address public userSeen;
    uint256 public deviceSeen;
    bool public oldGrantAccepted;

    constructor(
        VehicleId vehicles_,
        AftermarketDevice devices_,
        address grantee,
        address user,
        IdentityBase.GrantMsg memory grant_,
        address oldOwner,
        bytes memory sig
    ) {
        _vehicles = vehicles_;
        _devices = devices_;
        _grantee = grantee;
        _user = user;
        _grant = grant_;
        _oldOwner = oldOwner;
        _sig = sig;
    }

    function onERC721Received(address, address, uint256 tokenId, bytes calldata) external returns (bytes4) {
        called = true;
        keyBitsSeen = _vehicles.permissionsOf(tokenId, _grantee);
        userBitsSeen = _vehicles.permissionsOf(tokenId, _user);
        userSeen = _vehicles.userOf(tokenId);
        deviceSeen = _devices.deviceOf(tokenId);
        IdentityBase.GrantMsg memory m = _grant;
        try _vehicles.grantBySig(
            m.vehicleId, m.grantee, m.permissions, m.expiresAt, m.termsHash, _oldOwner, m.nonce, m.deadline, _sig
        ) {
            oldGrantAccepted = true;
        } catch {}
        return IERC721Receiver.onERC721Received.selector;
    }
}

/// @notice An ERC-1271 wallet that approves only if it managed to grant a key from inside the
///         check (it owns the vehicle, so the grant would be allowed outside a static call).
contract ReenteringWallet {
    VehicleId private immutable _vehicles;
    uint256 private _id;
    address private _grantee;

    constructor(VehicleId vehicles_) {
        _vehicles = vehicles_;
    }

    function setTarget(uint256 id, address grantee) external {
        (_id, _grantee) = (id, grantee);
    }

    function isValidSignature(bytes32, bytes calldata) external returns (bytes4) {
        try _vehicles.grant{gas: 200_000}(_id, _grantee, Permissions.LOCK, type(uint64).max, bytes32(0)) {
            return 0x1626ba7e;
        } catch {
            return 0xffffffff;
        }
    }
}
