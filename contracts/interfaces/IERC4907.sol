// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

/// @title IERC4907
/// @notice Rental NFTs: a time-limited "user" beside the owner (EIP-4907, interface id 0xad092b5c).
interface IERC4907 {
    /// @notice The user of `tokenId` or its expiry changed; the zero address means no user.
    event UpdateUser(uint256 indexed tokenId, address indexed user, uint64 expires);

    /// @notice Sets the user of `tokenId` until `expires` (a unix time; the user holds the NFT's
    ///         use strictly before it). Caller: the owner or an approved operator.
    /// @param tokenId the NFT
    /// @param user the new user, or the zero address to clear it
    /// @param expires the unix time at which the use ends
    function setUser(uint256 tokenId, address user, uint64 expires) external;

    /// @notice The current user of `tokenId`: the zero address when none or expired.
    /// @param tokenId the NFT
    /// @return the user
    function userOf(uint256 tokenId) external view returns (address);

    /// @notice The expiry of the current user of `tokenId`, or 0 when there is none.
    /// @param tokenId the NFT
    /// @return the unix time at which the use ends
    function userExpires(uint256 tokenId) external view returns (uint256);
}
