// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {Math} from "@openzeppelin/contracts/utils/math/Math.sol";
import {Permissions} from "./Permissions.sol";

/// @title MarketMath
/// @notice The market's arithmetic, isolated so it can be fuzzed on its own: the price of an
///         order, the revenue split of a payment (DESIGN.md §3.6) and the sensitivity tier of
///         a product's required permissions (DESIGN.md §3.4).
library MarketMath {
    /// @notice Basis points in a whole.
    uint16 internal constant MAX_BPS = 10_000;

    /// @notice Usage tiers, least to most sensitive (DESIGN.md §3.4).
    uint8 internal constant TIER_TELEMETRY = 0;
    uint8 internal constant TIER_LOCATION = 1;
    uint8 internal constant TIER_LIVE = 2;
    uint8 internal constant TIER_COMMANDS = 3;

    /// @dev The permission bits that reach each tier above telemetry (DESIGN.md §3.1).
    uint256 private constant COMMAND_BITS = Permissions.LOCK | Permissions.UNLOCK | Permissions.DRIVE;
    uint256 private constant LIVE_BITS = Permissions.LIVE;
    uint256 private constant LOCATION_BITS = Permissions.LOCATION;

    /// @notice `price × quantity` does not fit in 256 bits.
    error PaymentOverflow(uint256 price, uint256 quantity);

    /// @notice One payment divided between the four parties; the parts sum to the payment.
    struct Shares {
        uint256 members;
        uint256 operator;
        uint256 broker;
        uint256 protocol;
    }

    /// @notice What an order of `quantity` units at `price` each costs.
    /// @dev Reverts with the operands instead of a bare overflow panic.
    function total(uint256 price, uint256 quantity) internal pure returns (uint256) {
        (bool ok, uint256 paid) = Math.tryMul(price, quantity);
        if (!ok) revert PaymentOverflow(price, quantity);
        return paid;
    }

    /// @notice Splits `paid`: each non-member share is `paid × bps / 10,000` rounded down and
    ///         the members receive the rest, so their share is at least `membersBps` worth and
    ///         every rounding remainder lands in the member pool.
    /// @dev Requires operatorBps + brokerBps + protocolBps ≤ 10,000 (the terms guarantee it),
    ///      which bounds their sum by `paid` so the subtraction cannot underflow.
    function split(uint256 paid, uint16 operatorBps, uint16 brokerBps, uint16 protocolBps)
        internal
        pure
        returns (Shares memory s)
    {
        s.operator = Math.mulDiv(paid, operatorBps, MAX_BPS);
        s.broker = Math.mulDiv(paid, brokerBps, MAX_BPS);
        s.protocol = Math.mulDiv(paid, protocolBps, MAX_BPS);
        s.members = paid - s.operator - s.broker - s.protocol;
    }

    /// @notice The most sensitive tier `requiredPermissions` reaches: 3 for any command bit
    ///         (LOCK, UNLOCK, DRIVE), 2 for LIVE, 1 for LOCATION, 0 otherwise.
    function tierOf(uint256 requiredPermissions) internal pure returns (uint8) {
        if (requiredPermissions & COMMAND_BITS != 0) return TIER_COMMANDS;
        if (requiredPermissions & LIVE_BITS != 0) return TIER_LIVE;
        if (requiredPermissions & LOCATION_BITS != 0) return TIER_LOCATION;
        return TIER_TELEMETRY;
    }
}
