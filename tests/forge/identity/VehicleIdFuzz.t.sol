// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {freeNonce} from "../lib/FreeNonce.sol";
import {IVehicleId} from "../../../contracts/interfaces/IVehicleId.sol";
import {Permissions} from "../../../contracts/libraries/Permissions.sol";
import {IdentityBase} from "./IdentityBase.sol";

/// @notice Fuzz: random masks and expiries never let a grantee exceed its granter; validity is
///         exactly `block.timestamp < expiresAt`; a transfer voids whatever was granted.
contract VehicleIdFuzzTest is IdentityBase {
    uint256 internal vehicleId;

    function setUp() public override {
        super.setUp();
        vehicleId = _mintTo(owner);
    }

    function _tryGrant(address granter, address grantee, uint256 bits, uint64 expiresAt) internal returns (bool ok) {
        vm.prank(granter);
        try vehicles.grant(vehicleId, grantee, bits, expiresAt, TERMS) {
            ok = true;
        } catch {
            ok = false;
        }
    }

    function _validGrantee(address grantee) internal view {
        vm.assume(grantee != address(0) && grantee != owner && grantee != alice);
    }

    function testFuzz_grant_managerNeverExceedsItsGranter(
        uint256 managerMask,
        uint256 managerTtl,
        uint256 requested,
        uint64 requestedEnd,
        address grantee
    ) public {
        _validGrantee(grantee);
        uint256 managerBits = (managerMask & Permissions.DELEGABLE) | MANAGE_KEYS;
        uint64 managerEnd = managerTtl % 4 == 0 ? FOREVER : uint64(block.timestamp + bound(managerTtl, 1, 1000 days));
        _grantAs(owner, vehicleId, alice, managerBits, managerEnd);
        // Mostly well-formed masks and near expiries, so both outcomes are exercised.
        if (requested % 4 == 1) requested &= Permissions.ALL;
        else if (requested % 4 > 1) requested &= managerBits & ~MANAGE_KEYS;
        if (requestedEnd % 4 != 0) requestedEnd = uint64(block.timestamp - 10 + (requestedEnd % 1001 days));

        bool ok = _tryGrant(alice, grantee, requested, requestedEnd);

        bool allowed = requested != 0 && requested & MANAGE_KEYS == 0 && Permissions.includes(managerBits, requested)
            && requestedEnd > block.timestamp && requestedEnd <= managerEnd;
        assertEq(ok, allowed, "the manager's grant was judged wrongly");
        uint256 held = vehicles.permissionsOf(vehicleId, grantee);
        assertTrue(Permissions.includes(managerBits & ~MANAGE_KEYS, held), "grantee exceeds its granter");
        (, uint64 end,) = vehicles.grantOf(vehicleId, grantee);
        assertLe(end, managerEnd, "grantee outlives its granter");
        if (ok) assertEq(held, requested);
    }

    function testFuzz_grant_ownerGivesAnyWellFormedKey(uint256 bits, uint64 expiresAt, address grantee) public {
        _validGrantee(grantee);
        bool ok = _tryGrant(owner, grantee, bits, expiresAt);
        bool wellFormed = bits != 0 && Permissions.unknownBits(bits) == 0 && expiresAt > block.timestamp;
        assertEq(ok, wellFormed);
        assertEq(vehicles.permissionsOf(vehicleId, grantee), ok ? bits : 0);
    }

    function testFuzz_grant_rejectsUnknownBits(uint256 bits) public {
        uint256 unknown = bits & ~Permissions.ALL;
        vm.assume(unknown != 0);
        vm.expectRevert(abi.encodeWithSelector(IVehicleId.UnknownPermissions.selector, bits, unknown));
        _grantAs(owner, vehicleId, bob, bits, FOREVER);
    }

    function testFuzz_permissionsOf_validStrictlyBeforeExpiry(uint256 ttl, uint256 elapsed) public {
        uint64 expiresAt = uint64(block.timestamp + bound(ttl, 1, 10 * 365 days));
        _grantAs(owner, vehicleId, bob, Permissions.LOCATION, expiresAt);
        uint256 at = block.timestamp + bound(elapsed, 0, 20 * 365 days);
        vm.warp(at);
        assertEq(vehicles.permissionsOf(vehicleId, bob), at < expiresAt ? Permissions.LOCATION : 0);
        assertEq(vehicles.hasPermissions(vehicleId, bob, Permissions.LOCATION), at < expiresAt);
    }

    function testFuzz_grant_managerExpiryBoundary(uint256 managerTtl, uint256 delta) public {
        uint64 managerEnd = uint64(block.timestamp + bound(managerTtl, 2, 365 days));
        _grantAs(owner, vehicleId, alice, MANAGE_KEYS | Permissions.LOCK, managerEnd);
        uint64 asked = uint64(bound(delta, block.timestamp + 1, uint256(managerEnd) + 1));
        bool ok = _tryGrant(alice, bob, Permissions.LOCK, asked);
        assertEq(ok, asked <= managerEnd);
    }

    function testFuzz_setUser_validStrictlyBeforeExpiry(uint64 expires, uint256 elapsed) public {
        vm.prank(owner);
        vehicles.setUser(vehicleId, bob, expires);
        uint256 at = block.timestamp + bound(elapsed, 0, 20 * 365 days);
        vm.warp(at);
        bool live = at < expires;
        assertEq(vehicles.userOf(vehicleId), live ? bob : address(0));
        assertEq(vehicles.permissionsOf(vehicleId, bob), live ? USER_BITS : 0);
    }

    function testFuzz_transfer_voidsEveryKeyAndTheUser(uint256 bits, uint256 ttl, address to, address grantee)
        public
    {
        _validGrantee(grantee);
        vm.assume(to != address(0) && to != grantee && to.code.length == 0);
        bits = bound(bits, 1, Permissions.ALL);
        _grantAs(owner, vehicleId, grantee, bits, uint64(block.timestamp + bound(ttl, 1, 365 days)));
        vm.startPrank(owner);
        vehicles.setUser(vehicleId, grantee, FOREVER);
        vehicles.transferFrom(owner, to, vehicleId);
        vm.stopPrank();
        assertEq(vehicles.permissionsOf(vehicleId, grantee), 0);
        assertEq(vehicles.permissionsOf(vehicleId, to), Permissions.ALL);
        if (to != owner) assertEq(vehicles.permissionsOf(vehicleId, owner), 0);
    }

    function testFuzz_revoke_managerOnlyRevokesManagerKeysItDominates(uint256 managerMask, uint256 keyMask)
        public
    {
        uint256 managerBits = (managerMask & Permissions.DELEGABLE) | MANAGE_KEYS;
        uint256 keyBits = bound(keyMask, 1, Permissions.DELEGABLE);
        _grantAs(owner, vehicleId, alice, managerBits, FOREVER);
        _grantAs(owner, vehicleId, carol, ALL, FOREVER);
        _grantAs(carol, vehicleId, bob, keyBits, FOREVER);
        vm.prank(alice);
        bool ok;
        try vehicles.revoke(vehicleId, bob) {
            ok = true;
        } catch {}
        assertEq(ok, Permissions.includes(managerBits, keyBits));
        assertEq(vehicles.permissionsOf(vehicleId, bob), ok ? 0 : keyBits);
    }

    function testFuzz_managers_neverShortenRewriteOrRevokeAKeyTheOwnerIssued(
        uint256 managerMask,
        uint256 keyMask,
        uint64 shorter
    ) public {
        uint256 managerBits = (managerMask & Permissions.DELEGABLE) | MANAGE_KEYS;
        uint256 keyBits = bound(keyMask, 1, Permissions.ALL);
        uint64 expiresAt = uint64(block.timestamp + 30 days);
        _grantAs(owner, vehicleId, alice, managerBits, FOREVER);
        _grantAs(owner, vehicleId, bob, keyBits, expiresAt);
        shorter = uint64(bound(shorter, block.timestamp + 1, expiresAt));
        bool revoked;
        vm.prank(alice);
        try vehicles.revoke(vehicleId, bob) {
            revoked = true;
        } catch {}
        assertFalse(revoked);
        uint256 rewrite = keyBits & managerBits & Permissions.DELEGABLE;
        if (rewrite != 0) {
            bool rewritten;
            vm.prank(alice);
            try vehicles.grant(vehicleId, bob, rewrite, shorter, keccak256("other terms")) {
                rewritten = true;
            } catch {}
            assertFalse(rewritten);
        }
        (uint256 p, uint64 e, bytes32 t) = vehicles.grantOf(vehicleId, bob);
        assertEq(p, keyBits);
        assertEq(e, expiresAt);
        assertEq(t, TERMS);
    }

    function testFuzz_grantBySig_refusesEveryKeyButAnAuthorizedSigner(uint256 signerKey) public {
        signerKey = bound(signerKey, 1, SECP256K1_N - 1);
        address signer = vm.addr(signerKey);
        vm.assume(signer != owner);
        GrantMsg memory m = _grantMsg(vehicleId, carol, Permissions.LOCK, signer);
        bytes memory sig = _signGrant(signerKey, m);
        vm.expectRevert(abi.encodeWithSelector(IVehicleId.NotKeyManager.selector, vehicleId, signer));
        _submitGrant(m, signer, sig);
        // The same signature naming the owner as signer does not verify.
        m.nonce = freeNonce(vehicles, owner);
        vm.expectRevert(abi.encodeWithSelector(IVehicleId.InvalidSignature.selector, owner));
        _submitGrant(m, owner, _signGrant(signerKey, m));
    }

    function testFuzz_hasPermissions_isSubsetOfPermissionsOf(uint256 bits, uint256 mask) public {
        bits = bound(bits, 1, Permissions.DELEGABLE);
        _grantAs(owner, vehicleId, bob, bits, FOREVER);
        bool expected = mask != 0 && (bits & mask) == mask;
        assertEq(vehicles.hasPermissions(vehicleId, bob, mask), expected);
    }

    function testFuzz_permissions_includesIsSubset(uint256 held, uint256 wanted) public pure {
        assertEq(Permissions.includes(held, wanted), held | wanted == held);
        assertEq(Permissions.unknownBits(held) & Permissions.ALL, 0);
        assertEq(Permissions.unknownBits(held) | (held & Permissions.ALL), held);
    }
}
