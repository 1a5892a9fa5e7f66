// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {IStaking} from "../../../contracts/interfaces/IStaking.sol";
import {GovernanceBase} from "./GovernanceBase.sol";

/// @notice Delegation survives staking: a staker's delegate keeps its votes across stake,
///         unstake request, withdraw and slash (which takes the slashed votes with the stake),
///         and no DIMO is ever counted twice (on the token and in Staking).
contract StakedVotesTest is GovernanceBase {
    uint256 internal constant AMOUNT = 1_000 ether;
    address internal delegatee;

    function setUp() public override {
        super.setUp();
        delegatee = makeAddr("delegatee");
        _delegate(bob, delegatee);
        vm.warp(block.timestamp + 1);
    }

    /// @dev The delegate's votes as the Governor counts them, at the last second.
    function _votes(address account) internal returns (uint256) {
        vm.warp(block.timestamp + 1);
        return governor.getVotes(account, block.timestamp - 1);
    }

    function _sumOfVotes() internal returns (uint256) {
        address[4] memory accounts = [alice, bob, carol, delegatee];
        uint256 sum;
        for (uint256 i; i < accounts.length; ++i) {
            sum += _votes(accounts[i]);
        }
        return sum;
    }

    function test_delegateKeepsVotes_acrossStakeUnstakeWithdraw() public {
        uint256 held = token.balanceOf(bob);
        assertEq(_votes(delegatee), held);

        _stake(bob, AMOUNT);
        assertEq(staking.delegates(bob), delegatee, "the stake follows the token delegation");
        assertEq(token.getVotes(delegatee), held - AMOUNT);
        assertEq(staking.getVotes(delegatee), AMOUNT);
        assertEq(_votes(delegatee), held, "stake");

        vm.prank(bob);
        staking.requestUnstake(AMOUNT);
        assertEq(_votes(delegatee), held, "unstake request");

        vm.warp(block.timestamp + staking.unbondingPeriod());
        vm.prank(bob);
        staking.withdraw();
        assertEq(staking.getVotes(delegatee), 0);
        assertEq(_votes(delegatee), held, "withdraw");
    }

    function test_slash_takesTheSlashedVotes_only() public {
        uint256 held = token.balanceOf(bob);
        _stake(bob, AMOUNT);
        vm.prank(bob);
        staking.requestUnstake(AMOUNT / 4);
        _slashNow(bob, AMOUNT / 2, "misuse");
        assertEq(staking.getVotes(delegatee), AMOUNT / 2);
        assertEq(_votes(delegatee), held - AMOUNT / 2, "slash");
        // The slashed DIMO is the Treasury's, which never votes.
        assertEq(_votes(address(treasury)), 0);
        assertEq(_votes(address(staking)), 0);
    }

    function test_noDoubleCount_whenTheStakerRedelegatesEitherSide() public {
        uint256 total = _sumOfVotes();
        _stake(bob, AMOUNT);
        assertEq(_sumOfVotes(), total);
        // bob moves his token votes to carol: the staked ones stay with delegatee until he
        // moves them in Staking too.
        _delegate(bob, carol);
        assertEq(_votes(delegatee), AMOUNT);
        vm.prank(bob);
        staking.delegate(carol);
        assertEq(_votes(delegatee), 0);
        assertEq(_sumOfVotes(), total);
    }

    function test_undelegatedHolder_stakesUndelegatedVotes() public {
        // carol has delegated to nobody: her DIMO has no votes on the token, nor once staked.
        _stake(carol, AMOUNT);
        assertEq(staking.delegates(carol), address(0));
        assertEq(staking.getVotes(carol), 0);
        // Delegating her stake later counts every staked DIMO once.
        vm.prank(carol);
        staking.delegate(carol);
        assertEq(staking.getVotes(carol), AMOUNT);
    }

    function test_stakeAgain_afterDelegatingOnTheToken_countsEachDimoOnce() public {
        _stake(carol, AMOUNT);
        _delegate(carol, carol);
        _stake(carol, AMOUNT);
        assertEq(staking.getVotes(carol), 2 * AMOUNT);
        assertEq(_votes(carol), token.balanceOf(carol) + 2 * AMOUNT);
    }

    /// forge-config: default.fuzz.runs = 256
    function testFuzz_votesMatchHoldingsThroughAnyMix(
        uint256 stakeAmount,
        uint256 unstakeAmount,
        uint256 slashAmount,
        bool withdraws
    ) public {
        uint256 held = token.balanceOf(bob);
        stakeAmount = bound(stakeAmount, 1, held);
        unstakeAmount = bound(unstakeAmount, 0, stakeAmount);
        _stake(bob, stakeAmount);
        if (unstakeAmount != 0) {
            vm.prank(bob);
            staking.requestUnstake(unstakeAmount);
        }
        slashAmount = bound(slashAmount, 0, stakeAmount);
        if (slashAmount != 0) {
            _slashNow(bob, slashAmount, "fuzz");
        }
        (, uint256 unbonding,) = staking.stakeOf(bob);
        if (withdraws && unbonding != 0) {
            vm.warp(block.timestamp + staking.unbondingPeriod());
            vm.prank(bob);
            staking.withdraw();
        }
        (uint256 active, uint256 stillUnbonding,) = staking.stakeOf(bob);
        // The delegate's votes are exactly what bob still owns, wallet and stake, once each.
        assertEq(_votes(delegatee), token.balanceOf(bob) + active + stillUnbonding);
        assertEq(_votes(delegatee), held - slashAmount);
        assertEq(staking.getPastTotalSupply(block.timestamp - 1), active + stillUnbonding);
    }

    /// @dev The slasher proposes and at once executes a slash of `amount` from `account`.
    function _slashNow(address account, uint256 amount, string memory reason) internal {
        vm.startPrank(slasher);
        uint256 slashId = staking.proposeSlash(account, amount, IStaking.SlashSubject.Product, 0, reason);
        staking.slash(slashId, 0, bytes32(0));
        vm.stopPrank();
    }
}
