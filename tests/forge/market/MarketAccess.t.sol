// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {MarketBase} from "./MarketBase.sol";
import {IDataProducts} from "../../../contracts/interfaces/IDataProducts.sol";
import {ProductId} from "../../../contracts/types/ProductId.sol";
import {IMarketplace} from "../../../contracts/interfaces/IMarketplace.sol";

/// @notice Who may call each restricted entry point of DataProducts and Marketplace: every
///         (function, caller) pair is tried from the same state and must succeed exactly when
///         the caller holds the right.
contract MarketAccessTest is MarketBase {
    address[] internal callers;
    ProductId internal streamId;
    ProductId internal apiId;
    ProductId internal datasetId;
    uint256 internal vehicleId;
    uint256 internal signalId;

    function setUp() public override {
        super.setUp();
        callers = [governor, settler, operator, operator2, broker, consumer, alice, stranger];
        streamId = _stream();
        apiId = _api();
        datasetId = _dataset();
        vehicleId = _join(streamId, alice);
        vm.prank(consumer);
        signalId = products.signalDemand(keccak256("spec"), "ipfs://spec", 1 ether);
        vm.prank(consumer);
        market.subscribe(streamId, 10, 1, broker, USE_INSURANCE); // pool and earnings to move
        _fund(operator, 1000 ether);
        _fund(governor, 1000 ether);
        _fund(settler, 1000 ether);
        _fund(stranger, 1000 ether);
        _fund(alice, 1000 ether);
    }

    /// @dev Calls `target` with `data` as each caller from the same state; exactly `allowed` succeed.
    function _check(string memory what, address target, bytes memory data, address[] memory allowed) internal {
        for (uint256 i; i < callers.length; ++i) {
            address caller = callers[i];
            bool expected;
            for (uint256 j; j < allowed.length; ++j) {
                if (allowed[j] == caller) expected = true;
            }
            uint256 snap = vm.snapshotState();
            vm.prank(caller);
            (bool ok,) = target.call(data);
            vm.revertToState(snap);
            assertEq(ok, expected, string.concat(what, " by ", vm.toString(caller)));
        }
    }

    function _only(address a) internal pure returns (address[] memory list) {
        list = new address[](1);
        list[0] = a;
    }

    function _pair(address a, address b) internal pure returns (address[] memory list) {
        list = new address[](2);
        (list[0], list[1]) = (a, b);
    }

    function test_access_dataProducts() public {
        IDataProducts.Terms memory t = _terms(IDataProducts.Kind.Stream, 1 ether);
        address p = address(products);
        address[] memory operators = _pair(operator, operator2);
        _check("createProduct", p, abi.encodeCall(IDataProducts.createProduct, (t)), operators);

        ProductId[] memory ids = new ProductId[](1);
        ids[0] = streamId;
        uint256[] memory qty = new uint256[](1);
        _check(
            "createBundle",
            p,
            abi.encodeCall(IDataProducts.createBundle, (_terms(IDataProducts.Kind.Bundle, 1), ids, qty)),
            _only(operator)
        );
        _check("updateTerms", p, abi.encodeCall(IDataProducts.updateTerms, (streamId, t)), _only(operator));
        _check("setActive", p, abi.encodeCall(IDataProducts.setActive, (streamId, false)), _pair(operator, governor));
        _check("setProtocolFeeBps", p, abi.encodeCall(IDataProducts.setProtocolFeeBps, (100)), _only(governor));
        uint256 fresh = _mintVehicle(alice);
        _check("join", p, abi.encodeCall(IDataProducts.join, (streamId, fresh)), _only(alice));
        _check("leave", p, abi.encodeCall(IDataProducts.leave, (streamId, vehicleId)), _only(alice));
        address[] memory participants = new address[](4);
        (participants[0], participants[1], participants[2], participants[3]) = (operator, operator2, broker, consumer);
        _check("signalDemand", p, abi.encodeCall(IDataProducts.signalDemand, (bytes32(0), "", 0)), participants);
        _check("withdrawDemand", p, abi.encodeCall(IDataProducts.withdrawDemand, (signalId)), _only(consumer));
        _check(
            "grantRole",
            p,
            abi.encodeWithSignature("grantRole(bytes32,address)", products.GOVERNOR_ROLE(), stranger),
            _only(governor)
        );
    }

    function test_access_marketplace() public {
        address m = address(market);
        address[] memory buyers = _pair(broker, consumer);
        _check(
            "subscribe", m, abi.encodeWithSignature(
                "subscribe(uint256,uint32,uint32,address,uint8)", streamId, uint32(1), uint32(1), address(0), USE_INSURANCE
            ), buyers
        );
        _check("buyCredits", m, abi.encodeWithSignature(
                "buyCredits(uint256,uint256,address,uint8)", apiId, uint256(1), address(0), USE_INSURANCE
            ), buyers);
        _check(
            "purchaseDataset",
            m,
            abi.encodeWithSignature(
                "purchaseDataset(uint256,bytes32,address,uint8)", datasetId, bytes32(0), address(0), USE_INSURANCE
            ),
            buyers
        );
        _check("setSteward", m, abi.encodeCall(IMarketplace.setSteward, (broker, true)), _only(governor));
        _check("settle", m, abi.encodeCall(IMarketplace.settle, (streamId, 1, 1, keccak256("r"))), _only(settler));
        _check("withdrawEarnings", m, abi.encodeCall(IMarketplace.withdrawEarnings, ()), _pair(operator, broker));
        _check(
            "grantRole",
            m,
            abi.encodeWithSignature("grantRole(bytes32,address)", market.SETTLER_ROLE(), stranger),
            _only(governor)
        );
    }

    function test_access_permissionlessCalls() public {
        // A settled leaf and an ended subscription: anyone may submit the claim or the expiry.
        bytes32[] memory leaves = new bytes32[](2);
        leaves[0] = _leaf(0, alice, 1 ether);
        leaves[1] = _leaf(1, bob, 1 ether);
        vm.prank(settler);
        market.settle(streamId, 1, 2 ether, _root(leaves));
        _check(
            "claim",
            address(market),
            abi.encodeCall(IMarketplace.claim, (streamId, 1, 0, alice, 1 ether, _proof(leaves, 0))),
            callers
        );
        vm.warp(block.timestamp + 30 days);
        _check("expireOrder", address(market), abi.encodeCall(IMarketplace.expireOrder, (1)), callers);
    }
}
