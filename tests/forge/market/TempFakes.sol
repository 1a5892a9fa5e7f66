// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

// TEMPORARY: stand-ins for VehicleId and Staking until their contracts land on main.
// The final tests use the real contracts; this file is deleted then.

import {IStaking} from "../../../contracts/interfaces/IStaking.sol";

contract TempVehicleId {
    mapping(uint256 => address) public ownerOf;
    mapping(uint256 => uint64) public generation;
    uint256 public count;

    function mint(address to) external returns (uint256 id) {
        id = ++count;
        ownerOf[id] = to;
    }

    function transferFrom(address from, address to, uint256 id) external {
        require(ownerOf[id] == from && msg.sender == from, "not owner");
        ownerOf[id] = to;
        generation[id] += 1;
    }
}

contract TempStaking {
    mapping(address => mapping(IStaking.Role => bool)) public isActive;
    mapping(address => uint256) public units;
    mapping(address => uint8) public tiers;
    uint256 public usageCalls;

    function setActive(address account, IStaking.Role role, bool active) external {
        isActive[account][role] = active;
    }

    function setUsage(address account, uint256 units_, uint8 tier) external {
        units[account] = units_;
        tiers[account] = tier;
        usageCalls += 1;
    }
}
