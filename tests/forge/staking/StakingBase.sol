// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {Test} from "forge-std/Test.sol";
import {DimoToken} from "../../../contracts/token/DimoToken.sol";
import {Treasury} from "../../../contracts/governance/Treasury.sol";
import {Staking} from "../../../contracts/staking/Staking.sol";
import {IStaking} from "../../../contracts/interfaces/IStaking.sol";
import {TestMerkle} from "./TestMerkle.sol";

/// @notice The real DimoToken, Treasury and Staking, wired as the deployment wires them, with
///         named accounts and helpers shared by the staking suites.
abstract contract StakingBase is Test {
    uint256 internal constant SUPPLY = 1_000_000_000 ether;
    uint256 internal constant FUNDS = 1_000_000 ether;

    DimoToken internal token;
    Treasury internal treasury;
    Staking internal staking;

    address internal governor;
    address internal slasher;
    address internal market;
    address internal stranger;
    address internal alice;
    uint256 internal aliceKey;
    address internal bob;
    address internal carol;

    function setUp() public virtual {
        governor = makeAddr("governor");
        slasher = makeAddr("slasher");
        market = makeAddr("market");
        stranger = makeAddr("stranger");
        (alice, aliceKey) = makeAccount("alice");
        bob = makeAddr("bob");
        carol = makeAddr("carol");

        token = new DimoToken(address(this), SUPPLY);
        treasury = new Treasury(governor);
        staking = new Staking(address(token), address(treasury), governor);
        vm.startPrank(governor);
        staking.grantRole(staking.SLASHER_ROLE(), slasher);
        staking.grantRole(staking.MARKET_ROLE(), market);
        vm.stopPrank();

        token.transfer(alice, FUNDS);
        token.transfer(bob, FUNDS);
        token.transfer(carol, FUNDS);
    }

    function _stake(address account, uint256 amount) internal {
        vm.startPrank(account);
        token.approve(address(staking), amount);
        staking.stake(amount);
        vm.stopPrank();
    }

    function _requestUnstake(address account, uint256 amount) internal {
        vm.prank(account);
        staking.requestUnstake(amount);
    }

    /// @notice The SLASHER proposes slashing up to `amount` of `account` (freezing its stake).
    function _propose(address account, uint256 amount) internal returns (uint256 slashId) {
        vm.prank(slasher);
        return staking.proposeSlash(account, amount, IStaking.SlashSubject.Product, 7, "ipfs://misuse");
    }

    /// @notice Executes proposal `slashId` as the SLASHER.
    function _execute(uint256 slashId, uint256 toImpacted, bytes32 root) internal returns (uint256 taken) {
        vm.prank(slasher);
        return staking.slash(slashId, toImpacted, root);
    }

    /// @notice Proposes and at once executes a slash of up to `amount`; returns its id.
    function _slash(address account, uint256 amount, uint256 toImpacted, bytes32 root) internal returns (uint256) {
        uint256 slashId = _propose(account, amount);
        _execute(slashId, toImpacted, root);
        return slashId;
    }

    function _whitelist(address account, IStaking.Role role) internal {
        vm.prank(governor);
        staking.setWhitelisted(account, role, true);
    }

    function _setCurve(IStaking.Role role, uint256 base, uint256 perSqrtUnit) internal {
        vm.prank(governor);
        staking.setCurve(role, base, perSqrtUnit);
    }

    function _setUsage(address account, uint256 units, uint8 tier) internal {
        vm.prank(market);
        staking.setUsage(account, units, tier);
    }

    function _active(address account) internal view returns (uint256 active) {
        (active,,) = staking.stakeOf(account);
    }

    function _unbonding(address account) internal view returns (uint256 unbonding) {
        (, unbonding,) = staking.stakeOf(account);
    }

    function _releaseAt(address account) internal view returns (uint64 releaseAt) {
        (,, releaseAt) = staking.stakeOf(account);
    }

    function _remaining(uint256 slashId) internal view returns (uint256 remaining) {
        (, remaining,) = staking.slashPool(slashId);
    }

    function _closesAt(uint256 slashId) internal view returns (uint64 closesAt) {
        (,, closesAt) = staking.slashPool(slashId);
    }

    /// @notice A tree of `owners.length` leaves `(i, owners[i], amounts[i])`.
    function _tree(address[] memory owners, uint256[] memory amounts) internal pure returns (TestMerkle.Tree memory) {
        return TestMerkle.build(owners, amounts);
    }

    function _three(address a, address b, address c) internal pure returns (address[] memory list) {
        list = new address[](3);
        (list[0], list[1], list[2]) = (a, b, c);
    }

    function _three(uint256 a, uint256 b, uint256 c) internal pure returns (uint256[] memory list) {
        list = new uint256[](3);
        (list[0], list[1], list[2]) = (a, b, c);
    }
}
