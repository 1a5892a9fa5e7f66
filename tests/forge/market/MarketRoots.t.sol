// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {MarketBase} from "./MarketBase.sol";
import {IAccessControl} from "@openzeppelin/contracts/access/IAccessControl.sol";
import {IMarketplace} from "../../../contracts/interfaces/IMarketplace.sol";
import {ProductId} from "../../../contracts/types/ProductId.sol";

/// @notice The cumulative root (DESIGN.md §3.6): a proposal is pending for the delay, revocable
///         by the DAO or a guardian, replaced by the next proposal, then accepted by anyone with
///         the takes it was proposed with; claims pay `cumulative − claimed` once per increase,
///         only to the leaf's account, and never more in all than the roots took.
contract MarketRootsTest is MarketBase {
    ProductId internal p1;
    ProductId internal p2;

    function setUp() public override {
        super.setUp();
        p1 = _stream();
        p2 = _stream();
        vm.startPrank(consumer);
        market.subscribe(p1, 10, 1, address(0), USE_INSURANCE, V1, NO_MAX); // 14 DIMO to members
        market.subscribe(p2, 20, 1, address(0), USE_INSURANCE, V1, NO_MAX); // 28 DIMO to members
        vm.stopPrank();
        vm.warp(block.timestamp + 40 days); // both fully vested
    }

    function _takes(uint256 a, uint256 b) internal view returns (ProductId[] memory ids, uint256[] memory takes) {
        ids = new ProductId[](2);
        (ids[0], ids[1]) = (p1, p2);
        takes = new uint256[](2);
        (takes[0], takes[1]) = (a, b);
    }

    function _tree(address a, uint256 amountA, address b, uint256 amountB) internal pure returns (bytes32[] memory l) {
        l = new bytes32[](2);
        l[0] = _cumulativeLeaf(a, amountA);
        l[1] = _cumulativeLeaf(b, amountB);
    }

    /// @dev Proposes and, after the delay, accepts a root over `leaves` taking (a, b) in total.
    function _publish(bytes32[] memory leaves, uint256 a, uint256 b) internal {
        (ProductId[] memory ids, uint256[] memory takes) = _takes(a, b);
        vm.prank(settler);
        market.proposeRoot(_root(leaves), ids, takes, keccak256("leaves file"));
        vm.warp(block.timestamp + market.rootDelay());
        market.acceptRoot(ids, takes);
    }

    // ------------------------------------------------------------------ propose and accept

    function test_proposeRoot_isPendingForTheDelayThenAcceptedByAnyone() public {
        assertEq(market.rootDelay(), 24 hours);
        (ProductId[] memory ids, uint256[] memory takes) = _takes(10 ether, 20 ether);
        bytes32 root = _root(_tree(alice, 12 ether, bob, 18 ether));
        uint64 claimableAt = uint64(block.timestamp + 24 hours);
        vm.expectEmit(address(market));
        emit IMarketplace.RootProposed(root, claimableAt, ids, takes, keccak256("file"));
        vm.prank(settler);
        market.proposeRoot(root, ids, takes, keccak256("file"));
        (bytes32 pending, uint64 at, bytes32 takesHash) = market.pendingRoot();
        assertEq(pending, root);
        assertEq(at, claimableAt);
        assertEq(takesHash, keccak256(abi.encode(ids, takes)));
        assertEq(market.root(), bytes32(0), "not claimable while pending");
        assertEq(market.takenMemberAmount(p1), 0);

        vm.warp(claimableAt - 1);
        vm.expectRevert(abi.encodeWithSelector(IMarketplace.RootNotYetClaimable.selector, claimableAt));
        market.acceptRoot(ids, takes);
        vm.warp(claimableAt);
        vm.expectEmit(address(market));
        emit IMarketplace.RootAccepted(root, 30 ether);
        vm.prank(stranger);
        market.acceptRoot(ids, takes);
        assertEq(market.root(), root);
        assertEq(market.takenMemberAmount(p1), 10 ether);
        assertEq(market.takenMemberAmount(p2), 20 ether);
        assertEq(market.totalTaken(), 30 ether);
        (pending,,) = market.pendingRoot();
        assertEq(pending, bytes32(0));
        vm.expectRevert(IMarketplace.NoPendingRoot.selector);
        market.acceptRoot(ids, takes);
    }

    function test_proposeRoot_refusals() public {
        (ProductId[] memory ids, uint256[] memory takes) = _takes(1, 1);
        vm.startPrank(settler);
        vm.expectRevert(IMarketplace.EmptyRoot.selector);
        market.proposeRoot(bytes32(0), ids, takes, bytes32(0));

        uint256[] memory short = new uint256[](1);
        vm.expectRevert(abi.encodeWithSelector(IMarketplace.LengthMismatch.selector, 2, 1));
        market.proposeRoot(keccak256("r"), ids, short, bytes32(0));

        (ids[0], ids[1]) = (p2, p1);
        vm.expectRevert(abi.encodeWithSelector(IMarketplace.ProductsNotSorted.selector, p2, p1));
        market.proposeRoot(keccak256("r"), ids, takes, bytes32(0));
        (ids[0], ids[1]) = (p1, p1);
        vm.expectRevert(abi.encodeWithSelector(IMarketplace.ProductsNotSorted.selector, p1, p1));
        market.proposeRoot(keccak256("r"), ids, takes, bytes32(0));

        (ids, takes) = _takes(14 ether + 1, 0);
        vm.expectRevert(abi.encodeWithSelector(IMarketplace.TakeAboveVested.selector, p1, 14 ether + 1, 14 ether));
        market.proposeRoot(keccak256("r"), ids, takes, bytes32(0));
        vm.stopPrank();

        _publish(_tree(alice, 1 ether, bob, 1 ether), 5 ether, 5 ether);
        (ids, takes) = _takes(5 ether - 1, 5 ether);
        vm.expectRevert(abi.encodeWithSelector(IMarketplace.TakeBelowTaken.selector, p1, 5 ether - 1, 5 ether));
        vm.prank(settler);
        market.proposeRoot(keccak256("r"), ids, takes, bytes32(0));

        bytes32 role = market.SETTLER_ROLE();
        vm.expectRevert(abi.encodeWithSelector(IAccessControl.AccessControlUnauthorizedAccount.selector, alice, role));
        vm.prank(alice);
        market.proposeRoot(keccak256("r"), ids, takes, bytes32(0));
    }

    /// @notice A take may never exceed what vested, even mid-term.
    function test_proposeRoot_takeBoundedByVestedMidTerm() public {
        ProductId p = _stream();
        vm.prank(consumer);
        market.subscribe(p, 10, 1, address(0), USE_INSURANCE, V1, NO_MAX);
        vm.warp(block.timestamp + 6 days);
        uint256 vested = market.vestedMemberAmount(p);
        assertGt(vested, 0);
        assertLt(vested, 14 ether);
        ProductId[] memory ids = new ProductId[](1);
        ids[0] = p;
        uint256[] memory takes = new uint256[](1);
        takes[0] = vested + 1;
        vm.expectRevert(abi.encodeWithSelector(IMarketplace.TakeAboveVested.selector, p, vested + 1, vested));
        vm.prank(settler);
        market.proposeRoot(keccak256("r"), ids, takes, bytes32(0));
        takes[0] = vested;
        vm.prank(settler);
        market.proposeRoot(keccak256("r"), ids, takes, bytes32(0));
    }

    function test_proposeRoot_replacesThePendingRoot() public {
        (ProductId[] memory ids, uint256[] memory takes) = _takes(1 ether, 1 ether);
        (ProductId[] memory ids2, uint256[] memory takes2) = _takes(2 ether, 3 ether);
        vm.startPrank(settler);
        market.proposeRoot(keccak256("first"), ids, takes, bytes32(0));
        vm.warp(block.timestamp + 1 hours);
        market.proposeRoot(keccak256("second"), ids2, takes2, bytes32(0));
        vm.stopPrank();
        (bytes32 pending, uint64 at,) = market.pendingRoot();
        assertEq(pending, keccak256("second"));
        assertEq(at, block.timestamp + 24 hours, "the delay restarts");
        vm.warp(at);
        vm.expectRevert(IMarketplace.TakesMismatch.selector);
        market.acceptRoot(ids, takes);
        market.acceptRoot(ids2, takes2);
        assertEq(market.root(), keccak256("second"));
        assertEq(market.totalTaken(), 5 ether);
    }

    function test_revokePendingRoot_byTheGovernorOrTheGuardian() public {
        (ProductId[] memory ids, uint256[] memory takes) = _takes(1 ether, 1 ether);
        address[2] memory revokers = [governor, guardian];
        for (uint256 i; i < 2; ++i) {
            vm.prank(settler);
            market.proposeRoot(keccak256("bad"), ids, takes, bytes32(0));
            vm.expectEmit(address(market));
            emit IMarketplace.RootRevoked(keccak256("bad"), revokers[i]);
            vm.prank(revokers[i]);
            market.revokePendingRoot();
            (bytes32 pending,,) = market.pendingRoot();
            assertEq(pending, bytes32(0));
        }
        vm.expectRevert(IMarketplace.NoPendingRoot.selector);
        vm.prank(guardian);
        market.revokePendingRoot();
        vm.warp(block.timestamp + 2 days);
        vm.expectRevert(IMarketplace.NoPendingRoot.selector);
        market.acceptRoot(ids, takes);
        assertEq(market.totalTaken(), 0);

        vm.prank(settler);
        market.proposeRoot(keccak256("bad"), ids, takes, bytes32(0));
        bytes32 role = market.GUARDIAN_ROLE();
        vm.expectRevert(abi.encodeWithSelector(IAccessControl.AccessControlUnauthorizedAccount.selector, settler, role));
        vm.prank(settler);
        market.revokePendingRoot();
    }

    function test_setRootDelay_boundsAndAppliesToLaterProposals() public {
        uint64 min = market.MIN_ROOT_DELAY();
        uint64 max = market.MAX_ROOT_DELAY();
        vm.startPrank(governor);
        vm.expectRevert(abi.encodeWithSelector(IMarketplace.RootDelayOutOfRange.selector, min - 1, min, max));
        market.setRootDelay(min - 1);
        vm.expectRevert(abi.encodeWithSelector(IMarketplace.RootDelayOutOfRange.selector, max + 1, min, max));
        market.setRootDelay(max + 1);
        vm.expectEmit(address(market));
        emit IMarketplace.RootDelaySet(min);
        market.setRootDelay(min);
        vm.stopPrank();
        assertEq(market.rootDelay(), min);
        (ProductId[] memory ids, uint256[] memory takes) = _takes(1, 1);
        vm.prank(settler);
        market.proposeRoot(keccak256("r"), ids, takes, bytes32(0));
        (, uint64 at,) = market.pendingRoot();
        assertEq(at, block.timestamp + min);

        bytes32 role = market.GOVERNOR_ROLE();
        vm.expectRevert(
            abi.encodeWithSelector(IAccessControl.AccessControlUnauthorizedAccount.selector, guardian, role)
        );
        vm.prank(guardian);
        market.setRootDelay(max);
    }

    // ------------------------------------------------------------------ claims

    /// @notice One claim pays everything owed across products; a later root pays only the
    ///         increase; the same leaf again pays nothing.
    function test_claim_cumulativePaysTheDifferenceOnce() public {
        bytes32[] memory first = _tree(alice, 3 ether, bob, 2 ether);
        _publish(first, 2 ether, 3 ether);
        uint256 before = token.balanceOf(alice);
        vm.expectEmit(address(market));
        emit IMarketplace.Claimed(alice, 3 ether, 3 ether);
        vm.prank(stranger); // anyone relays; the account is paid
        market.claim(alice, 3 ether, _proof(first, 0));
        assertEq(token.balanceOf(alice) - before, 3 ether);
        assertEq(market.claimed(alice), 3 ether);
        vm.expectRevert(abi.encodeWithSelector(IMarketplace.NothingToClaim.selector, alice, 3 ether, 3 ether));
        market.claim(alice, 3 ether, _proof(first, 0));

        bytes32[] memory second = _tree(alice, 7 ether, bob, 2 ether);
        _publish(second, 4 ether, 5 ether);
        vm.expectRevert(abi.encodeWithSelector(IMarketplace.InvalidProof.selector, alice, 3 ether));
        market.claim(alice, 3 ether, _proof(first, 0)); // the old root is gone
        vm.expectEmit(address(market));
        emit IMarketplace.Claimed(alice, 7 ether, 4 ether);
        market.claim(alice, 7 ether, _proof(second, 0));
        assertEq(token.balanceOf(alice) - before, 7 ether);
        market.claim(bob, 2 ether, _proof(second, 1)); // bob never claimed the first: all at once
        assertEq(token.balanceOf(bob), 2 ether);
        vm.expectRevert(abi.encodeWithSelector(IMarketplace.NothingToClaim.selector, bob, 2 ether, 2 ether));
        market.claim(bob, 2 ether, _proof(second, 1));
        assertEq(market.totalClaimed(), 9 ether);
        assertLe(market.totalClaimed(), market.totalTaken());
    }

    function test_claim_aProofForAnotherAccountFails() public {
        bytes32[] memory leaves = _tree(alice, 3 ether, bob, 2 ether);
        _publish(leaves, 3 ether, 2 ether);
        vm.expectRevert(abi.encodeWithSelector(IMarketplace.InvalidProof.selector, bob, 3 ether));
        market.claim(bob, 3 ether, _proof(leaves, 0));
        vm.expectRevert(abi.encodeWithSelector(IMarketplace.InvalidProof.selector, alice, 4 ether));
        market.claim(alice, 4 ether, _proof(leaves, 0));
    }

    function test_claim_refusals() public {
        vm.expectRevert(IMarketplace.NoRoot.selector);
        market.claim(alice, 1, new bytes32[](0));
        bytes32[] memory leaves = _tree(address(0), 1 ether, address(market), 1 ether);
        _publish(leaves, 1 ether, 1 ether);
        vm.expectRevert(abi.encodeWithSelector(IMarketplace.InvalidClaimant.selector, address(0)));
        market.claim(address(0), 1 ether, _proof(leaves, 0));
        vm.expectRevert(abi.encodeWithSelector(IMarketplace.InvalidClaimant.selector, address(market)));
        market.claim(address(market), 1 ether, _proof(leaves, 1));
    }

    /// @notice A root whose leaves promise more than it took (a faulty settler) pays claims only
    ///         up to what the roots took: Σ claimed ≤ totalTaken always.
    function test_claim_claimsNeverExceedWhatTheRootsTook() public {
        bytes32[] memory leaves = _tree(alice, 4 ether, bob, 4 ether);
        _publish(leaves, 3 ether, 2 ether);
        market.claim(alice, 4 ether, _proof(leaves, 0));
        vm.expectRevert(abi.encodeWithSelector(IMarketplace.ClaimsExceedTaken.selector, 8 ether, 5 ether));
        market.claim(bob, 4 ether, _proof(leaves, 1));
        assertEq(market.totalClaimed(), 4 ether);
    }

    /// @notice The claim arithmetic over any sequence of cumulative amounts: each claim pays
    ///         exactly the increase over what the account claimed, nothing on a decrease or a
    ///         repeat, and Σ paid == the highest cumulative claimed ≤ totalTaken.
    function testFuzz_claim_paysExactlyTheIncreases(uint256[4] memory cumulatives) public {
        uint256 taken;
        uint256 claimedSoFar;
        uint256 before = token.balanceOf(alice);
        for (uint256 i; i < cumulatives.length; ++i) {
            uint256 c = bound(cumulatives[i], 0, 10 ether);
            taken = taken + c > 42 ether ? 42 ether : taken + c; // the roots never take above vested
            uint256 a = taken > 14 ether ? 14 ether : taken;
            bytes32[] memory leaves = _tree(alice, c, bob, 0);
            _publish(leaves, a, taken - a);
            uint256 owed = c > claimedSoFar ? c - claimedSoFar : 0;
            if (owed == 0) {
                vm.expectRevert(abi.encodeWithSelector(IMarketplace.NothingToClaim.selector, alice, c, claimedSoFar));
                market.claim(alice, c, _proof(leaves, 0));
            } else if (claimedSoFar + owed > market.totalTaken()) {
                vm.expectRevert(
                    abi.encodeWithSelector(
                        IMarketplace.ClaimsExceedTaken.selector, claimedSoFar + owed, market.totalTaken()
                    )
                );
                market.claim(alice, c, _proof(leaves, 0));
            } else {
                market.claim(alice, c, _proof(leaves, 0));
                claimedSoFar = c;
            }
            assertEq(market.claimed(alice), claimedSoFar);
            assertEq(token.balanceOf(alice) - before, claimedSoFar);
            assertLe(market.totalClaimed(), market.totalTaken());
            assertLe(market.takenMemberAmount(p1), market.vestedMemberAmount(p1));
            assertLe(market.takenMemberAmount(p2), market.vestedMemberAmount(p2));
        }
    }

    /// @notice One claim collects every product's earnings: its gas does not grow with the
    ///         products or roots behind the cumulative amount.
    function test_claim_oneClaimCoversEveryProduct() public {
        bytes32[] memory leaves = _tree(alice, 42 ether, bob, 0);
        _publish(leaves, 14 ether, 28 ether);
        market.claim(alice, 42 ether, _proof(leaves, 0));
        assertEq(token.balanceOf(alice), 42 ether);
        assertEq(token.balanceOf(address(market)), market.claimable(operator));
    }
}
