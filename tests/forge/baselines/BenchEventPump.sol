// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {IVehicleId} from "../../../contracts/interfaces/IVehicleId.sol";

/// @title BenchEventPump
/// @notice Benchmark helper (not part of the protocol): makes the protocol contracts emit many
///         events per transaction so the indexer benchmark has a large history quickly. Every
///         event still comes from a deployment contract (DimoToken, VehicleId).
contract BenchEventPump {
    /// @notice `token.transferFrom(msg.sender, to[i], amount)` for every `to[i]` (approve first):
    ///         one ERC-20 Transfer each.
    /// @param token the ERC-20
    /// @param to the recipients
    /// @param amount what each receives
    function transfers(IERC20 token, address[] calldata to, uint256 amount) external {
        for (uint256 i; i < to.length; ++i) {
            // slither-disable-next-line unchecked-transfer,arbitrary-send-erc20
            token.transferFrom(msg.sender, to[i], amount);
        }
    }

    /// @notice Mints `count` vehicles to this contract and grants `grantee` a key on each:
    ///         ERC-721 Transfer, VehicleMinted and KeyGranted per vehicle. Needs MINTER_ROLE.
    /// @param vehicles the VehicleId contract
    /// @param connectionId an active connection
    /// @param salt makes the VIN hashes unique across calls
    /// @param count how many vehicles
    /// @param grantee who receives the keys
    function mintAndGrant(IVehicleId vehicles, uint256 connectionId, uint256 salt, uint256 count, address grantee)
        external
    {
        for (uint256 i; i < count; ++i) {
            uint256 id = vehicles.mint(address(this), connectionId, keccak256(abi.encode(salt, i)));
            vehicles.grant(id, grantee, 1 << 3, type(uint64).max, keccak256(abi.encode(id)));
        }
    }

    /// @notice Accepts vehicle NFTs sent with safeTransferFrom.
    /// @return the ERC-721 receiver selector
    function onERC721Received(address, address, uint256, bytes calldata) external pure returns (bytes4) {
        return this.onERC721Received.selector;
    }
}
