// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {MarketBase} from "./MarketBase.sol";
import {IDataProducts} from "../../../contracts/interfaces/IDataProducts.sol";
import {ProductId} from "../../../contracts/types/ProductId.sol";

/// @notice SPEC15 §6 end to end on one story: purchases of every kind, a refund, a delivery,
///         two cumulative roots and the claims, with the Marketplace's balance equal to what it
///         owes at every step, to the wei.
contract MarketMoneyTest is MarketBase {
    uint256 internal refunded;

    function _assertBalanceIsOwed(ProductId[3] memory ids) internal view {
        uint256 shares;
        uint256 vested;
        for (uint256 i; i < ids.length; ++i) {
            shares += _memberShares(ids[i]);
            vested += market.vestedMemberAmount(ids[i]);
            assertLe(market.takenMemberAmount(ids[i]), market.vestedMemberAmount(ids[i]));
        }
        uint256 earnings = market.claimable(operator) + market.claimable(broker);
        assertEq(
            token.balanceOf(address(market)),
            earnings + shares - refunded - market.totalClaimed(),
            "balance != earnings + member shares - refunds - claims"
        );
        assertLe(market.totalClaimed(), market.totalTaken());
        assertLe(market.totalTaken(), vested);
        assertLe(vested + refunded, shares, "vested + refunded above what members were paid");
    }

    function _publish(ProductId[3] memory ids, address[2] memory to, uint256[2] memory cumulative)
        internal
        returns (bytes32[] memory leaves)
    {
        ProductId[] memory list = new ProductId[](3);
        uint256[] memory takes = new uint256[](3);
        uint256 owed = cumulative[0] + cumulative[1];
        for (uint256 i; i < 3; ++i) {
            list[i] = ids[i];
            uint256 room = market.vestedMemberAmount(ids[i]);
            takes[i] = owed < room ? owed : room;
            owed -= takes[i];
        }
        assertEq(owed, 0, "the roots would take more than vested");
        leaves = new bytes32[](2);
        leaves[0] = _cumulativeLeaf(to[0], cumulative[0]);
        leaves[1] = _cumulativeLeaf(to[1], cumulative[1]);
        vm.prank(settler);
        market.proposeRoot(_root(leaves), list, takes, bytes32(0));
        vm.warp(block.timestamp + market.rootDelay());
        market.acceptRoot(list, takes);
    }

    function test_conservation_buyRefundDeliverRootsClaims() public {
        ProductId[3] memory ids = [_stream(), _api(), _dataset()];
        vm.startPrank(consumer);
        market.subscribe(ids[0], 7, 3, broker, USE_INSURANCE, V1, NO_MAX);
        uint256 credits = market.buyCredits(ids[1], 12_345, address(0), USE_INSURANCE, V1, NO_MAX);
        uint256 dataset = market.purchaseDataset(ids[2], keccak256("spec"), broker, USE_RESEARCH, V1, NO_MAX);
        vm.stopPrank();
        _assertBalanceIsOwed(ids);

        vm.warp(block.timestamp + 6 days + 7 hours); // within the dataset's delivery window
        vm.prank(settler);
        market.deliverDataset(dataset, keccak256("build"));
        vm.warp(block.timestamp + 5 days);
        vm.prank(operator);
        products.updateTerms(ids[1], _terms(IDataProducts.Kind.Api, 0.02 ether)); // credits refundable
        uint256 before = token.balanceOf(consumer);
        vm.prank(consumer);
        market.refund(credits);
        refunded += token.balanceOf(consumer) - before;
        _assertBalanceIsOwed(ids);

        bytes32[] memory first = _publish(ids, [alice, bob], [uint256(100 ether), uint256(50 ether)]);
        market.claim(alice, 100 ether, _proof(first, 0));
        _assertBalanceIsOwed(ids);

        vm.warp(block.timestamp + 40 days);
        bytes32[] memory second = _publish(ids, [alice, bob], [uint256(180 ether), uint256(90 ether)]);
        market.claim(alice, 180 ether, _proof(second, 0));
        market.claim(bob, 90 ether, _proof(second, 1));
        _assertBalanceIsOwed(ids);
        assertEq(token.balanceOf(alice), 180 ether);
        assertEq(token.balanceOf(bob), 90 ether);

        vm.warp(block.timestamp + 200 days);
        uint256 allVested;
        for (uint256 i; i < 3; ++i) {
            allVested += market.vestedMemberAmount(ids[i]);
        }
        assertEq(allVested + refunded, _memberShares(ids[0]) + _memberShares(ids[1]) + _memberShares(ids[2]));
        _assertBalanceIsOwed(ids);
    }
}
