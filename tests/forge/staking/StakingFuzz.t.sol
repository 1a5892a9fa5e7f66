// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {IStaking} from "../../../contracts/interfaces/IStaking.sol";
import {LockupCurve} from "../../../contracts/libraries/LockupCurve.sol";
import {StakingBase} from "./StakingBase.sol";
import {TestMerkle} from "./TestMerkle.sol";

/// @notice Fuzzed sequences: stake / unstake / withdraw around the unbonding boundary, slashes
///         against any split of active and unbonding stake, the curve through the contract.
contract StakingFuzzTest is StakingBase {
    function testFuzz_withdraw_opensExactlyAtTheBoundary(uint256 staked, uint256 unstaked, uint64 period) public {
        staked = bound(staked, 1, FUNDS);
        unstaked = bound(unstaked, 1, staked);
        period = uint64(bound(period, staking.MIN_UNBONDING_PERIOD(), staking.MAX_UNBONDING_PERIOD()));
        vm.prank(governor);
        staking.setUnbondingPeriod(period);

        _stake(alice, staked);
        _requestUnstake(alice, unstaked);
        uint64 releaseAt = _releaseAt(alice);
        assertEq(uint256(releaseAt), block.timestamp + period);

        vm.warp(uint256(releaseAt) - 1);
        vm.prank(alice);
        vm.expectRevert(
            abi.encodeWithSelector(IStaking.UnbondingNotMatured.selector, alice, releaseAt, uint256(releaseAt) - 1)
        );
        staking.withdraw();

        vm.warp(releaseAt);
        vm.prank(alice);
        staking.withdraw();
        assertEq(token.balanceOf(alice), FUNDS - staked + unstaked);
        assertEq(_active(alice), staked - unstaked);
        assertEq(_unbonding(alice), 0);
    }

    function testFuzz_requestUnstake_restartsTheWholePeriod(uint256 first, uint256 second, uint256 gap) public {
        first = bound(first, 1, FUNDS / 2);
        second = bound(second, 1, FUNDS / 2);
        gap = bound(gap, 0, 2 * staking.unbondingPeriod());
        _stake(alice, first + second);
        _requestUnstake(alice, first);
        uint64 firstRelease = _releaseAt(alice);
        vm.warp(block.timestamp + gap);
        _requestUnstake(alice, second);
        uint64 secondRelease = _releaseAt(alice);
        assertEq(uint256(secondRelease), block.timestamp + staking.unbondingPeriod());
        assertGe(secondRelease, firstRelease);
        assertEq(_unbonding(alice), first + second);

        // Nothing comes out before the restarted period ends, not even the first request.
        if (block.timestamp < secondRelease) {
            vm.warp(uint256(secondRelease) - 1);
            vm.prank(alice);
            vm.expectRevert(
                abi.encodeWithSelector(
                    IStaking.UnbondingNotMatured.selector, alice, secondRelease, uint256(secondRelease) - 1
                )
            );
            staking.withdraw();
        }
        vm.warp(secondRelease);
        vm.prank(alice);
        staking.withdraw();
        assertEq(token.balanceOf(alice), FUNDS);
    }

    /// @notice A sequence of up to 8 fuzzed steps for one account; after each step the account's
    ///         books equal what went in minus what came out.
    function testFuzz_sequence_booksBalance(uint256[8] memory steps) public {
        uint256 deposited;
        uint256 withdrawn;
        for (uint256 i; i < steps.length; ++i) {
            uint256 op = steps[i] % 4;
            uint256 value = steps[i] >> 2;
            (uint256 active, uint256 unbonding, uint64 releaseAt) = staking.stakeOf(alice);
            if (op == 0) {
                uint256 amount = bound(value, 1, FUNDS / 4);
                if (token.balanceOf(alice) < amount) continue;
                _stake(alice, amount);
                deposited += amount;
            } else if (op == 1 && active > 0) {
                _requestUnstake(alice, bound(value, 1, active));
            } else if (op == 2) {
                // forward to one second before, at, or one second after the release
                uint256 target = uint256(releaseAt) + (value % 3);
                if (releaseAt > 0 && target - 1 > block.timestamp) vm.warp(target - 1);
            } else if (op == 3 && unbonding > 0) {
                vm.prank(alice);
                if (block.timestamp < releaseAt) {
                    vm.expectRevert(
                        abi.encodeWithSelector(IStaking.UnbondingNotMatured.selector, alice, releaseAt, block.timestamp)
                    );
                    staking.withdraw();
                } else {
                    staking.withdraw();
                    withdrawn += unbonding;
                }
            }
            (active, unbonding,) = staking.stakeOf(alice);
            assertEq(active + unbonding, deposited - withdrawn, "books");
            assertEq(token.balanceOf(address(staking)), deposited - withdrawn, "balance");
            assertEq(token.balanceOf(alice), FUNDS - deposited + withdrawn, "wallet");
        }
    }

    function testFuzz_slash_takesActiveThenUnbonding(uint256 staked, uint256 unstaked, uint256 amount) public {
        staked = bound(staked, 1, FUNDS);
        unstaked = bound(unstaked, 0, staked);
        amount = bound(amount, 1, staked);
        _stake(alice, staked);
        if (unstaked > 0) _requestUnstake(alice, unstaked);
        uint256 active = staked - unstaked;

        _slash(alice, amount, 0, bytes32(0));
        uint256 fromActive = amount < active ? amount : active;
        assertEq(_active(alice), active - fromActive);
        assertEq(_unbonding(alice), unstaked - (amount - fromActive));
        assertEq(token.balanceOf(address(treasury)), amount);
        assertEq(token.balanceOf(address(staking)), staked - amount);
    }

    function testFuzz_slash_takesAtMostWhatTheAccountHas(uint256 staked, uint256 unstaked, uint256 excess) public {
        staked = bound(staked, 1, FUNDS);
        unstaked = bound(unstaked, 0, staked);
        excess = bound(excess, 1, FUNDS);
        _stake(alice, staked);
        if (unstaked > 0) _requestUnstake(alice, unstaked);
        uint256 slashId = _propose(alice, staked + excess);
        vm.expectEmit(address(staking));
        emit IStaking.SlashApplied(slashId, alice, staked - unstaked, unstaked, 0);
        assertEq(_execute(slashId, 0, bytes32(0)), staked, "capped at active + unbonding");
        assertEq(_active(alice) + _unbonding(alice), 0);
        assertEq(token.balanceOf(address(treasury)), staked);
    }

    function testFuzz_slash_unstakingFirstNeverEscapes(uint256 staked, uint256 amount, uint256 delay) public {
        staked = bound(staked, 1, FUNDS);
        amount = bound(amount, 1, staked);
        delay = bound(delay, 0, staking.unbondingPeriod() - 1);
        _stake(alice, staked);
        _requestUnstake(alice, staked); // everything on its way out
        vm.warp(block.timestamp + delay); // the slash lands before release
        _slash(alice, amount, 0, bytes32(0));
        vm.warp(_releaseAt(alice));
        if (staked > amount) {
            vm.prank(alice);
            staking.withdraw();
        }
        assertEq(token.balanceOf(alice), FUNDS - amount);
    }

    function testFuzz_claims_neverPayMoreThanThePool(uint256[3] memory leafAmounts, uint256 toImpacted) public {
        for (uint256 i; i < 3; ++i) {
            leafAmounts[i] = bound(leafAmounts[i], 1, 100 ether);
        }
        toImpacted = bound(toImpacted, 1, 300 ether);
        _stake(alice, 300 ether);
        TestMerkle.Tree memory tree =
            _tree(_three(bob, carol, stranger), _three(leafAmounts[0], leafAmounts[1], leafAmounts[2]));
        uint256 slashId = _slash(alice, 300 ether, toImpacted, TestMerkle.root(tree));
        address[] memory owners = _three(bob, carol, stranger);
        uint256 paid;
        for (uint256 i; i < 3; ++i) {
            uint256 remaining = _remaining(slashId);
            bytes32[] memory proof = TestMerkle.proof(tree, i);
            if (leafAmounts[i] > remaining) {
                vm.expectRevert(
                    abi.encodeWithSelector(IStaking.ClaimExceedsPool.selector, slashId, leafAmounts[i], remaining)
                );
                staking.claimSlash(slashId, i, owners[i], leafAmounts[i], proof);
            } else {
                staking.claimSlash(slashId, i, owners[i], leafAmounts[i], proof);
                paid += leafAmounts[i];
            }
        }
        assertLe(paid, toImpacted);
        assertEq(_remaining(slashId), toImpacted - paid);
        assertEq(token.balanceOf(address(staking)), toImpacted - paid);
    }

    function testFuzz_requiredStake_matchesTheLibrary(
        uint128 base,
        uint128 perSqrtUnit,
        uint64 units,
        uint8 tier,
        uint8 roleSeed
    ) public {
        tier = uint8(bound(tier, 0, 3));
        IStaking.Role role = IStaking.Role(bound(roleSeed, 0, 2));
        base = uint128(bound(base, 0, SUPPLY / 2)); // within what the supply can meet (setCurve)
        perSqrtUnit = uint128(bound(perSqrtUnit, 0, 100 ether));
        units = uint64(bound(units, 0, staking.MAX_UNITS()));
        _setCurve(role, base, perSqrtUnit);
        _setUsage(alice, units, tier);
        assertEq(
            staking.requiredStake(alice, role),
            LockupCurve.requiredStake(base, perSqrtUnit, units, staking.tierMultiplierBps(tier))
        );
    }

    function testFuzz_requestUnstake_keepsTheRequirement(uint256 staked, uint256 unstaked, uint128 base, uint64 units)
        public
    {
        staked = bound(staked, 1, FUNDS);
        unstaked = bound(unstaked, 1, staked);
        base = uint128(bound(base, 0, FUNDS));
        units = uint64(bound(units, 0, staking.MAX_UNITS()));
        _setCurve(IStaking.Role.Broker, base, 1 ether);
        _setUsage(alice, units, 2);
        _whitelist(alice, IStaking.Role.Broker);
        _stake(alice, staked);
        uint256 required = staking.requiredStake(alice, IStaking.Role.Broker);
        vm.prank(alice);
        if (staked - unstaked < required) {
            vm.expectRevert(
                abi.encodeWithSelector(
                    IStaking.StakeBelowRequired.selector, alice, IStaking.Role.Broker, staked - unstaked, required
                )
            );
            staking.requestUnstake(unstaked);
        } else {
            staking.requestUnstake(unstaked);
            assertGe(_active(alice), required);
        }
    }
}
