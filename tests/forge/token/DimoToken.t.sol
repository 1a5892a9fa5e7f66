// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {Test} from "../lib/Test.sol";
import {DimoToken} from "../../../contracts/token/DimoToken.sol";
import {IERC20Errors} from "@openzeppelin/contracts/interfaces/draft-IERC6093.sol";
import {ERC20Permit} from "@openzeppelin/contracts/token/ERC20/extensions/ERC20Permit.sol";

contract DimoTokenTest is Test {
    DimoToken internal token;
    address internal holder;
    uint256 internal holderKey;
    address internal spender;
    address internal alice;
    address internal bob;

    uint256 internal constant SUPPLY = 600_000_000 ether;
    bytes32 internal constant PERMIT_TYPEHASH =
        keccak256("Permit(address owner,address spender,uint256 value,uint256 nonce,uint256 deadline)");

    function setUp() public {
        (holder, holderKey) = makeAccount("holder");
        spender = makeAddr("spender");
        alice = makeAddr("alice");
        bob = makeAddr("bob");
        token = new DimoToken(holder, SUPPLY);
        vm.warp(1_700_000_000);
    }

    // ------------------------------------------------------------ metadata and cap

    function test_metadata() public view {
        assertEq(token.name(), "Dimo");
        assertEq(token.symbol(), "DIMO");
        assertEq(uint256(token.decimals()), 18);
        assertEq(token.cap(), token.MAX_SUPPLY());
    }

    function test_constructor_mintsInitialSupplyToRecipient() public view {
        assertEq(token.totalSupply(), SUPPLY);
        assertEq(token.balanceOf(holder), SUPPLY);
    }

    function test_constructor_acceptsExactlyTheCap() public {
        DimoToken full = new DimoToken(alice, 1_000_000_000 ether);
        assertEq(full.totalSupply(), full.cap());
    }

    function test_constructor_revertsWhenAboveCap() public {
        uint256 cap = 1_000_000_000 ether;
        vm.expectRevert(abi.encodeWithSelector(DimoToken.InitialSupplyAboveCap.selector, cap + 1, cap));
        new DimoToken(alice, cap + 1);
    }

    function test_constructor_revertsOnZeroRecipient() public {
        vm.expectRevert(DimoToken.ZeroRecipient.selector);
        new DimoToken(address(0), 1);
    }

    function test_noMintFunctionExists() public {
        // No external path mints: calling a mint selector reverts (no fallback).
        (bool ok,) = address(token).call(abi.encodeWithSignature("mint(address,uint256)", alice, 1));
        assertFalse(ok, "mint(address,uint256) must not exist");
        assertEq(token.totalSupply(), SUPPLY);
    }

    // ------------------------------------------------------------ transfers

    function test_transfer_revertsWhenBalanceTooLow() public {
        vm.prank(alice);
        vm.expectRevert(abi.encodeWithSelector(IERC20Errors.ERC20InsufficientBalance.selector, alice, 0, 1));
        token.transfer(bob, 1);
    }

    function testFuzz_transfer_conservesSupply(uint256 amount, uint256 second) public {
        amount = bound(amount, 0, SUPPLY);
        second = bound(second, 0, amount);
        vm.prank(holder);
        assertTrue(token.transfer(alice, amount));
        vm.prank(alice);
        assertTrue(token.transfer(bob, second));
        assertEq(token.balanceOf(holder), SUPPLY - amount);
        assertEq(token.balanceOf(alice), amount - second);
        assertEq(token.balanceOf(bob), second);
        assertEq(token.totalSupply(), SUPPLY);
    }

    function testFuzz_transferFrom_spendsAllowance(uint256 allowance, uint256 amount) public {
        allowance = bound(allowance, 0, SUPPLY);
        amount = bound(amount, 0, allowance);
        vm.prank(holder);
        token.approve(spender, allowance);
        vm.prank(spender);
        assertTrue(token.transferFrom(holder, alice, amount));
        assertEq(token.allowance(holder, spender), allowance - amount);
        assertEq(token.balanceOf(alice), amount);
    }

    // ------------------------------------------------------------ permit (EIP-2612)

    function _permitDigest(address owner, address to, uint256 value, uint256 nonce, uint256 deadline)
        internal
        view
        returns (bytes32)
    {
        bytes32 structHash = keccak256(abi.encode(PERMIT_TYPEHASH, owner, to, value, nonce, deadline));
        return keccak256(abi.encodePacked("\x19\x01", token.DOMAIN_SEPARATOR(), structHash));
    }

    function _signPermit(uint256 value, uint256 deadline) internal view returns (uint8 v, bytes32 r, bytes32 s) {
        return vm.sign(holderKey, _permitDigest(holder, spender, value, token.nonces(holder), deadline));
    }

    function test_permit_setsAllowanceAndConsumesNonce() public {
        uint256 deadline = block.timestamp + 1 hours;
        (uint8 v, bytes32 r, bytes32 s) = _signPermit(5 ether, deadline);
        token.permit(holder, spender, 5 ether, deadline, v, r, s);
        assertEq(token.allowance(holder, spender), 5 ether);
        assertEq(token.nonces(holder), 1);
    }

    function test_permit_revertsOnReplay() public {
        uint256 deadline = block.timestamp + 1 hours;
        (uint8 v, bytes32 r, bytes32 s) = _signPermit(5 ether, deadline);
        token.permit(holder, spender, 5 ether, deadline, v, r, s);
        // The nonce moved, so the same signature now recovers a different signer.
        vm.expectRevert();
        token.permit(holder, spender, 5 ether, deadline, v, r, s);
        assertEq(token.nonces(holder), 1);
    }

    function test_permit_revertsWhenExpired() public {
        uint256 deadline = block.timestamp - 1;
        (uint8 v, bytes32 r, bytes32 s) = _signPermit(5 ether, deadline);
        vm.expectRevert(abi.encodeWithSelector(ERC20Permit.ERC2612ExpiredSignature.selector, deadline));
        token.permit(holder, spender, 5 ether, deadline, v, r, s);
    }

    function test_permit_acceptsAtDeadline() public {
        uint256 deadline = block.timestamp;
        (uint8 v, bytes32 r, bytes32 s) = _signPermit(1, deadline);
        token.permit(holder, spender, 1, deadline, v, r, s);
        assertEq(token.allowance(holder, spender), 1);
    }

    function test_permit_revertsForWrongSigner() public {
        (, uint256 otherKey) = makeAccount("other");
        uint256 deadline = block.timestamp + 1;
        (uint8 v, bytes32 r, bytes32 s) =
            vm.sign(otherKey, _permitDigest(holder, spender, 1, token.nonces(holder), deadline));
        vm.expectRevert(
            abi.encodeWithSelector(ERC20Permit.ERC2612InvalidSigner.selector, vm.addr(otherKey), holder)
        );
        token.permit(holder, spender, 1, deadline, v, r, s);
    }

    function test_permit_revertsOnAnotherChain() public {
        uint256 deadline = block.timestamp + 1;
        (uint8 v, bytes32 r, bytes32 s) = _signPermit(1, deadline);
        vm.chainId(block.chainid + 1);
        vm.expectRevert();
        token.permit(holder, spender, 1, deadline, v, r, s);
    }

    function testFuzz_permit(uint256 value, uint256 ttl) public {
        ttl = bound(ttl, 0, 365 days);
        uint256 deadline = block.timestamp + ttl;
        (uint8 v, bytes32 r, bytes32 s) = _signPermit(value, deadline);
        token.permit(holder, spender, value, deadline, v, r, s);
        assertEq(token.allowance(holder, spender), value);
        vm.warp(deadline + 1);
        (v, r, s) = _signPermit(value, deadline);
        vm.expectRevert(abi.encodeWithSelector(ERC20Permit.ERC2612ExpiredSignature.selector, deadline));
        token.permit(holder, spender, value, deadline, v, r, s);
    }

    // ------------------------------------------------------------ votes

    function test_clock_isTimestamp() public view {
        assertEq(uint256(token.clock()), block.timestamp);
        assertEq(token.CLOCK_MODE(), "mode=timestamp");
    }

    function test_votes_followDelegationAndTransfers() public {
        vm.prank(holder);
        token.delegate(holder);
        assertEq(token.getVotes(holder), SUPPLY);

        uint256 t0 = block.timestamp;
        vm.warp(t0 + 10);
        vm.prank(holder);
        token.transfer(alice, 100 ether);
        // alice has not delegated: her tokens carry no votes yet
        assertEq(token.getVotes(holder), SUPPLY - 100 ether);
        assertEq(token.getVotes(alice), 0);

        vm.prank(alice);
        token.delegate(bob);
        assertEq(token.getVotes(bob), 100 ether);

        vm.warp(t0 + 20);
        vm.prank(holder);
        token.transfer(alice, 50 ether);
        assertEq(token.getVotes(bob), 150 ether);

        vm.warp(t0 + 30);
        // checkpoints: the past is fixed
        assertEq(token.getPastVotes(holder, t0), SUPPLY);
        assertEq(token.getPastVotes(holder, t0 + 10), SUPPLY - 100 ether);
        assertEq(token.getPastVotes(bob, t0 + 10), 100 ether);
        assertEq(token.getPastVotes(bob, t0 + 20), 150 ether);
        assertEq(token.getPastTotalSupply(t0 + 20), SUPPLY);
    }

    function testFuzz_votes_sumToDelegatedBalances(uint256 a, uint256 b) public {
        a = bound(a, 0, SUPPLY);
        b = bound(b, 0, SUPPLY - a);
        vm.prank(holder);
        token.delegate(alice);
        vm.prank(holder);
        token.transfer(bob, a);
        vm.prank(bob);
        token.delegate(bob);
        vm.prank(holder);
        token.transfer(bob, b);
        assertEq(token.getVotes(alice), SUPPLY - a - b);
        assertEq(token.getVotes(bob), a + b);
        assertEq(token.getVotes(alice) + token.getVotes(bob), SUPPLY);
    }
}
