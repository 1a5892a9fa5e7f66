// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {MerkleProof} from "@openzeppelin/contracts/utils/cryptography/MerkleProof.sol";
import {Test} from "../lib/Test.sol";
import {PayoutProof} from "../../../contracts/libraries/PayoutProof.sol";
import {MarketMerkle} from "./MarketMerkle.sol";

contract PayoutProofHarness {
    function leaf(uint256 index, address account, uint256 amount) external pure returns (bytes32) {
        return PayoutProof.leaf(index, account, amount);
    }

    function cumulativeLeaf(address account, uint256 cumulative) external pure returns (bytes32) {
        return PayoutProof.leaf(account, cumulative);
    }

    /// @dev The (account, cumulative) leaf of an address with dirty upper bits, then memory use after it.
    function cumulativeLeafDirty(uint256 rawAccount, uint256 cumulative)
        external
        pure
        returns (bytes32 hash, bytes memory kept)
    {
        address account;
        assembly {
            account := rawAccount
        }
        kept = abi.encode(uint256(0xabc), uint256(0xdef));
        hash = PayoutProof.leaf(account, cumulative);
        bytes memory after_ = abi.encode(uint256(1));
        require(after_.length == 32, "allocation after the leaf");
    }

    function processProof(bytes32[] calldata proof, bytes32 leafHash) external pure returns (bytes32) {
        return PayoutProof.processProof(proof, leafHash);
    }

    function processProofOZ(bytes32[] calldata proof, bytes32 leafHash) external pure returns (bytes32) {
        return MerkleProof.processProofCalldata(proof, leafHash);
    }

    /// @dev An address whose upper 96 bits are dirty, as a careless caller could hand over.
    function leafDirty(uint256 index, uint256 rawAccount, uint256 amount) external pure returns (bytes32) {
        address account;
        assembly {
            account := rawAccount
        }
        return PayoutProof.leaf(index, account, amount);
    }

    /// @dev The leaf, then memory use after it: the assembly must not corrupt allocated memory.
    function leafKeepsMemory(uint256 index, address account, uint256 amount)
        external
        pure
        returns (bytes32 hash, bytes memory kept)
    {
        kept = abi.encode(uint256(0xabc), uint256(0xdef));
        hash = PayoutProof.leaf(index, account, amount);
        bytes memory after_ = abi.encode(uint256(1));
        require(after_.length == 32, "allocation after the leaf");
    }
}

/// @notice PayoutProof computes exactly what OpenZeppelin and the StandardMerkleTree format do.
contract PayoutProofTest is Test {
    PayoutProofHarness internal h;

    function setUp() public {
        h = new PayoutProofHarness();
    }

    function testFuzz_leaf_isTheStandardMerkleTreeLeaf(uint256 index, address account, uint256 amount) public view {
        assertEq(h.leaf(index, account, amount), keccak256(bytes.concat(keccak256(abi.encode(index, account, amount)))));
    }

    function testFuzz_cumulativeLeaf_isTheStandardMerkleTreeLeaf(address account, uint256 cumulative) public view {
        bytes32 expected = keccak256(bytes.concat(keccak256(abi.encode(account, cumulative))));
        assertEq(h.cumulativeLeaf(account, cumulative), expected);
        assertEq(MarketMerkle.leaf(account, cumulative), expected);
    }

    function testFuzz_cumulativeLeaf_ignoresDirtyBitsAndKeepsMemory(uint256 dirty, uint256 cumulative) public view {
        (bytes32 hash, bytes memory kept) = h.cumulativeLeafDirty(dirty, cumulative);
        assertEq(hash, MarketMerkle.leaf(address(uint160(dirty)), cumulative));
        assertEq(kept, abi.encode(uint256(0xabc), uint256(0xdef)));
    }

    function testFuzz_leaf_ignoresDirtyAddressBits(uint256 index, uint256 dirty, uint256 amount) public view {
        // The library masks bits above the address, so the leaf is the one of the clean address.
        assertEq(h.leafDirty(index, dirty, amount), MarketMerkle.leaf(index, address(uint160(dirty)), amount));
    }

    function testFuzz_processProof_matchesOpenZeppelin(bytes32 leafHash, bytes32[] calldata proof) public view {
        assertEq(h.processProof(proof, leafHash), h.processProofOZ(proof, leafHash));
    }

    function test_processProof_emptyProofIsTheLeaf() public view {
        bytes32[] memory none = new bytes32[](0);
        assertEq(h.processProof(none, keccak256("leaf")), keccak256("leaf"));
    }

    function testFuzz_processProof_equalSiblings(bytes32 x) public view {
        bytes32[] memory proof = new bytes32[](1);
        proof[0] = x;
        assertEq(h.processProof(proof, x), keccak256(abi.encode(x, x)));
    }

    function testFuzz_treeProofsLeadToTheRoot(uint8 size, uint8 pick, uint256 seed) public view {
        uint256 n = bound(size, 1, 40);
        uint256 i = bound(pick, 0, n - 1);
        bytes32[] memory leaves = new bytes32[](n);
        for (uint256 k; k < n; ++k) {
            leaves[k] = h.leaf(k, address(uint160(uint256(keccak256(abi.encode(seed, k))))), seed % (k + 1));
        }
        assertEq(h.processProof(MarketMerkle.proof(leaves, i), leaves[i]), MarketMerkle.root(leaves));
    }

    function test_leaf_leavesAllocatedMemoryAlone() public view {
        (bytes32 hash, bytes memory kept) = h.leafKeepsMemory(7, address(0xbeef), 9);
        assertEq(hash, MarketMerkle.leaf(7, address(0xbeef), 9));
        assertEq(kept, abi.encode(uint256(0xabc), uint256(0xdef)));
    }
}
