// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {Test} from "../lib/Test.sol";
import {MarketMath} from "../../../contracts/libraries/MarketMath.sol";
import {Permissions} from "../../../contracts/libraries/Permissions.sol";

/// @dev External wrappers so reverts of the internal library can be expected.
contract MarketMathHarness {
    function total(uint256 price, uint256 quantity) external pure returns (uint256) {
        return MarketMath.total(price, quantity);
    }

    function split(uint256 paid, uint16 operatorBps, uint16 brokerBps, uint16 protocolBps)
        external
        pure
        returns (MarketMath.Shares memory)
    {
        return MarketMath.split(paid, operatorBps, brokerBps, protocolBps);
    }

    function tierOf(uint256 requiredPermissions) external pure returns (uint8) {
        return MarketMath.tierOf(requiredPermissions);
    }
}

contract MarketMathTest is Test {
    MarketMathHarness internal math;

    function setUp() public {
        math = new MarketMathHarness();
    }

    // ------------------------------------------------------------------ total

    function test_total_multiplies() public view {
        assertEq(math.total(3 ether, 7), 21 ether);
        assertEq(math.total(1, 1), 1);
    }

    function test_total_revertsWhenOverflowing() public {
        uint256 price = type(uint256).max / 2 + 1;
        vm.expectRevert(abi.encodeWithSelector(MarketMath.PaymentOverflow.selector, price, 2));
        math.total(price, 2);
    }

    function testFuzz_total_isExactOrRefused(uint256 price, uint256 quantity) public {
        bool fits = quantity == 0 || price <= type(uint256).max / quantity;
        if (!fits) {
            vm.expectRevert(abi.encodeWithSelector(MarketMath.PaymentOverflow.selector, price, quantity));
            math.total(price, quantity);
            return;
        }
        uint256 paid = math.total(price, quantity);
        if (quantity != 0) assertEq(paid / quantity, price);
        else assertEq(paid, 0);
    }

    // ------------------------------------------------------------------ split

    function test_split_exampleRoundsToMembers() public view {
        // 1,001 wei at 70% members / 20% operator / 5% broker / 5% fee.
        MarketMath.Shares memory s = math.split(1001, 2000, 500, 500);
        assertEq(s.operator, 200); // 200.2
        assertEq(s.broker, 50); // 50.05
        assertEq(s.protocol, 50); // 50.05
        assertEq(s.members, 701); // 700.7 + the 0.3 left over
    }

    function test_split_allToMembers() public view {
        MarketMath.Shares memory s = math.split(12345, 0, 0, 0);
        assertEq(s.members, 12345);
        assertEq(s.operator + s.broker + s.protocol, 0);
    }

    function test_split_nothingToMembers() public view {
        MarketMath.Shares memory s = math.split(10_000, 5000, 4500, 500);
        assertEq(s.members, 0);
        assertEq(s.operator, 5000);
        assertEq(s.broker, 4500);
        assertEq(s.protocol, 500);
    }

    /// @dev For any price, quantity and bps, the split sums to what was paid; each non-member
    ///      share is its bps rounded down, and the members lose nothing to rounding.
    function testFuzz_split_sumsToPaid(uint256 price, uint256 quantity, uint16 operatorBps, uint16 brokerBps, uint16 feeBps)
        public
        view
    {
        quantity = bound(quantity, 1, type(uint64).max);
        price = bound(price, 1, type(uint256).max / quantity);
        operatorBps = uint16(bound(operatorBps, 0, 10_000));
        brokerBps = uint16(bound(brokerBps, 0, 10_000 - operatorBps));
        feeBps = uint16(bound(feeBps, 0, 10_000 - operatorBps - brokerBps));
        uint256 membersBps = 10_000 - uint256(operatorBps) - brokerBps - feeBps;

        uint256 paid = math.total(price, quantity);
        MarketMath.Shares memory s = math.split(paid, operatorBps, brokerBps, feeBps);

        assertEq(s.members + s.operator + s.broker + s.protocol, paid, "split does not sum to the payment");
        assertEq(s.operator, _floorShare(paid, operatorBps), "operator share");
        assertEq(s.broker, _floorShare(paid, brokerBps), "broker share");
        assertEq(s.protocol, _floorShare(paid, feeBps), "protocol share");
        uint256 membersFloor = _floorShare(paid, membersBps);
        assertGe(s.members, membersFloor, "members lost to rounding");
        assertLe(s.members - membersFloor, 3, "more than the three rounding remainders");
    }

    /// @dev floor(paid × bps / 10,000) computed without mulDiv: split into quotient and remainder.
    function _floorShare(uint256 paid, uint256 bps) private pure returns (uint256) {
        return (paid / 10_000) * bps + ((paid % 10_000) * bps) / 10_000;
    }

    // ------------------------------------------------------------------ tierOf

    function test_tierOf_eachBit() public view {
        assertEq(math.tierOf(0), 0);
        assertEq(math.tierOf(Permissions.TELEMETRY), 0);
        assertEq(math.tierOf(Permissions.VIN), 0);
        assertEq(math.tierOf(Permissions.MANAGE_KEYS), 0);
        assertEq(math.tierOf(Permissions.LOCATION), 1);
        assertEq(math.tierOf(Permissions.LIVE), 2);
        assertEq(math.tierOf(Permissions.LOCK), 3);
        assertEq(math.tierOf(Permissions.UNLOCK), 3);
        assertEq(math.tierOf(Permissions.DRIVE), 3);
    }

    function test_tierOf_takesTheMostSensitive() public view {
        assertEq(math.tierOf(Permissions.TELEMETRY | Permissions.LOCATION), 1);
        assertEq(math.tierOf(Permissions.TELEMETRY | Permissions.LOCATION | Permissions.LIVE), 2);
        assertEq(math.tierOf(Permissions.TELEMETRY | Permissions.LIVE | Permissions.UNLOCK), 3);
    }

    function testFuzz_tierOf_isTheMaxOverBits(uint8 a, uint8 b) public view {
        uint256 ta = math.tierOf(a);
        uint256 tb = math.tierOf(b);
        assertEq(math.tierOf(uint256(a) | b), ta > tb ? ta : tb);
        assertLe(ta, 3);
    }
}
