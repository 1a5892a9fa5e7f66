// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {Test} from "../lib/Test.sol";
import {IUnorderedNonces} from "../../../contracts/interfaces/IUnorderedNonces.sol";
import {NonceBitmap} from "../../../contracts/libraries/NonceBitmap.sol";

/// @dev Calls the library from outside, so a revert can be expected.
contract NonceBitmapHarness {
    using NonceBitmap for NonceBitmap.Nonces;

    NonceBitmap.Nonces private _nonces;

    function use(address signer, uint256 nonce) external {
        _nonces.use(signer, nonce);
    }

    function invalidate(address signer, uint256 wordPos, uint256 mask) external {
        _nonces.invalidate(signer, wordPos, mask);
    }

    function isUsed(address signer, uint256 nonce) external view returns (bool) {
        return _nonces.isUsed(signer, nonce);
    }

    function bitmap(address signer, uint256 wordPos) external view returns (uint256) {
        return _nonces.bitmap(signer, wordPos);
    }
}

/// @notice The unordered-nonce bitmap on its own: nonce `n` is bit `n % 256` of word `n / 256`
///         of its signer, used once, invalidated by mask, never bleeding into another nonce or
///         another signer.
contract NonceBitmapTest is Test {
    uint256 private constant BITS_PER_WORD = 256;
    uint256 private constant MODEL_SPAN = 2 * BITS_PER_WORD;
    uint256 private constant MAX_MODEL_STEPS = 48;

    NonceBitmapHarness private harness;
    address private constant SIGNER = address(0xA11CE);
    address private constant OTHER = address(0xB0B);

    mapping(uint256 nonce => bool) private _model;

    function setUp() public {
        harness = new NonceBitmapHarness();
    }

    function test_use_wordBoundaries() public {
        uint256[5] memory edges = [uint256(0), 255, 256, 511, type(uint256).max];
        for (uint256 i; i < edges.length; ++i) {
            harness.use(SIGNER, edges[i]);
            assertTrue(harness.isUsed(SIGNER, edges[i]));
            assertFalse(harness.isUsed(OTHER, edges[i]));
            assertTrue(harness.bitmap(SIGNER, edges[i] / BITS_PER_WORD) & (1 << (edges[i] % BITS_PER_WORD)) != 0);
            vm.expectRevert(abi.encodeWithSelector(IUnorderedNonces.NonceAlreadyUsed.selector, SIGNER, edges[i]));
            harness.use(SIGNER, edges[i]);
        }
        assertEq(harness.bitmap(SIGNER, 0), 1 | (1 << 255));
        assertEq(harness.bitmap(SIGNER, 1), 1 | (1 << 255));
    }

    function testFuzz_invalidate_setsExactlyTheMask(uint256 wordPos, uint256 mask, uint8 bit) public {
        wordPos = bound(wordPos, 0, type(uint256).max / BITS_PER_WORD);
        harness.invalidate(SIGNER, wordPos, mask);
        assertEq(harness.bitmap(SIGNER, wordPos), mask);
        uint256 nonce = wordPos * BITS_PER_WORD + bit;
        assertEq(harness.isUsed(SIGNER, nonce), mask & (1 << bit) != 0);
        assertEq(harness.bitmap(OTHER, wordPos), 0);
    }

    /// @dev Any sequence of uses and invalidations matches a set of used nonces.
    function testFuzz_matchesAModel(uint256[] calldata steps) public {
        uint256 n = steps.length < MAX_MODEL_STEPS ? steps.length : MAX_MODEL_STEPS;
        for (uint256 i; i < n; ++i) {
            uint256 nonce = steps[i] % MODEL_SPAN;
            if (steps[i] >> 255 == 1) {
                // invalidate the single nonce by its mask
                harness.invalidate(SIGNER, nonce / BITS_PER_WORD, 1 << (nonce % BITS_PER_WORD));
                _model[nonce] = true;
            } else if (_model[nonce]) {
                vm.expectRevert(abi.encodeWithSelector(IUnorderedNonces.NonceAlreadyUsed.selector, SIGNER, nonce));
                harness.use(SIGNER, nonce);
            } else {
                harness.use(SIGNER, nonce);
                _model[nonce] = true;
            }
        }
        for (uint256 nonce; nonce < MODEL_SPAN; ++nonce) {
            assertEq(harness.isUsed(SIGNER, nonce), _model[nonce]);
        }
    }
}
