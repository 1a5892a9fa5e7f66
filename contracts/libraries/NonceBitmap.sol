// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {IUnorderedNonces} from "../interfaces/IUnorderedNonces.sol";

/// @title NonceBitmap
/// @notice Unordered signature nonces: one bit a nonce, 256 nonces a storage word per signer
///         (as Permit2's `nonceBitmap`). A signer that numbers its messages from 0 pays one fresh
///         slot per 256 signatures and a warm rewrite for the others. VehicleId (`Grant`,
///         `MintAttestation`), AftermarketDevice (`Pair`) and DataProducts (`Join`) keep one each.
library NonceBitmap {
    /// @dev Nonce `n` is bit `n & BIT_MASK` of word `n >> WORD_SHIFT`.
    uint256 private constant WORD_SHIFT = 8; // 2^8 = 256 nonces a word
    uint256 private constant BIT_MASK = 0xff;

    /// @notice The used nonces of every signer of one contract.
    struct Nonces {
        mapping(address signer => mapping(uint256 wordPos => uint256 bits)) words;
    }

    /// @notice Marks `signer`'s `nonce` used; reverts `NonceAlreadyUsed` when it already was.
    /// @param self the contract's nonces
    /// @param signer whose nonce
    /// @param nonce the nonce the signature carries
    function use(Nonces storage self, address signer, uint256 nonce) internal {
        mapping(uint256 => uint256) storage words = self.words[signer];
        uint256 wordPos = nonce >> WORD_SHIFT;
        uint256 bit = 1 << (nonce & BIT_MASK);
        uint256 word = words[wordPos];
        if (word & bit != 0) revert IUnorderedNonces.NonceAlreadyUsed(signer, nonce);
        words[wordPos] = word | bit;
    }

    /// @notice Marks the bits of `mask` in `signer`'s word `wordPos` used (cancels those nonces).
    /// @param self the contract's nonces
    /// @param signer whose nonces
    /// @param wordPos the word
    /// @param mask the bits to set
    function invalidate(Nonces storage self, address signer, uint256 wordPos, uint256 mask) internal {
        self.words[signer][wordPos] |= mask;
    }

    /// @notice `signer`'s word `wordPos`.
    /// @param self the contract's nonces
    /// @param signer whose nonces
    /// @param wordPos the word
    /// @return the used bits
    function bitmap(Nonces storage self, address signer, uint256 wordPos) internal view returns (uint256) {
        return self.words[signer][wordPos];
    }

    /// @notice Whether `signer`'s `nonce` is used.
    /// @param self the contract's nonces
    /// @param signer whose nonce
    /// @param nonce the nonce
    /// @return whether its bit is set
    function isUsed(Nonces storage self, address signer, uint256 nonce) internal view returns (bool) {
        return self.words[signer][nonce >> WORD_SHIFT] & (1 << (nonce & BIT_MASK)) != 0;
    }
}
