// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {Test} from "forge-std/Test.sol";
import {DimoToken} from "../../../contracts/token/DimoToken.sol";
import {Treasury} from "../../../contracts/governance/Treasury.sol";
import {Staking} from "../../../contracts/staking/Staking.sol";
import {SlashRaceHandler} from "./SlashRaceHandler.sol";

/// @notice The race of issue 16: slash proposals against unstake requests and withdrawals. A
///         frozen stake never leaves; a slash executed within its window takes what was there
///         when it was proposed (up to its amount). 256 calls per run so that every move, and
///         every outcome the race is about, happens in every run (afterInvariant checks it).
/// forge-config: default.invariant.depth = 256
/// forge-config: ci.invariant.depth = 256
contract SlashRaceInvariantTest is Test {
    /// @dev Each handler function runs at least this often per run (≈ 256 / 9 expected).
    uint256 internal constant MIN_CALLS = 5;
    /// @dev The run depth set above: shorter sequences are forge's shrinking of a failure.
    uint256 internal constant DEPTH = 256;

    DimoToken private token;
    Staking private staking;
    Treasury private treasury;
    SlashRaceHandler private handler;

    function setUp() public {
        address governor = address(0x6006);
        address slasher = address(0x5a5e);
        token = new DimoToken(address(this), 1_000_000_000 ether);
        treasury = new Treasury(governor);
        staking = new Staking(address(token), address(treasury), governor);
        handler = new SlashRaceHandler(token, staking, governor, slasher);
        vm.startPrank(governor);
        staking.grantRole(staking.SLASHER_ROLE(), slasher);
        // Short periods, so that within a run unbondings mature, freezes lapse and slashes land.
        staking.setUnbondingPeriod(1 days);
        staking.setDisputeWindow(3 days);
        vm.stopPrank();
        token.transfer(address(handler), 3_000_000 ether);
        handler.fundActors();

        bytes4[] memory selectors = new bytes4[](9);
        selectors[0] = SlashRaceHandler.stake.selector;
        selectors[1] = SlashRaceHandler.requestUnstake.selector;
        selectors[2] = SlashRaceHandler.withdraw.selector;
        selectors[3] = SlashRaceHandler.raceToLeave.selector;
        selectors[4] = SlashRaceHandler.warp.selector;
        selectors[5] = SlashRaceHandler.proposeSlash.selector;
        selectors[6] = SlashRaceHandler.executeSlash.selector;
        selectors[7] = SlashRaceHandler.cancelSlash.selector;
        selectors[8] = SlashRaceHandler.proposeSlash.selector; // proposals twice as often keep freezes around
        targetSelector(FuzzSelector({addr: address(handler), selectors: selectors}));
        targetContract(address(handler));
    }

    /// @notice While frozen, an account holds at least what it held when the slash was proposed.
    function invariant_frozenStakeNeverLeaves() public view {
        for (uint256 i; i < handler.actorCount(); ++i) {
            address actor = handler.actors(i);
            (uint256 slashId,) = staking.freezeOf(actor);
            if (slashId == 0) continue;
            (uint256 active, uint256 unbonding,) = staking.stakeOf(actor);
            assertGe(active + unbonding, handler.frozenFloor(actor), "frozen stake left");
        }
        assertEq(handler.ghostFrozenEscapes(), 0, "an unstake or withdrawal went through while frozen");
        assertEq(handler.ghostShortSlashes(), 0, "a slash took less than the frozen stake");
        assertEq(handler.ghostUnexpectedRefusals(), 0, "a call was refused for the wrong reason");
    }

    /// @notice Staking's balance is the stakes; every account's stake is what went in, less what
    ///         came out and was slashed; the Treasury holds exactly what slashes took.
    function invariant_booksBalance() public view {
        uint256 staked;
        for (uint256 i; i < handler.actorCount(); ++i) {
            address actor = handler.actors(i);
            (uint256 active, uint256 unbonding,) = staking.stakeOf(actor);
            staked += active + unbonding;
            assertEq(
                active + unbonding,
                handler.ghostDeposited(actor) - handler.ghostWithdrawn(actor) - handler.ghostSlashed(actor),
                "account books"
            );
        }
        assertEq(token.balanceOf(address(staking)), staked, "balance != active + unbonding");
        assertEq(token.balanceOf(address(treasury)), handler.ghostToTreasury(), "treasury");
    }

    /// @notice Every move ran, and the race happened: proposals, executions, refusals of frozen
    ///         stake and withdrawals of unfrozen stake, in every run.
    function afterInvariant() public view {
        if (handler.totalCalls() < DEPTH) return; // a shrunk replay of a failure, not a run
        bytes32[8] memory moves = [
            bytes32("stake"),
            "requestUnstake",
            "withdraw",
            "raceToLeave",
            "warp",
            "proposeSlash",
            "executeSlash",
            "cancelSlash"
        ];
        for (uint256 i; i < moves.length; ++i) {
            assertGe(handler.calls(moves[i]), MIN_CALLS, string(abi.encodePacked(moves[i])));
        }
        assertGe(handler.calls("proposed"), 1, "no slash was proposed");
        assertGe(handler.calls("executed"), 1, "no slash executed");
        assertGe(handler.calls("frozenRefusal"), 1, "no frozen stake was tried");
        assertGe(handler.calls("withdrawn"), 1, "no withdrawal went through");
    }
}
