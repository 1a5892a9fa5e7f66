// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {MarketBase} from "./MarketBase.sol";
import {IAccessControl} from "@openzeppelin/contracts/access/IAccessControl.sol";
import {IDataProducts} from "../../../contracts/interfaces/IDataProducts.sol";
import {IMarketplace} from "../../../contracts/interfaces/IMarketplace.sol";
import {Vesting} from "../../../contracts/libraries/Vesting.sol";
import {ProductId} from "../../../contracts/types/ProductId.sol";

/// @notice Vesting through the Marketplace (DESIGN.md §3.6): each order's member share is
///         released linearly over its term on a per-product checkpointed rate, datasets at
///         delivery; what a product has vested equals the sum of its orders' releases, never
///         exceeds what was paid, never decreases, and is complete at each term's end.
contract MarketVestingTest is MarketBase {
    uint256 internal constant P = 1e18;
    uint64 internal constant MONTH = 30 days;

    /// @dev The test model of one order's vesting.
    struct Model {
        uint256 share;
        uint64 start;
        uint64 end;
    }

    Model[] internal _models;

    function _subscribe(ProductId p, uint32 vehiclesCount, uint32 months) internal returns (uint256 id) {
        vm.prank(consumer);
        id = market.subscribe(p, vehiclesCount, months, address(0), USE_INSURANCE, V1, NO_MAX);
        (uint256 share, uint64 start, uint64 end,,) = market.orderVesting(id);
        _models.push(Model(share, start, end));
    }

    /// @dev Σ over the modelled orders of what each released by now, scaled.
    function _modelVestedScaled() internal view returns (uint256 total) {
        for (uint256 i; i < _models.length; ++i) {
            Model storage m = _models[i];
            total += Vesting.releasedScaled(m.share, m.start, m.end, uint64(block.timestamp));
        }
    }

    function _vestedScaled(ProductId p) internal returns (uint256 scaled) {
        market.checkpoint(p);
        (, scaled,) = market.vestingOf(p);
    }

    // ------------------------------------------------------------------ schedule

    function test_subscribe_schedulesTheMemberShareOverTheTermOnTheDayGrid() public {
        ProductId p = _stream();
        uint256 share = 14 ether; // 10 vehicles x 1 month x 2 DIMO, 70 % to members
        uint64 start = uint64(block.timestamp);
        uint64 end = Vesting.roundUpToDay(start + MONTH);
        assertGt(end, start + MONTH); // START is off the grid: the end rounds up
        (uint256 rate, uint256 dust) = Vesting.schedule(share, start, end);

        vm.expectEmit(address(market));
        emit IMarketplace.OrderVesting(1, share, start, end);
        uint256 id = _subscribe(p, 10, 1);

        _assertOrderVesting(id, share, start, end);
        (uint256 productRate,, uint64 lastCheckpoint) = market.vestingOf(p);
        assertEq(productRate, rate);
        assertEq(lastCheckpoint, start);
        (uint256 rateDrop, uint256 dustBump) = market.scheduledChange(p, end);
        assertEq(rateDrop, rate);
        assertEq(dustBump, dust);
        assertEq(market.vestedMemberAmount(p), 0, "nothing vests at the start");
    }

    function _assertOrderVesting(uint256 id, uint256 share, uint64 start, uint64 end) internal view {
        (uint256 memberShare, uint64 vestStartsAt, uint64 vestEndsAt, uint64 refundedAt, uint64 version) =
            market.orderVesting(id);
        assertEq(memberShare, share);
        assertEq(vestStartsAt, start);
        assertEq(vestEndsAt, end);
        assertEq(refundedAt, 0);
        assertEq(version, 1);
    }

    function test_vested_growsLinearlyAndCompletesAtTermEnd() public {
        ProductId p = _stream();
        uint256 id = _subscribe(p, 10, 1);
        (uint256 share, uint64 start, uint64 end,,) = market.orderVesting(id);
        (uint256 rate,) = Vesting.schedule(share, start, end);

        vm.warp(start + 1 days);
        assertEq(market.vestedMemberAmount(p), rate * 1 days / P);
        vm.warp(start + 10 days + 7);
        assertEq(market.vestedMemberAmount(p), rate * (10 days + 7) / P);
        vm.warp(end - 1);
        assertLt(market.vestedMemberAmount(p), share);
        vm.warp(end);
        assertEq(market.vestedMemberAmount(p), share, "complete at the term's end");
        vm.warp(end + 400 days);
        assertEq(market.vestedMemberAmount(p), share, "and nothing more after it");
        (uint256 productRate,,) = market.vestingOf(p);
        market.checkpoint(p);
        (productRate,,) = market.vestingOf(p);
        assertEq(productRate, 0, "the rate dropped at the end");
    }

    function test_vested_ordersOfEveryTermSumExactly() public {
        ProductId p = _stream();
        _subscribe(p, 10, 1);
        vm.warp(block.timestamp + 3 hours);
        _subscribe(p, 3, 2);
        vm.warp(block.timestamp + 29 days);
        _subscribe(p, 1, 12);
        for (uint256 i; i < 15; ++i) {
            vm.warp(block.timestamp + 1 days + 1 hours * i);
            assertEq(_vestedScaled(p), _modelVestedScaled(), "vestedScaled == sum of the orders' releases");
        }
        vm.warp(block.timestamp + 400 days);
        assertEq(market.vestedMemberAmount(p), _memberShares(p), "every order complete");
    }

    function test_bundle_vestsIntoTheBundlesOwnRecord() public {
        ProductId s = _stream();
        ProductId b = _bundleOf(s, _api(), _dataset());
        vm.prank(consumer);
        market.subscribe(b, 4, 3, address(0), USE_RESEARCH, V1, NO_MAX);
        vm.warp(block.timestamp + 100 days);
        assertEq(market.vestedMemberAmount(b), _memberShares(b));
        assertEq(market.vestedMemberAmount(s), 0);
    }

    /// @notice Whatever the orders and the times, the product's vested amount is the sum of its
    ///         orders' releases, monotone, never above what was paid to members, and complete
    ///         once every term ended.
    function testFuzz_vested_isTheSumOfReleasesMonotoneAndBounded(uint256 seed) public {
        ProductId p = _stream();
        uint256 lastVested;
        uint256 n = bound(seed % 7, 1, 6);
        for (uint256 i; i < n; ++i) {
            uint256 r = uint256(keccak256(abi.encode(seed, i)));
            _subscribe(p, uint32(bound(r, 1, 50)), uint32(bound(r >> 64, 1, 14)));
            vm.warp(block.timestamp + bound(r >> 128, 0, 45 days));
            uint256 scaled = _vestedScaled(p);
            assertEq(scaled, _modelVestedScaled());
            uint256 vested = market.vestedMemberAmount(p);
            assertGe(vested, lastVested, "vested decreased");
            assertLe(vested, _memberShares(p), "vested above what members were paid");
            lastVested = vested;
        }
        vm.warp(block.timestamp + 15 * MONTH + 1 days);
        assertEq(market.vestedMemberAmount(p), _memberShares(p));
    }

    // ------------------------------------------------------------------ credits

    function test_buyCredits_vestOverTheirValidity() public {
        ProductId a = _api();
        vm.prank(consumer);
        uint256 id = market.buyCredits(a, 10_000, address(0), USE_INSURANCE, V1, NO_MAX);
        (uint256 share, uint64 start, uint64 end,,) = market.orderVesting(id);
        assertEq(share, 70 ether);
        assertEq(end, Vesting.roundUpToDay(start + CREDIT_VALIDITY));
        vm.warp(start + CREDIT_VALIDITY / 2);
        assertEq(market.vestedMemberAmount(a), Vesting.released(share, start, end, uint64(block.timestamp)));
        vm.warp(end);
        assertEq(market.vestedMemberAmount(a), share);
    }

    // ------------------------------------------------------------------ datasets

    function test_dataset_vestsAllAtDeliveryAndOnlyThen() public {
        ProductId d = _dataset();
        vm.expectEmit(address(market));
        emit IMarketplace.OrderVesting(1, 350 ether, 0, 0);
        vm.prank(consumer);
        uint256 id = market.purchaseDataset(d, keccak256("spec"), address(0), USE_RESEARCH, V1, NO_MAX);
        vm.warp(block.timestamp + 3 days);
        assertEq(market.vestedMemberAmount(d), 0, "nothing vests before delivery");
        (, uint64 vestStartsAt, uint64 vestEndsAt,,) = market.orderVesting(id);
        assertEq(vestStartsAt, 0);
        assertEq(vestEndsAt, 0);

        uint64 at = uint64(block.timestamp);
        vm.expectEmit(address(market));
        emit IMarketplace.DatasetDelivered(id, keccak256("build"));
        vm.expectEmit(address(market));
        emit IMarketplace.OrderVesting(id, 350 ether, at, at);
        vm.prank(settler);
        market.deliverDataset(id, keccak256("build"));
        assertEq(market.vestedMemberAmount(d), 350 ether);
        (, vestStartsAt, vestEndsAt,,) = market.orderVesting(id);
        assertEq(vestStartsAt, at);
        assertEq(vestEndsAt, at);

        vm.expectRevert(abi.encodeWithSelector(IMarketplace.AlreadyDelivered.selector, id));
        vm.prank(settler);
        market.deliverDataset(id, keccak256("build"));
    }

    function test_deliverDataset_refusals() public {
        ProductId p = _stream();
        uint256 sub = _subscribe(p, 1, 1);
        vm.startPrank(settler);
        vm.expectRevert(abi.encodeWithSelector(IMarketplace.UnknownOrder.selector, 9));
        market.deliverDataset(9, bytes32(0));
        vm.expectRevert(abi.encodeWithSelector(IMarketplace.NotDatasetOrder.selector, sub));
        market.deliverDataset(sub, bytes32(0));
        vm.stopPrank();
        ProductId d = _dataset();
        vm.prank(consumer);
        uint256 id = market.purchaseDataset(d, bytes32(0), address(0), USE_RESEARCH, V1, NO_MAX);
        bytes32 role = market.SETTLER_ROLE();
        vm.expectRevert(
            abi.encodeWithSelector(IAccessControl.AccessControlUnauthorizedAccount.selector, operator, role)
        );
        vm.prank(operator);
        market.deliverDataset(id, bytes32(0));
    }

    // ------------------------------------------------------------------ checkpoints

    /// @notice A product left alone for more than MAX_CHECKPOINT_DAYS days of live vesting
    ///         refuses purchases until anyone checkpoints it; each checkpoint walks at most that
    ///         many days, so no purchase's gas grows with idle time.
    function test_checkpoint_boundsTheWalkAndUnblocksPurchases() public {
        ProductId p = _stream();
        _subscribe(p, 1, 60); // vests for 1,800 days
        uint64 bought = uint64(block.timestamp);
        vm.warp(block.timestamp + 1_500 days);

        vm.expectRevert(abi.encodeWithSelector(IMarketplace.CheckpointBehind.selector, p, bought));
        vm.prank(consumer);
        market.subscribe(p, 1, 1, address(0), USE_INSURANCE, V1, NO_MAX);
        uint256 vestedView = market.vestedMemberAmount(p); // a view walks as far as it must

        uint64 firstStop = Vesting.nextDay(bought) + uint64(market.MAX_CHECKPOINT_DAYS() - 1) * 1 days;
        vm.expectEmit(true, false, false, false, address(market));
        emit IMarketplace.Checkpointed(p, firstStop, 0);
        vm.prank(stranger);
        market.checkpoint(p);
        (,, uint64 last) = market.vestingOf(p);
        assertEq(last, firstStop, "one checkpoint walks MAX_CHECKPOINT_DAYS days");
        market.checkpoint(p);
        (,, last) = market.vestingOf(p);
        assertEq(last, block.timestamp);
        assertEq(market.vestedMemberAmount(p), vestedView, "walking in steps changes nothing");
        assertEq(_vestedScaled(p), _modelVestedScaled());
        _subscribe(p, 1, 1); // unblocked
    }

    /// @notice Once its orders ended a product has no rate: it jumps to now, however long it idled.
    function test_checkpoint_anIdleProductNeverFallsBehind() public {
        ProductId p = _stream();
        _subscribe(p, 1, 1);
        vm.warp(block.timestamp + 5_000 days);
        _subscribe(p, 1, 1);
        assertEq(market.vestedMemberAmount(p), _models[0].share);
    }

    /// @notice A dust purchase of the longest term cannot make a checkpoint unbounded either:
    ///         it only keeps the rate live, and the walk stays capped per call.
    function test_checkpoint_aLongDustOrderStaysBounded() public {
        IDataProducts.Terms memory t = _terms(IDataProducts.Kind.Stream, 1); // 1 wei a vehicle-month
        vm.prank(operator);
        ProductId p = products.createProduct(t);
        _subscribe(p, 1, type(uint32).max);
        vm.warp(block.timestamp + 3_000 days);
        vm.prank(stranger);
        uint256 g0 = gasleft();
        market.checkpoint(p);
        uint256 used = g0 - gasleft();
        assertLe(used, 3_500_000, "one checkpoint of 1,000 days");
        market.checkpoint(p);
        market.checkpoint(p);
        _subscribe(p, 1, 1);
    }

    // ------------------------------------------------------------------ gas shape

    /// @notice Buying costs the same with 1 or 100 live orders on the product: nothing loops
    ///         over orders.
    function test_purchaseGas_sameWith1And100LiveOrders() public {
        ProductId hundred = _stream();
        ProductId one = _stream();
        for (uint32 i; i < 100; ++i) {
            _subscribe(hundred, 1, 1 + (i % 24)); // live orders ending on 24 different days
        }
        _subscribe(one, 1, 1);
        vm.warp(block.timestamp + 3 days + 5 hours);

        // Each purchase from the same state, so neither warms a slot for the other.
        uint256 snap = vm.snapshotState();
        vm.prank(consumer);
        market.subscribe(one, 1, 36, address(0), USE_INSURANCE, V1, NO_MAX);
        uint256 gasOne = vm.lastCallGas().gasTotalUsed;
        vm.revertToState(snap);
        vm.prank(consumer);
        market.subscribe(hundred, 1, 36, address(0), USE_INSURANCE, V1, NO_MAX);
        uint256 gasHundred = vm.lastCallGas().gasTotalUsed;
        assertGt(gasOne, 0);
        assertEq(gasOne, gasHundred, "purchase gas depends on the number of live orders");
    }
}
