// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

/// @title IGuardianPausable
/// @notice A bounded emergency brake: a GUARDIAN (granted and revoked by the DAO) pauses what a
///         contract guards for at most `MAX_PAUSE`, once; a second pause needs the DAO
///         (GOVERNOR) to re-arm the guardian. The guardian moves no funds: pausing only refuses
///         the guarded entry points (new stakes, purchases, settlement roots), never an exit.
interface IGuardianPausable {
    /// @notice `guardian` paused the guarded entry points until `until` (exclusive).
    event GuardianPaused(address indexed guardian, uint64 until);
    /// @notice `by` (a GUARDIAN or GOVERNOR) lifted the pause before it ran out.
    event GuardianUnpaused(address indexed by);
    /// @notice `by` (GOVERNOR) allowed the guardian one more pause.
    event GuardianRearmed(address indexed by);

    /// @notice The guarded entry point is paused until `until`.
    error GuardianPauseActive(uint64 until);
    /// @notice A pause must last 1 second to `max` seconds; `duration` does not.
    error PauseDurationOutOfRange(uint64 duration, uint64 max);
    /// @notice The guardian already used its pause (at `pausedAt`); the DAO must `rearmGuardian` first.
    error GuardianDisarmed(uint64 pausedAt);
    /// @notice The guardian can pause already: there is nothing to re-arm.
    error GuardianAlreadyArmed();
    /// @notice There is no pause in force to lift.
    error NotPaused();
    /// @notice `caller` is neither a GUARDIAN nor a GOVERNOR.
    error NotGuardianOrGovernor(address caller);

    /// @notice Pauses the guarded entry points for `duration` seconds. GUARDIAN, once per arming.
    /// @param duration 1 second to `MAX_PAUSE`
    function pause(uint64 duration) external;

    /// @notice Lifts the pause in force. GUARDIAN or GOVERNOR. Does not re-arm the guardian.
    function unpause() external;

    /// @notice Allows the guardian one more pause. GOVERNOR (the DAO).
    function rearmGuardian() external;

    /// @notice Whether the guarded entry points are paused now.
    /// @return true while `block.timestamp < pausedUntil()`
    function paused() external view returns (bool);

    /// @notice When the current or last pause ends (0: never paused, or lifted).
    /// @return the end of the pause, exclusive
    function pausedUntil() external view returns (uint64);

    /// @notice Whether the guardian may pause now (it has not used its pause since the last arming).
    /// @return true when `pause` would be accepted from a GUARDIAN
    function guardianArmed() external view returns (bool);
}
