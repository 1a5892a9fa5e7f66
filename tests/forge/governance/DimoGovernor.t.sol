// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {IGovernor} from "@openzeppelin/contracts/governance/IGovernor.sol";
import {TimelockController} from "@openzeppelin/contracts/governance/TimelockController.sol";
import {IAccessControl} from "@openzeppelin/contracts/access/IAccessControl.sol";
import {IERC5805} from "@openzeppelin/contracts/interfaces/IERC5805.sol";
import {Votes} from "@openzeppelin/contracts/governance/utils/Votes.sol";
import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";
import {DimoGovernor} from "../../../contracts/governance/DimoGovernor.sol";
import {GovernanceBase} from "./GovernanceBase.sol";

/// @dev A votes source on the block-number clock: the Governor must refuse to mix it in.
contract BlockClockVotes is Votes {
    constructor() EIP712("block clock", "1") {}

    function _getVotingUnits(address) internal pure override returns (uint256) {
        return 0;
    }
}

/// @notice The DAO's Governor and timelock: a proposal's whole life, its failure modes, the
///         settings and the limits the timelock puts on anyone, the DAO included.
contract DimoGovernorTest is GovernanceBase {
    string internal constant RELEASE = "Release 250 DIMO to bob (grant 7)";

    function _voters() internal view returns (address[] memory voters) {
        voters = new address[](1);
        voters[0] = alice;
    }

    function _releaseCall() internal view returns (bytes memory) {
        return abi.encodeCall(treasury.release, (address(token), bob, 250 ether));
    }

    function setUp() public override {
        super.setUp();
        _delegate(alice, alice);
        _delegate(carol, carol);
        vm.warp(block.timestamp + 1);
    }

    function test_settings_areTheDeployedOnes() public view {
        assertEq(governor.votingDelay(), VOTING_DELAY);
        assertEq(governor.votingPeriod(), VOTING_PERIOD);
        assertEq(governor.proposalThreshold(), PROPOSAL_THRESHOLD);
        assertEq(governor.quorumNumerator(), QUORUM_PERCENT);
        assertEq(governor.timelock(), address(timelock));
        assertEq(address(governor.token()), address(token));
        assertEq(address(governor.stakedVotes()), address(staking));
        assertEq(governor.CLOCK_MODE(), "mode=timestamp");
        assertEq(timelock.getMinDelay(), TIMELOCK_DELAY);
    }

    function test_proposal_runsEndToEnd_throughTheTimelock() public {
        uint256 before = token.balanceOf(bob);
        _pass(address(treasury), _releaseCall(), RELEASE, _voters());
        assertEq(token.balanceOf(bob), before + 250 ether);
    }

    function test_proposal_cannotExecuteBeforeTheTimelockDelay() public {
        uint256 id = _propose(carol, address(treasury), _releaseCall(), RELEASE);
        vm.prank(alice);
        governor.castVote(id, 1);
        vm.warp(block.timestamp + VOTING_PERIOD);
        (address[] memory targets, uint256[] memory values, bytes[] memory calldatas) =
            _one(address(treasury), _releaseCall());
        bytes32 descriptionHash = keccak256(bytes(RELEASE));
        governor.queue(targets, values, calldatas, descriptionHash);
        assertEq(uint8(governor.state(id)), uint8(IGovernor.ProposalState.Queued));
        vm.warp(block.timestamp + TIMELOCK_DELAY - 1);
        // GovernorTimelockControl salts each operation with the Governor's address.
        bytes32 salt = bytes20(address(governor)) ^ descriptionHash;
        bytes32 operation = timelock.hashOperationBatch(targets, values, calldatas, 0, salt);
        vm.expectRevert(
            abi.encodeWithSelector(
                TimelockController.TimelockUnexpectedOperationState.selector,
                operation,
                bytes32(1 << uint8(TimelockController.OperationState.Ready))
            )
        );
        governor.execute(targets, values, calldatas, descriptionHash);
    }

    function test_proposal_withoutQuorumIsDefeated() public {
        // carol alone: 100,000 DIMO, far below 4 % of the supply.
        uint256 id = _propose(carol, address(treasury), _releaseCall(), RELEASE);
        vm.prank(carol);
        governor.castVote(id, 1);
        vm.warp(block.timestamp + VOTING_PERIOD);
        assertEq(uint8(governor.state(id)), uint8(IGovernor.ProposalState.Defeated));
    }

    function test_propose_belowThresholdRefused() public {
        (address[] memory targets, uint256[] memory values, bytes[] memory calldatas) =
            _one(address(treasury), _releaseCall());
        vm.expectRevert(
            abi.encodeWithSelector(
                IGovernor.GovernorInsufficientProposerVotes.selector, outsider, 0, PROPOSAL_THRESHOLD
            )
        );
        vm.prank(outsider);
        governor.propose(targets, values, calldatas, RELEASE);
    }

    function test_votesAtTheSnapshot_notAfter() public {
        uint256 id = _propose(carol, address(treasury), _releaseCall(), RELEASE);
        // bob delegates after the snapshot: his votes do not count for this proposal.
        _delegate(bob, bob);
        vm.prank(bob);
        governor.castVote(id, 1);
        (, uint256 forVotes,) = governor.proposalVotes(id);
        assertEq(forVotes, 0);
    }

    function test_stakedVotes_carryAProposal() public {
        // alice stakes all her DIMO: her votes are all staked ones and still reach the quorum.
        _stake(alice, QUORUM);
        assertEq(token.getVotes(alice), 0);
        assertEq(staking.getVotes(alice), QUORUM);
        vm.warp(block.timestamp + 1);
        uint256 before = token.balanceOf(bob);
        _pass(address(treasury), _releaseCall(), RELEASE, _voters());
        assertEq(token.balanceOf(bob), before + 250 ether);
    }

    function test_governanceSettings_changeOnlyByProposal() public {
        vm.expectRevert(abi.encodeWithSelector(IGovernor.GovernorOnlyExecutor.selector, outsider));
        vm.prank(outsider);
        governor.setVotingPeriod(1 days);
        _pass(address(governor), abi.encodeCall(governor.setVotingPeriod, (7 days)), "Vote for a week", _voters());
        assertEq(governor.votingPeriod(), 7 days);
    }

    function test_timelock_onlyTheGovernorSchedules() public {
        bytes32 proposer = timelock.PROPOSER_ROLE();
        assertTrue(timelock.hasRole(proposer, address(governor)));
        assertFalse(timelock.hasRole(proposer, address(this)));
        assertFalse(timelock.hasRole(timelock.DEFAULT_ADMIN_ROLE(), address(this)));
        vm.expectRevert(
            abi.encodeWithSelector(IAccessControl.AccessControlUnauthorizedAccount.selector, outsider, proposer)
        );
        vm.prank(outsider);
        timelock.schedule(address(treasury), 0, _releaseCall(), 0, 0, TIMELOCK_DELAY);
    }

    function test_timelock_delayChangesOnlyThroughItself() public {
        vm.expectRevert(abi.encodeWithSelector(TimelockController.TimelockUnauthorizedCaller.selector, outsider));
        vm.prank(outsider);
        timelock.updateDelay(0);
        _pass(address(timelock), abi.encodeCall(timelock.updateDelay, (3 days)), "Three-day timelock", _voters());
        assertEq(timelock.getMinDelay(), 3 days);
    }

    function test_adminTransfer_takesTwoStepsAndTheDelay() public {
        // The DAO moves Treasury's default admin to a new timelock: begin by proposal, then the
        // new admin accepts after ADMIN_TRANSFER_DELAY; accepting earlier is refused.
        address next = makeAddr("nextTimelock");
        _pass(address(treasury), abi.encodeCall(treasury.beginDefaultAdminTransfer, (next)), "Move admin", _voters());
        (address pending, uint48 schedule) = treasury.pendingDefaultAdmin();
        assertEq(pending, next);
        assertEq(schedule, block.timestamp + treasury.ADMIN_TRANSFER_DELAY());
        vm.prank(next);
        vm.expectRevert();
        treasury.acceptDefaultAdminTransfer();
        vm.warp(uint256(schedule) + 1);
        vm.prank(next);
        treasury.acceptDefaultAdminTransfer();
        assertEq(treasury.defaultAdmin(), next);
        assertFalse(treasury.hasRole(treasury.DEFAULT_ADMIN_ROLE(), address(timelock)));
    }

    function test_cancel_byTheProposerBeforeVoting() public {
        (address[] memory targets, uint256[] memory values, bytes[] memory calldatas) =
            _one(address(treasury), _releaseCall());
        vm.prank(carol);
        uint256 id = governor.propose(targets, values, calldatas, RELEASE);
        vm.prank(carol);
        governor.cancel(targets, values, calldatas, keccak256(bytes(RELEASE)));
        assertEq(uint8(governor.state(id)), uint8(IGovernor.ProposalState.Canceled));
    }

    function test_constructor_refusesAVotesSourceOnAnotherClock() public {
        BlockClockVotes other = new BlockClockVotes();
        vm.expectRevert(
            abi.encodeWithSelector(
                DimoGovernor.ClockMismatch.selector, "mode=timestamp", "mode=blocknumber&from=default"
            )
        );
        new DimoGovernor(token, IERC5805(address(other)), timelock, 1, 1, 0, 4);
    }

    function testFuzz_votesAreTokenPlusStaked(uint256 staked, uint256 kept) public {
        staked = bound(staked, 1, QUORUM);
        kept = bound(kept, 0, QUORUM - staked);
        // alice keeps `kept` (delegated to herself), stakes `staked`, sends the rest away.
        vm.prank(alice);
        token.transfer(outsider, QUORUM - staked - kept);
        _stake(alice, staked);
        vm.warp(block.timestamp + 1);
        assertEq(governor.getVotes(alice, block.timestamp - 1), kept + staked);
    }
}
