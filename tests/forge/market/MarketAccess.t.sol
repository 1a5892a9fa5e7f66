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
    uint256 internal datasetOrder;
    uint256 internal freshDatasetOrder;

    function setUp() public override {
        super.setUp();
        callers = [governor, settler, guardian, operator, operator2, broker, consumer, alice, stranger];
        streamId = _stream();
        apiId = _api();
        datasetId = _dataset();
        vehicleId = _join(streamId, alice);
        vm.prank(consumer);
        signalId = products.signalDemand(keccak256("spec"), "ipfs://spec", 1 ether);
        vm.prank(consumer);
        market.subscribe(streamId, 10, 1, broker, USE_INSURANCE, V1, NO_MAX); // vesting and earnings to move
        vm.prank(consumer);
        datasetOrder = market.purchaseDataset(datasetId, keccak256("spec"), address(0), USE_INSURANCE, V1, NO_MAX);
        vm.warp(block.timestamp + 7 days); // undelivered for the whole window: refundable by its buyer
        vm.prank(consumer); // bought now: within its delivery window
        freshDatasetOrder =
            market.purchaseDataset(datasetId, keccak256("spec2"), address(0), USE_INSURANCE, V1, NO_MAX);

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
            "subscribe",
            m,
            abi.encodeCall(
                IMarketplace.subscribe, (streamId, uint32(1), uint32(1), address(0), USE_INSURANCE, V1, NO_MAX)
            ),
            buyers
        );
        _check(
            "buyCredits",
            m,
            abi.encodeCall(IMarketplace.buyCredits, (apiId, uint256(1), address(0), USE_INSURANCE, V1, NO_MAX)),
            buyers
        );
        _check(
            "purchaseDataset",
            m,
            abi.encodeCall(
                IMarketplace.purchaseDataset, (datasetId, bytes32(0), address(0), USE_INSURANCE, V1, NO_MAX)
            ),
            buyers
        );
        _check("setSteward", m, abi.encodeCall(IMarketplace.setSteward, (broker, true)), _only(governor));
        ProductId[] memory none = new ProductId[](0);
        uint256[] memory noTakes = new uint256[](0);
        _check(
            "proposeRoot",
            m,
            abi.encodeCall(IMarketplace.proposeRoot, (keccak256("r"), none, noTakes, bytes32(0))),
            _only(settler)
        );
        _check(
            "deliverDataset",
            m,
            abi.encodeCall(IMarketplace.deliverDataset, (freshDatasetOrder, keccak256("b"))),
            _only(settler)
        );
        _check("setRootDelay", m, abi.encodeCall(IMarketplace.setRootDelay, (2 hours)), _only(governor));
        _check("refund", m, abi.encodeCall(IMarketplace.refund, (datasetOrder)), _only(consumer));
        _check("withdrawEarnings", m, abi.encodeCall(IMarketplace.withdrawEarnings, ()), _pair(operator, broker));
        _check(
            "grantRole",
            m,
            abi.encodeWithSignature("grantRole(bytes32,address)", market.SETTLER_ROLE(), stranger),
            _only(governor)
        );
    }

    function test_access_revokePendingRoot() public {
        ProductId[] memory none = new ProductId[](0);
        uint256[] memory noTakes = new uint256[](0);
        vm.prank(settler);
        market.proposeRoot(keccak256("r"), none, noTakes, bytes32(0));
        _check(
            "revokePendingRoot",
            address(market),
            abi.encodeCall(IMarketplace.revokePendingRoot, ()),
            _pair(governor, guardian)
        );
    }

    function test_access_permissionlessCalls() public {
        // An accepted root and an ended subscription: anyone may submit the claim, the
        // acceptance, a checkpoint or the expiry.
        bytes32[] memory leaves = new bytes32[](2);
        leaves[0] = _cumulativeLeaf(alice, 1 ether);
        leaves[1] = _cumulativeLeaf(bob, 1 ether);
        vm.warp(block.timestamp + 10 days);
        ProductId[] memory ids = new ProductId[](1);
        ids[0] = streamId;
        uint256[] memory takes = new uint256[](1);
        takes[0] = 2 ether;
        vm.prank(settler);
        market.proposeRoot(_root(leaves), ids, takes, bytes32(0));
        vm.warp(block.timestamp + market.rootDelay());
        _check("acceptRoot", address(market), abi.encodeCall(IMarketplace.acceptRoot, (ids, takes)), callers);
        market.acceptRoot(ids, takes);
        _check(
            "claim", address(market), abi.encodeCall(IMarketplace.claim, (alice, 1 ether, _proof(leaves, 0))), callers
        );
        _check("checkpoint", address(market), abi.encodeCall(IMarketplace.checkpoint, (streamId)), callers);
        vm.warp(block.timestamp + 30 days);
        _check("expireOrder", address(market), abi.encodeCall(IMarketplace.expireOrder, (1)), callers);
    }
}
