// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {IUnorderedNonces} from "../../../contracts/interfaces/IUnorderedNonces.sol";

/// @notice The lowest nonce of `signer` not used or cancelled on `verifier`: what a signer that
///         numbers its messages from 0 signs next (the suites' stand-in for a sequential nonce).
function freeNonce(IUnorderedNonces verifier, address signer) view returns (uint256) {
    for (uint256 wordPos;; ++wordPos) {
        uint256 word = verifier.nonceBitmap(signer, wordPos);
        if (word == type(uint256).max) continue;
        for (uint256 bit;; ++bit) {
            if (word & (1 << bit) == 0) return (wordPos << 8) | bit;
        }
    }
}
