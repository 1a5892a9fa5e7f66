// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";

/// @notice Benchmark baseline: a plain OpenZeppelin ERC20 with no extensions.
contract BaselineERC20 is ERC20 {
    constructor(address recipient, uint256 supply) ERC20("Baseline", "BASE") {
        _mint(recipient, supply);
    }
}
