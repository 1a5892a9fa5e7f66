// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {
    IAccessControlDefaultAdminRules
} from "@openzeppelin/contracts/access/extensions/IAccessControlDefaultAdminRules.sol";
import {IERC20Errors} from "@openzeppelin/contracts/interfaces/draft-IERC6093.sol";
import {Staking} from "../../../contracts/staking/Staking.sol";
import {IStaking} from "../../../contracts/interfaces/IStaking.sol";
import {StakingBase} from "./StakingBase.sol";
import {TestMerkle} from "./TestMerkle.sol";

/// @notice Unit tests: every function, every revert reason.
contract StakingTest is StakingBase {
    /// @dev floor(sqrt(MAX_UNITS)) = floor(sqrt(2^40 - 1)) = 2^20 - 1.
    uint256 internal constant SQRT_MAX_UNITS = (1 << 20) - 1;

    bytes32 private constant PERMIT_TYPEHASH =
        keccak256("Permit(address owner,address spender,uint256 value,uint256 nonce,uint256 deadline)");

    // ================================================================ constructor

    function test_constructor_setsDefaultsAndRoles() public view {
        assertEq(staking.token(), address(token));
        assertEq(staking.treasury(), address(treasury));
        assertEq(uint256(staking.unbondingPeriod()), 7 days);
        assertEq(uint256(staking.claimWindow()), 90 days);
        assertEq(uint256(staking.tierMultiplierBps(0)), 10_000);
        assertEq(uint256(staking.tierMultiplierBps(1)), 15_000);
        assertEq(uint256(staking.tierMultiplierBps(2)), 20_000);
        assertEq(uint256(staking.tierMultiplierBps(3)), 30_000);
        assertTrue(staking.hasRole(staking.DEFAULT_ADMIN_ROLE(), governor));
        assertTrue(staking.hasRole(staking.GOVERNOR_ROLE(), governor));
        assertEq(staking.GOVERNOR_ROLE(), keccak256("GOVERNOR_ROLE"));
        assertEq(staking.SLASHER_ROLE(), keccak256("SLASHER_ROLE"));
        assertEq(staking.MARKET_ROLE(), keccak256("MARKET_ROLE"));
        assertEq(staking.slashCount(), 0);
    }

    function test_constructor_emitsDefaults() public {
        vm.expectEmit();
        emit IStaking.UnbondingPeriodSet(7 days);
        vm.expectEmit();
        emit IStaking.ClaimWindowSet(90 days);
        vm.expectEmit();
        emit IStaking.TierMultiplierSet(0, 10_000);
        new Staking(address(token), address(treasury), governor);
    }

    function test_constructor_revertsWhenZeroToken() public {
        vm.expectRevert(IStaking.ZeroAddress.selector);
        new Staking(address(0), address(treasury), governor);
    }

    function test_constructor_revertsWhenZeroTreasury() public {
        vm.expectRevert(IStaking.ZeroAddress.selector);
        new Staking(address(token), address(0), governor);
    }

    function test_constructor_revertsWhenZeroGovernor() public {
        vm.expectRevert(
            abi.encodeWithSelector(
                IAccessControlDefaultAdminRules.AccessControlInvalidDefaultAdmin.selector, address(0)
            )
        );
        new Staking(address(token), address(treasury), address(0));
    }

    // ================================================================ stake

    function test_stake_locksTokens() public {
        vm.startPrank(alice);
        token.approve(address(staking), 100 ether);
        vm.expectEmit(address(staking));
        emit IStaking.Staked(alice, 100 ether);
        staking.stake(100 ether);
        vm.stopPrank();
        assertEq(_active(alice), 100 ether);
        assertEq(token.balanceOf(address(staking)), 100 ether);
        assertEq(token.balanceOf(alice), FUNDS - 100 ether);
    }

    function test_stake_addsToActive() public {
        _stake(alice, 100 ether);
        _stake(alice, 50 ether);
        assertEq(_active(alice), 150 ether);
        assertEq(_unbonding(alice), 0);
    }

    function test_stake_revertsWhenZeroAmount() public {
        vm.prank(alice);
        vm.expectRevert(IStaking.ZeroAmount.selector);
        staking.stake(0);
    }

    function test_stake_revertsWhenNotApproved() public {
        vm.prank(alice);
        vm.expectRevert(
            abi.encodeWithSelector(IERC20Errors.ERC20InsufficientAllowance.selector, address(staking), 0, 1 ether)
        );
        staking.stake(1 ether);
    }

    function test_stake_revertsWhenBalanceShort() public {
        vm.startPrank(alice);
        token.approve(address(staking), FUNDS + 1);
        vm.expectRevert(abi.encodeWithSelector(IERC20Errors.ERC20InsufficientBalance.selector, alice, FUNDS, FUNDS + 1));
        staking.stake(FUNDS + 1);
        vm.stopPrank();
    }

    // ================================================================ stakeWithPermit

    function _permit(uint256 amount, uint256 deadline) internal view returns (uint8 v, bytes32 r, bytes32 s) {
        bytes32 structHash =
            keccak256(abi.encode(PERMIT_TYPEHASH, alice, address(staking), amount, token.nonces(alice), deadline));
        bytes32 digest = keccak256(abi.encodePacked("\x19\x01", token.DOMAIN_SEPARATOR(), structHash));
        return vm.sign(aliceKey, digest);
    }

    function test_stakeWithPermit_locksTokensInOneCall() public {
        uint256 deadline = block.timestamp + 1 hours;
        (uint8 v, bytes32 r, bytes32 s) = _permit(70 ether, deadline);
        vm.prank(alice);
        staking.stakeWithPermit(70 ether, deadline, v, r, s);
        assertEq(_active(alice), 70 ether);
        assertEq(token.allowance(alice, address(staking)), 0);
        assertEq(token.nonces(alice), 1);
    }

    function test_stakeWithPermit_toleratesFrontRunPermit() public {
        uint256 deadline = block.timestamp + 1 hours;
        (uint8 v, bytes32 r, bytes32 s) = _permit(70 ether, deadline);
        // A watcher of the mempool submits the same permit first.
        vm.prank(stranger);
        token.permit(alice, address(staking), 70 ether, deadline, v, r, s);
        vm.prank(alice);
        staking.stakeWithPermit(70 ether, deadline, v, r, s);
        assertEq(_active(alice), 70 ether);
    }

    function test_stakeWithPermit_revertsWhenPermitInvalidAndAllowanceShort() public {
        uint256 deadline = block.timestamp + 1 hours;
        (uint8 v, bytes32 r, bytes32 s) = _permit(70 ether, deadline);
        vm.prank(alice);
        vm.expectRevert(abi.encodeWithSelector(IStaking.PermitRefused.selector, alice, 0, 71 ether));
        staking.stakeWithPermit(71 ether, deadline, v, r, s);
    }

    function test_stakeWithPermit_revertsWhenExpiredAndAllowanceShort() public {
        uint256 deadline = block.timestamp + 1 hours;
        (uint8 v, bytes32 r, bytes32 s) = _permit(70 ether, deadline);
        vm.warp(deadline + 1);
        vm.prank(alice);
        vm.expectRevert(abi.encodeWithSelector(IStaking.PermitRefused.selector, alice, 0, 70 ether));
        staking.stakeWithPermit(70 ether, deadline, v, r, s);
    }

    function test_stakeWithPermit_revertsWhenZeroAmount() public {
        uint256 deadline = block.timestamp + 1 hours;
        (uint8 v, bytes32 r, bytes32 s) = _permit(0, deadline);
        vm.prank(alice);
        vm.expectRevert(IStaking.ZeroAmount.selector);
        staking.stakeWithPermit(0, deadline, v, r, s);
    }

    // ================================================================ requestUnstake

    function test_requestUnstake_movesStakeToUnbonding() public {
        _stake(alice, 100 ether);
        uint64 releaseAt = uint64(block.timestamp + 7 days);
        vm.expectEmit(address(staking));
        emit IStaking.UnstakeRequested(alice, 40 ether, releaseAt);
        _requestUnstake(alice, 40 ether);
        (uint256 active, uint256 unbonding, uint64 at) = staking.stakeOf(alice);
        assertEq(active, 60 ether);
        assertEq(unbonding, 40 ether);
        assertEq(uint256(at), uint256(releaseAt));
        assertEq(token.balanceOf(address(staking)), 100 ether);
    }

    function test_requestUnstake_addsAndRestartsThePeriod() public {
        _stake(alice, 100 ether);
        _requestUnstake(alice, 10 ether);
        vm.warp(block.timestamp + 3 days);
        _requestUnstake(alice, 20 ether);
        assertEq(_unbonding(alice), 30 ether);
        assertEq(uint256(_releaseAt(alice)), block.timestamp + 7 days);
    }

    function test_requestUnstake_revertsWhenZeroAmount() public {
        _stake(alice, 1 ether);
        vm.prank(alice);
        vm.expectRevert(IStaking.ZeroAmount.selector);
        staking.requestUnstake(0);
    }

    function test_requestUnstake_revertsWhenAboveActive() public {
        _stake(alice, 10 ether);
        vm.prank(alice);
        vm.expectRevert(abi.encodeWithSelector(IStaking.InsufficientActiveStake.selector, alice, 10 ether, 11 ether));
        staking.requestUnstake(11 ether);
    }

    function test_requestUnstake_revertsWhenBelowRequiredForWhitelistedRole() public {
        _setCurve(IStaking.Role.Operator, 60 ether, 0);
        _whitelist(alice, IStaking.Role.Operator);
        _stake(alice, 100 ether);
        _requestUnstake(alice, 40 ether); // leaves exactly the requirement
        vm.prank(alice);
        vm.expectRevert(
            abi.encodeWithSelector(
                IStaking.StakeBelowRequired.selector, alice, IStaking.Role.Operator, 60 ether - 1, 60 ether
            )
        );
        staking.requestUnstake(1);
    }

    function test_requestUnstake_checksEveryWhitelistedRole() public {
        _setCurve(IStaking.Role.Operator, 10 ether, 0);
        _setCurve(IStaking.Role.Consumer, 50 ether, 1 ether);
        _setUsage(alice, 100, 1); // consumer: 50 + 1 * 10 * 1.5 = 65 ether
        _whitelist(alice, IStaking.Role.Operator);
        _whitelist(alice, IStaking.Role.Consumer);
        _stake(alice, 100 ether);
        vm.prank(alice);
        vm.expectRevert(
            abi.encodeWithSelector(
                IStaking.StakeBelowRequired.selector, alice, IStaking.Role.Consumer, 60 ether, 65 ether
            )
        );
        staking.requestUnstake(40 ether);
        _requestUnstake(alice, 35 ether);
        assertEq(_active(alice), 65 ether);
    }

    function test_requestUnstake_ignoresCurvesOfRolesNotWhitelisted() public {
        _setCurve(IStaking.Role.Broker, 1_000 ether, 0);
        _stake(alice, 100 ether);
        _requestUnstake(alice, 100 ether);
        assertEq(_active(alice), 0);
    }

    function test_requestUnstake_allowedAgainOnceDeWhitelisted() public {
        _setCurve(IStaking.Role.Operator, 100 ether, 0);
        _whitelist(alice, IStaking.Role.Operator);
        _stake(alice, 100 ether);
        vm.prank(governor);
        staking.setWhitelisted(alice, IStaking.Role.Operator, false);
        _requestUnstake(alice, 100 ether);
        assertEq(_unbonding(alice), 100 ether);
    }

    // ================================================================ withdraw

    function test_withdraw_releasesAtExactlyReleaseAt() public {
        _stake(alice, 100 ether);
        _requestUnstake(alice, 30 ether);
        vm.warp(_releaseAt(alice));
        vm.expectEmit(address(staking));
        emit IStaking.Withdrawn(alice, 30 ether);
        vm.prank(alice);
        staking.withdraw();
        (uint256 active, uint256 unbonding, uint64 releaseAt) = staking.stakeOf(alice);
        assertEq(active, 70 ether);
        assertEq(unbonding, 0);
        assertEq(uint256(releaseAt), 0);
        assertEq(token.balanceOf(alice), FUNDS - 70 ether);
    }

    function test_withdraw_revertsWhenNotMatured() public {
        _stake(alice, 100 ether);
        _requestUnstake(alice, 30 ether);
        uint64 releaseAt = _releaseAt(alice);
        vm.warp(releaseAt - 1);
        vm.prank(alice);
        vm.expectRevert(
            abi.encodeWithSelector(IStaking.UnbondingNotMatured.selector, alice, releaseAt, uint256(releaseAt - 1))
        );
        staking.withdraw();
    }

    function test_withdraw_revertsWhenNothingUnbonding() public {
        _stake(alice, 100 ether);
        vm.prank(alice);
        vm.expectRevert(abi.encodeWithSelector(IStaking.NothingUnbonding.selector, alice));
        staking.withdraw();
    }

    function test_withdraw_revertsWhenAlreadyWithdrawn() public {
        _stake(alice, 100 ether);
        _requestUnstake(alice, 30 ether);
        vm.warp(_releaseAt(alice));
        vm.prank(alice);
        staking.withdraw();
        vm.prank(alice);
        vm.expectRevert(abi.encodeWithSelector(IStaking.NothingUnbonding.selector, alice));
        staking.withdraw();
    }

    function test_withdraw_keepsTheReleaseAtOfTheRequest() public {
        _stake(alice, 100 ether);
        _requestUnstake(alice, 30 ether);
        uint64 releaseAt = _releaseAt(alice);
        vm.prank(governor);
        staking.setUnbondingPeriod(30 days);
        vm.warp(releaseAt);
        vm.prank(alice);
        staking.withdraw();
        assertEq(_unbonding(alice), 0);
    }

    // ================================================================ whitelist

    function test_setWhitelisted_addsAndRemovesPerRole() public {
        vm.expectEmit(address(staking));
        emit IStaking.Whitelisted(alice, IStaking.Role.Broker, true);
        _whitelist(alice, IStaking.Role.Broker);
        assertTrue(staking.isWhitelisted(alice, IStaking.Role.Broker));
        assertFalse(staking.isWhitelisted(alice, IStaking.Role.Operator));
        assertFalse(staking.isWhitelisted(alice, IStaking.Role.Consumer));
        _whitelist(alice, IStaking.Role.Consumer);
        vm.prank(governor);
        staking.setWhitelisted(alice, IStaking.Role.Broker, false);
        assertFalse(staking.isWhitelisted(alice, IStaking.Role.Broker));
        assertTrue(staking.isWhitelisted(alice, IStaking.Role.Consumer));
        assertFalse(staking.isWhitelisted(bob, IStaking.Role.Consumer));
    }

    function test_setWhitelisted_revertsWhenZeroAddress() public {
        vm.prank(governor);
        vm.expectRevert(IStaking.ZeroAddress.selector);
        staking.setWhitelisted(address(0), IStaking.Role.Operator, true);
    }

    function test_isActive_needsWhitelistAndStake() public {
        _setCurve(IStaking.Role.Operator, 100 ether, 0);
        _stake(alice, 100 ether);
        assertFalse(staking.isActive(alice, IStaking.Role.Operator));
        _whitelist(alice, IStaking.Role.Operator);
        assertTrue(staking.isActive(alice, IStaking.Role.Operator));
        assertFalse(staking.isActive(alice, IStaking.Role.Broker));
        _whitelist(bob, IStaking.Role.Operator);
        _stake(bob, 100 ether - 1);
        assertFalse(staking.isActive(bob, IStaking.Role.Operator));
    }

    function test_isActive_followsUsage() public {
        _setCurve(IStaking.Role.Consumer, 0, 10 ether);
        _whitelist(alice, IStaking.Role.Consumer);
        _stake(alice, 100 ether);
        _setUsage(alice, 100, 0); // 10 * 10 = 100 ether
        assertTrue(staking.isActive(alice, IStaking.Role.Consumer));
        _setUsage(alice, 100, 1); // 150 ether
        assertFalse(staking.isActive(alice, IStaking.Role.Consumer));
    }

    function test_isActive_countsOnlyActiveStake() public {
        _setCurve(IStaking.Role.Broker, 50 ether, 0);
        _stake(alice, 100 ether);
        _requestUnstake(alice, 60 ether);
        _whitelist(alice, IStaking.Role.Broker);
        assertFalse(staking.isActive(alice, IStaking.Role.Broker));
    }

    // ================================================================ curve, tiers, usage

    function test_setCurve_setsAndEmits() public {
        vm.expectEmit(address(staking));
        emit IStaking.CurveSet(IStaking.Role.Broker, 5 ether, 2 ether);
        _setCurve(IStaking.Role.Broker, 5 ether, 2 ether);
        (uint256 base, uint256 perSqrtUnit) = staking.curve(IStaking.Role.Broker);
        assertEq(base, 5 ether);
        assertEq(perSqrtUnit, 2 ether);
        (base, perSqrtUnit) = staking.curve(IStaking.Role.Operator);
        assertEq(base + perSqrtUnit, 0);
    }

    /// @dev The largest curve a supply can meet: at MAX_UNITS on the top tier (3x) it requires
    ///      exactly the token's cap; one wei more per square-rooted unit is refused.
    function test_setCurve_acceptsACurveTheSupplyCanMeet() public {
        uint256 cap = token.cap();
        uint256 sqrtMax = SQRT_MAX_UNITS;
        uint256 perSqrtUnit = 100 ether;
        uint256 base = cap - perSqrtUnit * sqrtMax * 30_000 / 10_000;
        _setCurve(IStaking.Role.Consumer, base, perSqrtUnit);
        _setUsage(alice, staking.MAX_UNITS(), 3);
        assertEq(staking.requiredStake(alice, IStaking.Role.Consumer), cap);

        uint256 beyond = cap + 1;
        vm.prank(governor);
        vm.expectRevert(
            abi.encodeWithSelector(IStaking.CurveBeyondSupply.selector, IStaking.Role.Consumer, beyond, cap)
        );
        staking.setCurve(IStaking.Role.Consumer, base + 1, perSqrtUnit);
    }

    /// @dev The issue's freeze: a curve of 2^128 − 1 made every whitelisted stake immovable.
    function test_setCurve_refusesTheOldMaximum() public {
        uint256 max = staking.MAX_CURVE_PARAMETER();
        uint256 cap = token.cap();
        vm.prank(governor);
        vm.expectRevert(abi.encodeWithSelector(IStaking.CurveBeyondSupply.selector, IStaking.Role.Operator, max, cap));
        staking.setCurve(IStaking.Role.Operator, max, 0);
    }

    function test_setTierMultiplier_refusesATopTierThatLiftsACurveBeyondSupply() public {
        uint256 cap = token.cap();
        uint256 perSqrtUnit = 100 ether;
        _setCurve(IStaking.Role.Broker, 0, perSqrtUnit);
        uint256 atMax = perSqrtUnit * SQRT_MAX_UNITS * 65_535 / 10_000;
        assertLe(atMax, cap, "this curve fits even at the largest multiplier");
        _setCurve(IStaking.Role.Broker, 0, 200 ether); // fits at the top tier's 3x, not at 6.5535x
        atMax = 200 ether * SQRT_MAX_UNITS * 65_535 / 10_000;
        vm.prank(governor);
        vm.expectRevert(abi.encodeWithSelector(IStaking.CurveBeyondSupply.selector, IStaking.Role.Broker, atMax, cap));
        staking.setTierMultiplier(3, 65_535);
        vm.prank(governor);
        staking.setTierMultiplier(2, 30_000); // lower tiers never set the bound
    }

    function test_setCurve_revertsWhenBaseTooLarge() public {
        uint256 tooLarge = uint256(type(uint128).max) + 1;
        vm.prank(governor);
        vm.expectRevert(
            abi.encodeWithSelector(IStaking.CurveParameterTooLarge.selector, tooLarge, 1, type(uint128).max)
        );
        staking.setCurve(IStaking.Role.Operator, tooLarge, 1);
    }

    function test_setCurve_revertsWhenPerSqrtUnitTooLarge() public {
        uint256 tooLarge = uint256(type(uint128).max) + 1;
        vm.prank(governor);
        vm.expectRevert(
            abi.encodeWithSelector(IStaking.CurveParameterTooLarge.selector, 1, tooLarge, type(uint128).max)
        );
        staking.setCurve(IStaking.Role.Operator, 1, tooLarge);
    }

    function test_setTierMultiplier_setsAndEmits() public {
        vm.expectEmit(address(staking));
        emit IStaking.TierMultiplierSet(2, 25_000);
        vm.prank(governor);
        staking.setTierMultiplier(2, 25_000);
        assertEq(uint256(staking.tierMultiplierBps(2)), 25_000);
    }

    function test_setTierMultiplier_acceptsEqualNeighbours() public {
        vm.startPrank(governor);
        staking.setTierMultiplier(1, 10_000);
        staking.setTierMultiplier(3, type(uint16).max);
        staking.setTierMultiplier(0, 0);
        vm.stopPrank();
        assertEq(uint256(staking.tierMultiplierBps(1)), 10_000);
        assertEq(uint256(staking.tierMultiplierBps(3)), type(uint16).max);
        assertEq(uint256(staking.tierMultiplierBps(0)), 0);
    }

    function test_setTierMultiplier_revertsWhenUnknownTier() public {
        vm.prank(governor);
        vm.expectRevert(abi.encodeWithSelector(IStaking.UnknownTier.selector, uint8(4), uint8(4)));
        staking.setTierMultiplier(4, 40_000);
    }

    function test_setTierMultiplier_revertsWhenBelowTheLowerTier() public {
        vm.prank(governor);
        vm.expectRevert(
            abi.encodeWithSelector(
                IStaking.TierMultiplierOutOfOrder.selector, uint8(2), uint16(14_999), uint16(15_000), uint16(30_000)
            )
        );
        staking.setTierMultiplier(2, 14_999);
    }

    function test_setTierMultiplier_revertsWhenAboveTheUpperTier() public {
        vm.prank(governor);
        vm.expectRevert(
            abi.encodeWithSelector(
                IStaking.TierMultiplierOutOfOrder.selector, uint8(0), uint16(15_001), uint16(0), uint16(15_000)
            )
        );
        staking.setTierMultiplier(0, 15_001);
    }

    function test_tierMultiplierBps_revertsWhenUnknownTier() public {
        vm.expectRevert(abi.encodeWithSelector(IStaking.UnknownTier.selector, uint8(7), uint8(4)));
        staking.tierMultiplierBps(7);
    }

    function test_setUsage_recordsAndEmits() public {
        vm.expectEmit(address(staking));
        emit IStaking.UsageSet(alice, 42, 3);
        _setUsage(alice, 42, 3);
        (uint256 units, uint8 tier) = staking.usageOf(alice);
        assertEq(units, 42);
        assertEq(uint256(tier), 3);
    }

    function test_setUsage_revertsWhenUnitsTooLarge() public {
        uint256 tooLarge = uint256(type(uint40).max) + 1;
        vm.prank(market);
        vm.expectRevert(abi.encodeWithSelector(IStaking.UnitsTooLarge.selector, tooLarge, type(uint40).max));
        staking.setUsage(alice, tooLarge, 0);
    }

    function test_setUsage_revertsWhenUnknownTier() public {
        vm.prank(market);
        vm.expectRevert(abi.encodeWithSelector(IStaking.UnknownTier.selector, uint8(4), uint8(4)));
        staking.setUsage(alice, 1, 4);
    }

    function test_setUsage_revertsWhenZeroAddress() public {
        vm.prank(market);
        vm.expectRevert(IStaking.ZeroAddress.selector);
        staking.setUsage(address(0), 1, 0);
    }

    function test_requiredStake_followsTheFormula() public {
        _setCurve(IStaking.Role.Consumer, 1_000 ether, 10 ether);
        assertEq(staking.requiredStake(alice, IStaking.Role.Consumer), 1_000 ether);
        _setUsage(alice, 100, 2); // 1000 + 10 * 10 * 2 = 1200
        assertEq(staking.requiredStake(alice, IStaking.Role.Consumer), 1_200 ether);
        _setUsage(alice, 99, 1); // sqrt rounds down to 9: 1000 + 10 * 9 * 1.5 = 1135
        assertEq(staking.requiredStake(alice, IStaking.Role.Consumer), 1_135 ether);
        assertEq(staking.requiredStake(alice, IStaking.Role.Operator), 0);
    }

    function test_requiredStake_roundsDown() public {
        _setCurve(IStaking.Role.Consumer, 0, 3);
        _setUsage(alice, 1, 1); // 3 * 1 * 15000 / 10000 = 4.5 -> 4
        assertEq(staking.requiredStake(alice, IStaking.Role.Consumer), 4);
    }

    // ================================================================ periods

    function test_setUnbondingPeriod_setsAndEmits() public {
        vm.expectEmit(address(staking));
        emit IStaking.UnbondingPeriodSet(14 days);
        vm.prank(governor);
        staking.setUnbondingPeriod(14 days);
        assertEq(uint256(staking.unbondingPeriod()), 14 days);
        _stake(alice, 1 ether);
        _requestUnstake(alice, 1 ether);
        assertEq(uint256(_releaseAt(alice)), block.timestamp + 14 days);
    }

    function test_setUnbondingPeriod_revertsWhenTooShort() public {
        vm.prank(governor);
        vm.expectRevert(
            abi.encodeWithSelector(
                IStaking.UnbondingPeriodOutOfRange.selector, uint64(1 days - 1), uint64(1 days), uint64(365 days)
            )
        );
        staking.setUnbondingPeriod(1 days - 1);
    }

    function test_setUnbondingPeriod_revertsWhenTooLong() public {
        vm.prank(governor);
        vm.expectRevert(
            abi.encodeWithSelector(
                IStaking.UnbondingPeriodOutOfRange.selector, uint64(365 days + 1), uint64(1 days), uint64(365 days)
            )
        );
        staking.setUnbondingPeriod(365 days + 1);
    }

    function test_setClaimWindow_setsAndEmits() public {
        vm.expectEmit(address(staking));
        emit IStaking.ClaimWindowSet(30 days);
        vm.prank(governor);
        staking.setClaimWindow(30 days);
        assertEq(uint256(staking.claimWindow()), 30 days);
    }

    function test_setClaimWindow_appliesToLaterSlashesOnly() public {
        _stake(alice, 100 ether);
        uint256 first = _slash(alice, 10 ether, 10 ether, bytes32(uint256(1)));
        vm.prank(governor);
        staking.setClaimWindow(30 days);
        uint256 second = _slash(alice, 10 ether, 10 ether, bytes32(uint256(2)));
        assertEq(uint256(_closesAt(first)), block.timestamp + 90 days);
        assertEq(uint256(_closesAt(second)), block.timestamp + 30 days);
    }

    function test_setClaimWindow_revertsWhenTooShort() public {
        vm.prank(governor);
        vm.expectRevert(
            abi.encodeWithSelector(
                IStaking.ClaimWindowOutOfRange.selector, uint64(7 days - 1), uint64(7 days), uint64(3650 days)
            )
        );
        staking.setClaimWindow(7 days - 1);
    }

    function test_setClaimWindow_revertsWhenTooLong() public {
        vm.prank(governor);
        vm.expectRevert(
            abi.encodeWithSelector(
                IStaking.ClaimWindowOutOfRange.selector, uint64(3650 days + 1), uint64(7 days), uint64(3650 days)
            )
        );
        staking.setClaimWindow(3650 days + 1);
    }

    // ================================================================ slash

    function test_slash_takesActiveFirst() public {
        _stake(alice, 100 ether);
        _requestUnstake(alice, 40 ether);
        uint256 slashId = _propose(alice, 50 ether);
        vm.expectEmit(address(staking));
        emit IStaking.SlashApplied(1, alice, 50 ether, 0, 0);
        vm.expectEmit(address(staking));
        emit IStaking.Slashed(1, alice, 50 ether, 0, bytes32(0), "ipfs://misuse");
        _execute(slashId, 0, bytes32(0));
        assertEq(slashId, 1);
        assertEq(_active(alice), 10 ether);
        assertEq(_unbonding(alice), 40 ether);
    }

    function test_slash_reachesUnbondingStake() public {
        _stake(alice, 100 ether);
        _requestUnstake(alice, 100 ether); // tries to run before the slash lands
        uint64 releaseAt = _releaseAt(alice);
        uint256 slashId = _propose(alice, 70 ether);
        vm.expectEmit(address(staking));
        emit IStaking.SlashApplied(1, alice, 0, 70 ether, 0);
        _execute(slashId, 0, bytes32(0));
        assertEq(_active(alice), 0);
        assertEq(_unbonding(alice), 30 ether);
        assertEq(uint256(_releaseAt(alice)), uint256(releaseAt));
        vm.warp(releaseAt);
        vm.prank(alice);
        staking.withdraw();
        assertEq(token.balanceOf(alice), FUNDS - 70 ether);
    }

    function test_slash_takesEverything() public {
        _stake(alice, 100 ether);
        _requestUnstake(alice, 30 ether);
        _slash(alice, 100 ether, 0, bytes32(0));
        assertEq(_active(alice) + _unbonding(alice), 0);
    }

    function test_slash_sendsTheRestToTheTreasuryAndOpensThePool() public {
        _stake(alice, 100 ether);
        bytes32 root = keccak256("root");
        uint256 slashId = _propose(alice, 60 ether);
        vm.expectEmit(address(staking));
        emit IStaking.SlashApplied(1, alice, 60 ether, 0, uint64(block.timestamp + 90 days));
        _execute(slashId, 45 ether, root);
        assertEq(token.balanceOf(address(treasury)), 15 ether);
        assertEq(token.balanceOf(address(staking)), 40 ether + 45 ether);
        (bytes32 poolRoot, uint256 remaining, uint64 closesAt) = staking.slashPool(slashId);
        assertEq(poolRoot, root);
        assertEq(remaining, 45 ether);
        assertEq(uint256(closesAt), block.timestamp + 90 days);
    }

    function test_slash_allToImpacted() public {
        _stake(alice, 100 ether);
        _slash(alice, 60 ether, 60 ether, keccak256("root"));
        assertEq(token.balanceOf(address(treasury)), 0);
        assertEq(_remaining(1), 60 ether);
    }

    function test_slash_numbersSlashesFromOne() public {
        _stake(alice, 100 ether);
        _stake(bob, 100 ether);
        assertEq(_slash(alice, 1 ether, 0, bytes32(0)), 1);
        assertEq(_slash(bob, 1 ether, 0, bytes32(0)), 2);
        assertEq(staking.slashCount(), 2);
    }

    function test_slash_takesWhatIsThereWhenAskedForMore() public {
        _stake(alice, 100 ether);
        _requestUnstake(alice, 30 ether);
        uint256 slashId = _propose(alice, 100 ether + 1);
        vm.expectEmit(address(staking));
        emit IStaking.SlashApplied(slashId, alice, 70 ether, 30 ether, 0);
        assertEq(_execute(slashId, 0, bytes32(0)), 100 ether);
        assertEq(_active(alice) + _unbonding(alice), 0);
        assertEq(token.balanceOf(address(treasury)), 100 ether);
    }

    function test_slash_capsTheImpactShareAtWhatWasTaken() public {
        _stake(alice, 10 ether);
        bytes32 root = keccak256("root");
        uint256 slashId = _propose(alice, 50 ether);
        vm.expectEmit(address(staking));
        emit IStaking.Slashed(slashId, alice, 10 ether, 10 ether, root, "ipfs://misuse");
        _execute(slashId, 40 ether, root);
        assertEq(_remaining(slashId), 10 ether);
        assertEq(token.balanceOf(address(treasury)), 0);
    }

    function test_slash_ofAnEmptyStakeTakesNothingAndEndsTheFreeze() public {
        uint256 slashId = _propose(stranger, 1);
        vm.expectEmit(address(staking));
        emit IStaking.Slashed(slashId, stranger, 0, 0, bytes32(0), "ipfs://misuse");
        assertEq(_execute(slashId, 1, keccak256("root")), 0);
        (bytes32 root,,) = staking.slashPool(slashId);
        assertEq(root, bytes32(0), "no pool for nothing taken");
        (uint256 pending,) = staking.freezeOf(stranger);
        assertEq(pending, 0);
    }

    function test_proposeSlash_revertsWhenZeroAmount() public {
        vm.prank(slasher);
        vm.expectRevert(IStaking.ZeroAmount.selector);
        staking.proposeSlash(alice, 0, IStaking.SlashSubject.Product, 1, "x");
    }

    function test_proposeSlash_revertsWhenZeroAccount() public {
        vm.prank(slasher);
        vm.expectRevert(IStaking.ZeroAddress.selector);
        staking.proposeSlash(address(0), 1, IStaking.SlashSubject.Product, 1, "x");
    }

    function test_proposeSlash_revertsWithoutReason() public {
        vm.prank(slasher);
        vm.expectRevert(IStaking.EmptyReason.selector);
        staking.proposeSlash(alice, 1, IStaking.SlashSubject.Product, 1, "");
    }

    function test_slash_revertsWhenImpactExceedsAmount() public {
        _stake(alice, 100 ether);
        uint256 slashId = _propose(alice, 10 ether);
        vm.prank(slasher);
        vm.expectRevert(abi.encodeWithSelector(IStaking.ImpactExceedsSlash.selector, 11 ether, 10 ether));
        staking.slash(slashId, 11 ether, keccak256("root"));
    }

    function test_slash_revertsWhenImpactWithoutRoot() public {
        _stake(alice, 100 ether);
        uint256 slashId = _propose(alice, 10 ether);
        vm.prank(slasher);
        vm.expectRevert(abi.encodeWithSelector(IStaking.ImpactRootMismatch.selector, 5 ether, bytes32(0)));
        staking.slash(slashId, 5 ether, bytes32(0));
    }

    function test_slash_revertsWhenRootWithoutImpact() public {
        _stake(alice, 100 ether);
        bytes32 root = keccak256("root");
        uint256 slashId = _propose(alice, 10 ether);
        vm.prank(slasher);
        vm.expectRevert(abi.encodeWithSelector(IStaking.ImpactRootMismatch.selector, 0, root));
        staking.slash(slashId, 0, root);
    }

    function test_slash_revertsWhenUnknown() public {
        vm.prank(slasher);
        vm.expectRevert(abi.encodeWithSelector(IStaking.SlashNotPending.selector, 9, IStaking.SlashStatus.None));
        staking.slash(9, 0, bytes32(0));
    }

    // ================================================================ claimSlash

    function _slashWithThreeOwners() internal returns (uint256 slashId, TestMerkle.Tree memory tree) {
        _stake(alice, 100 ether);
        tree = _tree(_three(bob, carol, stranger), _three(10 ether, 20 ether, 30 ether));
        slashId = _slash(alice, 80 ether, 60 ether, TestMerkle.root(tree));
    }

    function test_claimSlash_paysTheLeafOnce() public {
        (uint256 slashId, TestMerkle.Tree memory tree) = _slashWithThreeOwners();
        bytes32[] memory proof = TestMerkle.proof(tree, 1);
        vm.expectEmit(address(staking));
        emit IStaking.SlashClaimed(slashId, 1, carol, 20 ether);
        vm.prank(carol);
        staking.claimSlash(slashId, 1, carol, 20 ether, proof);
        assertEq(token.balanceOf(carol), FUNDS + 20 ether);
        assertEq(_remaining(slashId), 40 ether);
        assertTrue(staking.isSlashClaimed(slashId, 1));
        assertFalse(staking.isSlashClaimed(slashId, 0));
        assertFalse(staking.isSlashClaimed(slashId, 2));
    }

    function test_claimSlash_anyoneMaySubmitAndTheOwnerIsPaid() public {
        (uint256 slashId, TestMerkle.Tree memory tree) = _slashWithThreeOwners();
        bytes32[] memory proof = TestMerkle.proof(tree, 2);
        vm.prank(bob);
        staking.claimSlash(slashId, 2, stranger, 30 ether, proof);
        assertEq(token.balanceOf(stranger), 30 ether);
        assertEq(token.balanceOf(bob), FUNDS);
    }

    function test_claimSlash_everyLeafDrainsThePoolExactly() public {
        (uint256 slashId, TestMerkle.Tree memory tree) = _slashWithThreeOwners();
        staking.claimSlash(slashId, 0, bob, 10 ether, TestMerkle.proof(tree, 0));
        staking.claimSlash(slashId, 1, carol, 20 ether, TestMerkle.proof(tree, 1));
        staking.claimSlash(slashId, 2, stranger, 30 ether, TestMerkle.proof(tree, 2));
        assertEq(_remaining(slashId), 0);
        assertEq(token.balanceOf(address(staking)), 20 ether);
    }

    function test_claimSlash_revertsWhenClaimedTwice() public {
        (uint256 slashId, TestMerkle.Tree memory tree) = _slashWithThreeOwners();
        bytes32[] memory proof = TestMerkle.proof(tree, 0);
        staking.claimSlash(slashId, 0, bob, 10 ether, proof);
        vm.expectRevert(abi.encodeWithSelector(IStaking.AlreadyClaimed.selector, slashId, 0));
        staking.claimSlash(slashId, 0, bob, 10 ether, proof);
    }

    function test_claimSlash_revertsWhenAmountAltered() public {
        (uint256 slashId, TestMerkle.Tree memory tree) = _slashWithThreeOwners();
        bytes32[] memory proof = TestMerkle.proof(tree, 0);
        vm.expectRevert(abi.encodeWithSelector(IStaking.InvalidProof.selector, slashId, 0, bob, 11 ether));
        staking.claimSlash(slashId, 0, bob, 11 ether, proof);
    }

    function test_claimSlash_revertsWhenAccountAltered() public {
        (uint256 slashId, TestMerkle.Tree memory tree) = _slashWithThreeOwners();
        bytes32[] memory proof = TestMerkle.proof(tree, 0);
        vm.expectRevert(abi.encodeWithSelector(IStaking.InvalidProof.selector, slashId, 0, carol, 10 ether));
        staking.claimSlash(slashId, 0, carol, 10 ether, proof);
    }

    function test_claimSlash_revertsWhenIndexAltered() public {
        (uint256 slashId, TestMerkle.Tree memory tree) = _slashWithThreeOwners();
        bytes32[] memory proof = TestMerkle.proof(tree, 0);
        vm.expectRevert(abi.encodeWithSelector(IStaking.InvalidProof.selector, slashId, 5, bob, 10 ether));
        staking.claimSlash(slashId, 5, bob, 10 ether, proof);
    }

    function test_claimSlash_revertsWhenProofOfAnotherSlash() public {
        (uint256 slashId, TestMerkle.Tree memory tree) = _slashWithThreeOwners();
        uint256 other = _slash(alice, 10 ether, 10 ether, keccak256("another root"));
        bytes32[] memory proof = TestMerkle.proof(tree, 0);
        vm.expectRevert(abi.encodeWithSelector(IStaking.InvalidProof.selector, other, 0, bob, 10 ether));
        staking.claimSlash(other, 0, bob, 10 ether, proof);
        staking.claimSlash(slashId, 0, bob, 10 ether, proof);
    }

    function test_claimSlash_revertsWhenTheLeafIsAnInnerNode() public {
        // A second-preimage attempt: an inner node presented as a leaf with a shorter proof.
        address[] memory owners = new address[](4);
        uint256[] memory amounts = new uint256[](4);
        for (uint256 i; i < 4; ++i) {
            owners[i] = address(uint160(0x1000 + i));
            amounts[i] = 1 ether;
        }
        TestMerkle.Tree memory tree = _tree(owners, amounts);
        _stake(alice, 100 ether);
        uint256 slashId = _slash(alice, 4 ether, 4 ether, TestMerkle.root(tree));
        bytes32[] memory proof = new bytes32[](1);
        proof[0] = tree.nodes[2];
        bytes32 inner = tree.nodes[1];
        vm.expectRevert(abi.encodeWithSelector(IStaking.InvalidProof.selector, slashId, uint256(inner), bob, 1));
        staking.claimSlash(slashId, uint256(inner), bob, 1, proof);
        assertEq(_remaining(slashId), 4 ether);
    }

    function test_claimSlash_revertsWhenNoPool() public {
        _stake(alice, 100 ether);
        uint256 slashId = _slash(alice, 10 ether, 0, bytes32(0));
        vm.expectRevert(abi.encodeWithSelector(IStaking.NoImpactPool.selector, slashId));
        staking.claimSlash(slashId, 0, bob, 1, new bytes32[](0));
        vm.expectRevert(abi.encodeWithSelector(IStaking.NoImpactPool.selector, 99));
        staking.claimSlash(99, 0, bob, 1, new bytes32[](0));
    }

    function test_claimSlash_revertsWhenWindowClosed() public {
        (uint256 slashId, TestMerkle.Tree memory tree) = _slashWithThreeOwners();
        uint64 closesAt = _closesAt(slashId);
        vm.warp(closesAt - 1);
        staking.claimSlash(slashId, 0, bob, 10 ether, TestMerkle.proof(tree, 0));
        vm.warp(closesAt);
        bytes32[] memory proof = TestMerkle.proof(tree, 1);
        vm.expectRevert(abi.encodeWithSelector(IStaking.ClaimWindowClosed.selector, slashId, closesAt));
        staking.claimSlash(slashId, 1, carol, 20 ether, proof);
    }

    function test_claimSlash_revertsWhenTheRootPromisesMoreThanThePool() public {
        _stake(alice, 100 ether);
        // The leaves add up to 60, but only 35 went to the impacted owners.
        TestMerkle.Tree memory tree = _tree(_three(bob, carol, stranger), _three(10 ether, 20 ether, 30 ether));
        uint256 slashId = _slash(alice, 35 ether, 35 ether, TestMerkle.root(tree));
        staking.claimSlash(slashId, 2, stranger, 30 ether, TestMerkle.proof(tree, 2));
        bytes32[] memory proof = TestMerkle.proof(tree, 0);
        vm.expectRevert(abi.encodeWithSelector(IStaking.ClaimExceedsPool.selector, slashId, 10 ether, 5 ether));
        staking.claimSlash(slashId, 0, bob, 10 ether, proof);
        assertFalse(staking.isSlashClaimed(slashId, 0));
    }

    function test_claimSlash_revertsWhenZeroAmount() public {
        _stake(alice, 100 ether);
        TestMerkle.Tree memory tree = _tree(_three(bob, carol, stranger), _three(0, 20 ether, 30 ether));
        uint256 slashId = _slash(alice, 50 ether, 50 ether, TestMerkle.root(tree));
        bytes32[] memory proof = TestMerkle.proof(tree, 0);
        vm.expectRevert(IStaking.ZeroAmount.selector);
        staking.claimSlash(slashId, 0, bob, 0, proof);
    }

    function test_claimSlash_revertsWhenTheLeafPaysStakingItself() public {
        // Paying Staking would leave the tokens in place while the pool shrinks: refused.
        _stake(alice, 100 ether);
        TestMerkle.Tree memory tree =
            _tree(_three(address(staking), address(0), bob), _three(1 ether, 1 ether, 1 ether));
        uint256 slashId = _slash(alice, 3 ether, 3 ether, TestMerkle.root(tree));
        bytes32[] memory proof = TestMerkle.proof(tree, 0);
        vm.expectRevert(abi.encodeWithSelector(IStaking.InvalidClaimant.selector, address(staking)));
        staking.claimSlash(slashId, 0, address(staking), 1 ether, proof);
        proof = TestMerkle.proof(tree, 1);
        vm.expectRevert(abi.encodeWithSelector(IStaking.InvalidClaimant.selector, address(0)));
        staking.claimSlash(slashId, 1, address(0), 1 ether, proof);
        assertEq(_remaining(slashId), 3 ether);
    }

    function test_claimSlash_keepsBitmapWordsApart() public {
        // Leaves 0, 255, 256 and 511: two bitmap words, neighbouring bits.
        uint256[4] memory indexes = [uint256(0), 255, 256, 511];
        _stake(alice, 100 ether);
        address[] memory owners = new address[](512);
        uint256[] memory amounts = new uint256[](512);
        for (uint256 i; i < 4; ++i) {
            owners[indexes[i]] = address(uint160(0xA000 + i));
            amounts[indexes[i]] = 1 ether;
        }
        // Fill the rest with one-wei leaves of a single address.
        for (uint256 i; i < 512; ++i) {
            if (amounts[i] == 0) (owners[i], amounts[i]) = (address(0xBEEF), 1);
        }
        TestMerkle.Tree memory tree = _tree(owners, amounts);
        uint256 slashId = _slash(alice, 10 ether, 10 ether, TestMerkle.root(tree));
        for (uint256 i; i < 4; ++i) {
            uint256 index = indexes[i];
            staking.claimSlash(slashId, index, owners[index], 1 ether, TestMerkle.proof(tree, index));
            for (uint256 j; j < 4; ++j) {
                assertEq(staking.isSlashClaimed(slashId, indexes[j]), j <= i);
            }
            assertFalse(staking.isSlashClaimed(slashId, 1));
            assertFalse(staking.isSlashClaimed(slashId, 257));
        }
        assertFalse(staking.isSlashClaimed(slashId + 1, 0));
    }

    // ================================================================ sweepSlash

    function test_sweepSlash_sendsTheUnclaimedRestToTheTreasury() public {
        (uint256 slashId, TestMerkle.Tree memory tree) = _slashWithThreeOwners();
        staking.claimSlash(slashId, 1, carol, 20 ether, TestMerkle.proof(tree, 1));
        vm.warp(_closesAt(slashId));
        uint256 treasuryBefore = token.balanceOf(address(treasury));
        vm.expectEmit(address(staking));
        emit IStaking.SlashSwept(slashId, 40 ether);
        vm.prank(stranger);
        staking.sweepSlash(slashId);
        assertEq(token.balanceOf(address(treasury)) - treasuryBefore, 40 ether);
        assertEq(_remaining(slashId), 0);
        assertEq(token.balanceOf(address(staking)), 20 ether);
    }

    function test_sweepSlash_revertsWhenWindowOpen() public {
        (uint256 slashId,) = _slashWithThreeOwners();
        uint64 closesAt = _closesAt(slashId);
        vm.warp(closesAt - 1);
        vm.expectRevert(abi.encodeWithSelector(IStaking.ClaimWindowOpen.selector, slashId, closesAt));
        staking.sweepSlash(slashId);
    }

    function test_sweepSlash_revertsWhenSweptTwice() public {
        (uint256 slashId,) = _slashWithThreeOwners();
        vm.warp(_closesAt(slashId));
        staking.sweepSlash(slashId);
        vm.expectRevert(abi.encodeWithSelector(IStaking.NothingToSweep.selector, slashId));
        staking.sweepSlash(slashId);
    }

    function test_sweepSlash_revertsWhenEverythingWasClaimed() public {
        (uint256 slashId, TestMerkle.Tree memory tree) = _slashWithThreeOwners();
        for (uint256 i; i < 3; ++i) {
            address owner = i == 0 ? bob : i == 1 ? carol : stranger;
            staking.claimSlash(slashId, i, owner, (i + 1) * 10 ether, TestMerkle.proof(tree, i));
        }
        vm.warp(_closesAt(slashId));
        vm.expectRevert(abi.encodeWithSelector(IStaking.NothingToSweep.selector, slashId));
        staking.sweepSlash(slashId);
    }

    function test_sweepSlash_revertsWhenNoPool() public {
        vm.expectRevert(abi.encodeWithSelector(IStaking.NoImpactPool.selector, 1));
        staking.sweepSlash(1);
    }
}
