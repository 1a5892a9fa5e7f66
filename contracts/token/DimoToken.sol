// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";
import {ERC20Capped} from "@openzeppelin/contracts/token/ERC20/extensions/ERC20Capped.sol";
import {ERC20Permit} from "@openzeppelin/contracts/token/ERC20/extensions/ERC20Permit.sol";
import {ERC20Votes} from "@openzeppelin/contracts/token/ERC20/extensions/ERC20Votes.sol";
import {Nonces} from "@openzeppelin/contracts/utils/Nonces.sol";

/// @title DimoToken
/// @notice The DIMO ERC-20: EIP-2612 permits and ERC-20 votes for governance, with a
///         fixed supply cap. The whole initial supply goes to one recipient at deployment
///         and nothing can mint afterwards, so the cap can never be exceeded.
contract DimoToken is ERC20Capped, ERC20Permit, ERC20Votes {
    /// @notice The hard cap on total supply: one billion DIMO.
    uint256 public constant MAX_SUPPLY = 1_000_000_000 ether;

    /// @notice The initial supply exceeds the cap.
    error InitialSupplyAboveCap(uint256 initialSupply, uint256 cap);
    /// @notice The initial supply recipient is the zero address.
    error ZeroRecipient();

    /// @param recipient receives the whole initial supply
    /// @param initialSupply amount minted once, at most `MAX_SUPPLY`
    constructor(address recipient, uint256 initialSupply)
        ERC20("Dimo", "DIMO")
        ERC20Capped(MAX_SUPPLY)
        ERC20Permit("Dimo")
    {
        if (recipient == address(0)) revert ZeroRecipient();
        if (initialSupply > MAX_SUPPLY) revert InitialSupplyAboveCap(initialSupply, MAX_SUPPLY);
        _mint(recipient, initialSupply);
    }

    /// @notice Votes are counted by timestamp, so governance periods read in seconds.
    /// @return the current timestamp as the ERC-6372 clock
    function clock() public view override returns (uint48) {
        return uint48(block.timestamp);
    }

    /// @notice The ERC-6372 clock description for timestamp-based votes.
    /// @return the machine-readable clock mode
    // solhint-disable-next-line func-name-mixedcase
    function CLOCK_MODE() public pure override returns (string memory) {
        return "mode=timestamp";
    }

    /// @inheritdoc Nonces
    function nonces(address owner) public view override(ERC20Permit, Nonces) returns (uint256) {
        return super.nonces(owner);
    }

    /// @dev The one balance-changing choke point: the cap check and the vote checkpoints.
    function _update(address from, address to, uint256 value) internal override(ERC20, ERC20Capped, ERC20Votes) {
        super._update(from, to, value);
    }
}
