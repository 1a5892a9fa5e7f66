// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {BaselineERC721} from "../baselines/BaselineERC721.sol";
import {Permissions} from "../../../contracts/libraries/Permissions.sol";
import {IdentityBase} from "./IdentityBase.sol";

/// @notice The gas promises of the O(1) design, as tests that fail when broken: a transfer costs the
///         same with 100 live keys as with none, and at most 10,000 gas more than a plain
///         OpenZeppelin ERC721 transfer measured the same way.
contract VehicleIdGasTest is IdentityBase {
    uint256 internal constant KEYS = 100;
    uint256 internal constant MAX_TRANSFER_OVERHEAD = 10_000;

    BaselineERC721 internal baseline;
    uint256 internal withKeys;
    uint256 internal withoutKeys;
    uint256 internal baselineId;
    address internal ownerB;

    function setUp() public override {
        super.setUp();
        ownerB = makeAddr("owner B");
        withKeys = _mintTo(owner);
        withoutKeys = _mintTo(ownerB);
        for (uint256 i; i < KEYS; ++i) {
            _grantAs(owner, withKeys, address(uint160(0x1000 + i)), Permissions.DELEGABLE, FOREVER);
        }
        baseline = new BaselineERC721();
        baselineId = baseline.mint(owner);
    }

    /// @dev Gas of one transfer to a fresh recipient; storage it touches is cold as in a fresh tx
    ///      except the contract account, warmed first so both measurements start alike.
    function _transferGas(address token, address from, address to, uint256 id) internal returns (uint256 used) {
        BaselineERC721(token).balanceOf(from); // warms the contract account
        vm.prank(from);
        uint256 before = gasleft();
        BaselineERC721(token).transferFrom(from, to, id);
        used = before - gasleft();
    }

    function test_transfer_gasIndependentOfLiveKeys() public {
        // The same reads on both vehicles first (they warm the same kind of slots on each).
        assertEq(vehicles.permissionsOf(withKeys, address(uint160(0x1000 + KEYS - 1))), Permissions.DELEGABLE);
        assertEq(vehicles.permissionsOf(withoutKeys, address(uint160(0x1000 + KEYS - 1))), 0);
        uint256 many = _transferGas(address(vehicles), owner, makeAddr("buyer 1"), withKeys);
        uint256 none = _transferGas(address(vehicles), ownerB, makeAddr("buyer 2"), withoutKeys);
        assertEq(many, none, "transfer gas depends on the number of keys");
        assertEq(vehicles.permissionsOf(withKeys, address(uint160(0x1000))), 0);
    }

    function test_transfer_withinTenThousandGasOfPlainErc721() public {
        uint256 ours = _transferGas(address(vehicles), owner, makeAddr("buyer 1"), withKeys);
        uint256 plain = _transferGas(address(baseline), owner, makeAddr("buyer 3"), baselineId);
        assertLe(ours, plain + MAX_TRANSFER_OVERHEAD, "vehicle transfer overhead above 10,000 gas");
        assertGt(ours, plain); // the generation bump is not free: the comparison measures something
    }
}
