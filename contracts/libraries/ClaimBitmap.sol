// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

/// @title ClaimBitmap
/// @notice Which leaves of a Merkle payout were paid: one bit a leaf index, 256 leaves a storage
///         word, so the first claim of a word costs a fresh slot and the next 255 a warm rewrite.
///         Member claims (Marketplace) and slash claims (Staking) each keep one per payout.
library ClaimBitmap {
    /// @dev Word `index >> WORD_SHIFT` holds leaf `index` at bit `index & BIT_MASK`.
    uint256 private constant WORD_SHIFT = 8; // 2^8 = 256 bits a word
    uint256 private constant BIT_MASK = 0xff;

    /// @notice The claimed flags of one payout.
    struct Bitmap {
        mapping(uint256 word => uint256 bits) words;
    }

    /// @notice Whether leaf `index` was claimed.
    /// @param self the payout's bitmap
    /// @param index the leaf's index
    /// @return whether its bit is set
    function isClaimed(Bitmap storage self, uint256 index) internal view returns (bool) {
        return self.words[index >> WORD_SHIFT] & (1 << (index & BIT_MASK)) != 0;
    }

    /// @notice Marks leaf `index` claimed, in one read and at most one write of its word.
    /// @dev The word's slot is Solidity's for `self.words[index >> WORD_SHIFT]`
    ///      (keccak256(word index . mapping slot)), hashed once for the read and the write.
    /// @param self the payout's bitmap
    /// @param index the leaf's index
    /// @return first whether this is the leaf's first claim (false: it was already claimed,
    ///         and nothing was written; the caller refuses it)
    function setClaimed(Bitmap storage self, uint256 index) internal returns (bool first) {
        uint256 bit = 1 << (index & BIT_MASK);
        assembly ("memory-safe") {
            // Scratch space 0x00..0x3f, as Solidity itself hashes mapping keys.
            mstore(0x00, shr(WORD_SHIFT, index))
            mstore(0x20, self.slot)
            let slot := keccak256(0x00, 0x40)
            let word := sload(slot)
            first := iszero(and(word, bit))
            if first { sstore(slot, or(word, bit)) }
        }
    }
}
