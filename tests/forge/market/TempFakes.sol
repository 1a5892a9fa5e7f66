// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

// TEMPORARY: a stand-in for Staking with the same entry points, until the real contract lands
// on main. The final tests use the real Staking; this file is deleted then.

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {Math} from "@openzeppelin/contracts/utils/math/Math.sol";
import {IStaking} from "../../../contracts/interfaces/IStaking.sol";
import {Roles} from "../../../contracts/libraries/Roles.sol";

contract TempStaking is AccessControl {
    bytes32 public constant GOVERNOR_ROLE = Roles.GOVERNOR_ROLE;
    bytes32 public constant SLASHER_ROLE = Roles.SLASHER_ROLE;
    bytes32 public constant MARKET_ROLE = Roles.MARKET_ROLE;

    IERC20 public immutable token;
    address public immutable treasury;
    mapping(address => mapping(IStaking.Role => bool)) public isWhitelisted;
    mapping(address => uint256) public activeStake;
    mapping(IStaking.Role => uint256) public base;
    mapping(IStaking.Role => uint256) public perSqrtUnit;
    mapping(address => uint256) public units;
    mapping(address => uint8) public tiers;
    uint16[4] public multipliers = [10_000, 15_000, 20_000, 30_000];

    constructor(address token_, address treasury_, address governor) {
        token = IERC20(token_);
        treasury = treasury_;
        _grantRole(DEFAULT_ADMIN_ROLE, governor);
        _grantRole(GOVERNOR_ROLE, governor);
    }

    function stake(uint256 amount) external {
        token.transferFrom(msg.sender, address(this), amount);
        activeStake[msg.sender] += amount;
    }

    function setWhitelisted(address account, IStaking.Role role, bool allowed) external onlyRole(GOVERNOR_ROLE) {
        isWhitelisted[account][role] = allowed;
    }

    function setCurve(IStaking.Role role, uint256 base_, uint256 perSqrtUnit_) external onlyRole(GOVERNOR_ROLE) {
        base[role] = base_;
        perSqrtUnit[role] = perSqrtUnit_;
    }

    function setUsage(address account, uint256 units_, uint8 tier) external onlyRole(MARKET_ROLE) {
        require(tier < 4, "tier");
        units[account] = units_;
        tiers[account] = tier;
    }

    function usageOf(address account) external view returns (uint256, uint8) {
        return (units[account], tiers[account]);
    }

    function requiredStake(address account, IStaking.Role role) public view returns (uint256) {
        return base[role] + perSqrtUnit[role] * Math.sqrt(units[account]) * multipliers[tiers[account]] / 10_000;
    }

    function isActive(address account, IStaking.Role role) external view returns (bool) {
        return isWhitelisted[account][role] && activeStake[account] >= requiredStake(account, role);
    }

    function stakeOf(address account) external view returns (uint256, uint256, uint64) {
        return (activeStake[account], 0, 0);
    }

    function slash(address account, uint256 amount, uint256, bytes32, string calldata)
        external
        onlyRole(SLASHER_ROLE)
        returns (uint256)
    {
        activeStake[account] -= amount;
        token.transfer(treasury, amount);
        return 0;
    }
}
