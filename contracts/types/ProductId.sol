// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

/// @notice The id of a DataProducts product or bundle, counting from 1 (0: none). Its own type so
///         that a product id passed where a vehicle id, a quantity, an amount or a leaf index
///         belongs, or the reverse, is a compile error. The ABI sees `uint256`: selectors, event
///         topics and encodings are those of `uint256`.
type ProductId is uint256;
