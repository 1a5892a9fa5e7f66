// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {TimelockController} from "@openzeppelin/contracts/governance/TimelockController.sol";

/// @title DimoTimelock
/// @notice The DAO's executor: holds the default admin and GOVERNOR_ROLE of every protocol
///         contract and runs what the Governor's proposals decided, after `getMinDelay()`.
///         An unmodified OpenZeppelin `TimelockController`, named so the build ships it.
/// @dev Keeps OpenZeppelin's AccessControl (its roles are administered by the timelock itself
///      once the deployer renounces the bootstrap admin role): `AccessControlDefaultAdminRules`
///      cannot be mixed into it, as TimelockController grants DEFAULT_ADMIN_ROLE to itself and
///      to an optional admin (two holders), which the one-admin rule forbids.
contract DimoTimelock is TimelockController {
    /// @param minDelay seconds between scheduling and executing an operation
    /// @param proposers may schedule (and cancel) operations: the Governor
    /// @param executors may execute ready operations; address(0) lets anyone execute
    /// @param admin optional bootstrap admin (the deployer, who renounces it), or address(0)
    constructor(uint256 minDelay, address[] memory proposers, address[] memory executors, address admin)
        TimelockController(minDelay, proposers, executors, admin)
    {}
}
