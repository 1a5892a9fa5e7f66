// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {ERC721} from "@openzeppelin/contracts/token/ERC721/ERC721.sol";

/// @notice Benchmark baseline: a plain OpenZeppelin ERC721 with no extensions; `mint` is `_mint`
///         behind a counter, as VehicleId's ids are.
contract BaselineERC721 is ERC721 {
    uint256 private _lastId;

    constructor() ERC721("Baseline", "BASE") {}

    /// @notice Mints the next id to `to`.
    /// @param to the receiver
    /// @return id the new token id (from 1)
    function mint(address to) external returns (uint256 id) {
        id = ++_lastId;
        _mint(to, id);
    }
}
