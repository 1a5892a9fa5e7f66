// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {Test} from "../lib/Test.sol";
import {DimoToken} from "../../../contracts/token/DimoToken.sol";

/// @notice Drives random transfers, approvals, transferFroms and delegations among a fixed
///         set of actors, tracking what the token must conserve.
contract TokenHandler is Test {
    DimoToken internal immutable token;
    address[] public actors;
    uint256 public calls;

    constructor(DimoToken token_, address[] memory actors_) {
        token = token_;
        actors = actors_;
    }

    function _actor(uint256 seed) internal view returns (address) {
        return actors[seed % actors.length];
    }

    function transfer(uint256 fromSeed, uint256 toSeed, uint256 amount) external {
        address from = _actor(fromSeed);
        amount = bound(amount, 0, token.balanceOf(from));
        vm.prank(from);
        token.transfer(_actor(toSeed), amount);
        ++calls;
    }

    function approveAndTransferFrom(uint256 ownerSeed, uint256 spenderSeed, uint256 toSeed, uint256 amount)
        external
    {
        address owner = _actor(ownerSeed);
        address spender = _actor(spenderSeed);
        amount = bound(amount, 0, token.balanceOf(owner));
        vm.prank(owner);
        token.approve(spender, amount);
        vm.prank(spender);
        token.transferFrom(owner, _actor(toSeed), amount);
        ++calls;
    }

    function delegate(uint256 fromSeed, uint256 toSeed) external {
        vm.prank(_actor(fromSeed));
        token.delegate(_actor(toSeed));
        ++calls;
    }

    function actorCount() external view returns (uint256) {
        return actors.length;
    }
}

contract DimoTokenInvariantTest is Test {
    DimoToken internal token;
    TokenHandler internal handler;
    uint256 internal constant SUPPLY = 1_000_000 ether;

    function setUp() public {
        address[] memory actors = new address[](5);
        for (uint256 i; i < actors.length; ++i) {
            actors[i] = makeAddr(string(abi.encodePacked("actor", vm.toString(i))));
        }
        token = new DimoToken(actors[0], SUPPLY);
        handler = new TokenHandler(token, actors);
        targetContract(address(handler));
    }

    /// Supply never changes and is exactly what the actors hold.
    function invariant_supplyIsConservedAndHeldByActors() public view {
        uint256 sum;
        for (uint256 i; i < handler.actorCount(); ++i) {
            sum += token.balanceOf(handler.actors(i));
        }
        assertEq(token.totalSupply(), SUPPLY, "total supply moved");
        assertEq(sum, SUPPLY, "balances do not sum to supply");
    }

    /// Votes equal the balances delegated to each actor, and never exceed the supply.
    function invariant_votesMatchDelegatedBalances() public view {
        uint256 n = handler.actorCount();
        uint256 totalVotes;
        for (uint256 i; i < n; ++i) {
            address delegatee = handler.actors(i);
            uint256 expected;
            for (uint256 j; j < n; ++j) {
                address holder = handler.actors(j);
                if (token.delegates(holder) == delegatee) expected += token.balanceOf(holder);
            }
            assertEq(token.getVotes(delegatee), expected, "votes differ from delegated balances");
            totalVotes += expected;
        }
        assertLe(totalVotes, token.totalSupply());
    }
}
