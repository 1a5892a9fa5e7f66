// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {Math} from "@openzeppelin/contracts/utils/math/Math.sol";

/// @title Vesting
/// @notice The arithmetic of an order's linear member-share release (DESIGN.md §3.6), isolated
///         so it can be fuzzed on its own and reproduced exactly off chain. Amounts are scaled
///         by PRECISION; every division rounds down, so what is released never exceeds what was
///         paid and the protocol, not the claimant, keeps each fraction of a wei.
/// @dev An order of `memberShare` vesting from `start` to `end` releases, scaled,
///      `rate × (t − start)` while start < t < end and `memberShare × PRECISION` from `end` on,
///      with `rate = floor(memberShare × PRECISION / (end − start))` and the `dust` it leaves
///      (< end − start) paid in one bump at `end`. A product sums its orders' rates and
///      schedules each order's rate drop and dust bump at its `end`, which is always a day
///      boundary (`roundUpToDay`), so a checkpoint walks days, never orders.
library Vesting {
    /// @notice The scale of every released amount: one wei is PRECISION scaled units.
    uint256 internal constant PRECISION = 1e18;
    /// @notice The grid every scheduled rate change lies on.
    uint64 internal constant DAY = 1 days;

    /// @notice `t` rounded up to the next multiple of DAY (a `t` already on the grid stays).
    function roundUpToDay(uint64 t) internal pure returns (uint64) {
        uint64 rem = t % DAY;
        return rem == 0 ? t : t - rem + DAY;
    }

    /// @notice The first day boundary strictly after `t`.
    function nextDay(uint64 t) internal pure returns (uint64) {
        return t - (t % DAY) + DAY;
    }

    /// @notice The per-second scaled rate and the scaled dust of `memberShare` released over
    ///         `end − start` seconds. Requires start < end.
    /// @return rate floor(memberShare × PRECISION / duration)
    /// @return dust memberShare × PRECISION − rate × duration (always < duration)
    function schedule(uint256 memberShare, uint64 start, uint64 end)
        internal
        pure
        returns (uint256 rate, uint256 dust)
    {
        uint256 duration = end - start;
        uint256 scaled = memberShare * PRECISION;
        rate = scaled / duration;
        dust = scaled % duration; // == scaled - rate * duration
    }

    /// @notice What an order has released by `t`, scaled (0 up to `start`, all from `end`).
    function releasedScaled(uint256 memberShare, uint64 start, uint64 end, uint64 t) internal pure returns (uint256) {
        if (t >= end) return memberShare * PRECISION;
        if (t <= start) return 0;
        (uint256 rate,) = schedule(memberShare, start, end);
        return rate * (t - start);
    }

    /// @notice What an order has released by `t`, in wei (rounded down).
    function released(uint256 memberShare, uint64 start, uint64 end, uint64 t) internal pure returns (uint256) {
        return releasedScaled(memberShare, start, end, t) / PRECISION;
    }

    /// @notice How a refund at `t` (start ≤ t < end) divides the order's unvested scaled share
    ///         (`memberShare × PRECISION − releasedScaled(t)`) between the buyer and the members.
    ///         The buyer gets back the part of the share for the service not yet delivered,
    ///         `floor(memberShare × (termEnd − t) / (termEnd − start))` (nothing once the term
    ///         ended): vesting runs to `end`, the term's end rounded up to the day grid, so the
    ///         unvested amount also holds the tail between the term's end and `end`, which
    ///         belongs to the members for a service already delivered. The order's release
    ///         stops at `releasedScaled(t)`; the members keep everything else at once.
    /// @param termEnd the order's own end (start < termEnd ≤ end)
    /// @return refund paid back to the buyer (never above floor(unvested / PRECISION))
    /// @return keptScaled the rest of the unvested scaled share, added to the product's vested
    function splitRefund(uint256 memberShare, uint64 start, uint64 termEnd, uint64 end, uint64 t)
        internal
        pure
        returns (uint256 refund, uint256 keptScaled)
    {
        uint256 unvested = memberShare * PRECISION - releasedScaled(memberShare, start, end, t);
        if (t < termEnd) refund = Math.mulDiv(memberShare, termEnd - t, termEnd - start);
        // The unserved part of the term is at most the unvested part (end ≥ termEnd); the bound
        // keeps that true through the roundings.
        uint256 wholeUnvested = unvested / PRECISION;
        if (refund > wholeUnvested) refund = wholeUnvested;
        keptScaled = unvested - refund * PRECISION;
    }

    /// @notice `vested` advanced by `rate` from `from` to `to` (from ≤ to), with no scheduled
    ///         change in between.
    function accrue(uint256 vested, uint256 rate, uint64 from, uint64 to) internal pure returns (uint256) {
        return vested + rate * (to - from);
    }
}
