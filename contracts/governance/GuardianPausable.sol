// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {IGuardianPausable} from "../interfaces/IGuardianPausable.sol";
import {DaoAccessControl} from "./DaoAccessControl.sol";
import {Roles} from "../libraries/Roles.sol";

/// @title GuardianPausable
/// @notice The bounded emergency brake of IGuardianPausable, for any DaoAccessControl contract:
///         inherit it and put `whenNotPaused` on the entry points to guard (new stakes,
///         purchases, settlement roots). Never put it on exits (withdrawals, claims): a pause
///         must not hold anyone's funds.
/// @dev One storage slot: the pause's end, when the guardian last paused, and whether it may
///      pause again. The roles are the shared
///      Roles.GUARDIAN_ROLE (administered by GOVERNOR_ROLE, as the other operational roles:
///      the DAO grants and revokes guardians) and Roles.GOVERNOR_ROLE.
abstract contract GuardianPausable is IGuardianPausable, DaoAccessControl {
    /// @notice May pause, once per arming, for at most MAX_PAUSE (granted and revoked by the DAO).
    bytes32 public constant GUARDIAN_ROLE = Roles.GUARDIAN_ROLE;
    /// @notice The longest pause a guardian may impose.
    uint64 public constant MAX_PAUSE = 14 days;

    /// @dev The end of the current or last pause (exclusive); 0 when never paused or lifted.
    uint64 private _pausedUntil;
    /// @dev When the guardian last paused (reported when it is refused a second pause).
    uint64 private _lastPausedAt;
    /// @dev The guardian used its pause since the DAO last armed it.
    bool private _disarmed;

    /// @notice Refuses while a pause is in force.
    modifier whenNotPaused() {
        _requireNotPaused();
        _;
    }

    /// @inheritdoc IGuardianPausable
    function pause(uint64 duration) external override onlyRole(GUARDIAN_ROLE) {
        if (duration == 0 || duration > MAX_PAUSE) revert PauseDurationOutOfRange(duration, MAX_PAUSE);
        if (_disarmed) revert GuardianDisarmed(_lastPausedAt);
        uint64 until = uint64(block.timestamp) + duration;
        _pausedUntil = until;
        _lastPausedAt = uint64(block.timestamp);
        _disarmed = true;
        emit GuardianPaused(msg.sender, until);
    }

    /// @inheritdoc IGuardianPausable
    function unpause() external override {
        if (!hasRole(GUARDIAN_ROLE, msg.sender) && !hasRole(Roles.GOVERNOR_ROLE, msg.sender)) {
            revert NotGuardianOrGovernor(msg.sender);
        }
        if (!paused()) revert NotPaused();
        _pausedUntil = 0;
        emit GuardianUnpaused(msg.sender);
    }

    /// @inheritdoc IGuardianPausable
    function rearmGuardian() external override onlyRole(Roles.GOVERNOR_ROLE) {
        if (!_disarmed) revert GuardianAlreadyArmed();
        _disarmed = false;
        emit GuardianRearmed(msg.sender);
    }

    /// @inheritdoc IGuardianPausable
    function paused() public view override returns (bool) {
        return block.timestamp < _pausedUntil;
    }

    /// @inheritdoc IGuardianPausable
    function pausedUntil() external view override returns (uint64) {
        return _pausedUntil;
    }

    /// @inheritdoc IGuardianPausable
    function guardianArmed() external view override returns (bool) {
        return !_disarmed;
    }

    /// @dev Reverts with the pause's end while a pause is in force.
    function _requireNotPaused() internal view {
        uint64 until = _pausedUntil;
        if (block.timestamp < until) revert GuardianPauseActive(until);
    }
}
