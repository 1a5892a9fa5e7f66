// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {
    IAccessControlDefaultAdminRules
} from "@openzeppelin/contracts/access/extensions/IAccessControlDefaultAdminRules.sol";
import {IAccessControl} from "@openzeppelin/contracts/access/IAccessControl.sol";
import {IERC20Errors} from "@openzeppelin/contracts/interfaces/draft-IERC6093.sol";
import {MarketBase} from "./MarketBase.sol";
import {Marketplace} from "../../../contracts/market/Marketplace.sol";
import {MarketMath} from "../../../contracts/libraries/MarketMath.sol";
import {IDataProducts} from "../../../contracts/interfaces/IDataProducts.sol";
import {ProductId} from "../../../contracts/types/ProductId.sol";
import {IMarketplace} from "../../../contracts/interfaces/IMarketplace.sol";
import {IStaking} from "../../../contracts/interfaces/IStaking.sol";
import {Permissions} from "../../../contracts/libraries/Permissions.sol";

contract MarketplaceTest is MarketBase {
    uint64 internal constant MONTH = 30 days;

    struct Balances {
        uint256 buyer;
        uint256 treasury;
        uint256 market;
        uint256 operatorEarnings;
        uint256 brokerEarnings;
        uint256 pool;
    }

    function _balances(address buyer, address brokerAccount, ProductId productId)
        internal
        view
        returns (Balances memory b)
    {
        b.buyer = token.balanceOf(buyer);
        b.treasury = token.balanceOf(address(treasury));
        b.market = token.balanceOf(address(market));
        b.operatorEarnings = market.claimable(operator);
        b.brokerEarnings = brokerAccount == address(0) ? 0 : market.claimable(brokerAccount);
        b.pool = _memberShares(productId);
    }

    /// @dev Expected split of `paid` under the default test terms (70/20/5 + 5% fee).
    function _expect(uint256 paid) internal pure returns (uint256 members, uint256 op, uint256 brk, uint256 fee) {
        op = paid * 2000 / 10_000;
        brk = paid * 500 / 10_000;
        fee = paid * 500 / 10_000;
        members = paid - op - brk - fee;
    }

    // ------------------------------------------------------------------ constructor

    function test_constructor_setsImmutablesAndRoles() public view {
        assertEq(address(market.token()), address(token));
        assertEq(address(market.dataProducts()), address(products));
        assertEq(address(market.staking()), address(staking));
        assertEq(market.treasury(), address(treasury));
        assertTrue(market.hasRole(market.DEFAULT_ADMIN_ROLE(), governor));
        assertTrue(market.hasRole(market.GOVERNOR_ROLE(), governor));
        assertEq(market.SETTLER_ROLE(), keccak256("SETTLER_ROLE"));
        assertFalse(market.hasRole(market.SETTLER_ROLE(), governor));
        assertEq(market.MONTH(), 30 days);
    }

    function test_constructor_revertsWhenZeroAddress() public {
        address t = address(token);
        address p = address(products);
        address s = address(staking);
        address tr = address(treasury);
        vm.expectRevert(IMarketplace.ZeroAddress.selector);
        new Marketplace(address(0), p, s, tr, governor);
        vm.expectRevert(IMarketplace.ZeroAddress.selector);
        new Marketplace(t, address(0), s, tr, governor);
        vm.expectRevert(IMarketplace.ZeroAddress.selector);
        new Marketplace(t, p, address(0), tr, governor);
        vm.expectRevert(IMarketplace.ZeroAddress.selector);
        new Marketplace(t, p, s, address(0), governor);
        vm.expectRevert(
            abi.encodeWithSelector(
                IAccessControlDefaultAdminRules.AccessControlInvalidDefaultAdmin.selector, address(0)
            )
        );
        new Marketplace(t, p, s, tr, address(0));
    }

    // ------------------------------------------------------------------ subscribe

    function test_subscribe_splitsThroughABroker() public {
        ProductId p = _stream();
        Balances memory before = _balances(consumer, broker, p);
        uint256 paid = 2 ether * 3 * 2;
        (uint256 members, uint256 op, uint256 brk, uint256 fee) = _expect(paid);
        uint64 endsAt = uint64(block.timestamp) + 2 * MONTH;

        vm.expectEmit(address(market));
        emit IMarketplace.OrderPlaced(1, p, consumer, broker, 3, paid, endsAt, USE_INSURANCE);
        vm.expectEmit(address(market));
        emit IMarketplace.PaymentSplit(1, members, op, brk, fee);
        vm.prank(consumer);
        uint256 orderId = market.subscribe(p, 3, 2, broker, USE_INSURANCE, V1, NO_MAX);

        assertEq(orderId, 1);
        Balances memory after_ = _balances(consumer, broker, p);
        assertEq(before.buyer - after_.buyer, paid, "buyer paid");
        assertEq(after_.treasury - before.treasury, fee, "treasury fee");
        assertEq(after_.brokerEarnings - before.brokerEarnings, brk, "broker earnings");
        assertEq(after_.operatorEarnings - before.operatorEarnings, op, "operator earnings");
        assertEq(after_.pool - before.pool, members, "member pool");
        assertEq(after_.market - before.market, members + op + brk, "market holds the rest");

        OrderView memory o = _order(orderId);
        assertEq(o.productId, p);
        assertEq(o.buyer, consumer);
        assertEq(o.broker, broker);
        assertEq(o.quantity, 3);
        assertEq(o.paid, paid);
        assertEq(o.startsAt, block.timestamp);
        assertEq(o.endsAt, endsAt);
        assertEq(o.use, USE_INSURANCE);
        assertTrue(market.inForce(orderId));
        assertEq(market.orderCount(), 1);
    }

    function test_subscribe_brokerShareToTreasuryWithoutBroker() public {
        ProductId p = _stream();
        Balances memory before = _balances(consumer, address(0), p);
        uint256 paid = 2 ether;
        (uint256 members, uint256 op, uint256 brk, uint256 fee) = _expect(paid);
        vm.prank(consumer);
        market.subscribe(p, 1, 1, address(0), USE_RESEARCH, V1, NO_MAX);
        Balances memory after_ = _balances(consumer, address(0), p);
        assertEq(after_.treasury - before.treasury, fee + brk);
        assertEq(after_.operatorEarnings - before.operatorEarnings, op);
        assertEq(after_.pool - before.pool, members);
        assertEq(before.buyer - after_.buyer, paid);
    }

    function test_subscribe_brokerShareToTreasuryForSteward() public {
        ProductId p = _stream();
        Balances memory before = _balances(consumer, steward, p);
        uint256 paid = 2 ether * 5;
        (uint256 members, uint256 op, uint256 brk, uint256 fee) = _expect(paid);
        vm.expectEmit(address(market));
        emit IMarketplace.PaymentSplit(1, members, op, 0, fee + brk);
        vm.prank(consumer);
        market.subscribe(p, 5, 1, steward, USE_INSURANCE, V1, NO_MAX);
        Balances memory after_ = _balances(consumer, steward, p);
        assertEq(after_.treasury - before.treasury, fee + brk);
        assertEq(after_.brokerEarnings, 0);
        assertEq(after_.pool - before.pool, members);
    }

    function test_subscribe_aBrokerBuysForItself() public {
        ProductId p = _stream();
        vm.prank(broker);
        uint256 id = market.subscribe(p, 1, 1, address(0), USE_INSURANCE, V1, NO_MAX);
        (, address buyer,,,,,,) = market.order(id);
        assertEq(buyer, broker);
    }

    /// @notice A broker buying for itself names no broker: naming itself is refused on every
    ///         purchase path, a steward included (its share would only go to the Treasury).
    function test_purchase_revertsWhenBuyerIsItsOwnBroker() public {
        (ProductId s, ProductId a, ProductId d) = (_stream(), _api(), _dataset());
        address[2] memory selfBrokers = [broker, steward];
        for (uint256 i; i < selfBrokers.length; ++i) {
            address who = selfBrokers[i];
            _fund(who, 1_000 ether);
            bytes memory refusal = abi.encodeWithSelector(IMarketplace.BuyerIsBroker.selector, who);
            vm.expectRevert(refusal);
            vm.prank(who);
            market.subscribe(s, 1, 1, who, USE_INSURANCE, V1, NO_MAX);
            vm.expectRevert(refusal);
            vm.prank(who);
            market.buyCredits(a, 10, who, USE_INSURANCE, V1, NO_MAX);
            vm.expectRevert(refusal);
            vm.prank(who);
            market.purchaseDataset(d, bytes32(0), who, USE_INSURANCE, V1, NO_MAX);
        }
        assertEq(market.orderCount(), 0);
    }

    function testFuzz_purchase_buyerIsNeverItsBroker(address who) public {
        vm.assume(who != address(0));
        ProductId s = _stream();
        vm.expectRevert(abi.encodeWithSelector(IMarketplace.BuyerIsBroker.selector, who));
        vm.prank(who);
        market.subscribe(s, 1, 1, who, USE_INSURANCE, V1, NO_MAX);
    }

    function test_subscribe_bundle() public {
        ProductId bundle = _bundleOf(_stream(), _api(), _dataset());
        uint256 paid = 5 ether * 4 * 3;
        (uint256 members,,,) = _expect(paid);
        vm.prank(consumer);
        uint256 id = market.subscribe(bundle, 4, 3, broker, USE_RESEARCH, V1, NO_MAX);
        (,,, uint256 quantity, uint256 paidOf,, uint64 endsAt,) = market.order(id);
        assertEq(quantity, 4);
        assertEq(paidOf, paid);
        assertEq(endsAt, block.timestamp + 3 * MONTH);
        assertEq(_memberShares(bundle), members);
    }

    function test_subscribe_updatesUsage() public {
        ProductId p = _stream(); // TELEMETRY | LOCATION: tier 1
        vm.prank(consumer);
        market.subscribe(p, 7, 1, address(0), USE_INSURANCE, V1, NO_MAX);
        (uint256 units, uint8 tier) = market.usageOf(consumer);
        assertEq(units, 7);
        assertEq(tier, 1);
        _assertStakingUsage(consumer, 7, 1);
    }

    function test_subscribe_revertsWhenZeroQuantity() public {
        ProductId p = _stream();
        vm.startPrank(consumer);
        vm.expectRevert(IMarketplace.ZeroQuantity.selector);
        market.subscribe(p, 0, 1, address(0), USE_INSURANCE, V1, NO_MAX);
        vm.expectRevert(IMarketplace.ZeroQuantity.selector);
        market.subscribe(p, 1, 0, address(0), USE_INSURANCE, V1, NO_MAX);
        vm.stopPrank();
    }

    function test_subscribe_revertsWhenUnknownProduct() public {
        vm.expectRevert(abi.encodeWithSelector(IDataProducts.UnknownProduct.selector, 42));
        vm.prank(consumer);
        market.subscribe(ProductId.wrap(42), 1, 1, address(0), USE_INSURANCE, V1, NO_MAX);
    }

    function test_subscribe_revertsWhenWrongKind() public {
        ProductId a = _api();
        vm.expectRevert(
            abi.encodeWithSelector(IMarketplace.WrongProductKind.selector, a, uint8(IDataProducts.Kind.Api))
        );
        vm.prank(consumer);
        market.subscribe(a, 1, 1, address(0), USE_INSURANCE, V1, NO_MAX);
    }

    function test_subscribe_revertsWhenProductInactive() public {
        ProductId p = _stream();
        vm.prank(governor);
        products.setActive(p, false);
        vm.expectRevert(abi.encodeWithSelector(IMarketplace.ProductInactive.selector, p));
        vm.prank(consumer);
        market.subscribe(p, 1, 1, address(0), USE_INSURANCE, V1, NO_MAX);
    }

    function test_subscribe_revertsWhenBundleComponentInactive() public {
        (ProductId s, ProductId a, ProductId d) = (_stream(), _api(), _dataset());
        ProductId bundle = _bundleOf(s, a, d);
        vm.prank(operator);
        products.setActive(d, false);
        vm.expectRevert(abi.encodeWithSelector(IMarketplace.ComponentInactive.selector, bundle, d));
        vm.prank(consumer);
        market.subscribe(bundle, 1, 1, address(0), USE_INSURANCE, V1, NO_MAX);
    }

    function test_subscribe_revertsWhenOperatorInactive() public {
        ProductId p = _stream();
        _deactivate(operator, IStaking.Role.Operator);
        vm.expectRevert(abi.encodeWithSelector(IMarketplace.OperatorInactive.selector, p, operator));
        vm.prank(consumer);
        market.subscribe(p, 1, 1, address(0), USE_INSURANCE, V1, NO_MAX);
    }

    function test_subscribe_revertsWhenBrokerNotActive() public {
        ProductId p = _stream();
        vm.expectRevert(abi.encodeWithSelector(IMarketplace.BrokerNotActive.selector, stranger));
        vm.prank(consumer);
        market.subscribe(p, 1, 1, stranger, USE_INSURANCE, V1, NO_MAX);
        _deactivate(broker, IStaking.Role.Broker);
        vm.expectRevert(abi.encodeWithSelector(IMarketplace.BrokerNotActive.selector, broker));
        vm.prank(consumer);
        market.subscribe(p, 1, 1, broker, USE_INSURANCE, V1, NO_MAX);
    }

    function test_subscribe_revertsWhenUseNotPermitted() public {
        ProductId p = _stream(); // insurance | research
        uint8[3] memory bad = [uint8(2), 6, 255];
        for (uint256 i; i < bad.length; ++i) {
            vm.expectRevert(abi.encodeWithSelector(IMarketplace.UseNotPermitted.selector, p, bad[i], 3));
            vm.prank(consumer);
            market.subscribe(p, 1, 1, address(0), bad[i], V1, NO_MAX);
        }
    }

    function testFuzz_subscribe_acceptsExactlyThePermittedUses(uint8 use, uint8 permitted) public {
        permitted = uint8(bound(permitted, 1, 0x3f));
        IDataProducts.Terms memory t = _terms(IDataProducts.Kind.Stream, 1 ether);
        t.permittedUses = permitted;
        vm.prank(operator);
        ProductId p = products.createProduct(t);
        bool allowed = use < 8 && (uint256(permitted) >> use) & 1 == 1;
        if (!allowed) {
            vm.expectRevert(abi.encodeWithSelector(IMarketplace.UseNotPermitted.selector, p, use, permitted));
        }
        vm.prank(consumer);
        market.subscribe(p, 1, 1, address(0), use, V1, NO_MAX);
        assertEq(market.orderCount(), allowed ? 1 : 0);
    }

    function test_subscribe_revertsWhenBuyerNotActive() public {
        ProductId p = _stream();
        _fund(stranger, 100 ether);
        vm.expectRevert(abi.encodeWithSelector(IMarketplace.BuyerNotActive.selector, stranger));
        vm.prank(stranger);
        market.subscribe(p, 1, 1, address(0), USE_INSURANCE, V1, NO_MAX);
        // An operator is not a buyer.
        _fund(operator, 100 ether);
        vm.expectRevert(abi.encodeWithSelector(IMarketplace.BuyerNotActive.selector, operator));
        vm.prank(operator);
        market.subscribe(p, 1, 1, address(0), USE_INSURANCE, V1, NO_MAX);
    }

    function test_subscribe_revertsWhenNotFunded() public {
        ProductId p = _stream();
        _activate(carol, IStaking.Role.Consumer);
        vm.prank(carol);
        token.approve(address(market), type(uint256).max);
        vm.expectRevert(
            abi.encodeWithSelector(IERC20Errors.ERC20InsufficientBalance.selector, carol, 0, 2 ether * 1000 / 10_000)
        );
        vm.prank(carol);
        market.subscribe(p, 1, 1, address(0), USE_INSURANCE, V1, NO_MAX);
    }

    function test_subscribe_revertsWhenPaymentTooLarge() public {
        IDataProducts.Terms memory t = _terms(IDataProducts.Kind.Stream, type(uint128).max);
        vm.prank(operator);
        ProductId p = products.createProduct(t);
        uint256 paid = uint256(type(uint128).max) * 2;
        vm.expectRevert(abi.encodeWithSelector(IMarketplace.PaymentTooLarge.selector, paid));
        vm.prank(consumer);
        market.subscribe(p, 2, 1, address(0), USE_INSURANCE, V1, NO_MAX);
    }

    function test_subscribe_revertsWhenPaymentOverflows() public {
        IDataProducts.Terms memory t = _terms(IDataProducts.Kind.Stream, type(uint256).max / 2);
        vm.prank(operator);
        ProductId p = products.createProduct(t);
        vm.expectRevert(abi.encodeWithSelector(MarketMath.PaymentOverflow.selector, type(uint256).max / 2, 3));
        vm.prank(consumer);
        market.subscribe(p, 3, 1, address(0), USE_INSURANCE, V1, NO_MAX);
    }

    function test_subscribe_usesTheFeeTheTermsWereAgreedUnder() public {
        ProductId p = _stream();
        vm.prank(governor);
        products.setProtocolFeeBps(2000);
        uint256 before = token.balanceOf(address(treasury));
        vm.prank(consumer);
        market.subscribe(p, 1, 1, broker, USE_INSURANCE, V1, NO_MAX);
        assertEq(token.balanceOf(address(treasury)) - before, 2 ether * 500 / 10_000);
    }

    function test_subscribe_revertsWhenUsageOutgrowsStake() public {
        IDataProducts.Terms memory t = _terms(IDataProducts.Kind.Stream, 1); // tier 1: ×1.5
        vm.prank(operator);
        ProductId p = products.createProduct(t);
        // consumer stakes 1,000 + 300,000: enough for 100 × √units × 1.5 ≤ 300,000, i.e. 4,000,000 units.
        vm.prank(consumer);
        market.subscribe(p, 4_000_000, 1, address(0), USE_INSURANCE, V1, NO_MAX);
        assertTrue(staking.isActive(consumer, IStaking.Role.Consumer));
        vm.expectRevert(abi.encodeWithSelector(IMarketplace.BuyerNotActive.selector, consumer));
        vm.prank(consumer);
        market.subscribe(p, 100_000, 1, address(0), USE_INSURANCE, V1, NO_MAX);

        // Once the subscription ends and is expired, the same purchase goes through.
        vm.warp(block.timestamp + MONTH);
        market.expireOrder(1);
        vm.prank(consumer);
        market.subscribe(p, 100_000, 1, address(0), USE_INSURANCE, V1, NO_MAX);
        (uint256 units,) = staking.usageOf(consumer);
        assertEq(units, 100_000);
    }

    struct Bps {
        uint16 operator;
        uint16 broker;
        uint16 fee;
        uint16 members;
    }

    /// @dev For any price, quantity, shares and fee, the buyer pays price × quantity and every
    ///      wei of it lands with the Treasury, the operator, the broker or the member pool.
    function testFuzz_purchase_splitSumsToPaid(
        uint256 price,
        uint256 calls,
        uint16 operatorBps,
        uint16 brokerBps,
        uint16 feeBps,
        bool withBroker
    ) public {
        Bps memory bps;
        bps.fee = uint16(bound(feeBps, 0, products.MAX_PROTOCOL_FEE_BPS()));
        bps.operator = uint16(bound(operatorBps, 0, 10_000 - bps.fee));
        bps.broker = uint16(bound(brokerBps, 0, 10_000 - bps.fee - bps.operator));
        bps.members = 10_000 - bps.operator - bps.broker - bps.fee;
        calls = bound(calls, 1, 1_000_000);
        price = bound(price, 1, FUNDS / calls);
        ProductId a = _apiWith(price, bps);

        address via = withBroker ? broker : address(0);
        Balances memory before = _balances(consumer, broker, a);
        vm.prank(consumer);
        market.buyCredits(a, calls, via, USE_INSURANCE, V1, NO_MAX);
        Balances memory after_ = _balances(consumer, broker, a);
        _checkSplit(before, after_, price * calls, bps, withBroker);
    }

    function _apiWith(uint256 price, Bps memory bps) internal returns (ProductId) {
        vm.prank(governor);
        products.setProtocolFeeBps(bps.fee);
        IDataProducts.Terms memory t = _terms(IDataProducts.Kind.Api, price);
        (t.operatorBps, t.brokerBps, t.membersBps) = (bps.operator, bps.broker, bps.members);
        vm.prank(operator);
        return products.createProduct(t);
    }

    function _checkSplit(Balances memory before, Balances memory after_, uint256 price, Bps memory bps, bool withBroker)
        internal
        pure
    {
        uint256 paid = before.buyer - after_.buyer;
        assertEq(paid, price, "buyer paid price x quantity");
        uint256 toTreasury = after_.treasury - before.treasury;
        uint256 toOperator = after_.operatorEarnings - before.operatorEarnings;
        uint256 toBroker = after_.brokerEarnings - before.brokerEarnings;
        uint256 toPool = after_.pool - before.pool;
        assertEq(toTreasury + toOperator + toBroker + toPool, paid, "split != paid");
        assertEq(after_.market - before.market, toOperator + toBroker + toPool, "market keeps the rest");
        assertEq(toOperator, paid * bps.operator / 10_000, "operator share");
        uint256 brokerShare = paid * bps.broker / 10_000;
        assertEq(toBroker, withBroker ? brokerShare : 0, "broker share");
        assertEq(toTreasury, paid * bps.fee / 10_000 + (withBroker ? 0 : brokerShare), "treasury share");
        assertGe(toPool, paid * bps.members / 10_000, "members lost to rounding");
    }

    // ------------------------------------------------------------------ version-bound purchases

    function test_subscribeAtVersion_buysTheQuotedTerms() public {
        ProductId p = _stream();
        uint64 quoted = products.saleTerms(p).version;
        vm.prank(consumer);
        uint256 id = market.subscribe(p, 2, 1, broker, USE_INSURANCE, quoted, NO_MAX);
        assertEq(_order(id).paid, 4 ether);
    }

    function test_subscribeAtVersion_revertsWhenTermsMoved() public {
        ProductId p = _stream();
        uint64 quoted = products.saleTerms(p).version;
        IDataProducts.Terms memory gouge = _terms(IDataProducts.Kind.Stream, 1000 ether);
        (gouge.membersBps, gouge.operatorBps) = (0, 9000);
        vm.prank(operator);
        products.updateTerms(p, gouge);
        uint256 before = token.balanceOf(consumer);
        vm.expectRevert(abi.encodeWithSelector(IMarketplace.TermsVersionMoved.selector, p, quoted, quoted + 1));
        vm.prank(consumer);
        market.subscribe(p, 2, 1, broker, USE_INSURANCE, quoted, NO_MAX);
        assertEq(token.balanceOf(consumer), before);
    }

    function test_buyCreditsAtVersion_revertsWhenTermsMoved() public {
        ProductId a = _api();
        vm.prank(consumer);
        market.buyCredits(a, 10, broker, USE_INSURANCE, 1, NO_MAX);
        vm.prank(operator);
        products.updateTerms(a, _terms(IDataProducts.Kind.Api, 1 ether));
        vm.expectRevert(abi.encodeWithSelector(IMarketplace.TermsVersionMoved.selector, a, 1, 2));
        vm.prank(consumer);
        market.buyCredits(a, 10, broker, USE_INSURANCE, 1, NO_MAX);
        vm.prank(consumer);
        market.buyCredits(a, 10, broker, USE_INSURANCE, 2, NO_MAX);
        assertEq(_order(2).paid, 10 ether);
    }

    function test_purchaseDatasetAtVersion_revertsWhenTermsMoved() public {
        ProductId d = _dataset();
        vm.prank(operator);
        products.updateTerms(d, _terms(IDataProducts.Kind.Dataset, 900 ether));
        vm.expectRevert(abi.encodeWithSelector(IMarketplace.TermsVersionMoved.selector, d, 1, 2));
        vm.prank(consumer);
        market.purchaseDataset(d, bytes32(0), broker, USE_INSURANCE, 1, NO_MAX);
        vm.prank(consumer);
        uint256 id = market.purchaseDataset(d, bytes32(0), broker, USE_INSURANCE, 2, NO_MAX);
        assertEq(_order(id).paid, 900 ether);
    }

    /// @notice Every purchase names the most it pays: a cent above is refused on each path, the
    ///         exact price passes.
    function test_purchase_revertsWhenPaymentAboveMax() public {
        (ProductId s, ProductId a, ProductId d) = (_stream(), _api(), _dataset());
        uint256 subPrice = 2 ether * 3 * 2;
        uint256 creditPrice = 0.01 ether * 500;
        uint256 datasetPrice = 500 ether;
        vm.startPrank(consumer);
        vm.expectRevert(abi.encodeWithSelector(IMarketplace.PaymentAboveMax.selector, subPrice, subPrice - 1));
        market.subscribe(s, 3, 2, address(0), USE_INSURANCE, V1, subPrice - 1);
        vm.expectRevert(abi.encodeWithSelector(IMarketplace.PaymentAboveMax.selector, creditPrice, creditPrice - 1));
        market.buyCredits(a, 500, address(0), USE_INSURANCE, V1, creditPrice - 1);
        vm.expectRevert(abi.encodeWithSelector(IMarketplace.PaymentAboveMax.selector, datasetPrice, 0));
        market.purchaseDataset(d, bytes32(0), address(0), USE_INSURANCE, V1, 0);
        uint256 before = token.balanceOf(consumer);
        market.subscribe(s, 3, 2, address(0), USE_INSURANCE, V1, subPrice);
        market.buyCredits(a, 500, address(0), USE_INSURANCE, V1, creditPrice);
        market.purchaseDataset(d, bytes32(0), address(0), USE_INSURANCE, V1, datasetPrice);
        vm.stopPrank();
        assertEq(before - token.balanceOf(consumer), subPrice + creditPrice + datasetPrice);
        (,,,, uint64 version) = market.orderVesting(3);
        assertEq(version, 1, "the order records the terms version it was bought under");
    }

    function test_purchaseAtVersion_revertsWhenQuotingVersionZero() public {
        ProductId p = _stream();
        vm.expectRevert(abi.encodeWithSelector(IMarketplace.TermsVersionMoved.selector, p, 0, 1));
        vm.prank(consumer);
        market.subscribe(p, 1, 1, broker, USE_INSURANCE, 0, NO_MAX);
    }

    // ------------------------------------------------------------------ buyCredits

    function test_buyCredits_splits() public {
        ProductId a = _api();
        Balances memory before = _balances(consumer, broker, a);
        uint256 paid = 0.01 ether * 12_345;
        (uint256 members, uint256 op, uint256 brk, uint256 fee) = _expect(paid);
        vm.expectEmit(address(market));
        uint64 endsAt_ = uint64(block.timestamp) + CREDIT_VALIDITY;
        emit IMarketplace.OrderPlaced(1, a, consumer, broker, 12_345, paid, endsAt_, USE_RESEARCH);
        vm.prank(consumer);
        uint256 id = market.buyCredits(a, 12_345, broker, USE_RESEARCH, V1, NO_MAX);
        Balances memory after_ = _balances(consumer, broker, a);
        assertEq(before.buyer - after_.buyer, paid);
        assertEq(after_.treasury - before.treasury, fee);
        assertEq(after_.brokerEarnings - before.brokerEarnings, brk);
        assertEq(after_.operatorEarnings - before.operatorEarnings, op);
        assertEq(after_.pool - before.pool, members);
        (,,, uint256 quantity,,, uint64 endsAt,) = market.order(id);
        assertEq(quantity, 12_345);
        assertEq(endsAt, endsAt_, "credits expire after the terms' validity");
        assertTrue(market.inForce(id));
        (uint256 units, uint8 tier) = market.usageOf(consumer);
        assertEq(units, 13, "ceil(12,345 / 1,000) units in the lockup");
        _assertStakingUsage(consumer, 13, tier);
    }

    function test_buyCredits_revertsWhenZeroCalls() public {
        ProductId a = _api();
        vm.expectRevert(IMarketplace.ZeroQuantity.selector);
        vm.prank(consumer);
        market.buyCredits(a, 0, address(0), USE_INSURANCE, V1, NO_MAX);
    }

    function test_buyCredits_revertsWhenWrongKind() public {
        ProductId s = _stream();
        vm.expectRevert(
            abi.encodeWithSelector(IMarketplace.WrongProductKind.selector, s, uint8(IDataProducts.Kind.Stream))
        );
        vm.prank(consumer);
        market.buyCredits(s, 1, address(0), USE_INSURANCE, V1, NO_MAX);
    }

    function test_buyCredits_revertsWhenOverflowing() public {
        ProductId a = _api();
        vm.expectRevert(abi.encodeWithSelector(MarketMath.PaymentOverflow.selector, 0.01 ether, type(uint256).max));
        vm.prank(consumer);
        market.buyCredits(a, type(uint256).max, address(0), USE_INSURANCE, V1, NO_MAX);
    }

    function test_buyCredits_revertsWhenProductInactive() public {
        ProductId a = _api();
        vm.prank(operator);
        products.setActive(a, false);
        vm.expectRevert(abi.encodeWithSelector(IMarketplace.ProductInactive.selector, a));
        vm.prank(consumer);
        market.buyCredits(a, 1, address(0), USE_INSURANCE, V1, NO_MAX);
    }

    // ------------------------------------------------------------------ purchaseDataset

    function test_purchaseDataset_splitsAndRecordsSpec() public {
        ProductId d = _dataset();
        bytes32 spec = keccak256("soh by region");
        Balances memory before = _balances(consumer, steward, d);
        (uint256 members, uint256 op, uint256 brk, uint256 fee) = _expect(500 ether);
        vm.expectEmit(address(market));
        emit IMarketplace.DatasetOrdered(1, spec);
        vm.prank(consumer);
        uint256 id = market.purchaseDataset(d, spec, steward, USE_RESEARCH, V1, NO_MAX);
        Balances memory after_ = _balances(consumer, steward, d);
        assertEq(before.buyer - after_.buyer, 500 ether);
        assertEq(after_.treasury - before.treasury, fee + brk);
        assertEq(after_.operatorEarnings - before.operatorEarnings, op);
        assertEq(after_.pool - before.pool, members);
        assertEq(market.datasetSpec(id), spec);
        (,,, uint256 quantity, uint256 paid,,,) = market.order(id);
        assertEq(quantity, 1);
        assertEq(paid, 500 ether);
    }

    function test_purchaseDataset_revertsWhenWrongKind() public {
        ProductId a = _api();
        vm.expectRevert(
            abi.encodeWithSelector(IMarketplace.WrongProductKind.selector, a, uint8(IDataProducts.Kind.Api))
        );
        vm.prank(consumer);
        market.purchaseDataset(a, bytes32(0), address(0), USE_INSURANCE, V1, NO_MAX);
    }

    function test_purchaseDataset_revertsWhenBuyerNotActive() public {
        ProductId d = _dataset();
        _deactivate(consumer, IStaking.Role.Consumer);
        vm.expectRevert(abi.encodeWithSelector(IMarketplace.BuyerNotActive.selector, consumer));
        vm.prank(consumer);
        market.purchaseDataset(d, bytes32(0), address(0), USE_INSURANCE, V1, NO_MAX);
    }

    // ------------------------------------------------------------------ order and expiry

    function test_order_revertsWhenUnknown() public {
        vm.expectRevert(abi.encodeWithSelector(IMarketplace.UnknownOrder.selector, 1));
        market.order(1);
    }

    function test_expireOrder_removesUnitsAndSyncsUsage() public {
        ProductId s = _stream(); // tier 1
        IDataProducts.Terms memory t = _terms(IDataProducts.Kind.Stream, 1 ether);
        t.requiredPermissions = Permissions.TELEMETRY | Permissions.LIVE; // tier 2
        vm.prank(operator);
        ProductId live = products.createProduct(t);

        vm.startPrank(consumer);
        uint256 o1 = market.subscribe(s, 10, 1, address(0), USE_INSURANCE, V1, NO_MAX);
        market.subscribe(s, 5, 3, address(0), USE_INSURANCE, V1, NO_MAX);
        uint256 o3 = market.subscribe(live, 2, 1, address(0), USE_INSURANCE, V1, NO_MAX);
        vm.stopPrank();
        (uint256 units, uint8 tier) = market.usageOf(consumer);
        assertEq(units, 17);
        assertEq(tier, 2);

        vm.expectRevert(abi.encodeWithSelector(IMarketplace.OrderNotEnded.selector, o1, block.timestamp + MONTH));
        market.expireOrder(o1);

        vm.warp(block.timestamp + MONTH);
        vm.expectEmit(address(market));
        emit IMarketplace.OrderExpired(o3, consumer, 2);
        vm.prank(stranger);
        market.expireOrder(o3);
        (units, tier) = market.usageOf(consumer);
        assertEq(units, 15);
        assertEq(tier, 1);
        _assertStakingUsage(consumer, 15, 1);
        assertFalse(market.inForce(o3));

        market.expireOrder(o1);
        (units, tier) = market.usageOf(consumer);
        assertEq(units, 5);
        _assertStakingUsage(consumer, 5, 1);

        vm.expectRevert(abi.encodeWithSelector(IMarketplace.NotInForce.selector, o1));
        market.expireOrder(o1);
    }

    function test_expireOrder_revertsWhenUnknown() public {
        vm.expectRevert(abi.encodeWithSelector(IMarketplace.UnknownOrder.selector, 3));
        market.expireOrder(3);
    }

    /// @notice Credits and datasets count in the lockup until they end, then expire like a
    ///         subscription: ceil(calls / 1,000) units for credits, one for a dataset.
    function test_expireOrder_creditsAndDatasetsCountUntilTheyEnd() public {
        ProductId a = _api();
        ProductId d = _dataset();
        vm.startPrank(consumer);
        uint256 o1 = market.buyCredits(a, 1, address(0), USE_INSURANCE, V1, NO_MAX);
        uint256 o2 = market.buyCredits(a, 2_000, address(0), USE_INSURANCE, V1, NO_MAX);
        uint256 o3 = market.buyCredits(a, 2_001, address(0), USE_INSURANCE, V1, NO_MAX);
        uint256 o4 = market.purchaseDataset(d, bytes32(0), address(0), USE_INSURANCE, V1, NO_MAX);
        vm.stopPrank();
        (uint256 units,) = market.usageOf(consumer);
        assertEq(units, 1 + 2 + 3 + 1);
        _assertStakingUsage(consumer, 7, 1);
        (,,,,,, uint64 creditsEnd,) = market.order(o1);
        (,,,,,, uint64 datasetEnd,) = market.order(o4);
        assertEq(creditsEnd, block.timestamp + CREDIT_VALIDITY);
        assertEq(datasetEnd, block.timestamp + market.DATASET_TERM());

        vm.expectRevert(abi.encodeWithSelector(IMarketplace.OrderNotEnded.selector, o4, datasetEnd));
        market.expireOrder(o4);
        vm.warp(datasetEnd);
        vm.expectEmit(address(market));
        emit IMarketplace.OrderExpired(o4, consumer, 1);
        market.expireOrder(o4);
        vm.expectRevert(abi.encodeWithSelector(IMarketplace.OrderNotEnded.selector, o3, creditsEnd));
        market.expireOrder(o3);
        vm.warp(creditsEnd);
        vm.expectEmit(address(market));
        emit IMarketplace.OrderExpired(o3, consumer, 3);
        market.expireOrder(o3);
        market.expireOrder(o2);
        market.expireOrder(o1);
        (units,) = market.usageOf(consumer);
        assertEq(units, 0);
        _assertStakingUsage(consumer, 0, 0);
        vm.expectRevert(abi.encodeWithSelector(IMarketplace.NotInForce.selector, o1));
        market.expireOrder(o1);
    }

    // ------------------------------------------------------------------ earnings

    function test_withdrawEarnings_paysOperatorAndBroker() public {
        ProductId p = _stream();
        vm.prank(consumer);
        market.subscribe(p, 10, 1, broker, USE_INSURANCE, V1, NO_MAX);
        (, uint256 op, uint256 brk,) = _expect(20 ether);

        uint256 before = token.balanceOf(operator);
        vm.expectEmit(address(market));
        emit IMarketplace.EarningsWithdrawn(operator, op);
        vm.prank(operator);
        market.withdrawEarnings();
        assertEq(token.balanceOf(operator) - before, op);
        assertEq(market.claimable(operator), 0);

        before = token.balanceOf(broker);
        vm.prank(broker);
        market.withdrawEarnings();
        assertEq(token.balanceOf(broker) - before, brk);
    }

    function test_withdrawEarnings_revertsWhenNothing() public {
        vm.expectRevert(abi.encodeWithSelector(IMarketplace.NothingToWithdraw.selector, operator));
        vm.prank(operator);
        market.withdrawEarnings();
    }

    // ------------------------------------------------------------------ stewards

    function test_setSteward_setsAndClears() public {
        vm.expectEmit(address(market));
        emit IMarketplace.StewardSet(broker, true);
        vm.prank(governor);
        market.setSteward(broker, true);
        assertTrue(market.isSteward(broker));
        vm.prank(governor);
        market.setSteward(broker, false);
        assertFalse(market.isSteward(broker));
    }

    function test_setSteward_revertsWhenZero() public {
        vm.expectRevert(IMarketplace.ZeroAddress.selector);
        vm.prank(governor);
        market.setSteward(address(0), true);
    }

    function test_setSteward_revertsWhenNotGovernor() public {
        vm.expectRevert(
            abi.encodeWithSelector(
                IAccessControl.AccessControlUnauthorizedAccount.selector, broker, market.GOVERNOR_ROLE()
            )
        );
        vm.prank(broker);
        market.setSteward(broker, true);
    }

    // ------------------------------------------------------------------ gas shape

    /// @dev A purchase touches no per-member state: the same gas with 3 members as with 300.
    function test_purchaseGas_independentOfMemberCount() public {
        ProductId few = _stream();
        ProductId many = _stream();
        for (uint256 i; i < 3; ++i) {
            _join(few, alice);
        }
        for (uint256 i; i < 300; ++i) {
            _join(many, alice);
        }
        assertEq(products.memberCount(many), 300);
        ProductId warm = _stream();
        vm.prank(consumer);
        market.subscribe(warm, 1, 1, broker, USE_INSURANCE, V1, NO_MAX); // warm the shared slots alike

        vm.prank(consumer);
        uint256 g0 = gasleft();
        market.subscribe(few, 1, 1, broker, USE_INSURANCE, V1, NO_MAX);
        uint256 gasFew = g0 - gasleft();
        vm.prank(consumer);
        g0 = gasleft();
        market.subscribe(many, 1, 1, broker, USE_INSURANCE, V1, NO_MAX);
        uint256 gasMany = g0 - gasleft();
        assertEq(gasFew, gasMany);
    }

    // ------------------------------------------------------------------ helpers

    struct OrderView {
        ProductId productId;
        address buyer;
        address broker;
        uint256 quantity;
        uint256 paid;
        uint64 startsAt;
        uint64 endsAt;
        uint8 use;
    }

    function _order(uint256 id) internal view returns (OrderView memory o) {
        (o.productId, o.buyer, o.broker, o.quantity, o.paid, o.startsAt, o.endsAt, o.use) = market.order(id);
    }

    function _assertStakingUsage(address account, uint256 units, uint8 tier) internal view {
        (uint256 stakedUnits, uint8 stakedTier) = staking.usageOf(account);
        assertEq(stakedUnits, units, "staking units");
        assertEq(stakedTier, tier, "staking tier");
    }
}
