// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {Test} from "forge-std/Test.sol";
import {DimoToken} from "../../../contracts/token/DimoToken.sol";
import {Treasury} from "../../../contracts/governance/Treasury.sol";
import {Staking} from "../../../contracts/staking/Staking.sol";
import {StakingHandler} from "./StakingHandler.sol";

/// @notice Invariants over random sequences driven by StakingHandler (FOUNDRY_PROFILE=ci:
///         64 runs x 200 calls = 12,800 calls per invariant).
contract StakingInvariantTest is Test {
    DimoToken private token;
    Staking private staking;
    Treasury private treasury;
    StakingHandler private handler;

    function setUp() public {
        address governor = address(0x6006);
        address slasher = address(0x5a5e);
        address market = address(0x3a3e);
        token = new DimoToken(address(this), 1_000_000_000 ether);
        treasury = new Treasury(governor);
        staking = new Staking(address(token), address(treasury), governor);
        handler = new StakingHandler(token, staking, governor, slasher, market);
        vm.startPrank(governor);
        staking.grantRole(staking.SLASHER_ROLE(), slasher);
        staking.grantRole(staking.MARKET_ROLE(), market);
        vm.stopPrank();
        token.transfer(address(handler), 4_000_000 ether);
        handler.fundActors();

        bytes4[] memory selectors = new bytes4[](12);
        selectors[0] = StakingHandler.stake.selector;
        selectors[1] = StakingHandler.requestUnstake.selector;
        selectors[2] = StakingHandler.withdraw.selector;
        selectors[3] = StakingHandler.warp.selector;
        selectors[4] = StakingHandler.govern.selector;
        selectors[5] = StakingHandler.setUsage.selector;
        selectors[6] = StakingHandler.setUnbondingPeriod.selector;
        selectors[7] = StakingHandler.slash.selector;
        selectors[8] = StakingHandler.claim.selector;
        selectors[9] = StakingHandler.claimAgain.selector;
        selectors[10] = StakingHandler.sweep.selector;
        selectors[11] = StakingHandler.stake.selector; // staking twice as often keeps stake around
        targetSelector(FuzzSelector({addr: address(handler), selectors: selectors}));
        targetContract(address(handler));
    }

    /// @notice Staking's token balance == total active + total unbonding + unclaimed pools, to the wei.
    function invariant_conservation() public view {
        uint256 staked;
        for (uint256 i; i < handler.actorCount(); ++i) {
            (uint256 active, uint256 unbonding,) = staking.stakeOf(handler.actors(i));
            staked += active + unbonding;
        }
        uint256 pooled;
        for (uint256 s = 1; s <= staking.slashCount(); ++s) {
            (, uint256 remaining,) = staking.slashPool(s);
            pooled += remaining;
        }
        assertEq(token.balanceOf(address(staking)), staked + pooled, "balance != active + unbonding + pools");
    }

    /// @notice Every account's stake is exactly what went in, less what came out and was slashed:
    ///         never negative, and nothing left by a side door (unstaking never escaped a slash).
    function invariant_accountBooks() public view {
        for (uint256 i; i < handler.actorCount(); ++i) {
            address actor = handler.actors(i);
            (uint256 active, uint256 unbonding,) = staking.stakeOf(actor);
            assertEq(
                active + unbonding,
                handler.ghostDeposited(actor) - handler.ghostWithdrawn(actor) - handler.ghostSlashed(actor),
                "account books"
            );
        }
        assertEq(handler.ghostWrongSlashRefusals(), 0, "a slash within active + unbonding was refused");
        assertEq(handler.ghostEscapes(), 0, "a withdrawal released more than the unbonding stake");
        assertEq(handler.ghostUnexpectedRefusals(), 0, "a valid call was refused for the wrong reason");
    }

    /// @notice No leaf is paid twice and no pool pays more than its toImpacted.
    function invariant_claimsOncePerLeafAndWithinThePool() public view {
        assertEq(handler.ghostDoubleClaims(), 0, "a leaf was paid twice");
        assertEq(handler.ghostOverpaidPools(), 0, "a pool paid beyond its share or window");
        for (uint256 k; k < handler.slashCountSeen(); ++k) {
            uint256 slashId = handler.slashIds(k);
            (uint256 toImpacted, uint256 claimed, uint256 swept) = handler.poolBooks(slashId);
            (, uint256 remaining,) = staking.slashPool(slashId);
            assertLe(claimed + swept, toImpacted, "pool overpaid");
            assertEq(remaining, toImpacted - claimed - swept, "pool remaining");
        }
    }

    /// @notice The Treasury received exactly the non-impact share of slashes plus the sweeps.
    function invariant_treasuryGetsTheRest() public view {
        assertEq(token.balanceOf(address(treasury)), handler.ghostToTreasury(), "treasury");
    }
}
