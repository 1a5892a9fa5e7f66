// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {Test} from "forge-std/Test.sol";
import {LockupCurve} from "../../../contracts/libraries/LockupCurve.sol";

/// @notice The curve library on its own: the square root is the floor, the curve matches an
///         independent computation, is monotonic in units and tier, and never overflows.
contract LockupCurveTest is Test {
    /// @dev An independent floor square root (Newton from above), to check the library against.
    function _referenceSqrt(uint256 x) internal pure returns (uint256 r) {
        if (x < 4) return x == 0 ? 0 : 1;
        r = x;
        uint256 next = (x >> 1) + 1;
        while (next < r) {
            r = next;
            next = (x / next + next) >> 1;
        }
    }

    /// @dev The curve in 512-bit-free long form: the factors are small enough for uint256.
    function _reference(uint256 base, uint256 perSqrtUnit, uint256 units, uint256 bps) internal pure returns (uint256) {
        uint256 root = _referenceSqrt(units);
        return base + (perSqrtUnit * root * bps) / 10_000;
    }

    function test_sqrt_knownValues() public pure {
        assertEq(LockupCurve.sqrt(0), 0);
        assertEq(LockupCurve.sqrt(1), 1);
        assertEq(LockupCurve.sqrt(3), 1);
        assertEq(LockupCurve.sqrt(4), 2);
        assertEq(LockupCurve.sqrt(99), 9);
        assertEq(LockupCurve.sqrt(100), 10);
        assertEq(LockupCurve.sqrt(type(uint64).max), type(uint32).max);
        assertEq(LockupCurve.sqrt(type(uint256).max), type(uint128).max);
    }

    function testFuzz_sqrt_isTheFloor(uint256 x) public pure {
        uint256 r = LockupCurve.sqrt(x);
        assertLe(r, type(uint128).max);
        assertLe(r * r, x);
        if (r < type(uint128).max) assertGt((r + 1) * (r + 1), x);
        assertEq(r, _referenceSqrt(x));
    }

    function test_curve_atTheMaximumsDoesNotOverflow() public pure {
        uint256 got =
            LockupCurve.requiredStake(type(uint128).max, type(uint128).max, type(uint64).max, type(uint16).max);
        uint256 expected = uint256(type(uint128).max)
            + (uint256(type(uint128).max) * uint256(type(uint32).max) * uint256(type(uint16).max)) / 10_000;
        assertEq(got, expected);
    }

    function test_curve_knownValues() public pure {
        assertEq(LockupCurve.requiredStake(1_000, 10, 100, 20_000), 1_200);
        assertEq(LockupCurve.requiredStake(0, 3, 1, 15_000), 4); // 4.5 rounds down
        assertEq(LockupCurve.requiredStake(7, 1_000, 0, 30_000), 7); // no usage: the base
    }

    function testFuzz_curve_neverOverflowsAndMatchesReference(
        uint128 base,
        uint128 perSqrtUnit,
        uint64 units,
        uint16 bps
    ) public pure {
        uint256 got = LockupCurve.requiredStake(base, perSqrtUnit, units, bps);
        assertEq(got, _reference(base, perSqrtUnit, units, bps));
        assertGe(got, base);
    }

    function testFuzz_curve_monotonicInUnits(uint128 base, uint128 perSqrtUnit, uint64 a, uint64 b, uint16 bps)
        public
        pure
    {
        (uint64 low, uint64 high) = a <= b ? (a, b) : (b, a);
        assertLe(
            LockupCurve.requiredStake(base, perSqrtUnit, low, bps),
            LockupCurve.requiredStake(base, perSqrtUnit, high, bps),
            "more units never need less stake"
        );
    }

    function testFuzz_curve_monotonicInTier(uint128 base, uint128 perSqrtUnit, uint64 units, uint16 a, uint16 b)
        public
        pure
    {
        (uint16 low, uint16 high) = a <= b ? (a, b) : (b, a);
        assertLe(
            LockupCurve.requiredStake(base, perSqrtUnit, units, low),
            LockupCurve.requiredStake(base, perSqrtUnit, units, high),
            "a more sensitive tier never needs less stake"
        );
    }

    function testFuzz_curve_monotonicInParameters(
        uint128 base,
        uint128 perSqrtUnit,
        uint64 units,
        uint16 bps,
        uint128 extra
    ) public pure {
        uint128 raisedBase = uint128(bound(uint256(base) + extra, base, type(uint128).max));
        uint128 raisedSlope = uint128(bound(uint256(perSqrtUnit) + extra, perSqrtUnit, type(uint128).max));
        uint256 before = LockupCurve.requiredStake(base, perSqrtUnit, units, bps);
        assertLe(before, LockupCurve.requiredStake(raisedBase, perSqrtUnit, units, bps));
        assertLe(before, LockupCurve.requiredStake(base, raisedSlope, units, bps));
    }

    function testFuzz_curve_stepsAtPerfectSquares(uint32 root, uint128 perSqrtUnit) public pure {
        vm.assume(root > 0);
        uint64 square = uint64(root) * uint64(root);
        uint256 at = LockupCurve.requiredStake(0, perSqrtUnit, square, 10_000);
        uint256 below = LockupCurve.requiredStake(0, perSqrtUnit, square - 1, 10_000);
        assertEq(at, uint256(perSqrtUnit) * root);
        assertEq(below, uint256(perSqrtUnit) * (root - 1));
    }
}
