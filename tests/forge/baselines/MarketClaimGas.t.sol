// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {MarketBase} from "../market/MarketBase.sol";
import {BaselineEpochPayouts} from "./BaselineEpochPayouts.sol";
import {IDataProducts} from "../../../contracts/interfaces/IDataProducts.sol";
import {ProductId} from "../../../contracts/types/ProductId.sol";

/// @notice Gas of the issue #15 money flow against the per-epoch payouts it replaces
///         (BENCHMARKS.md, market tables). Every measured call runs in forge's isolation mode:
///         its own transaction, cold storage, gas = the receipt's gasUsed (21,000 + calldata +
///         execution), as `make bench` reads it from anvil.
/// @dev A claim's cost depends on its proof's length, not on the other leaves, so a tree of
///      2^depth members is stood for by the claimant's leaf and `depth` sibling hashes: the
///      root is the one that leaf and proof lead to, exactly as in a full tree.
contract MarketClaimGasTest is MarketBase {
    event log_named_uint(string key, uint256 val);
    event log_named_string(string key, string val);

    /// @dev The issue's target: one cumulative claim for 30 days × 4 products costs at most
    ///      1.3× a single per-epoch claim.
    uint256 internal constant TARGET_RATIO_BPS = 13_000;
    uint256 internal constant DAYS = 30;
    uint256 internal constant PRODUCTS = 4;
    /// @dev The members of each tree in the 30 × 4 comparison: 1,000 (proof depth 10).
    uint256 internal constant MEMBERS_DEPTH = 10;
    uint256 internal constant LEAF_AMOUNT = 0.01 ether;

    address internal member = makeAddr("member");
    address internal neighbour = makeAddr("neighbour");

    // ------------------------------------------------------------------ helpers

    function _gas() internal view returns (uint256) {
        return vm.lastCallGas().gasTotalUsed;
    }

    /// @dev `depth` stand-in sibling hashes.
    function _siblings(uint256 depth, bytes32 salt) internal pure returns (bytes32[] memory proof) {
        proof = new bytes32[](depth);
        for (uint256 i; i < depth; ++i) {
            proof[i] = keccak256(abi.encode(salt, i));
        }
    }

    function _up(bytes32 node, bytes32[] memory proof, uint256 from) internal pure returns (bytes32) {
        for (uint256 i = from; i < proof.length; ++i) {
            node = node < proof[i] ? keccak256(abi.encode(node, proof[i])) : keccak256(abi.encode(proof[i], node));
        }
        return node;
    }

    function _leafOf(address account, uint256 cumulative) internal pure returns (bytes32) {
        return keccak256(bytes.concat(keccak256(abi.encode(account, cumulative))));
    }

    /// @dev Buys a month of `vehicles` on `p` for the consumer.
    function _buyMonth(ProductId p, uint32 vehicles) internal returns (uint256) {
        (, uint64 version,,) = products.product(p);
        vm.prank(consumer);
        return market.subscribe(p, vehicles, 1, address(0), USE_INSURANCE, version, NO_MAX);
    }

    /// @dev Proposes and accepts a root paying `account` `cumulative` with a proof of `depth`,
    ///      taking from `ids` what each vested; returns the proof.
    function _rootFor(ProductId[] memory ids, address account, uint256 cumulative, uint256 depth)
        internal
        returns (bytes32[] memory proof)
    {
        uint256[] memory takes = new uint256[](ids.length);
        for (uint256 i; i < ids.length; ++i) {
            takes[i] = market.vestedMemberAmount(ids[i]);
        }
        proof = _siblings(depth, keccak256(abi.encode(account, cumulative)));
        bytes32 root = _up(_leafOf(account, cumulative), proof, 0);
        vm.prank(settler);
        market.proposeRoot(root, ids, takes, keccak256("leaves"));
        vm.warp(block.timestamp + market.rootDelay());
        market.acceptRoot(ids, takes);
    }

    /// @dev Settles one old epoch of `p` with a tree of 2^depth members in which `member`
    ///      (index 1) and `neighbour` (index 0) share a bitmap word; the neighbour claims first,
    ///      so the member's claim is a typical one (not the first in its word).
    function _oldEpoch(BaselineEpochPayouts old, ProductId p, uint64 epoch, uint256 depth)
        internal
        returns (bytes32[] memory proof)
    {
        bytes32 leafMember = keccak256(bytes.concat(keccak256(abi.encode(uint256(1), member, LEAF_AMOUNT))));
        bytes32 leafNeighbour = keccak256(bytes.concat(keccak256(abi.encode(uint256(0), neighbour, LEAF_AMOUNT))));
        bytes32[] memory upper = _siblings(depth, keccak256(abi.encode(p, epoch)));
        upper[0] = leafNeighbour;
        bytes32 root = _up(leafMember, upper, 0);
        vm.prank(settler);
        old.settle(p, epoch, 2 * LEAF_AMOUNT, root);
        bytes32[] memory neighbourProof = new bytes32[](depth);
        for (uint256 i; i < depth; ++i) {
            neighbourProof[i] = upper[i];
        }
        neighbourProof[0] = leafMember;
        old.claim(p, epoch, 0, neighbour, LEAF_AMOUNT, neighbourProof);
        return upper;
    }

    /// @dev One claim by another member first, so the measured claim is not the market's first.
    function _warmUpClaim(ProductId[] memory ids) internal {
        address early = makeAddr("early claimant");
        bytes32[] memory proof = _rootFor(ids, early, 1, MEMBERS_DEPTH);
        market.claim(early, 1, proof);
    }

    function _oldPayouts(uint256 productCount) internal returns (BaselineEpochPayouts old, ProductId[] memory ids) {
        old = new BaselineEpochPayouts(address(token), settler);
        ids = new ProductId[](productCount);
        token.approve(address(old), type(uint256).max);
        for (uint256 i; i < productCount; ++i) {
            ids[i] = ProductId.wrap(i + 1);
            old.fund(ids[i], 1_000 ether);
        }
    }

    function _ratio(string memory key, uint256 ours, uint256 baseline) internal {
        uint256 hundredths = ours * 100 / baseline;
        emit log_named_string(
            key,
            string.concat(vm.toString(hundredths / 100), ".", hundredths % 100 < 10 ? "0" : "", vm.toString(hundredths % 100), "x")
        );
    }

    // ------------------------------------------------------------------ 30 days x 4 products

    /// @notice A member collecting 30 days × 4 products: 120 per-epoch claims the old way
    ///         against one cumulative claim, with 1,000-member trees (proof depth 10) both ways.
    /// forge-config: default.isolate = true
    /// forge-config: ci.isolate = true
    function test_collect30Days4Products() public {
        // The old way: a root per product per day; the member claims each.
        (BaselineEpochPayouts old, ProductId[] memory oldIds) = _oldPayouts(PRODUCTS);
        uint256 oldTotal;
        uint256 oldFirst;
        for (uint256 d = 1; d <= DAYS; ++d) {
            vm.warp(block.timestamp + 1 days);
            for (uint256 i; i < PRODUCTS; ++i) {
                uint64 epoch = uint64(block.timestamp / 1 days);
                bytes32[] memory proof = _oldEpoch(old, oldIds[i], epoch, MEMBERS_DEPTH);
                old.claim(oldIds[i], epoch, 1, member, LEAF_AMOUNT, proof);
                uint256 g = _gas();
                if (oldFirst == 0) oldFirst = g;
                oldTotal += g;
            }
        }

        // The new way: four products vest for 30 days; one root; one claim.
        ProductId[] memory ids = new ProductId[](PRODUCTS);
        for (uint256 i; i < PRODUCTS; ++i) {
            ids[i] = _create(operator, IDataProducts.Kind.Stream, 2 ether);
            _buyMonth(ids[i], 100);
        }
        vm.warp(block.timestamp + DAYS * 1 days);
        uint256 owed = DAYS * PRODUCTS * LEAF_AMOUNT;
        // Someone claimed before (the claim totals are not new), as the old typical claim's
        // neighbour had; the member above already received the old payouts, so the claim is
        // for one that holds none, as the old single claim's first payment was.
        _warmUpClaim(ids);
        address fresh = makeAddr("fresh member");
        bytes32[] memory cumulativeProof = _rootFor(ids, fresh, owed, MEMBERS_DEPTH);
        market.claim(fresh, owed, cumulativeProof);
        uint256 oneClaim = _gas();
        assertEq(token.balanceOf(fresh), owed);

        emit log_named_uint("old: one per-epoch claim (1,000 members, holder of none)", oldFirst);
        emit log_named_uint("old: 30 days x 4 products, 120 claims", oldTotal);
        emit log_named_uint("new: one cumulative claim (1,000 members)", oneClaim);
        _ratio("new one claim / old single claim", oneClaim, oldFirst);
        _ratio("old 120 claims / new one claim", oldTotal, oneClaim);
        assertLe(oneClaim * 10_000, oldFirst * TARGET_RATIO_BPS, "one cumulative claim above 1.3x a single old claim");
    }

    // ------------------------------------------------------------------ claim overhead over a transfer

    /// @notice A claim's overhead over a plain DIMO transfer to an address that holds none, at
    ///         10, 1,000 and 100,000 members (proof depth 4, 10, 17), new and old.
    /// forge-config: default.isolate = true
    /// forge-config: ci.isolate = true
    function test_claimOverheadOverTransfer() public {
        token.transfer(makeAddr("transfer target"), LEAF_AMOUNT);
        uint256 transfer = _gas();
        emit log_named_uint("DIMO transfer to an empty address", transfer);

        ProductId p = _stream();
        _buyMonth(p, 1_000);
        ProductId[] memory ids = new ProductId[](1);
        ids[0] = p;
        (BaselineEpochPayouts old, ProductId[] memory oldIds) = _oldPayouts(1);
        vm.warp(block.timestamp + 1 days);
        _warmUpClaim(ids);
        uint256[3] memory members = [uint256(10), 1_000, 100_000];
        uint256[3] memory depths = [uint256(4), 10, 17];
        for (uint256 i; i < 3; ++i) {
            vm.warp(block.timestamp + 1 days);
            address account = makeAddr(string.concat("claimant ", vm.toString(members[i])));
            bytes32[] memory proof = _rootFor(ids, account, LEAF_AMOUNT, depths[i]);
            market.claim(account, LEAF_AMOUNT, proof);
            uint256 claimGas = _gas();

            uint64 epoch = uint64(block.timestamp / 1 days);
            member = makeAddr(string.concat("old claimant ", vm.toString(members[i])));
            proof = _oldEpoch(old, oldIds[0], epoch, depths[i]);
            old.claim(oldIds[0], epoch, 1, member, LEAF_AMOUNT, proof);
            uint256 oldGas = _gas();

            string memory at = string.concat(vm.toString(members[i]), " members, proof ", vm.toString(depths[i]));
            emit log_named_uint(string.concat("new claim, ", at), claimGas);
            emit log_named_uint(string.concat("new claim overhead over the transfer, ", at), claimGas - transfer);
            emit log_named_uint(string.concat("old typical claim, ", at), oldGas);
            assertGt(claimGas, transfer);
        }
    }

    // ------------------------------------------------------------------ purchases and roots

    /// @notice A subscription's gas on a product with 1 live order and on one with 100: no
    ///         loop over orders (the measured orders end on a day that already has a rate
    ///         change, and the operator and broker have earned before).
    /// forge-config: default.isolate = true
    /// forge-config: ci.isolate = true
    function test_purchaseWithLiveOrders() public {
        ProductId few = _stream();
        ProductId many = _stream();
        // The broker earned before: the measured purchases add to its earnings, not start them.
        (, uint64 v0,,) = products.product(few);
        vm.prank(consumer);
        market.subscribe(few, 1, 1, broker, USE_INSURANCE, v0, NO_MAX);
        for (uint256 i; i < 100; ++i) {
            _buyMonth(many, 1);
        }
        (, uint64 vFew,,) = products.product(few);
        (, uint64 vMany,,) = products.product(many);
        vm.prank(consumer);
        market.subscribe(few, 10, 1, broker, USE_INSURANCE, vFew, NO_MAX);
        uint256 gasFew = _gas();
        vm.prank(consumer);
        market.subscribe(many, 10, 1, broker, USE_INSURANCE, vMany, NO_MAX);
        uint256 gasMany = _gas();
        emit log_named_uint("subscribe, product with 1 live order", gasFew);
        emit log_named_uint("subscribe, product with 100 live orders", gasMany);
        _ratio("100 live orders / 1 live order", gasMany, gasFew);
        assertEq(gasMany, gasFew, "a purchase's gas depends on the live orders");
    }

    /// @notice proposeRoot (and acceptRoot) over 10 and over 100 products: linear in the
    ///         products listed, nothing else.
    /// forge-config: default.isolate = true
    /// forge-config: ci.isolate = true
    function test_proposeRootProducts() public {
        uint256[2] memory counts = [uint256(10), 100];
        uint256[2] memory proposeGas;
        for (uint256 c; c < 2; ++c) {
            ProductId[] memory ids = new ProductId[](counts[c]);
            for (uint256 i; i < counts[c]; ++i) {
                ids[i] = _stream();
                _buyMonth(ids[i], 1);
            }
            vm.warp(block.timestamp + 1 days);
            uint256[] memory takes = new uint256[](ids.length);
            for (uint256 i; i < ids.length; ++i) {
                takes[i] = market.vestedMemberAmount(ids[i]);
            }
            bytes32 root = keccak256(abi.encode("root", c));
            vm.prank(settler);
            market.proposeRoot(root, ids, takes, keccak256("leaves"));
            proposeGas[c] = _gas();
            vm.warp(block.timestamp + market.rootDelay());
            market.acceptRoot(ids, takes);
            uint256 acceptGas = _gas();
            emit log_named_uint(string.concat("proposeRoot, ", vm.toString(counts[c]), " products"), proposeGas[c]);
            emit log_named_uint(string.concat("acceptRoot, ", vm.toString(counts[c]), " products"), acceptGas);
        }
        emit log_named_uint("proposeRoot gas per product listed", (proposeGas[1] - proposeGas[0]) / 90);
        _ratio("100 products / 10 products", proposeGas[1], proposeGas[0]);
    }
}
