// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {IGuardianPausable} from "../../../contracts/interfaces/IGuardianPausable.sol";
import {IMarketplace} from "../../../contracts/interfaces/IMarketplace.sol";
import {ProductId} from "../../../contracts/types/ProductId.sol";
import {MarketBase} from "./MarketBase.sol";

/// @notice The guardian's brake on the Marketplace: purchases and root proposals stop for a
///         bounded time; buyers' refunds, members' claims and root revocation never do. And a
///         dataset cannot be delivered once its delivery window closed, so a late delivery
///         cannot race the buyer's refund.
contract MarketPauseTest is MarketBase {
    ProductId internal streamId;
    ProductId internal datasetId;

    function setUp() public override {
        super.setUp();
        streamId = _stream();
        datasetId = _dataset();
    }

    function _pause() internal returns (uint64 until) {
        until = uint64(block.timestamp + 1 days);
        vm.prank(guardian);
        market.pause(1 days);
    }

    function test_pause_refusesEveryPurchaseUntilItEnds() public {
        uint64 until = _pause();
        bytes memory paused = abi.encodeWithSelector(IGuardianPausable.GuardianPauseActive.selector, until);
        vm.startPrank(consumer);
        vm.expectRevert(paused);
        market.subscribe(streamId, 1, 1, address(0), USE_INSURANCE, V1, NO_MAX);
        vm.expectRevert(paused);
        market.purchaseDataset(datasetId, keccak256("spec"), address(0), USE_INSURANCE, V1, NO_MAX);
        vm.stopPrank();
        vm.warp(until);
        vm.prank(consumer);
        uint256 orderId = market.subscribe(streamId, 1, 1, address(0), USE_INSURANCE, V1, NO_MAX);
        assertTrue(orderId != 0, "the pause ended");
    }

    function test_pause_refusesRootProposals_butTheDaoStillRevokesAndBuyersStillRefund() public {
        vm.prank(consumer);
        uint256 orderId = market.subscribe(streamId, 2, 3, address(0), USE_INSURANCE, V1, NO_MAX);
        vm.prank(settler);
        market.proposeRoot(keccak256("root"), new ProductId[](0), new uint256[](0), bytes32(0));
        uint64 until = _pause();

        vm.prank(settler);
        vm.expectRevert(abi.encodeWithSelector(IGuardianPausable.GuardianPauseActive.selector, until));
        market.proposeRoot(keccak256("another"), new ProductId[](0), new uint256[](0), bytes32(0));

        vm.prank(guardian);
        market.revokePendingRoot();
        (bytes32 pending,,) = market.pendingRoot();
        assertEq(pending, bytes32(0), "revoked while paused");

        vm.prank(operator);
        products.setActive(streamId, false);
        uint256 before = token.balanceOf(consumer);
        vm.prank(consumer);
        market.refund(orderId);
        assertTrue(token.balanceOf(consumer) > before, "a refund is never paused");
    }

    function test_deliverDataset_closesWithTheDeliveryWindow() public {
        vm.prank(consumer);
        uint256 orderId =
            market.purchaseDataset(datasetId, keccak256("spec"), address(0), USE_INSURANCE, V1, NO_MAX);
        uint64 closesAt = uint64(block.timestamp) + market.DATASET_DELIVERY_WINDOW();
        vm.warp(closesAt - 1);
        uint256 snapshot = vm.snapshotState();
        vm.prank(settler);
        market.deliverDataset(orderId, keccak256("build")); // the last second of the window
        vm.revertToState(snapshot);

        vm.warp(closesAt);
        vm.prank(settler);
        vm.expectRevert(abi.encodeWithSelector(IMarketplace.DeliveryWindowClosed.selector, orderId, closesAt));
        market.deliverDataset(orderId, keccak256("build"));
        vm.prank(consumer);
        market.refund(orderId); // the buyer's refund is what is left
        (,,, uint64 refundedAt,) = market.orderVesting(orderId);
        assertEq(refundedAt, closesAt);
    }
}
