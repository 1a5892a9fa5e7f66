// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {IUnorderedNonces} from "../interfaces/IUnorderedNonces.sol";
import {NonceBitmap} from "./NonceBitmap.sol";

/// @title UnorderedNonces
/// @notice The `IUnorderedNonces` surface over a `NonceBitmap`, shared by every contract that
///         verifies EIP-712 messages: `invalidateNonces`, `nonceBitmap`, `isNonceUsed`, and
///         `_useUnorderedNonce` for the verifier.
abstract contract UnorderedNonces is IUnorderedNonces {
    using NonceBitmap for NonceBitmap.Nonces;

    NonceBitmap.Nonces private _nonceBitmap;

    /// @inheritdoc IUnorderedNonces
    function invalidateNonces(uint256 wordPos, uint256 mask) external {
        if (mask == 0) revert EmptyNonceMask(wordPos);
        _nonceBitmap.invalidate(msg.sender, wordPos, mask);
        emit NoncesInvalidated(msg.sender, wordPos, mask);
    }

    /// @inheritdoc IUnorderedNonces
    function nonceBitmap(address signer, uint256 wordPos) external view returns (uint256) {
        return _nonceBitmap.bitmap(signer, wordPos);
    }

    /// @inheritdoc IUnorderedNonces
    function isNonceUsed(address signer, uint256 nonce) external view returns (bool) {
        return _nonceBitmap.isUsed(signer, nonce);
    }

    /// @dev Consumes `signer`'s `nonce`; reverts `NonceAlreadyUsed` when it was used or cancelled.
    function _useUnorderedNonce(address signer, uint256 nonce) internal {
        _nonceBitmap.use(signer, nonce);
    }
}
