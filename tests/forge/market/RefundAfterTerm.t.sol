// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {MarketBase} from "./MarketBase.sol";
import {IDataProducts} from "../../../contracts/interfaces/IDataProducts.sol";
import {IMarketplace} from "../../../contracts/interfaces/IMarketplace.sol";
import {ProductId} from "../../../contracts/types/ProductId.sol";

/// @notice The audit's refund finding, kept as regression tests. Vesting runs to the order's end
///         rounded up to the day grid, so 1-day credits bought a second after a day boundary
///         vest over almost two days. Refunds used to be measured against that rounded end:
///         a buyer took back about half the member share of a fully served order (even one
///         already expired) whenever the operator bumped its terms. A refund now pays only the
///         unserved part of the order's own term, and nothing once it ended.
contract RefundAfterTermTest is MarketBase {
    /// @dev 1-day credits (MIN_CREDIT_VALIDITY) bought one second after a day boundary.
    function _oneDayCredits() internal returns (ProductId p, uint256 id, uint64 endsAt) {
        IDataProducts.Terms memory t = _terms(IDataProducts.Kind.Api, 0.01 ether);
        t.validitySeconds = 1 days;
        vm.prank(operator);
        p = products.createProduct(t);
        uint256 dayStart = (block.timestamp / 1 days + 1) * 1 days;
        vm.warp(dayStart + 1);
        vm.prank(consumer);
        id = market.buyCredits(p, 10_000, address(0), USE_INSURANCE, V1, NO_MAX);
        (,,,,,, endsAt,) = market.order(id);
        (,, uint64 vestEndsAt,,) = market.orderVesting(id);
        assertEq(endsAt, dayStart + 1 days + 1);
        assertEq(vestEndsAt, dayStart + 2 days, "vesting runs on to the day boundary");
    }

    function test_expiredCredits_refundNothing_theMembersKeepTheWholeShare() public {
        (ProductId p, uint256 id, uint64 endsAt) = _oneDayCredits();
        (uint256 share,, uint64 vestEndsAt,,) = market.orderVesting(id);
        vm.warp(endsAt + 1);
        market.expireOrder(id);
        vm.prank(operator);
        products.updateTerms(p, _terms(IDataProducts.Kind.Api, 0.02 ether)); // a refund condition
        vm.expectRevert(abi.encodeWithSelector(IMarketplace.NothingToRefund.selector, id));
        vm.prank(consumer);
        market.refund(id);
        vm.warp(vestEndsAt);
        assertEq(market.vestedMemberAmount(p), share, "the members get all of it");
    }

    function test_aRefundOneSecondBeforeTheEnd_paysOneSecondOfTheTerm() public {
        (ProductId p, uint256 id, uint64 endsAt) = _oneDayCredits();
        (uint256 share,,,,) = market.orderVesting(id);
        vm.prank(operator);
        products.updateTerms(p, _terms(IDataProducts.Kind.Api, 0.02 ether));
        vm.warp(endsAt - 1); // 1 s of the 86,400 s term unserved
        uint256 before = token.balanceOf(consumer);
        vm.prank(consumer);
        market.refund(id);
        assertEq(token.balanceOf(consumer) - before, share / 1 days, "one second's worth, rounded down");
    }

    function test_anEndedSubscription_refundsNothing() public {
        ProductId p = _stream();
        vm.warp((block.timestamp / 1 days + 1) * 1 days + 1);
        vm.prank(consumer);
        uint256 id = market.subscribe(p, 10, 1, address(0), USE_INSURANCE, V1, NO_MAX);
        (,,,,,, uint64 endsAt,) = market.order(id);
        vm.warp(endsAt + 1);
        vm.prank(operator);
        products.setActive(p, false);
        vm.expectRevert(abi.encodeWithSelector(IMarketplace.NothingToRefund.selector, id));
        vm.prank(consumer);
        market.refund(id);
    }
}
