// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {MarketBase} from "./MarketBase.sol";
import {IDataProducts} from "../../../contracts/interfaces/IDataProducts.sol";
import {IMarketplace} from "../../../contracts/interfaces/IMarketplace.sol";
import {IStaking} from "../../../contracts/interfaces/IStaking.sol";
import {Vesting} from "../../../contracts/libraries/Vesting.sol";
import {ProductId} from "../../../contracts/types/ProductId.sol";

/// @notice Refunds (DESIGN.md §3.6): the buyer takes back the unvested member share, rounded
///         down, exactly when the product (or a bundle's component) is inactive, its terms moved,
///         its operator was slashed after the order started, or a dataset went undelivered for
///         DATASET_DELIVERY_WINDOW; only the buyer, once; the order ends and leaves the usage.
contract MarketRefundsTest is MarketBase {
    uint256 internal constant P = 1e18;
    ProductId internal p;
    uint256 internal orderId;

    function setUp() public override {
        super.setUp();
        p = _stream();
        vm.prank(consumer);
        orderId = market.subscribe(p, 10, 1, address(0), USE_INSURANCE, V1, NO_MAX); // 14 DIMO to members
    }

    /// @dev What a refund of `id` now must pay, from the library's arithmetic.
    function _expected(uint256 id) internal view returns (uint256 refund) {
        (uint256 share, uint64 start, uint64 end,,) = market.orderVesting(id);
        if (end == 0) return share; // an undelivered dataset: nothing vested yet
        (,,,,,, uint64 termEnd,) = market.order(id);
        (refund,) = Vesting.splitRefund(share, start, termEnd, end, uint64(block.timestamp));
    }

    function _refundNow(uint256 id) internal returns (uint256 paid) {
        uint256 want = _expected(id);
        (,,,,,, uint64 termEndsAt,) = market.order(id);
        uint256 before = token.balanceOf(consumer);
        uint256 held = token.balanceOf(address(market));
        vm.expectEmit(address(market));
        emit IMarketplace.Refunded(id, consumer, want);
        vm.prank(consumer);
        market.refund(id);
        paid = token.balanceOf(consumer) - before;
        assertEq(paid, want, "refund amount");
        assertEq(held - token.balanceOf(address(market)), want, "paid from the market's balance");
        (,,, uint64 refundedAt,) = market.orderVesting(id);
        assertEq(refundedAt, block.timestamp);
        assertFalse(market.inForce(id));
        (,,,,,, uint64 endsAt,) = market.order(id);
        // The order ends for the gateway now, or stays ended where its term ended: a refund
        // between the term's end and its vesting end (the next day boundary) returns that tail.
        uint256 shouldEnd = termEndsAt < block.timestamp ? termEndsAt : block.timestamp;
        assertEq(endsAt, shouldEnd, "the order ends for the gateway");
    }

    // ------------------------------------------------------------------ the four conditions

    function test_refund_whenTheProductIsDeactivated() public {
        vm.warp(block.timestamp + 10 days);
        vm.prank(operator);
        products.setActive(p, false);
        uint256 paid = _refundNow(orderId);
        assertGt(paid, 0);
        (uint256 units,) = market.usageOf(consumer);
        assertEq(units, 0, "the order left the buyer's usage");
        (uint256 stakedUnits,) = staking.usageOf(consumer);
        assertEq(stakedUnits, 0);
        // The members keep what vested up to the refund, to the wei, and nothing more after it.
        vm.warp(block.timestamp + 100 days);
        assertEq(market.vestedMemberAmount(p) + paid, 14 ether);
    }

    function test_refund_whenTheGovernorHoldsTheProduct() public {
        vm.warp(block.timestamp + 1 days);
        vm.prank(governor);
        products.setActive(p, false);
        _refundNow(orderId);
    }

    function test_refund_whenABundleComponentIsDeactivated() public {
        ProductId s = _stream();
        ProductId b = _bundleOf(s, _api(), _dataset());
        vm.prank(consumer);
        uint256 id = market.subscribe(b, 2, 2, address(0), USE_RESEARCH, V1, NO_MAX);
        vm.warp(block.timestamp + 5 days);
        vm.expectRevert(abi.encodeWithSelector(IMarketplace.NotRefundable.selector, id));
        vm.prank(consumer);
        market.refund(id);
        vm.prank(operator);
        products.setActive(s, false);
        _refundNow(id);
    }

    function test_refund_whenTheTermsMoved() public {
        vm.warp(block.timestamp + 3 days);
        vm.prank(operator);
        products.updateTerms(p, _terms(IDataProducts.Kind.Stream, 3 ether));
        _refundNow(orderId);
    }

    function test_refund_whenTheOperatorWasSlashedAfterTheOrderStarted() public {
        assertEq(staking.lastSlashedAt(operator), 0);
        vm.warp(block.timestamp + 2 days);
        _slashNow(operator, 1 ether);
        assertEq(staking.lastSlashedAt(operator), block.timestamp, "Staking records the slash time");
        _refundNow(orderId);
    }

    function test_refund_notForASlashBeforeTheOrderStarted() public {
        vm.warp(block.timestamp + 1); // after orderId started
        _slashNow(operator, 1 ether);
        vm.warp(block.timestamp + 1);
        vm.prank(consumer);
        uint256 later = market.subscribe(p, 1, 1, address(0), USE_INSURANCE, V1, NO_MAX);
        vm.warp(block.timestamp + 1 days);
        vm.expectRevert(abi.encodeWithSelector(IMarketplace.NotRefundable.selector, later));
        vm.prank(consumer);
        market.refund(later);
        _refundNow(orderId); // the earlier order started before the slash
    }

    function test_refund_anUndeliveredDatasetAfterTheWindow() public {
        ProductId d = _dataset();
        vm.prank(consumer);
        uint256 id = market.purchaseDataset(d, keccak256("spec"), address(0), USE_RESEARCH, V1, NO_MAX);
        vm.warp(block.timestamp + market.DATASET_DELIVERY_WINDOW() - 1);
        vm.expectRevert(abi.encodeWithSelector(IMarketplace.NotRefundable.selector, id));
        vm.prank(consumer);
        market.refund(id);
        vm.warp(block.timestamp + 1);
        uint256 paid = _refundNow(id);
        assertEq(paid, 350 ether, "the whole member share");
        (uint256 units,) = market.usageOf(consumer);
        assertEq(units, 10, "the dataset's unit left the usage, the subscription's stay");
        vm.expectRevert(abi.encodeWithSelector(IMarketplace.AlreadyRefunded.selector, id));
        vm.prank(settler);
        market.deliverDataset(id, keccak256("late"));
        assertEq(market.vestedMemberAmount(d), 0);
    }

    function test_refund_aDeliveredDatasetHasNothingLeft() public {
        ProductId d = _dataset();
        vm.prank(consumer);
        uint256 id = market.purchaseDataset(d, keccak256("spec"), address(0), USE_RESEARCH, V1, NO_MAX);
        vm.prank(settler);
        market.deliverDataset(id, keccak256("build"));
        vm.prank(operator);
        products.setActive(d, false);
        vm.expectRevert(abi.encodeWithSelector(IMarketplace.NothingToRefund.selector, id));
        vm.prank(consumer);
        market.refund(id);
    }

    // ------------------------------------------------------------------ refusals

    function test_refund_notOtherwise() public {
        vm.warp(block.timestamp + 10 days);
        vm.expectRevert(abi.encodeWithSelector(IMarketplace.NotRefundable.selector, orderId));
        vm.prank(consumer);
        market.refund(orderId);
        // A protocol fee change bumps no version: still not refundable.
        vm.prank(governor);
        products.setProtocolFeeBps(1_000);
        vm.expectRevert(abi.encodeWithSelector(IMarketplace.NotRefundable.selector, orderId));
        vm.prank(consumer);
        market.refund(orderId);
    }

    function test_refund_onlyTheBuyerAndOnce() public {
        vm.warp(block.timestamp + 10 days);
        vm.prank(operator);
        products.setActive(p, false);
        vm.expectRevert(abi.encodeWithSelector(IMarketplace.NotBuyer.selector, orderId, stranger));
        vm.prank(stranger);
        market.refund(orderId);
        vm.expectRevert(abi.encodeWithSelector(IMarketplace.NotBuyer.selector, orderId, operator));
        vm.prank(operator);
        market.refund(orderId);
        _refundNow(orderId);
        vm.expectRevert(abi.encodeWithSelector(IMarketplace.AlreadyRefunded.selector, orderId));
        vm.prank(consumer);
        market.refund(orderId);
        vm.expectRevert(abi.encodeWithSelector(IMarketplace.NotInForce.selector, orderId));
        market.expireOrder(orderId);
        vm.expectRevert(abi.encodeWithSelector(IMarketplace.UnknownOrder.selector, 99));
        market.refund(99);
    }

    function test_refund_nothingLeftAfterTheVestingEnds() public {
        (,, uint64 end,,) = market.orderVesting(orderId);
        vm.warp(end);
        vm.prank(operator);
        products.setActive(p, false);
        vm.expectRevert(abi.encodeWithSelector(IMarketplace.NothingToRefund.selector, orderId));
        vm.prank(consumer);
        market.refund(orderId);
    }

    /// @notice An order whose term ended (its access ended; its vesting runs on to the day
    ///         boundary) has nothing to refund: the tail belongs to the members, who served it
    ///         (the audit's RefundAfterEnd case: 1-day credits bought just after a day boundary
    ///         vest over two days, and used to hand half the share back after the service).
    function test_refund_nothingAfterTheTermEvenInTheRoundingGap() public {
        (,,,,,, uint64 endsAt,) = market.order(orderId);
        (,, uint64 vestEndsAt,,) = market.orderVesting(orderId);
        assertTrue(endsAt < vestEndsAt, "the term ends inside the rounding gap");
        vm.warp(endsAt);
        market.expireOrder(orderId);
        vm.prank(operator);
        products.setActive(p, false);
        vm.expectRevert(abi.encodeWithSelector(IMarketplace.NothingToRefund.selector, orderId));
        vm.prank(consumer);
        market.refund(orderId);
        (uint256 units,) = market.usageOf(consumer);
        assertEq(units, 0);
    }

    // ------------------------------------------------------------------ arithmetic

    /// @notice For any order and refund time: the buyer receives the unserved part of the term
    ///         (nothing after it), the members keep exactly the rest, and other orders are untouched.
    function testFuzz_refund_splitsTheShareToTheWei(uint32 vehiclesCount, uint32 months, uint256 after_) public {
        vehiclesCount = uint32(bound(vehiclesCount, 1, 500));
        months = uint32(bound(months, 1, 24));
        vm.prank(consumer);
        uint256 id = market.subscribe(p, vehiclesCount, months, address(0), USE_INSURANCE, V1, NO_MAX);
        (uint256 share, uint64 start, uint64 end,,) = market.orderVesting(id);
        (,,,,,, uint64 termEnd,) = market.order(id);
        vm.warp(start + bound(after_, 0, uint256(end - start) + 10 days));
        vm.prank(operator);
        products.setActive(p, false);
        if (block.timestamp >= termEnd) {
            vm.expectRevert(abi.encodeWithSelector(IMarketplace.NothingToRefund.selector, id));
            vm.prank(consumer);
            market.refund(id);
            return;
        }
        (uint256 want, uint256 remainder) =
            Vesting.splitRefund(share, start, termEnd, end, uint64(block.timestamp));
        uint256 releasedAt = Vesting.releasedScaled(share, start, end, uint64(block.timestamp));
        assertEq(releasedAt + want * P + remainder, share * P);
        uint256 paid = _refundNow(id);
        assertEq(paid, want);
        vm.warp(block.timestamp + 800 days);
        // The first order (14 DIMO) vests fully; the refunded one leaves exactly share - refund.
        assertEq(market.vestedMemberAmount(p), 14 ether + share - paid);
        market.checkpoint(p);
        (uint256 rate,,) = market.vestingOf(p);
        assertEq(rate, 0, "no rate survives its orders");
    }

    /// @dev The DAO proposes and at once executes a slash of `amount` from `account`.
    function _slashNow(address account, uint256 amount) internal {
        vm.startPrank(governor);
        uint256 slashId =
            staking.proposeSlash(account, amount, IStaking.SlashSubject.Product, 0, "test: misconduct");
        staking.slash(slashId, 0, bytes32(0));
        vm.stopPrank();
    }
}
