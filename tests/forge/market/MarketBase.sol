// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {Test} from "../lib/Test.sol";
import {DimoToken} from "../../../contracts/token/DimoToken.sol";
import {Treasury} from "../../../contracts/governance/Treasury.sol";
import {DataProducts} from "../../../contracts/market/DataProducts.sol";
import {Marketplace} from "../../../contracts/market/Marketplace.sol";
import {IDataProducts} from "../../../contracts/interfaces/IDataProducts.sol";
import {IStaking} from "../../../contracts/interfaces/IStaking.sol";
import {TempVehicleId, TempStaking} from "./TempFakes.sol";

/// @notice The market stack every market test starts from: token, treasury, vehicles, staking,
///         DataProducts and Marketplace, with named actors and helpers.
abstract contract MarketBase is Test {
    DimoToken internal token;
    Treasury internal treasury;
    TempVehicleId internal vehicles;
    TempStaking internal staking;
    DataProducts internal products;
    Marketplace internal market;

    address internal governor = makeAddr("governor");
    address internal settler = makeAddr("settler");
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

    // Permission bits (DESIGN.md §3.1).
    uint256 internal constant LOCK = 1 << 0;
    uint256 internal constant UNLOCK = 1 << 1;
    uint256 internal constant DRIVE = 1 << 2;
    uint256 internal constant TELEMETRY = 1 << 3;
    uint256 internal constant LOCATION = 1 << 4;
    uint256 internal constant LIVE = 1 << 5;
    // Uses (DESIGN.md §3.5).
    uint8 internal constant USE_INSURANCE = 0;
    uint8 internal constant USE_RESEARCH = 1;
    uint8 internal constant USE_PUBLIC_GOOD = 5;

    function setUp() public virtual {
        (alice, aliceKey) = makeAccount("alice");
        (bob, bobKey) = makeAccount("bob");
        token = new DimoToken(address(this), SUPPLY);
        treasury = new Treasury(governor);
        vehicles = new TempVehicleId();
        staking = new TempStaking();
        products = new DataProducts(address(vehicles), address(staking), governor);
        market = new Marketplace(address(token), address(products), address(staking), address(treasury), governor);
        vm.startPrank(governor);
        market.grantRole(market.SETTLER_ROLE(), settler);
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

    /// @dev Whitelists `account` for `role` and stakes what it needs (and more for usage).
    function _activate(address account, IStaking.Role role) internal {
        staking.setActive(account, role, true);
    }

    /// @dev Makes `account` inactive for `role`.
    function _deactivate(address account, IStaking.Role role) internal {
        staking.setActive(account, role, false);
    }

    function _fund(address account, uint256 amount) internal {
        token.transfer(account, amount);
        vm.prank(account);
        token.approve(address(market), type(uint256).max);
    }

    // ------------------------------------------------------------------ vehicles

    function _mintVehicle(address to) internal returns (uint256) {
        return vehicles.mint(to);
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
        t.requiredPermissions = TELEMETRY | LOCATION;
        t.refreshSeconds = 60;
        t.minCohort = kind == IDataProducts.Kind.Dataset ? 10 : 0;
        t.termsHash = keccak256(abi.encode("terms", kind, price));
        t.termsURI = "ipfs://terms";
    }

    function _create(address who, IDataProducts.Kind kind, uint256 price) internal returns (uint256) {
        IDataProducts.Terms memory t = _terms(kind, price);
        vm.prank(who);
        return products.createProduct(t);
    }

    function _stream() internal returns (uint256) {
        return _create(operator, IDataProducts.Kind.Stream, 2 ether);
    }

    function _api() internal returns (uint256) {
        return _create(operator, IDataProducts.Kind.Api, 0.01 ether);
    }

    function _dataset() internal returns (uint256) {
        return _create(operator, IDataProducts.Kind.Dataset, 500 ether);
    }

    function _bundleOf(uint256 streamId, uint256 apiId, uint256 datasetId) internal returns (uint256) {
        uint256[] memory ids = new uint256[](3);
        uint256[] memory qty = new uint256[](3);
        (ids[0], ids[1], ids[2]) = (streamId, apiId, datasetId);
        qty[1] = 1000;
        IDataProducts.Terms memory t = _terms(IDataProducts.Kind.Bundle, 5 ether);
        t.minCohort = 10;
        vm.prank(operator);
        return products.createBundle(t, ids, qty);
    }

    function _join(uint256 productId, address owner) internal returns (uint256 vehicleId) {
        vehicleId = _mintVehicle(owner);
        vm.prank(owner);
        products.join(productId, vehicleId);
    }

    // ------------------------------------------------------------------ merkle

    /// @dev The StandardMerkleTree leaf of `(index, account, amount)`.
    function _leaf(uint256 index, address account, uint256 amount) internal pure returns (bytes32) {
        return keccak256(bytes.concat(keccak256(abi.encode(index, account, amount))));
    }

    function _hashPair(bytes32 a, bytes32 b) internal pure returns (bytes32) {
        return a < b ? keccak256(abi.encode(a, b)) : keccak256(abi.encode(b, a));
    }

    /// @dev Root of a sorted-pair tree over `leaves` (odd nodes carried up).
    function _root(bytes32[] memory leaves) internal pure returns (bytes32) {
        bytes32[] memory level = leaves;
        while (level.length > 1) level = _nextLevel(level);
        return level[0];
    }

    /// @dev Proof for leaf `index` in the same tree as `_root`.
    function _proof(bytes32[] memory leaves, uint256 index) internal pure returns (bytes32[] memory proof) {
        bytes32[] memory scratch = new bytes32[](64);
        uint256 depth;
        bytes32[] memory level = leaves;
        while (level.length > 1) {
            uint256 sibling = index ^ 1;
            if (sibling < level.length) scratch[depth++] = level[sibling];
            level = _nextLevel(level);
            index >>= 1;
        }
        proof = new bytes32[](depth);
        for (uint256 i; i < depth; ++i) {
            proof[i] = scratch[i];
        }
    }

    function _nextLevel(bytes32[] memory level) private pure returns (bytes32[] memory next) {
        next = new bytes32[]((level.length + 1) / 2);
        for (uint256 i; i < next.length; ++i) {
            uint256 l = 2 * i;
            next[i] = l + 1 < level.length ? _hashPair(level[l], level[l + 1]) : level[l];
        }
    }
}
