// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {
    AccessControlDefaultAdminRules
} from "@openzeppelin/contracts/access/extensions/AccessControlDefaultAdminRules.sol";
import {Roles} from "../libraries/Roles.sol";

/// @title DaoAccessControl
/// @notice The roles of every protocol contract: one default admin (the DAO's timelock) that
///         can only be handed over in two steps with a delay (OpenZeppelin
///         `AccessControlDefaultAdminRules`), GOVERNOR_ROLE for configuration, and the
///         operational roles (minter, slasher, market, settler, guardian) administered by GOVERNOR_ROLE.
/// @dev The operational roles are hot keys the DAO hands to workers and rotates by a vote:
///      making GOVERNOR_ROLE their admin lets the DAO rotate them without the default admin,
///      whose only holder is the timelock and whose transfer is slow on purpose.
abstract contract DaoAccessControl is AccessControlDefaultAdminRules {
    /// @notice Delay between starting and accepting a default-admin transfer (and between
    ///         starting and completing a default-admin renouncement).
    uint48 public constant ADMIN_TRANSFER_DELAY = 3 days;

    /// @param governor receives the default admin and GOVERNOR_ROLE (the DAO's timelock)
    constructor(address governor) AccessControlDefaultAdminRules(ADMIN_TRANSFER_DELAY, governor) {
        _grantRole(Roles.GOVERNOR_ROLE, governor);
        _setRoleAdmin(Roles.MINTER_ROLE, Roles.GOVERNOR_ROLE);
        _setRoleAdmin(Roles.SLASHER_ROLE, Roles.GOVERNOR_ROLE);
        _setRoleAdmin(Roles.MARKET_ROLE, Roles.GOVERNOR_ROLE);
        _setRoleAdmin(Roles.SETTLER_ROLE, Roles.GOVERNOR_ROLE);
        _setRoleAdmin(Roles.GUARDIAN_ROLE, Roles.GOVERNOR_ROLE);
    }

    /// @notice ERC-165: AccessControl and AccessControlDefaultAdminRules.
    /// @param interfaceId the interface identifier
    /// @return whether this contract implements `interfaceId`
    function supportsInterface(bytes4 interfaceId) public view virtual override returns (bool) {
        return super.supportsInterface(interfaceId);
    }
}
