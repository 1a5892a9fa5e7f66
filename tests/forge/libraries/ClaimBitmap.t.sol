// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {Test} from "../lib/Test.sol";
import {ClaimBitmap} from "../../../contracts/libraries/ClaimBitmap.sol";

/// @notice The claimed-leaf bitmap on its own: a set leaf reads claimed, a second set is
///         detected and writes nothing, no bit bleeds into another index or another payout, and
///         leaf `i` lives at bit `i % 256` of word `i / 256`.
contract ClaimBitmapTest is Test {
    using ClaimBitmap for ClaimBitmap.Bitmap;

    uint256 private constant BITS_PER_WORD = 256;
    /// @dev The span of indices the model test draws from: four words, so sequences collide often.
    uint256 private constant MODEL_SPAN = 4 * BITS_PER_WORD;
    uint256 private constant MAX_MODEL_CLAIMS = 64;

    mapping(uint256 payout => ClaimBitmap.Bitmap) private _bitmaps;

    function _word(uint256 payout, uint256 index) private view returns (uint256) {
        return _bitmaps[payout].words[index / BITS_PER_WORD];
    }

    function test_setClaimed_wordBoundaries() public {
        uint256[5] memory edges = [uint256(0), 255, 256, 511, type(uint256).max];
        for (uint256 i; i < edges.length; ++i) {
            assertTrue(_bitmaps[i].setClaimed(edges[i]), "first claim");
            assertTrue(_bitmaps[i].isClaimed(edges[i]), "reads claimed");
            assertEq(_word(i, edges[i]), 1 << (edges[i] % BITS_PER_WORD), "its bit alone");
            if (edges[i] != 0) assertFalse(_bitmaps[i].isClaimed(edges[i] - 1), "index below");
            if (edges[i] != type(uint256).max) assertFalse(_bitmaps[i].isClaimed(edges[i] + 1), "index above");
        }
    }

    function testFuzz_setClaimed_thenIsClaimed(uint256 index) public {
        assertFalse(_bitmaps[0].isClaimed(index));
        assertTrue(_bitmaps[0].setClaimed(index));
        assertTrue(_bitmaps[0].isClaimed(index));
    }

    function testFuzz_setClaimed_secondTimeIsDetectedAndWritesNothing(uint256 index) public {
        assertTrue(_bitmaps[0].setClaimed(index));
        uint256 word = _word(0, index);
        assertFalse(_bitmaps[0].setClaimed(index), "second claim detected");
        assertTrue(_bitmaps[0].isClaimed(index));
        assertEq(_word(0, index), word, "word unchanged");
    }

    function testFuzz_setClaimed_setsOnlyItsBitOfItsWord(uint256 index) public {
        _bitmaps[0].setClaimed(index);
        uint256 wordIndex = index / BITS_PER_WORD;
        assertEq(_bitmaps[0].words[wordIndex], 1 << (index % BITS_PER_WORD));
        if (wordIndex != 0) assertEq(_bitmaps[0].words[wordIndex - 1], 0);
        if (wordIndex != type(uint256).max / BITS_PER_WORD) assertEq(_bitmaps[0].words[wordIndex + 1], 0);
    }

    function testFuzz_setClaimed_leavesOtherIndicesUnclaimed(uint256 index, uint256 other) public {
        vm.assume(other != index);
        _bitmaps[0].setClaimed(index);
        assertFalse(_bitmaps[0].isClaimed(other));
        assertTrue(_bitmaps[0].setClaimed(other), "other still claimable");
        assertTrue(_bitmaps[0].isClaimed(index) && _bitmaps[0].isClaimed(other));
    }

    function testFuzz_setClaimed_leavesTheRestOfItsWordUnclaimed(uint256 index, uint8 otherBit) public {
        uint256 other = index - (index % BITS_PER_WORD) + otherBit;
        vm.assume(other != index);
        _bitmaps[0].setClaimed(index);
        assertFalse(_bitmaps[0].isClaimed(other));
        assertTrue(_bitmaps[0].setClaimed(other));
        assertTrue(_bitmaps[0].isClaimed(index));
    }

    function testFuzz_setClaimed_leavesOtherPayoutsUnclaimed(uint256 payout, uint256 otherPayout, uint256 index)
        public
    {
        vm.assume(otherPayout != payout);
        _bitmaps[payout].setClaimed(index);
        assertFalse(_bitmaps[otherPayout].isClaimed(index));
        assertTrue(_bitmaps[otherPayout].setClaimed(index));
    }

    /// @dev Any sequence of claims over four words against a plain bool-per-index model: each
    ///      `setClaimed` reports a first claim exactly when the model had none, and afterwards
    ///      every index of the span reads as the model says.
    function testFuzz_setClaimed_matchesAModel(uint256[] memory draws) public {
        bool[MODEL_SPAN] memory claimed;
        uint256 n = draws.length < MAX_MODEL_CLAIMS ? draws.length : MAX_MODEL_CLAIMS;
        for (uint256 i; i < n; ++i) {
            uint256 index = draws[i] % MODEL_SPAN;
            assertEq(_bitmaps[0].setClaimed(index), !claimed[index], "first claim iff unclaimed");
            claimed[index] = true;
        }
        for (uint256 index; index < MODEL_SPAN; ++index) {
            assertEq(_bitmaps[0].isClaimed(index), claimed[index]);
        }
    }
}
