// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

/// @title TestMerkle
/// @notice Builds OpenZeppelin StandardMerkleTree trees of `(uint256 index, address account,
///         uint256 amount)` leaves in Solidity, for tests: leaves sorted by hash, laid out as
///         the npm merkle-tree library of OpenZeppelin does (a heap array, leaf i of the sorted order at
///         `length - 1 - i`), sorted-pair node hashing. Quadratic sort: small trees only.
library TestMerkle {
    struct Tree {
        bytes32[] nodes;
        uint256[] treeIndexOf; // value index -> position in `nodes`
    }

    function leaf(uint256 index, address account, uint256 amount) internal pure returns (bytes32) {
        return keccak256(bytes.concat(keccak256(abi.encode(index, account, amount))));
    }

    function hashPair(bytes32 a, bytes32 b) internal pure returns (bytes32) {
        return a < b ? keccak256(abi.encode(a, b)) : keccak256(abi.encode(b, a));
    }

    /// @notice The tree of leaves `(i, accounts[i], amounts[i])`.
    function build(address[] memory accounts, uint256[] memory amounts) internal pure returns (Tree memory tree) {
        uint256 n = accounts.length;
        require(n > 0 && n == amounts.length, "TestMerkle: bad leaves");
        bytes32[] memory hashes = new bytes32[](n);
        uint256[] memory order = new uint256[](n);
        for (uint256 i; i < n; ++i) {
            hashes[i] = leaf(i, accounts[i], amounts[i]);
            order[i] = i;
        }
        for (uint256 i = 1; i < n; ++i) {
            uint256 j = i;
            while (j > 0 && hashes[order[j - 1]] > hashes[order[j]]) {
                (order[j - 1], order[j]) = (order[j], order[j - 1]);
                --j;
            }
        }
        tree.nodes = new bytes32[](2 * n - 1);
        tree.treeIndexOf = new uint256[](n);
        for (uint256 k; k < n; ++k) {
            uint256 position = tree.nodes.length - 1 - k;
            tree.nodes[position] = hashes[order[k]];
            tree.treeIndexOf[order[k]] = position;
        }
        for (uint256 i = tree.nodes.length - n; i > 0; --i) {
            uint256 node = i - 1;
            tree.nodes[node] = hashPair(tree.nodes[2 * node + 1], tree.nodes[2 * node + 2]);
        }
    }

    function root(Tree memory tree) internal pure returns (bytes32) {
        return tree.nodes[0];
    }

    /// @notice The proof of value `valueIndex` (siblings from the leaf up).
    function proof(Tree memory tree, uint256 valueIndex) internal pure returns (bytes32[] memory siblings) {
        uint256 position = tree.treeIndexOf[valueIndex];
        uint256 depth;
        for (uint256 p = position; p > 0; p = (p - 1) / 2) {
            ++depth;
        }
        siblings = new bytes32[](depth);
        for (uint256 d; d < depth; ++d) {
            siblings[d] = tree.nodes[position % 2 == 1 ? position + 1 : position - 1];
            position = (position - 1) / 2;
        }
    }
}
