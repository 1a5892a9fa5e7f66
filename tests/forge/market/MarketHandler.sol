// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {Test} from "../lib/Test.sol";
import {DimoToken} from "../../../contracts/token/DimoToken.sol";
import {VehicleId} from "../../../contracts/identity/VehicleId.sol";
import {DataProducts} from "../../../contracts/market/DataProducts.sol";
import {Marketplace} from "../../../contracts/market/Marketplace.sol";
import {IDataProducts} from "../../../contracts/interfaces/IDataProducts.sol";
import {ProductId} from "../../../contracts/types/ProductId.sol";
import {IStaking} from "../../../contracts/interfaces/IStaking.sol";
import {Staking} from "../../../contracts/staking/Staking.sol";
import {MarketMerkle} from "./MarketMerkle.sol";

/// @notice Drives random sequences over the whole market — purchases of every kind, settles,
///         claims, withdrawals, term and fee changes, joins, leaves, vehicle transfers, slashes
///         and time — and keeps the ghost accounting the invariants compare against.
contract MarketHandler is Test {
    struct Stack {
        DimoToken token;
        address treasury;
        VehicleId vehicles;
        Staking staking;
        DataProducts products;
        Marketplace market;
        address governor;
        address settler;
    }

    struct EpochRecord {
        ProductId productId;
        uint64 epoch;
        address[] accounts;
        uint256[] amounts;
    }

    struct Pair {
        ProductId productId;
        uint256 vehicleId;
    }

    DimoToken internal immutable token;
    address internal immutable treasury;
    VehicleId internal immutable vehicles;
    Staking internal immutable staking;
    DataProducts internal immutable products;
    Marketplace internal immutable market;
    address internal immutable governor;
    address internal immutable settler;

    address[] internal _buyers;
    address[] internal _brokerChoices;
    address[] internal _earners;
    address[] internal _owners;
    address[] internal _staked;
    ProductId[] internal _streams; // Stream and Bundle products
    ProductId[] internal _apis;
    ProductId[] internal _datasets;
    ProductId[] internal _products;
    uint256[] internal _vehicleIds;

    EpochRecord[] internal _epochs;
    mapping(uint256 epochRecord => mapping(uint256 leaf => bool)) internal _leafPaid;
    Pair[] internal _pairs;
    mapping(ProductId productId => mapping(uint256 vehicleId => uint256 slotPlusOne)) internal _pairSlot;
    mapping(ProductId productId => mapping(uint256 vehicleId => bool)) public live;
    /// @dev The product version each vehicle's stored consent is for (0: none), kept independently.
    mapping(ProductId productId => mapping(uint256 vehicleId => uint64)) public consentVersion;

    // ghost accounting
    uint256 public ghostPaidIn;
    uint256 public ghostToTreasury;
    uint256 public ghostWithdrawn;
    uint256 public ghostClaimed;
    uint256 public ghostSettled;
    bool public ghostDoubleClaim;
    bool public ghostOverSettle;
    bool public ghostOrderMismatch;

    // call counters (successful state changes)
    mapping(bytes32 action => uint256) public done;

    constructor(
        Stack memory s,
        address[] memory buyers_,
        address[] memory brokerChoices_,
        address[] memory earners_,
        address[] memory owners_,
        address[] memory staked_
    ) {
        token = s.token;
        treasury = s.treasury;
        vehicles = s.vehicles;
        staking = s.staking;
        products = s.products;
        market = s.market;
        governor = s.governor;
        settler = s.settler;
        _buyers = buyers_;
        _brokerChoices = brokerChoices_;
        _earners = earners_;
        _owners = owners_;
        _staked = staked_;
    }

    // ------------------------------------------------------------------ registration (setUp)

    function addProduct(ProductId productId) external {
        (,,, IDataProducts.Terms memory t) = products.product(productId);
        if (t.kind == IDataProducts.Kind.Api) _apis.push(productId);
        else if (t.kind == IDataProducts.Kind.Dataset) _datasets.push(productId);
        else _streams.push(productId);
        _products.push(productId);
    }

    function addVehicle(uint256 vehicleId) external {
        _vehicleIds.push(vehicleId);
    }

    // ------------------------------------------------------------------ purchases

    function subscribe(uint256 buyerSeed, uint256 productSeed, uint32 count, uint32 months, uint256 brokerSeed, uint8 use)
        external
    {
        ProductId p = _pick(_streams, productSeed);
        count = uint32(bound(count, 1, 20));
        months = uint32(bound(months, 1, 12));
        address buyer = _pick(_buyers, buyerSeed);
        address broker = _pick(_brokerChoices, brokerSeed);
        (uint256 bBefore, uint256 tBefore) = _before(buyer);
        vm.prank(buyer);
        try market.subscribe(p, count, months, broker, _use(use)) returns (uint256 orderId) {
            _after(buyer, bBefore, tBefore, orderId);
            done["subscribe"]++;
        } catch {}
    }

    function buyCredits(uint256 buyerSeed, uint256 productSeed, uint256 calls, uint256 brokerSeed, uint8 use) external {
        ProductId p = _pick(_apis, productSeed);
        calls = bound(calls, 1, 100_000);
        address buyer = _pick(_buyers, buyerSeed);
        address broker = _pick(_brokerChoices, brokerSeed);
        (uint256 bBefore, uint256 tBefore) = _before(buyer);
        vm.prank(buyer);
        try market.buyCredits(p, calls, broker, _use(use)) returns (uint256 orderId) {
            _after(buyer, bBefore, tBefore, orderId);
            done["buyCredits"]++;
        } catch {}
    }

    function purchaseDataset(uint256 buyerSeed, uint256 productSeed, bytes32 spec, uint256 brokerSeed, uint8 use)
        external
    {
        ProductId p = _pick(_datasets, productSeed);
        address buyer = _pick(_buyers, buyerSeed);
        address broker = _pick(_brokerChoices, brokerSeed);
        (uint256 bBefore, uint256 tBefore) = _before(buyer);
        vm.prank(buyer);
        try market.purchaseDataset(p, spec, broker, _use(use)) returns (uint256 orderId) {
            _after(buyer, bBefore, tBefore, orderId);
            done["purchaseDataset"]++;
        } catch {}
    }

    function expireOrder(uint256 orderSeed) external {
        uint256 n = market.orderCount();
        if (n == 0) return;
        try market.expireOrder(bound(orderSeed, 1, n)) {
            done["expireOrder"]++;
        } catch {}
    }

    // ------------------------------------------------------------------ settlement

    /// @dev Settles up to (and sometimes past) the pool with a tree of 1..4 owner leaves; when
    ///      `overpromise` the leaves add up to more than the epoch holds, as a faulty settler might.
    function settle(uint256 productSeed, uint256 amountSeed, uint8 leaves, uint8 gap, bool overpromise) external {
        ProductId p = _pick(_products, productSeed);
        uint256 pool = market.memberPool(p);
        uint256 amount = bound(amountSeed, 0, pool + pool / 8 + 1);
        uint256 n = bound(leaves, 1, 4);
        EpochRecord memory rec;
        rec.productId = p;
        rec.epoch = market.lastEpoch(p) + 1 + uint64(gap % 3);
        rec.accounts = new address[](n);
        rec.amounts = new uint256[](n);
        bytes32[] memory hashes = new bytes32[](n);
        for (uint256 i; i < n; ++i) {
            rec.accounts[i] = _pick(_owners, amountSeed >> (8 * i));
            rec.amounts[i] = overpromise ? amount / n + 1 : amount / n;
            hashes[i] = MarketMerkle.leaf(i, rec.accounts[i], rec.amounts[i]);
        }
        vm.prank(settler);
        try market.settle(p, rec.epoch, amount, MarketMerkle.root(hashes)) {
            if (amount > pool) ghostOverSettle = true;
            ghostSettled += amount;
            _epochs.push(rec);
            done["settle"]++;
        } catch {}
    }

    function claim(uint256 epochSeed, uint256 leafSeed, address relayer) external {
        if (_epochs.length == 0) return;
        uint256 e = bound(epochSeed, 0, _epochs.length - 1);
        EpochRecord storage rec = _epochs[e];
        uint256 n = rec.accounts.length;
        uint256 i = bound(leafSeed, 0, n - 1);
        bytes32[] memory hashes = new bytes32[](n);
        for (uint256 j; j < n; ++j) {
            hashes[j] = MarketMerkle.leaf(j, rec.accounts[j], rec.amounts[j]);
        }
        address account = rec.accounts[i];
        uint256 before = token.balanceOf(account);
        vm.prank(relayer);
        try market.claim(rec.productId, rec.epoch, i, account, rec.amounts[i], MarketMerkle.proof(hashes, i)) {
            if (_leafPaid[e][i]) ghostDoubleClaim = true;
            _leafPaid[e][i] = true;
            ghostClaimed += token.balanceOf(account) - before;
            done["claim"]++;
        } catch {}
    }

    function withdrawEarnings(uint256 earnerSeed) external {
        address account = _pick(_earners, earnerSeed);
        uint256 before = token.balanceOf(account);
        vm.prank(account);
        try market.withdrawEarnings() {
            ghostWithdrawn += token.balanceOf(account) - before;
            done["withdraw"]++;
        } catch {}
    }

    // ------------------------------------------------------------------ terms and products

    function updateTerms(uint256 productSeed, uint256 price) external {
        ProductId p = _pick(_products, productSeed);
        (address operator,,, IDataProducts.Terms memory t) = products.product(p);
        t.price = bound(price, 1, 100 ether);
        t.membersBps = 10_000 - t.operatorBps - t.brokerBps - products.protocolFeeBps();
        vm.prank(operator);
        try products.updateTerms(p, t) {
            for (uint256 i; i < _vehicleIds.length; ++i) {
                live[p][_vehicleIds[i]] = false;
            }
            done["updateTerms"]++;
        } catch {}
    }

    function setProtocolFee(uint256 seed) external {
        uint16[4] memory fees = [uint16(0), 250, 500, 1000];
        vm.prank(governor);
        products.setProtocolFeeBps(fees[seed % 4]);
        done["setProtocolFee"]++;
    }

    function setActive(uint256 productSeed, uint8 seed) external {
        ProductId p = _pick(_products, productSeed);
        bool active = seed % 4 != 0; // mostly re-activations, so sales go on
        vm.prank(governor);
        products.setActive(p, active);
        done["setActive"]++;
    }

    // ------------------------------------------------------------------ membership

    function join(uint256 productSeed, uint256 vehicleSeed) external {
        ProductId p = _pick(_products, productSeed);
        uint256 v = _pick(_vehicleIds, vehicleSeed);
        vm.prank(vehicles.ownerOf(v));
        try products.join(p, v) {
            _track(p, v);
            live[p][v] = true;
            (, uint64 version,,) = products.product(p);
            consentVersion[p][v] = version;
            done["join"]++;
        } catch {}
    }

    function leave(uint256 productSeed, uint256 vehicleSeed, address caller) external {
        ProductId p = _pick(_products, productSeed);
        uint256 v = _pick(_vehicleIds, vehicleSeed);
        if (caller == address(0) || uint160(caller) % 2 == 0) caller = vehicles.ownerOf(v);
        vm.prank(caller);
        try products.leave(p, v) {
            live[p][v] = false;
            consentVersion[p][v] = 0;
            done["leave"]++;
        } catch {}
    }

    function transferVehicle(uint256 vehicleSeed, uint256 toSeed) external {
        uint256 v = _pick(_vehicleIds, vehicleSeed);
        address from = vehicles.ownerOf(v);
        address to = _pick(_owners, toSeed);
        if (to == from) return;
        vm.prank(from);
        vehicles.transferFrom(from, to, v);
        for (uint256 i; i < _products.length; ++i) {
            live[_products[i]][v] = false;
        }
        done["transfer"]++;
    }

    // ------------------------------------------------------------------ staking

    function slash(uint256 accountSeed, uint256 amount) external {
        address account = _pick(_staked, accountSeed);
        (uint256 active,,) = staking.stakeOf(account);
        if (active == 0) return;
        // Mostly small slashes, now and then one that takes everything.
        amount = amount % 32 == 0 ? active : bound(amount, 1, active / 20 + 1);
        vm.prank(governor);
        staking.slash(account, amount, 0, bytes32(0), "invariant run");
        done["slash"]++;
    }

    function restake(uint256 accountSeed, uint256 amount) external {
        address account = _pick(_staked, accountSeed);
        amount = bound(amount, 1, 50_000 ether);
        token.transfer(account, amount);
        vm.startPrank(account);
        token.approve(address(staking), amount);
        staking.stake(amount);
        vm.stopPrank();
        done["restake"]++;
    }

    function warp(uint256 secondsAhead) external {
        vm.warp(block.timestamp + bound(secondsAhead, 1, 60 days));
        done["warp"]++;
    }

    // ------------------------------------------------------------------ views for the invariants

    function productList() external view returns (ProductId[] memory) {
        return _products;
    }

    function earnerList() external view returns (address[] memory) {
        return _earners;
    }

    function buyerList() external view returns (address[] memory) {
        return _buyers;
    }

    /// @notice Vehicles whose stored consent is for `productId`'s current version.
    function expectedMemberCount(ProductId productId) external view returns (uint256 n) {
        (, uint64 version,,) = products.product(productId);
        for (uint256 i; i < _vehicleIds.length; ++i) {
            if (consentVersion[productId][_vehicleIds[i]] == version) ++n;
        }
    }

    function epochCount() external view returns (uint256) {
        return _epochs.length;
    }

    function epochAt(uint256 i) external view returns (ProductId productId, uint64 epoch) {
        return (_epochs[i].productId, _epochs[i].epoch);
    }

    function pairCount() external view returns (uint256) {
        return _pairs.length;
    }

    function pairAt(uint256 i) external view returns (ProductId productId, uint256 vehicleId) {
        return (_pairs[i].productId, _pairs[i].vehicleId);
    }

    // ------------------------------------------------------------------ internals

    function _before(address buyer) private view returns (uint256, uint256) {
        return (token.balanceOf(buyer), token.balanceOf(treasury));
    }

    function _after(address buyer, uint256 buyerBefore, uint256 treasuryBefore, uint256 orderId) private {
        uint256 paid = buyerBefore - token.balanceOf(buyer);
        ghostPaidIn += paid;
        ghostToTreasury += token.balanceOf(treasury) - treasuryBefore;
        (,,,, uint256 recorded,,,) = market.order(orderId);
        if (recorded != paid) ghostOrderMismatch = true;
    }

    function _track(ProductId p, uint256 v) private {
        if (_pairSlot[p][v] != 0) return;
        _pairs.push(Pair(p, v));
        _pairSlot[p][v] = _pairs.length;
    }

    /// @dev The products permit uses 0 and 1; now and then try another, which must be refused.
    function _use(uint8 seed) private pure returns (uint8) {
        return seed % 8 == 7 ? seed % 6 : seed % 2;
    }

    function _pick(uint256[] storage list, uint256 seed) private view returns (uint256) {
        return list[seed % list.length];
    }

    function _pick(ProductId[] storage list, uint256 seed) private view returns (ProductId) {
        return list[seed % list.length];
    }

    function _pick(address[] storage list, uint256 seed) private view returns (address) {
        return list[seed % list.length];
    }
}
