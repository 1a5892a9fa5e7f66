// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {IUnorderedNonces} from "../../../contracts/interfaces/IUnorderedNonces.sol";

/// @notice The lowest nonce of `signer` not used or cancelled on `verifier`: what a signer that
///         numbers its messages from 0 signs next (the suites' stand-in for a sequential nonce).
function freeNonce(IUnorderedNonces verifier, address signer) view returns (uint256 nonce) {
    uint256 word = verifier.nonceBitmap(signer, 0);
    while (word == type(uint256).max) {
        nonce += 256;
        word = verifier.nonceBitmap(signer, nonce >> 8);
    }
    while (word & (1 << (nonce & 0xff)) != 0) {
        ++nonce;
    }
}
