// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";
import {ERC20Capped} from "@openzeppelin/contracts/token/ERC20/extensions/ERC20Capped.sol";
import {ReentrancyGuardTransient} from "@openzeppelin/contracts/utils/ReentrancyGuardTransient.sol";
import {Test} from "forge-std/Test.sol";
import {Treasury} from "../../../contracts/governance/Treasury.sol";
import {Staking} from "../../../contracts/staking/Staking.sol";
import {IStaking} from "../../../contracts/interfaces/IStaking.sol";
import {TestMerkle} from "./TestMerkle.sol";

/// @notice An adversarial ERC-20 whose transfers call back into Staking, recording what the
///         callback got. DIMO has no hooks; this checks the guard for any token a fork might use.
contract HookToken is ERC20Capped {
    bytes public callback;
    bytes public callbackResult;
    bool public callbackSucceeded;

    constructor() ERC20("Hook", "HOOK") ERC20Capped(1_000_000_000 ether) {
        _mint(msg.sender, 1_000_000 ether);
    }

    function arm(bytes calldata data) external {
        callback = data;
    }

    function _update(address from, address to, uint256 value) internal override(ERC20Capped) {
        super._update(from, to, value);
        bytes memory data = callback;
        if (data.length != 0 && from != address(0)) {
            delete callback;
            (callbackSucceeded, callbackResult) = msg.sender.call(data);
        }
    }
}

contract StakingReentrancyTest is Test {
    HookToken private token;
    Staking private staking;
    address private governor = address(0x600);
    address private slasher = address(0x5a5);

    function setUp() public {
        token = new HookToken();
        staking = new Staking(address(token), address(new Treasury(governor)), governor);
        bytes32 role = staking.SLASHER_ROLE();
        vm.prank(governor);
        staking.grantRole(role, slasher);
        token.approve(address(staking), type(uint256).max);
        staking.stake(100 ether);
    }

    function _assertGuardTripped() private view {
        assertFalse(token.callbackSucceeded(), "the reentrant call went through");
        assertEq(
            keccak256(token.callbackResult()),
            keccak256(abi.encodeWithSelector(ReentrancyGuardTransient.ReentrancyGuardReentrantCall.selector))
        );
    }

    function test_withdraw_cannotBeReentered() public {
        staking.requestUnstake(50 ether);
        vm.warp(block.timestamp + staking.unbondingPeriod());
        token.arm(abi.encodeCall(IStaking.withdraw, ()));
        staking.withdraw();
        _assertGuardTripped();
        (uint256 active, uint256 unbonding,) = staking.stakeOf(address(this));
        assertEq(active + unbonding, 50 ether);
        assertEq(token.balanceOf(address(staking)), 50 ether);
    }

    function test_claimSlash_cannotBeReentered() public {
        address[] memory owners = new address[](2);
        uint256[] memory amounts = new uint256[](2);
        (owners[0], owners[1]) = (address(this), address(0xBEEF));
        (amounts[0], amounts[1]) = (10 ether, 10 ether);
        TestMerkle.Tree memory tree = TestMerkle.build(owners, amounts);
        vm.startPrank(slasher);
        uint256 slashId = staking.proposeSlash(address(this), 20 ether, IStaking.SlashSubject.Product, 1, "x");
        staking.slash(slashId, 20 ether, TestMerkle.root(tree));
        vm.stopPrank();
        bytes32[] memory proof = TestMerkle.proof(tree, 0);
        token.arm(abi.encodeCall(IStaking.claimSlash, (slashId, 0, address(this), 10 ether, proof)));
        staking.claimSlash(slashId, 0, address(this), 10 ether, proof);
        _assertGuardTripped();
        (, uint256 remaining,) = staking.slashPool(slashId);
        assertEq(remaining, 10 ether);
    }

    function test_stake_cannotBeReenteredFromTransferFrom() public {
        token.arm(abi.encodeCall(IStaking.stake, (1 ether)));
        staking.stake(5 ether);
        _assertGuardTripped();
        (uint256 active,,) = staking.stakeOf(address(this));
        assertEq(active, 105 ether);
    }
}
