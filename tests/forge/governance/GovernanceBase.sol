// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {Test} from "forge-std/Test.sol";
import {IGovernor} from "@openzeppelin/contracts/governance/IGovernor.sol";
import {DimoToken} from "../../../contracts/token/DimoToken.sol";
import {Treasury} from "../../../contracts/governance/Treasury.sol";
import {DimoTimelock} from "../../../contracts/governance/DimoTimelock.sol";
import {DimoGovernor} from "../../../contracts/governance/DimoGovernor.sol";
import {VehicleId} from "../../../contracts/identity/VehicleId.sol";
import {AftermarketDevice} from "../../../contracts/identity/AftermarketDevice.sol";
import {Staking} from "../../../contracts/staking/Staking.sol";
import {DataProducts} from "../../../contracts/market/DataProducts.sol";
import {Marketplace} from "../../../contracts/market/Marketplace.sol";

/// @notice The whole protocol as devkit/deployment.py deploys it for production: the timelock
///         is every contract's default admin and governor, the Governor its only proposer,
///         anyone its executor; hot keys hold the operational roles; the deployer (this test
///         contract) holds nothing but the token supply it hands out.
abstract contract GovernanceBase is Test {
    uint256 internal constant SUPPLY = 1_000_000_000 ether;
    uint48 internal constant VOTING_DELAY = 1 days;
    uint32 internal constant VOTING_PERIOD = 5 days;
    uint256 internal constant PROPOSAL_THRESHOLD = 100_000 ether;
    uint256 internal constant QUORUM_PERCENT = 4;
    uint256 internal constant TIMELOCK_DELAY = 2 days;
    /// @dev 4 % of the supply: exactly a quorum.
    uint256 internal constant QUORUM = SUPPLY * QUORUM_PERCENT / 100;

    DimoToken internal token;
    DimoTimelock internal timelock;
    DimoGovernor internal governor;
    Treasury internal treasury;
    VehicleId internal vehicles;
    AftermarketDevice internal devices;
    Staking internal staking;
    DataProducts internal products;
    Marketplace internal market;

    address internal minter;
    address internal slasher;
    address internal settler;
    address internal outsider;
    address internal alice;
    address internal bob;
    address internal carol;

    function setUp() public virtual {
        minter = makeAddr("minter");
        slasher = makeAddr("slasher");
        settler = makeAddr("settler");
        outsider = makeAddr("outsider");
        alice = makeAddr("alice");
        bob = makeAddr("bob");
        carol = makeAddr("carol");

        token = new DimoToken(address(this), SUPPLY);
        address[] memory bootstrap = new address[](1);
        bootstrap[0] = address(this);
        timelock = new DimoTimelock(0, bootstrap, bootstrap, address(this));
        address t = address(timelock);
        treasury = new Treasury(t);
        vehicles = new VehicleId(t);
        devices = new AftermarketDevice(address(vehicles), t);
        staking = new Staking(address(token), address(treasury), t);
        products = new DataProducts(address(vehicles), address(staking), t);
        market = new Marketplace(address(token), address(products), address(staking), address(treasury), t);
        governor =
            new DimoGovernor(token, staking, timelock, VOTING_DELAY, VOTING_PERIOD, PROPOSAL_THRESHOLD, QUORUM_PERCENT);

        // The bootstrap batch deploy_all sends: operational roles, then the timelock's delay.
        vm.startPrank(t);
        vehicles.grantRole(vehicles.MINTER_ROLE(), minter);
        staking.grantRole(staking.SLASHER_ROLE(), slasher);
        staking.grantRole(staking.MARKET_ROLE(), address(market));
        market.grantRole(market.SETTLER_ROLE(), settler);
        timelock.updateDelay(TIMELOCK_DELAY);
        vm.stopPrank();
        timelock.grantRole(timelock.PROPOSER_ROLE(), address(governor));
        timelock.grantRole(timelock.CANCELLER_ROLE(), address(governor));
        timelock.grantRole(timelock.EXECUTOR_ROLE(), address(0));
        timelock.renounceRole(timelock.PROPOSER_ROLE(), address(this));
        timelock.renounceRole(timelock.CANCELLER_ROLE(), address(this));
        timelock.renounceRole(timelock.EXECUTOR_ROLE(), address(this));
        timelock.renounceRole(timelock.DEFAULT_ADMIN_ROLE(), address(this));

        token.transfer(alice, QUORUM);
        token.transfer(bob, QUORUM / 2);
        token.transfer(carol, PROPOSAL_THRESHOLD);
        token.transfer(address(treasury), 1_000 ether);
    }

    // ------------------------------------------------------------------ helpers

    function _delegate(address holder, address to) internal {
        vm.prank(holder);
        token.delegate(to);
    }

    function _stake(address account, uint256 amount) internal {
        vm.startPrank(account);
        token.approve(address(staking), amount);
        staking.stake(amount);
        vm.stopPrank();
    }

    function _one(address target, bytes memory data)
        internal
        pure
        returns (address[] memory targets, uint256[] memory values, bytes[] memory calldatas)
    {
        targets = new address[](1);
        values = new uint256[](1);
        calldatas = new bytes[](1);
        targets[0] = target;
        calldatas[0] = data;
    }

    /// @dev Proposes `data` on `target` from `proposer`, and moves past the voting delay.
    function _propose(address proposer, address target, bytes memory data, string memory description)
        internal
        returns (uint256 proposalId)
    {
        (address[] memory targets, uint256[] memory values, bytes[] memory calldatas) = _one(target, data);
        vm.prank(proposer);
        proposalId = governor.propose(targets, values, calldatas, description);
        vm.warp(block.timestamp + VOTING_DELAY + 1);
    }

    /// @dev Propose, vote for (by each voter), end the vote, queue, wait out the timelock, execute.
    function _pass(address target, bytes memory data, string memory description, address[] memory voters)
        internal
        returns (uint256 proposalId)
    {
        proposalId = _propose(carol, target, data, description);
        for (uint256 i; i < voters.length; ++i) {
            vm.prank(voters[i]);
            governor.castVote(proposalId, 1);
        }
        vm.warp(block.timestamp + VOTING_PERIOD);
        (address[] memory targets, uint256[] memory values, bytes[] memory calldatas) = _one(target, data);
        bytes32 descriptionHash = keccak256(bytes(description));
        governor.queue(targets, values, calldatas, descriptionHash);
        vm.warp(block.timestamp + TIMELOCK_DELAY);
        governor.execute(targets, values, calldatas, descriptionHash);
        assertEq(uint8(governor.state(proposalId)), uint8(IGovernor.ProposalState.Executed));
    }
}
