// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {MarketBase} from "./MarketBase.sol";
import {MarketHandler} from "./MarketHandler.sol";
import {IDataProducts} from "../../../contracts/interfaces/IDataProducts.sol";
import {ProductId} from "../../../contracts/types/ProductId.sol";

/// @notice Invariants of the market over random sequences of purchases (all three kinds and
///         bundles), settles, claims, withdrawals, term and fee changes, joins, leaves, vehicle
///         transfers, slashes and time, on the real token, treasury and vehicles.
contract MarketInvariantTest is MarketBase {
    MarketHandler internal handler;
    address internal dave = makeAddr("dave");

    function setUp() public override {
        super.setUp();
        address[] memory buyers = new address[](2);
        (buyers[0], buyers[1]) = (consumer, broker);
        address[] memory brokerChoices = new address[](3);
        (brokerChoices[0], brokerChoices[1], brokerChoices[2]) = (address(0), broker, steward);
        address[] memory earners = new address[](4);
        (earners[0], earners[1], earners[2], earners[3]) = (operator, operator2, broker, steward);
        address[] memory owners = new address[](4);
        (owners[0], owners[1], owners[2], owners[3]) = (alice, bob, carol, dave);
        address[] memory staked = new address[](4);
        (staked[0], staked[1], staked[2], staked[3]) = (operator, operator2, broker, consumer);

        handler = new MarketHandler(
            MarketHandler.Stack(token, address(treasury), vehicles, staking, products, market, governor, settler),
            buyers,
            brokerChoices,
            earners,
            owners,
            staked
        );
        token.transfer(address(handler), 100_000_000 ether);

        (ProductId s, ProductId a, ProductId d) = (_stream(), _api(), _dataset());
        ProductId b = _bundleOf(s, a, d);
        ProductId s2 = _create(operator2, IDataProducts.Kind.Stream, 1 ether);
        ProductId[5] memory ids = [s, a, d, b, s2];
        for (uint256 i; i < ids.length; ++i) {
            handler.addProduct(ids[i]);
        }
        for (uint256 i; i < 8; ++i) {
            handler.addVehicle(_mintVehicle(owners[i % 4]));
        }

        bytes4[] memory selectors = new bytes4[](14);
        selectors[0] = MarketHandler.subscribe.selector;
        selectors[1] = MarketHandler.buyCredits.selector;
        selectors[2] = MarketHandler.purchaseDataset.selector;
        selectors[3] = MarketHandler.expireOrder.selector;
        selectors[4] = MarketHandler.withdrawEarnings.selector;
        selectors[5] = MarketHandler.updateTerms.selector;
        selectors[6] = MarketHandler.setProtocolFee.selector;
        selectors[7] = MarketHandler.setActive.selector;
        selectors[8] = MarketHandler.join.selector;
        selectors[9] = MarketHandler.leave.selector;
        selectors[10] = MarketHandler.transferVehicle.selector;
        selectors[11] = MarketHandler.slash.selector;
        selectors[12] = MarketHandler.restake.selector;
        selectors[13] = MarketHandler.warp.selector;
        targetContract(address(handler));
        targetSelector(FuzzSelector(address(handler), selectors));
    }

    /// @dev What the market still owes: earnings and the member shares of every order (no
    ///      refund or claim runs in this handler yet).
    function _obligations() internal view returns (uint256 earnings, uint256 memberShares) {
        address[] memory earners = handler.earnerList();
        for (uint256 i; i < earners.length; ++i) {
            earnings += market.claimable(earners[i]);
        }
        ProductId[] memory ids = handler.productList();
        for (uint256 i; i < ids.length; ++i) {
            memberShares += _memberShares(ids[i]);
        }
    }

    /// @notice Paid in == to the Treasury + operator and broker earnings (withdrawn or not) +
    ///         member shares, to the wei.
    function invariant_conservation() public view {
        (uint256 earnings, uint256 memberShares) = _obligations();
        assertEq(
            handler.ghostPaidIn(),
            handler.ghostToTreasury() + earnings + handler.ghostWithdrawn() + memberShares,
            "paid in != treasury + earnings + member shares"
        );
        assertFalse(handler.ghostOrderMismatch(), "an order recorded another price than was paid");
    }

    /// @notice The market's balance covers every obligation (exactly: nobody donates here).
    function invariant_balanceCoversObligations() public view {
        (uint256 earnings, uint256 memberShares) = _obligations();
        assertEq(token.balanceOf(address(market)), earnings + memberShares, "balance != obligations");
    }

    /// @notice Membership is exactly the consents not voided by a transfer, a version bump or a leave.
    function invariant_noMembershipSurvivesTransferOrBump() public view {
        uint256 n = handler.pairCount();
        for (uint256 i; i < n; ++i) {
            (ProductId p, uint256 v) = handler.pairAt(i);
            assertEq(products.isMember(p, v), handler.live(p, v), "membership differs from consent history");
        }
    }

    /// @notice memberCount counts exactly the stored consents to the current version (a version
    ///         bump starts it from zero; a transfer leaves it until `leave`).
    function invariant_memberCountMatchesConsents() public view {
        ProductId[] memory ids = handler.productList();
        for (uint256 i; i < ids.length; ++i) {
            assertEq(products.memberCount(ids[i]), handler.expectedMemberCount(ids[i]), "memberCount drifted");
        }
    }

    /// @notice Every buyer's usage on Staking is what the market computes from its orders in
    ///         force, and that is the model's count of the buyer's subscriptions not yet expired.
    function invariant_usageSyncedToStaking() public view {
        address[] memory buyers = handler.buyerList();
        for (uint256 i; i < buyers.length; ++i) {
            (uint256 units, uint8 tier) = market.usageOf(buyers[i]);
            (uint256 stakedUnits, uint8 stakedTier) = staking.usageOf(buyers[i]);
            assertEq(units, handler.ghostUnits(buyers[i]), "units differ from the orders in force");
            assertEq(units, stakedUnits, "units not synced");
            if (units != 0) assertEq(tier, stakedTier, "tier not synced");
        }
    }

    /// @notice Every call ended as the handler's model predicted: no refusal for another reason
    ///         than the one due, no success where a refusal was due.
    function invariant_everyOutcomeAsModelled() public view {
        assertEq(handler.unexpected(), 0, handler.lastUnexpected());
    }
}
