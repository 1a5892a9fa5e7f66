// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {Math} from "@openzeppelin/contracts/utils/math/Math.sol";
import {Test} from "../lib/Test.sol";
import {Vesting} from "../../../contracts/libraries/Vesting.sol";

/// @notice The vesting arithmetic on its own: an order never releases more than its member share,
///         releases monotonically, all of it at the end, and a refund divides the share to the wei.
contract VestingTest is Test {
    uint256 internal constant P = 1e18;
    /// @dev The largest member share a purchase can record (Marketplace caps payments at 2^128 - 1).
    uint256 internal constant MAX_SHARE = type(uint128).max;
    /// @dev The longest vesting a purchase can schedule: 2^32 - 1 months of 30 days, plus a day.
    uint64 internal constant MAX_DURATION = uint64(type(uint32).max) * 30 days + 1 days;

    function _window(uint64 start, uint64 duration) internal pure returns (uint64, uint64) {
        start = uint64(bound(start, 1, type(uint64).max / 2));
        duration = uint64(bound(duration, 1, MAX_DURATION));
        return (start, start + duration);
    }

    function test_roundUpToDay_keepsTheGridAndRoundsUpElsewhere() public pure {
        assertEq(Vesting.roundUpToDay(0), 0);
        assertEq(Vesting.roundUpToDay(1), 1 days);
        assertEq(Vesting.roundUpToDay(1 days), 1 days);
        assertEq(Vesting.roundUpToDay(1 days + 1), 2 days);
        assertEq(Vesting.nextDay(1 days), 2 days);
        assertEq(Vesting.nextDay(1 days - 1), 1 days);
    }

    function test_schedule_exampleToTheWei() public pure {
        // 7 wei over 3 seconds: rate floor(7e18 / 3), dust the rest.
        (uint256 rate, uint256 dust) = Vesting.schedule(7, 10, 13);
        assertEq(rate, 2_333_333_333_333_333_333);
        assertEq(dust, 1);
        assertEq(Vesting.released(7, 10, 13, 11), 2);
        assertEq(Vesting.released(7, 10, 13, 12), 4);
        assertEq(Vesting.released(7, 10, 13, 13), 7);
        (uint256 refund, uint256 remainder) = Vesting.splitRefund(7, 10, 13, 13, 11);
        uint256 releasedAt = Vesting.releasedScaled(7, 10, 13, 11);
        assertEq(releasedAt, 2_333_333_333_333_333_333);
        assertEq(refund, 4); // 4.666… wei unvested: the buyer gets 4
        assertEq(remainder, 666_666_666_666_666_667); // and the members keep the fraction
    }

    function test_splitRefund_theTailAfterTheTermStaysWithTheMembers() public pure {
        // 1-day credits bought a second after a day boundary vest over almost two days; a
        // refund pays back only the unserved part of the term, nothing once it ended.
        uint64 start = 1 days + 1;
        uint64 termEnd = start + 1 days;
        uint64 end = 3 days; // termEnd rounded up to the day grid
        uint256 share = 70 ether;
        (uint256 refund,) = Vesting.splitRefund(share, start, termEnd, end, start + 12 hours);
        assertEq(refund, 35 ether, "half the term left: half the share");
        (refund,) = Vesting.splitRefund(share, start, termEnd, end, termEnd);
        assertEq(refund, 0, "the term ended: nothing comes back");
        (refund,) = Vesting.splitRefund(share, start, termEnd, end, termEnd + 1 hours);
        assertEq(refund, 0, "in the rounding tail: nothing comes back");
    }

    function testFuzz_schedule_rateAndDustRebuildTheShare(uint256 share, uint64 start, uint64 duration) public pure {
        share = bound(share, 0, MAX_SHARE);
        (uint64 s, uint64 e) = _window(start, duration);
        (uint256 rate, uint256 dust) = Vesting.schedule(share, s, e);
        assertLt(dust, e - s); // dust below the duration
        assertEq(rate * (e - s) + dust, share * P, "rate x duration + dust == share");
        if (share != 0) assertGt(rate, 0); // a non-zero share always has a rate
    }

    function testFuzz_released_boundedMonotoneAndCompleteAtEnd(
        uint256 share,
        uint64 start,
        uint64 duration,
        uint64 t1,
        uint64 t2
    ) public pure {
        share = bound(share, 0, MAX_SHARE);
        (uint64 s, uint64 e) = _window(start, duration);
        t1 = uint64(bound(t1, 0, uint256(e) + 10 days));
        t2 = uint64(bound(t2, t1, uint256(e) + 10 days));
        uint256 r1 = Vesting.releasedScaled(share, s, e, t1);
        uint256 r2 = Vesting.releasedScaled(share, s, e, t2);
        assertLe(r1, r2, "monotone in time");
        assertLe(r2, share * P, "never above the share");
        assertLe(Vesting.released(share, s, e, t2), share, "never above the share, in wei");
        assertEq(Vesting.releasedScaled(share, s, e, s), 0, "nothing at the start");
        assertEq(Vesting.released(share, s, e, e), share, "all of it at the end");
    }

    function testFuzz_splitRefund_conservesTheShare(
        uint256 share,
        uint64 start,
        uint64 duration,
        uint64 t,
        uint64 termCut
    ) public pure {
        share = bound(share, 0, MAX_SHARE);
        (uint64 s, uint64 e) = _window(start, duration);
        t = uint64(bound(t, s, e - 1));
        uint64 termEnd = uint64(bound(termCut, s + 1, e)); // the term ends at or before the vesting
        (uint256 refund, uint256 remainder) = Vesting.splitRefund(share, s, termEnd, e, t);
        uint256 releasedAt = Vesting.releasedScaled(share, s, e, t);
        assertEq(releasedAt + refund * P + remainder, share * P, "released + refund + kept == share");
        assertLe(refund, share, "a refund never exceeds the share");
        // Rounding favours the members: the buyer gets at most the exact unvested amount, and
        // at most the unserved part of the term.
        assertLe(refund * P, share * P - releasedAt);
        if (t >= termEnd) assertEq(refund, 0, "nothing after the term");
        else assertLe(refund, Math.mulDiv(share, termEnd - t, termEnd - s));
        // With the term ending where the vesting does, the members keep less than a wei.
        if (termEnd == e) assertLt(remainder, P);
    }

    function testFuzz_accrue_isRateTimesElapsed(uint256 vested, uint128 rate, uint64 from, uint64 span) public pure {
        vested = bound(vested, 0, type(uint128).max);
        from = uint64(bound(from, 0, type(uint32).max));
        span = uint64(bound(span, 0, type(uint32).max));
        assertEq(Vesting.accrue(vested, rate, from, from + span), vested + uint256(rate) * span);
    }
}
