// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {MarketBase} from "./MarketBase.sol";
import {MarketHandler} from "./MarketHandler.sol";
import {IDataProducts} from "../../../contracts/interfaces/IDataProducts.sol";
import {ProductId} from "../../../contracts/types/ProductId.sol";

/// @notice Invariants of the market's money flow (SPEC15 §6) over random sequences of
///         purchases of every kind, time, dataset deliveries, refunds, expiries, cumulative
///         roots proposed, revoked and accepted, claims, earnings withdrawals, terms bumps,
///         deactivations, operator slashes and fee changes, on the real token, treasury and
///         staking. Each run must have run every action a minimum number of times.
contract MarketInvariantTest is MarketBase {
    MarketHandler internal handler;

    function setUp() public override {
        super.setUp();
        address[] memory buyers = new address[](2);
        (buyers[0], buyers[1]) = (consumer, broker);
        address[] memory brokerChoices = new address[](3);
        (brokerChoices[0], brokerChoices[1], brokerChoices[2]) = (address(0), broker, steward);
        address[] memory earners = new address[](3);
        (earners[0], earners[1], earners[2]) = (operator, operator2, broker);
        address[] memory operators = new address[](2);
        (operators[0], operators[1]) = (operator, operator2);
        address[] memory members = new address[](6);
        (members[0], members[1], members[2]) = (alice, bob, carol);
        (members[3], members[4], members[5]) = (makeAddr("dave"), makeAddr("erin"), makeAddr("frank"));

        handler = new MarketHandler(
            MarketHandler.Stack(token, address(treasury), staking, products, market, governor, settler),
            buyers,
            brokerChoices,
            earners,
            operators,
            members
        );
        token.transfer(address(handler), 100_000_000 ether);

        (ProductId s, ProductId a, ProductId d) = (_stream(), _api(), _dataset());
        ProductId b = _bundleOf(s, a, d);
        ProductId s2 = _create(operator2, IDataProducts.Kind.Stream, 1 ether);
        ProductId[5] memory ids = [s, a, d, b, s2];
        for (uint256 i; i < ids.length; ++i) {
            handler.addProduct(ids[i]);
        }
        for (uint256 i; i < buyers.length; ++i) {
            vm.prank(buyers[i]);
            token.approve(address(market), type(uint256).max);
        }

        bytes4[] memory selectors = new bytes4[](18);
        selectors[0] = MarketHandler.subscribe.selector;
        selectors[1] = MarketHandler.buyCredits.selector;
        selectors[2] = MarketHandler.purchaseDataset.selector;
        selectors[3] = MarketHandler.warp.selector;
        selectors[4] = MarketHandler.deliverDataset.selector;
        selectors[5] = MarketHandler.refund.selector;
        selectors[6] = MarketHandler.expireOrder.selector;
        selectors[7] = MarketHandler.proposeRoot.selector;
        selectors[8] = MarketHandler.acceptRoot.selector;
        selectors[9] = MarketHandler.claim.selector;
        selectors[10] = MarketHandler.revokePendingRoot.selector;
        selectors[11] = MarketHandler.withdrawEarnings.selector;
        selectors[12] = MarketHandler.updateTerms.selector;
        selectors[13] = MarketHandler.setActive.selector;
        selectors[14] = MarketHandler.slashOperator.selector;
        selectors[15] = MarketHandler.setProtocolFee.selector;
        selectors[16] = MarketHandler.checkpoint.selector;
        selectors[17] = MarketHandler.claim.selector; // claims weigh double: they need an accepted root
        targetContract(address(handler));
        targetSelector(FuzzSelector(address(handler), selectors));
    }

    /// @notice Money is conserved to the wei (SPEC15 §6), claims stay within what the roots
    ///         took and the roots within what vested, and refunds never exceed the unvested
    ///         remainder nor happen twice:
    ///         paid in == treasury + earnings (withdrawn or not) + Σ memberShare;
    ///         balance == earnings owed + Σ memberShare − Σ refunds − Σ claimed;
    ///         Σ claimed ≤ totalTaken ≤ Σ vestedMemberAmount ≤ Σ memberShare − Σ refunds.
    function invariant_money() public view {
        uint256 earnings;
        address[] memory earners = handler.earnerList();
        for (uint256 i; i < earners.length; ++i) {
            earnings += market.claimable(earners[i]);
        }
        uint256 shares = handler.ghostMemberShares();
        uint256 refunded = handler.ghostRefunded();
        uint256 claimed = handler.ghostClaimed();
        assertEq(
            handler.ghostPaidIn(),
            handler.ghostToTreasury() + earnings + handler.ghostWithdrawn() + shares,
            "paid in != treasury + earnings + member shares"
        );
        assertEq(
            token.balanceOf(address(market)),
            earnings + shares - refunded - claimed,
            "balance != earnings owed + member shares - refunds - claims"
        );

        uint256 vested;
        ProductId[] memory ids = handler.productList();
        for (uint256 i; i < ids.length; ++i) {
            uint256 v = market.vestedMemberAmount(ids[i]);
            uint256 taken = market.takenMemberAmount(ids[i]);
            assertEq(taken, handler.ghostTaken(ids[i]), "a product's taken differs from the accepted roots'");
            assertLe(taken, v, "a root took more than the product vested");
            vested += v;
        }
        uint256 totalTaken = market.totalTaken();
        assertEq(totalTaken, handler.ghostTotalTaken(), "totalTaken differs from the accepted roots'");
        assertEq(market.totalClaimed(), claimed, "totalClaimed differs from what members received");
        assertLe(claimed, totalTaken, "claims exceed what the roots took");
        assertLe(totalTaken, vested, "the roots took more than vested");
        assertLe(vested, shares - refunded, "vested more than the member shares left after refunds");

        address[] memory members = handler.memberList();
        for (uint256 i; i < members.length; ++i) {
            assertEq(market.claimed(members[i]), handler.ghostClaimedOf(members[i]), "claimed(account) drifted");
            assertLe(handler.ghostClaimedOf(members[i]), handler.ghostCumulative(members[i]), "claimed above leaf");
        }

        assertFalse(handler.ghostRefundAboveUnvested(), "a refund paid more than the unvested remainder");
        assertFalse(handler.ghostRefundedTwice(), "an order was refunded twice");
        assertFalse(handler.ghostOrderMismatch(), handler.lastMismatch());
    }

    /// @notice Each product's vested amount is exactly the model's Σ over its orders of the
    ///         linear release (floored once), never decreases, and once every order ended it is
    ///         every member share less the refunds: released ≤ paid, monotone, complete at term end.
    function invariant_vesting() public view {
        assertFalse(handler.ghostVestedDecreased(), "a product's vested amount decreased");
        ProductId[] memory ids = handler.productList();
        for (uint256 i; i < ids.length; ++i) {
            uint256 vested = market.vestedMemberAmount(ids[i]);
            assertEq(vested, handler.modelVested(ids[i]), "vested differs from the sum of the orders' releases");
            assertGe(vested, handler.lastVestedSeen(ids[i]), "vested went back");
            if (handler.allVested(ids[i])) {
                assertEq(vested, handler.ghostShareLeft(ids[i]), "every order ended but not all vested");
            }
        }
    }

    /// @notice Every call ended as the handler's model predicted, and every buyer's usage on
    ///         Staking is the model's count of its orders in force.
    function invariant_outcomesAndUsage() public view {
        assertEq(handler.unexpected(), 0, handler.lastUnexpected());
        address[] memory buyers = handler.buyerList();
        for (uint256 i; i < buyers.length; ++i) {
            (uint256 units, uint8 tier) = market.usageOf(buyers[i]);
            (uint256 stakedUnits, uint8 stakedTier) = staking.usageOf(buyers[i]);
            assertEq(units, handler.ghostUnits(buyers[i]), "units differ from the orders in force");
            assertEq(units, stakedUnits, "units not synced");
            if (units != 0) assertEq(tier, stakedTier, "tier not synced");
        }
    }

    /// @notice At the end of every run, each action ran (succeeded) at least the handler's
    ///         minimum: a handler whose calls are all refused cannot pass. (Both profiles'
    ///         depths, 64 and 200, require at least one run of each; only the short sequences
    ///         forge replays while shrinking a failure require none.)
    function afterInvariant() public view {
        assertEq(handler.guidedMisses(), 0, string(abi.encodePacked("a guided turn failed: ", handler.lastGuidedMiss())));
        uint256 minimum = handler.minimumRuns();
        uint256 n = handler.actionCount();
        for (uint256 i; i < n; ++i) {
            bytes32 action = handler.ACTIONS(i);
            assertGe(handler.done(action), minimum, string(abi.encodePacked("too few runs of ", action)));
        }
    }
}
