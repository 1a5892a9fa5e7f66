// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {Math} from "@openzeppelin/contracts/utils/math/Math.sol";

/// @title LockupCurve
/// @notice The stake a buyer must lock as its consumption grows:
///         `base + perSqrtUnit × √units × multiplierBps / 10,000`.
/// @dev The argument types are the bounds that keep the result free of overflow:
///      √units < 2^32 and multiplierBps < 2^16, so the product is below 2^(128+32+16) = 2^176
///      and the sum below 2^177. Every factor is non-decreasing and the division rounds down,
///      so the result is monotonic in `units` and in `multiplierBps`.
library LockupCurve {
    /// @notice The basis-point denominator: 10,000 bps = 1x.
    uint256 internal constant BPS = 10_000;

    /// @notice The floor of the square root of `x`.
    /// @param x any value
    /// @return the largest r with r × r ≤ x
    function sqrt(uint256 x) internal pure returns (uint256) {
        return Math.sqrt(x);
    }

    /// @notice The stake required at `units` of consumption on a tier of `multiplierBps`.
    /// @param base stake required with no usage
    /// @param perSqrtUnit stake per square-rooted unit at 1x
    /// @param units vehicle-subscriptions in force
    /// @param multiplierBps the tier's multiplier, in basis points
    /// @return the required stake, rounded down
    function requiredStake(uint128 base, uint128 perSqrtUnit, uint64 units, uint16 multiplierBps)
        internal
        pure
        returns (uint256)
    {
        return uint256(base) + (uint256(perSqrtUnit) * sqrt(units) * multiplierBps) / BPS;
    }
}
