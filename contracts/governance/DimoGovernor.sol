// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {Governor} from "@openzeppelin/contracts/governance/Governor.sol";
import {TimelockController} from "@openzeppelin/contracts/governance/TimelockController.sol";
import {GovernorCountingSimple} from "@openzeppelin/contracts/governance/extensions/GovernorCountingSimple.sol";
import {GovernorSettings} from "@openzeppelin/contracts/governance/extensions/GovernorSettings.sol";
import {GovernorTimelockControl} from "@openzeppelin/contracts/governance/extensions/GovernorTimelockControl.sol";
import {GovernorVotes} from "@openzeppelin/contracts/governance/extensions/GovernorVotes.sol";
import {
    GovernorVotesQuorumFraction
} from "@openzeppelin/contracts/governance/extensions/GovernorVotesQuorumFraction.sol";
import {IERC5805} from "@openzeppelin/contracts/interfaces/IERC5805.sol";
import {IVotes} from "@openzeppelin/contracts/governance/utils/IVotes.sol";

/// @title DimoGovernor
/// @notice The DAO: DIMO holders propose, vote (for, against, abstain) and, through the
///         DimoTimelock, execute. A vote counts the account's delegated DIMO (DimoToken's
///         checkpoints) plus the staked DIMO delegated to it (Staking's checkpoints), so
///         staking never costs voting power and no token is counted twice: staked DIMO sits in
///         Staking's token balance, which Staking never delegates on the token.
/// @dev Both sources share the token's timestamp clock (checked at deployment). The quorum is a
///      fraction of the token's total supply, staked DIMO included.
contract DimoGovernor is
    Governor,
    GovernorSettings,
    GovernorCountingSimple,
    GovernorVotes,
    GovernorVotesQuorumFraction,
    GovernorTimelockControl
{
    /// @notice The second source of votes: DIMO staked in Staking, by its staker's delegate.
    IERC5805 public immutable stakedVotes;

    /// @notice The token's and the staked-votes source's ERC-6372 clocks differ.
    error ClockMismatch(string tokenClock, string stakedClock);

    /// @param token_ DimoToken (ERC20Votes, timestamp clock)
    /// @param stakedVotes_ Staking (its checkpointed staked votes, same clock)
    /// @param timelock_ the DimoTimelock that executes what passes
    /// @param votingDelay_ seconds from proposal to the vote's snapshot and start
    /// @param votingPeriod_ seconds the vote stays open
    /// @param proposalThreshold_ votes needed to propose (base units of DIMO)
    /// @param quorumPercent_ quorum as a percentage of the total supply at the snapshot
    constructor(
        IVotes token_,
        IERC5805 stakedVotes_,
        TimelockController timelock_,
        uint48 votingDelay_,
        uint32 votingPeriod_,
        uint256 proposalThreshold_,
        uint256 quorumPercent_
    )
        Governor("DIMO Governor")
        GovernorSettings(votingDelay_, votingPeriod_, proposalThreshold_)
        GovernorVotes(token_)
        GovernorVotesQuorumFraction(quorumPercent_)
        GovernorTimelockControl(timelock_)
    {
        string memory tokenClock = token().CLOCK_MODE();
        string memory stakedClock = stakedVotes_.CLOCK_MODE();
        if (keccak256(bytes(tokenClock)) != keccak256(bytes(stakedClock))) {
            revert ClockMismatch(tokenClock, stakedClock);
        }
        stakedVotes = stakedVotes_;
    }

    /// @notice Delegated DIMO plus delegated staked DIMO of `account` at `timepoint`.
    function _getVotes(address account, uint256 timepoint, bytes memory params)
        internal
        view
        override(Governor, GovernorVotes)
        returns (uint256)
    {
        return super._getVotes(account, timepoint, params) + stakedVotes.getPastVotes(account, timepoint);
    }

    // ------------------------------------------------------------------ required overrides

    /// @inheritdoc Governor
    function votingDelay() public view override(Governor, GovernorSettings) returns (uint256) {
        return super.votingDelay();
    }

    /// @inheritdoc Governor
    function votingPeriod() public view override(Governor, GovernorSettings) returns (uint256) {
        return super.votingPeriod();
    }

    /// @inheritdoc Governor
    function proposalThreshold() public view override(Governor, GovernorSettings) returns (uint256) {
        return super.proposalThreshold();
    }

    /// @inheritdoc Governor
    function quorum(uint256 timepoint) public view override(Governor, GovernorVotesQuorumFraction) returns (uint256) {
        return super.quorum(timepoint);
    }

    /// @inheritdoc Governor
    function state(uint256 proposalId) public view override(Governor, GovernorTimelockControl) returns (ProposalState) {
        return super.state(proposalId);
    }

    /// @inheritdoc Governor
    function proposalNeedsQueuing(uint256 proposalId)
        public
        view
        override(Governor, GovernorTimelockControl)
        returns (bool)
    {
        return super.proposalNeedsQueuing(proposalId);
    }

    function _queueOperations(
        uint256 proposalId,
        address[] memory targets,
        uint256[] memory values,
        bytes[] memory calldatas,
        bytes32 descriptionHash
    ) internal override(Governor, GovernorTimelockControl) returns (uint48) {
        return super._queueOperations(proposalId, targets, values, calldatas, descriptionHash);
    }

    function _executeOperations(
        uint256 proposalId,
        address[] memory targets,
        uint256[] memory values,
        bytes[] memory calldatas,
        bytes32 descriptionHash
    ) internal override(Governor, GovernorTimelockControl) {
        super._executeOperations(proposalId, targets, values, calldatas, descriptionHash);
    }

    function _cancel(
        address[] memory targets,
        uint256[] memory values,
        bytes[] memory calldatas,
        bytes32 descriptionHash
    ) internal override(Governor, GovernorTimelockControl) returns (uint256) {
        return super._cancel(targets, values, calldatas, descriptionHash);
    }

    function _executor() internal view override(Governor, GovernorTimelockControl) returns (address) {
        return super._executor();
    }
}
