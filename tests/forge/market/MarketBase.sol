// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {Test} from "../lib/Test.sol";
import {DimoToken} from "../../../contracts/token/DimoToken.sol";
import {Treasury} from "../../../contracts/governance/Treasury.sol";
import {DataProducts} from "../../../contracts/market/DataProducts.sol";
import {Marketplace} from "../../../contracts/market/Marketplace.sol";
import {IDataProducts} from "../../../contracts/interfaces/IDataProducts.sol";
import {IStaking} from "../../../contracts/interfaces/IStaking.sol";
import {VehicleId} from "../../../contracts/identity/VehicleId.sol";
import {Staking} from "../../../contracts/staking/Staking.sol";
import {MarketMerkle} from "./MarketMerkle.sol";
import {Permissions} from "../../../contracts/libraries/Permissions.sol";
import {ProductId} from "../../../contracts/types/ProductId.sol";

/// @notice The market stack every market test starts from: token, treasury, vehicles, staking,
///         DataProducts and Marketplace, with named actors and helpers.
abstract contract MarketBase is Test {
    DimoToken internal token;
    Treasury internal treasury;
    VehicleId internal vehicles;
    Staking internal staking;
    DataProducts internal products;
    Marketplace internal market;

    address internal governor = makeAddr("governor");
    address internal settler = makeAddr("settler");
    address internal guardian = makeAddr("guardian");
    address internal minter = makeAddr("minter");
    uint256 internal connectionId;
    uint256 private _vinCounter;
    address internal operator = makeAddr("operator");
    address internal operator2 = makeAddr("operator2");
    address internal broker = makeAddr("broker");
    address internal steward = makeAddr("steward");
    address internal consumer = makeAddr("consumer");
    address internal stranger = makeAddr("stranger");
    address internal alice;
    uint256 internal aliceKey;
    address internal bob;
    uint256 internal bobKey;
    address internal carol = makeAddr("carol");

    uint256 internal constant SUPPLY = 1_000_000_000 ether;
    uint256 internal constant FUNDS = 10_000_000 ether;
    // Lockup curves: a base per role, and for buyers a stake per √(vehicle-subscriptions).
    uint256 internal constant OPERATOR_BASE = 10_000 ether;
    uint256 internal constant BROKER_BASE = 5_000 ether;
    uint256 internal constant CONSUMER_BASE = 1_000 ether;
    uint256 internal constant PER_SQRT_UNIT = 100 ether;
    /// @dev What `_activate` stakes: the base and room for 10,000 tier-3 vehicle-subscriptions.
    uint256 internal constant STAKE_HEADROOM = 300_000 ether;

    /// @dev The terms version of a product never updated, and a purchase's "no maximum".
    uint64 internal constant V1 = 1;
    uint256 internal constant NO_MAX = type(uint256).max;
    /// @dev How long the test Api products' credits stay valid.
    uint32 internal constant CREDIT_VALIDITY = 90 days;

    // Uses (DESIGN.md §3.5).
    uint8 internal constant USE_INSURANCE = 0;
    uint8 internal constant USE_RESEARCH = 1;
    uint8 internal constant USE_PUBLIC_GOOD = 5;

    /// @dev A realistic start time: settlement epochs number time and may not exceed it.
    uint256 internal constant START = 1_700_000_000;

    function setUp() public virtual {
        vm.warp(START);
        (alice, aliceKey) = makeAccount("alice");
        (bob, bobKey) = makeAccount("bob");
        token = new DimoToken(address(this), SUPPLY);
        treasury = new Treasury(governor);
        vehicles = new VehicleId(governor);
        staking = new Staking(address(token), address(treasury), governor);
        products = new DataProducts(address(vehicles), address(staking), governor);
        market = new Marketplace(address(token), address(products), address(staking), address(treasury), governor);
        vm.startPrank(governor);
        market.grantRole(market.SETTLER_ROLE(), settler);
        market.grantRole(market.GUARDIAN_ROLE(), guardian);
        staking.grantRole(staking.MARKET_ROLE(), address(market));
        staking.grantRole(staking.SLASHER_ROLE(), governor);
        staking.setCurve(IStaking.Role.Operator, OPERATOR_BASE, 0);
        staking.setCurve(IStaking.Role.Broker, BROKER_BASE, PER_SQRT_UNIT);
        staking.setCurve(IStaking.Role.Consumer, CONSUMER_BASE, PER_SQRT_UNIT);
        vehicles.grantRole(vehicles.MINTER_ROLE(), minter);
        connectionId = vehicles.addConnection("Tesla", makeAddr("oracle"));
        vm.stopPrank();

        _activate(operator, IStaking.Role.Operator);
        _activate(operator2, IStaking.Role.Operator);
        _activate(broker, IStaking.Role.Broker);
        _activate(steward, IStaking.Role.Broker);
        _activate(consumer, IStaking.Role.Consumer);
        _fund(consumer, FUNDS);
        _fund(broker, FUNDS);
        vm.prank(governor);
        market.setSteward(steward, true);
    }

    // ------------------------------------------------------------------ actors

    /// @dev Whitelists `account` for `role` and stakes the role's base plus headroom for usage.
    function _activate(address account, IStaking.Role role) internal {
        vm.prank(governor);
        staking.setWhitelisted(account, role, true);
        (uint256 active,,) = staking.stakeOf(account);
        uint256 wanted = _base(role) + STAKE_HEADROOM;
        if (active < wanted) _stake(account, wanted - active);
    }

    /// @dev Stakes `amount` more for `account` (funded from the test contract).
    function _stake(address account, uint256 amount) internal {
        token.transfer(account, amount);
        vm.startPrank(account);
        token.approve(address(staking), amount);
        staking.stake(amount);
        vm.stopPrank();
    }

    /// @dev Makes `account` inactive for `role`: the DAO slashes it below the role's base.
    function _deactivate(address account, IStaking.Role role) internal {
        (uint256 active,,) = staking.stakeOf(account);
        uint256 keep = _base(role) - 1;
        if (active > keep) {
            vm.prank(governor);
            staking.slash(account, active - keep, 0, bytes32(0), "test: below the base");
        }
    }

    function _base(IStaking.Role role) internal pure returns (uint256) {
        if (role == IStaking.Role.Operator) return OPERATOR_BASE;
        if (role == IStaking.Role.Broker) return BROKER_BASE;
        return CONSUMER_BASE;
    }

    function _fund(address account, uint256 amount) internal {
        token.transfer(account, amount);
        vm.prank(account);
        token.approve(address(market), type(uint256).max);
    }

    // ------------------------------------------------------------------ vehicles

    function _mintVehicle(address to) internal returns (uint256) {
        vm.prank(minter);
        return vehicles.mint(to, connectionId, keccak256(abi.encode("VIN", ++_vinCounter)));
    }

    function _transferVehicle(uint256 vehicleId, address to) internal {
        address from = vehicles.ownerOf(vehicleId);
        vm.prank(from);
        vehicles.transferFrom(from, to, vehicleId);
    }

    // ------------------------------------------------------------------ products

    function _terms(IDataProducts.Kind kind, uint256 price) internal pure returns (IDataProducts.Terms memory t) {
        t.kind = kind;
        t.price = price;
        t.membersBps = 7000;
        t.operatorBps = 2000;
        t.brokerBps = 500;
        t.permittedUses = (1 << USE_INSURANCE) | (1 << USE_RESEARCH);
        t.requiredPermissions = Permissions.TELEMETRY | Permissions.LOCATION;
        t.refreshSeconds = 60;
        t.minCohort = kind == IDataProducts.Kind.Dataset ? 10 : 0;
        t.termsHash = keccak256(abi.encode("terms", kind, price));
        t.termsURI = "ipfs://terms";
        t.validitySeconds = kind == IDataProducts.Kind.Api ? CREDIT_VALIDITY : 0;
    }

    function _create(address who, IDataProducts.Kind kind, uint256 price) internal returns (ProductId) {
        IDataProducts.Terms memory t = _terms(kind, price);
        vm.prank(who);
        return products.createProduct(t);
    }

    function _stream() internal returns (ProductId) {
        return _create(operator, IDataProducts.Kind.Stream, 2 ether);
    }

    function _api() internal returns (ProductId) {
        return _create(operator, IDataProducts.Kind.Api, 0.01 ether);
    }

    function _dataset() internal returns (ProductId) {
        return _create(operator, IDataProducts.Kind.Dataset, 500 ether);
    }

    function _bundleOf(ProductId streamId, ProductId apiId, ProductId datasetId) internal returns (ProductId) {
        ProductId[] memory ids = new ProductId[](3);
        uint256[] memory qty = new uint256[](3);
        (ids[0], ids[1], ids[2]) = (streamId, apiId, datasetId);
        qty[1] = 1000;
        IDataProducts.Terms memory t = _terms(IDataProducts.Kind.Bundle, 5 ether);
        t.minCohort = 10;
        vm.prank(operator);
        return products.createBundle(t, ids, qty);
    }

    function _join(ProductId productId, address owner) internal returns (uint256 vehicleId) {
        vehicleId = _mintVehicle(owner);
        vm.prank(owner);
        products.join(productId, vehicleId);
    }

    function assertEq(ProductId left, ProductId right) internal pure {
        assertEq(ProductId.unwrap(left), ProductId.unwrap(right));
    }

    /// @dev Σ member share of `productId`'s orders (a test-side loop over every order).
    function _memberShares(ProductId productId) internal view returns (uint256 total) {
        uint256 n = market.orderCount();
        for (uint256 id = 1; id <= n; ++id) {
            (ProductId p,,,,,,,) = market.order(id);
            if (ProductId.unwrap(p) != ProductId.unwrap(productId)) continue;
            (uint256 share,,,,) = market.orderVesting(id);
            total += share;
        }
    }

    // ------------------------------------------------------------------ merkle

    function _leaf(uint256 index, address account, uint256 amount) internal pure returns (bytes32) {
        return MarketMerkle.leaf(index, account, amount);
    }

    function _cumulativeLeaf(address account, uint256 cumulative) internal pure returns (bytes32) {
        return MarketMerkle.leaf(account, cumulative);
    }

    function _root(bytes32[] memory leaves) internal pure returns (bytes32) {
        return MarketMerkle.root(leaves);
    }

    function _proof(bytes32[] memory leaves, uint256 index) internal pure returns (bytes32[] memory) {
        return MarketMerkle.proof(leaves, index);
    }
}
