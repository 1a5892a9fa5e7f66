// SPDX-License-Identifier: MIT
pragma solidity ^0.8.20;

import {Vm} from "./Vm.sol";

/// @title Test
/// @notice The project's forge test base: cheatcodes, assertions, fuzz bounds, named
///         accounts and invariant targeting. Written for this repository (forge-std is
///         not published on the npm registry in a current version).
abstract contract Test {
    /// @dev forge recognises test contracts by this flag.
    bool public IS_TEST = true;

    Vm internal constant vm = Vm(address(uint160(uint256(keccak256("hevm cheat code")))));

    uint256 private constant UINT256_MAX = type(uint256).max;

    // ---------------------------------------------------------------- assertions

    function assertTrue(bool condition) internal pure {
        vm.assertTrue(condition, "expected true");
    }

    function assertTrue(bool condition, string memory error) internal pure {
        vm.assertTrue(condition, error);
    }

    function assertFalse(bool condition) internal pure {
        vm.assertFalse(condition, "expected false");
    }

    function assertFalse(bool condition, string memory error) internal pure {
        vm.assertFalse(condition, error);
    }

    function assertEq(bool left, bool right) internal pure {
        vm.assertEq(left, right, "bool mismatch");
    }

    function assertEq(bool left, bool right, string memory error) internal pure {
        vm.assertEq(left, right, error);
    }

    function assertEq(uint256 left, uint256 right) internal pure {
        vm.assertEq(left, right, "uint mismatch");
    }

    function assertEq(uint256 left, uint256 right, string memory error) internal pure {
        vm.assertEq(left, right, error);
    }

    function assertEq(int256 left, int256 right) internal pure {
        vm.assertEq(left, right, "int mismatch");
    }

    function assertEq(address left, address right) internal pure {
        vm.assertEq(left, right, "address mismatch");
    }

    function assertEq(address left, address right, string memory error) internal pure {
        vm.assertEq(left, right, error);
    }

    function assertEq(bytes32 left, bytes32 right) internal pure {
        vm.assertEq(left, right, "bytes32 mismatch");
    }

    function assertEq(bytes32 left, bytes32 right, string memory error) internal pure {
        vm.assertEq(left, right, error);
    }

    function assertEq(string memory left, string memory right) internal pure {
        vm.assertEq(left, right, "string mismatch");
    }

    function assertEq(bytes memory left, bytes memory right) internal pure {
        vm.assertEq(left, right, "bytes mismatch");
    }

    function assertNotEq(uint256 left, uint256 right) internal pure {
        vm.assertNotEq(left, right, "values equal");
    }

    function assertNotEq(address left, address right) internal pure {
        vm.assertNotEq(left, right, "addresses equal");
    }

    function assertNotEq(bytes32 left, bytes32 right) internal pure {
        vm.assertNotEq(left, right, "bytes32 equal");
    }

    function assertGt(uint256 left, uint256 right) internal pure {
        vm.assertGt(left, right, "not greater");
    }

    function assertGe(uint256 left, uint256 right) internal pure {
        vm.assertGe(left, right, "not greater or equal");
    }

    function assertGe(uint256 left, uint256 right, string memory error) internal pure {
        vm.assertGe(left, right, error);
    }

    function assertLt(uint256 left, uint256 right) internal pure {
        vm.assertLt(left, right, "not less");
    }

    function assertLe(uint256 left, uint256 right) internal pure {
        vm.assertLe(left, right, "not less or equal");
    }

    function assertLe(uint256 left, uint256 right, string memory error) internal pure {
        vm.assertLe(left, right, error);
    }

    // ---------------------------------------------------------------- fuzz helpers

    /// @notice Maps any `x` into [min, max] uniformly enough for fuzzing, keeping small
    ///         values as they are so edge cases stay edge cases.
    function bound(uint256 x, uint256 min, uint256 max) internal pure returns (uint256) {
        require(min <= max, "bound: min > max");
        if (x >= min && x <= max) return x;
        uint256 size = max - min;
        if (size == UINT256_MAX) return x;
        return min + (x % (size + 1));
    }

    /// @notice A deterministic private key and its address for a readable name.
    function makeAccount(string memory name) internal returns (address account, uint256 privateKey) {
        privateKey = uint256(keccak256(abi.encodePacked(name))) % SECP256K1_ORDER_MINUS_ONE + 1;
        account = vm.addr(privateKey);
        vm.label(account, name);
    }

    /// @notice A deterministic address for a readable name.
    function makeAddr(string memory name) internal returns (address account) {
        (account,) = makeAccount(name);
    }

    uint256 private constant SECP256K1_ORDER_MINUS_ONE =
        0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364140;

    /// @notice Packs a (v, r, s) signature the way wallets send it.
    function signDigest(uint256 privateKey, bytes32 digest) internal pure returns (bytes memory) {
        (uint8 v, bytes32 r, bytes32 s) = vm.sign(privateKey, digest);
        return abi.encodePacked(r, s, v);
    }

    // ---------------------------------------------------------------- invariant targeting

    struct FuzzSelector {
        address addr;
        bytes4[] selectors;
    }

    address[] private targetedContracts;
    FuzzSelector[] private targetedSelectors;

    /// @notice Restricts invariant fuzzing to `target`.
    function targetContract(address target) internal {
        targetedContracts.push(target);
    }

    /// @notice Restricts invariant fuzzing on `selector.addr` to the listed functions.
    function targetSelector(FuzzSelector memory selector) internal {
        targetedSelectors.push(selector);
    }

    /// @dev Read by forge's invariant runner.
    function targetContracts() public view returns (address[] memory) {
        return targetedContracts;
    }

    /// @dev Read by forge's invariant runner.
    function targetSelectors() public view returns (FuzzSelector[] memory) {
        return targetedSelectors;
    }
}
