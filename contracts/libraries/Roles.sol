// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

/// @title Roles
/// @notice The AccessControl role identifiers, defined once for every contract.
library Roles {
    /// @notice The DAO: configuration, whitelists, connections, fees, treasury releases.
    bytes32 internal constant GOVERNOR_ROLE = keccak256("GOVERNOR_ROLE");
    /// @notice May mint vehicle NFTs without an oracle attestation.
    bytes32 internal constant MINTER_ROLE = keccak256("MINTER_ROLE");
    /// @notice May slash stake (the DAO).
    bytes32 internal constant SLASHER_ROLE = keccak256("SLASHER_ROLE");
    /// @notice May record buyers' usage on Staking (the Marketplace).
    bytes32 internal constant MARKET_ROLE = keccak256("MARKET_ROLE");
    /// @notice May propose Marketplace roots and deliver datasets (the workers' hot wallet).
    bytes32 internal constant SETTLER_ROLE = keccak256("SETTLER_ROLE");
    /// @notice May pause what a contract guards, once, for at most GuardianPausable.MAX_PAUSE;
    ///         granted, revoked and re-armed by the DAO (GOVERNOR);
    ///         may also revoke a pending Marketplace root.
    bytes32 internal constant GUARDIAN_ROLE = keccak256("GUARDIAN_ROLE");
}
