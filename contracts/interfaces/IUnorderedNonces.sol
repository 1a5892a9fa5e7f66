// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

/// @title IUnorderedNonces
/// @notice Signature nonces as a bitmap per signer (DESIGN.md §3.7): a signer picks any unused
///         nonce for each message, so many signed messages can be outstanding at once, be used in
///         any order, each exactly once, and any of them can be cancelled before it is used.
///         Nonce `n` is bit `n % 256` of the signer's word `n / 256`.
interface IUnorderedNonces {
    /// @notice `signer` marked the bits of `mask` in its word `wordPos` used: signatures over
    ///         those nonces are refused from now on.
    event NoncesInvalidated(address indexed signer, uint256 indexed wordPos, uint256 mask);

    /// @notice `signer`'s `nonce` was already used or cancelled.
    error NonceAlreadyUsed(address signer, uint256 nonce);
    /// @notice An invalidation must name at least one nonce.
    error EmptyNonceMask(uint256 wordPos);

    /// @notice Cancels the caller's nonces whose bits are set in `mask` in word `wordPos`
    ///         (nonces `wordPos * 256 + i` for every set bit `i`). Already used bits stay used.
    /// @param wordPos the word: the nonces from `wordPos * 256` to `wordPos * 256 + 255`
    /// @param mask the bits to mark used (non-zero)
    function invalidateNonces(uint256 wordPos, uint256 mask) external;

    /// @notice The used (or cancelled) nonces of `signer` in word `wordPos`, one bit each.
    /// @param signer the signer
    /// @param wordPos the word
    /// @return bit `i` set: nonce `wordPos * 256 + i` is used
    function nonceBitmap(address signer, uint256 wordPos) external view returns (uint256);

    /// @notice Whether `signer`'s `nonce` was used or cancelled.
    /// @param signer the signer
    /// @param nonce the nonce
    /// @return true when a signature over it would be refused
    function isNonceUsed(address signer, uint256 nonce) external view returns (bool);
}
