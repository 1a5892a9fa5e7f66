// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {ReentrancyGuard} from "@openzeppelin/contracts/utils/ReentrancyGuard.sol";
import {Roles} from "../libraries/Roles.sol";
import {DaoAccessControl} from "./DaoAccessControl.sol";

/// @title Treasury
/// @notice The DAO treasury: receives protocol fees, steward-broker commissions and slashed
///         stake, and releases tokens only on a governance decision.
contract Treasury is DaoAccessControl, ReentrancyGuard {
    using SafeERC20 for IERC20;

    /// @notice The DAO role: may release funds.
    bytes32 public constant GOVERNOR_ROLE = Roles.GOVERNOR_ROLE;

    /// @notice Emitted when `from` deposits `amount` of `token` through `deposit`.
    event Received(address indexed token, address indexed from, uint256 amount);
    /// @notice Emitted when governance releases `amount` of `token` to `to`.
    event Released(address indexed token, address indexed to, uint256 amount);

    /// @notice A token address or recipient was the zero address.
    error ZeroAddress();
    /// @notice An amount of zero was given where a positive amount is required.
    error ZeroAmount();
    /// @notice The treasury holds less of `token` than asked for.
    error InsufficientBalance(address token, uint256 balance, uint256 requested);

    /// @param governor receives the default admin and GOVERNOR_ROLE (the DAO's timelock); a zero
    ///        governor reverts with AccessControlInvalidDefaultAdmin
    constructor(address governor) DaoAccessControl(governor) {}

    /// @notice Pulls `amount` of `token` from the caller (after `approve`) and records it.
    /// @dev Contracts that pay by plain transfer are visible in the token's Transfer events.
    /// @param token the ERC-20 to deposit
    /// @param amount how much to take from the caller
    function deposit(address token, uint256 amount) external nonReentrant {
        if (token == address(0)) revert ZeroAddress();
        if (amount == 0) revert ZeroAmount();
        IERC20(token).safeTransferFrom(msg.sender, address(this), amount);
        emit Received(token, msg.sender, amount);
    }

    /// @notice Sends `amount` of `token` to `to`. GOVERNOR only.
    /// @param token the ERC-20 to release
    /// @param to the recipient
    /// @param amount how much to send
    function release(address token, address to, uint256 amount)
        external
        onlyRole(GOVERNOR_ROLE)
        nonReentrant
    {
        if (token == address(0) || to == address(0)) revert ZeroAddress();
        if (amount == 0) revert ZeroAmount();
        uint256 balance = IERC20(token).balanceOf(address(this));
        if (balance < amount) revert InsufficientBalance(token, balance, amount);
        IERC20(token).safeTransfer(to, amount);
        emit Released(token, to, amount);
    }
}
