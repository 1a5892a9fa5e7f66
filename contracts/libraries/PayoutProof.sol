// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

/// @title PayoutProof
/// @notice Payout leaves and proofs: the OpenZeppelin StandardMerkleTree leaves
///         `keccak256(bytes.concat(keccak256(abi.encode(account, cumulative))))` of the
///         Marketplace's cumulative member root (DESIGN.md §3.6) and
///         `keccak256(bytes.concat(keccak256(abi.encode(index, account, amount))))` of Staking's
///         slash payouts, and the sorted-pair root a calldata proof leads to, exactly as
///         OpenZeppelin's `MerkleProof` computes them, without memory allocation (the claim is
///         the member's hot path).
library PayoutProof {
    /// @notice The StandardMerkleTree leaf of `(account, cumulative)`.
    function leaf(address account, uint256 cumulative) internal pure returns (bytes32 hash) {
        assembly ("memory-safe") {
            // abi.encode(account, cumulative) in the free memory, which is left unallocated.
            let ptr := mload(0x40)
            mstore(ptr, and(account, 0xffffffffffffffffffffffffffffffffffffffff))
            mstore(add(ptr, 0x20), cumulative)
            mstore(0x00, keccak256(ptr, 0x40))
            hash := keccak256(0x00, 0x20)
        }
    }

    /// @notice The StandardMerkleTree leaf of `(index, account, amount)`.
    function leaf(uint256 index, address account, uint256 amount) internal pure returns (bytes32 hash) {
        assembly ("memory-safe") {
            // abi.encode(index, account, amount) in the free memory, which is left unallocated.
            let ptr := mload(0x40)
            mstore(ptr, index)
            mstore(add(ptr, 0x20), and(account, 0xffffffffffffffffffffffffffffffffffffffff))
            mstore(add(ptr, 0x40), amount)
            mstore(0x00, keccak256(ptr, 0x60))
            hash := keccak256(0x00, 0x20)
        }
    }

    /// @notice The root that `proof` leads to from `leafHash`, hashing each pair smaller first
    ///         (OpenZeppelin `MerkleProof.processProofCalldata` with its commutative keccak256).
    /// @dev The ABI decoder has already checked that `proof` lies within the calldata.
    function processProof(bytes32[] calldata proof, bytes32 leafHash) internal pure returns (bytes32 computed) {
        assembly ("memory-safe") {
            computed := leafHash
            let end := add(proof.offset, shl(5, proof.length))
            for { let p := proof.offset } lt(p, end) { p := add(p, 0x20) } {
                let sibling := calldataload(p)
                // The smaller of the two goes first: the scratch word at 0x00, the other at 0x20.
                let siblingFirst := lt(sibling, computed)
                mstore(shl(5, siblingFirst), computed)
                mstore(shl(5, iszero(siblingFirst)), sibling)
                computed := keccak256(0x00, 0x40)
            }
        }
    }
}
