// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {Test} from "../lib/Test.sol";
import {DimoToken} from "../../../contracts/token/DimoToken.sol";
import {VehicleId} from "../../../contracts/identity/VehicleId.sol";
import {DataProducts} from "../../../contracts/market/DataProducts.sol";
import {Marketplace} from "../../../contracts/market/Marketplace.sol";
import {IDataProducts} from "../../../contracts/interfaces/IDataProducts.sol";
import {IMarketplace} from "../../../contracts/interfaces/IMarketplace.sol";
import {LockupCurve} from "../../../contracts/libraries/LockupCurve.sol";
import {MarketMath} from "../../../contracts/libraries/MarketMath.sol";
import {ProductId} from "../../../contracts/types/ProductId.sol";
import {IStaking} from "../../../contracts/interfaces/IStaking.sol";
import {Staking} from "../../../contracts/staking/Staking.sol";
import {MarketMerkle} from "./MarketMerkle.sol";

/// @notice Drives random sequences over the whole market — purchases of every kind, settles,
///         claims, withdrawals, term and fee changes, joins, leaves, vehicle transfers, slashes
///         and time — and keeps the ghost accounting the invariants compare against.
/// @dev Every action first asks the handler's own model what must happen: success, or one
///      named refusal. An outcome the model did not predict (a refusal for another reason, or
///      a success where a refusal was due) is counted in `unexpected`, which the suite asserts
///      zero; successes are counted per action in `done`, which the suite asserts reach a
///      minimum, so a handler whose calls all fail cannot pass.
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
        uint256 amount;
        uint256 paid;
        address[] accounts;
        uint256[] amounts;
    }

    /// @dev The model's copy of an order: who holds how many vehicle-subscriptions until when.
    struct OrderRecord {
        address buyer;
        uint64 units;
        uint64 endsAt;
        bool inForce;
    }

    /// @dev What the model expects of a call that must succeed.
    bytes4 internal constant OK = bytes4(0);

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
    /// @dev The vehicle generation each stored consent was given in.
    mapping(ProductId productId => mapping(uint256 vehicleId => uint64)) internal _consentGeneration;
    mapping(ProductId productId => bool) internal _inactive;
    mapping(uint256 orderId => OrderRecord) internal _orderRecords;
    uint256[] internal _subscriptions;
    mapping(address buyer => uint256) public ghostUnits;
    /// @dev The usage tier of every product here (their terms all ask for the same permissions).
    uint8 internal _tier;

    // ghost accounting
    uint256 public ghostPaidIn;
    uint256 public ghostToTreasury;
    uint256 public ghostWithdrawn;
    uint256 public ghostClaimed;
    uint256 public ghostSettled;
    bool public ghostDoubleClaim;
    bool public ghostOverSettle;
    bool public ghostOrderMismatch;

    // call counters
    uint256 public calls;
    mapping(bytes32 action => uint256) public done; // successful state changes
    uint256 public unexpected; // outcomes the model did not predict: must stay 0
    string public lastUnexpected;

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
        uint8 tier = MarketMath.tierOf(t.requiredPermissions);
        require(_products.length == 1 || tier == _tier, "handler products must share one usage tier");
        _tier = tier;
    }

    function addVehicle(uint256 vehicleId) external {
        _vehicleIds.push(vehicleId);
    }

    modifier counted() {
        ++calls;
        _;
    }

    // ------------------------------------------------------------------ purchases

    function subscribe(
        uint256 buyerSeed,
        uint256 productSeed,
        uint32 count,
        uint32 months,
        uint256 brokerSeed,
        uint8 use
    ) external counted {
        ProductId p = _pick(_streams, productSeed);
        count = uint32(bound(count, 1, 20));
        months = uint32(bound(months, 1, 12));
        address buyer = _pick(_buyers, buyerSeed);
        address broker = _pick(_brokerChoices, brokerSeed);
        use = _use(use);
        bytes4 expected = _expectPurchase(buyer, p, broker, use, count);
        (uint256 bBefore, uint256 tBefore) = _before(buyer, p, uint256(count) * months);
        uint64 version = products.saleTerms(p).version;
        vm.prank(buyer);
        try market.subscribe(p, count, months, broker, use, version, type(uint256).max) returns (uint256 orderId) {
            _after(buyer, bBefore, tBefore, orderId);
            _orderRecords[orderId] =
                OrderRecord(buyer, count, uint64(block.timestamp) + uint64(months) * market.MONTH(), true);
            _subscriptions.push(orderId);
            ghostUnits[buyer] += count;
            _succeeded("subscribe", expected);
        } catch (bytes memory reason) {
            _refused("subscribe", expected, reason);
        }
    }

    function buyCredits(uint256 buyerSeed, uint256 productSeed, uint256 calls_, uint256 brokerSeed, uint8 use)
        external
        counted
    {
        ProductId p = _pick(_apis, productSeed);
        calls_ = bound(calls_, 1, 10_000);
        address buyer = _pick(_buyers, buyerSeed);
        address broker = _pick(_brokerChoices, brokerSeed);
        use = _use(use);
        uint64 units = uint64((calls_ + market.CALLS_PER_UNIT() - 1) / market.CALLS_PER_UNIT());
        bytes4 expected = _expectPurchase(buyer, p, broker, use, units);
        (uint256 bBefore, uint256 tBefore) = _before(buyer, p, calls_);
        uint64 version = products.saleTerms(p).version;
        vm.prank(buyer);
        try market.buyCredits(p, calls_, broker, use, version, type(uint256).max) returns (uint256 orderId) {
            _after(buyer, bBefore, tBefore, orderId);
            (,,,,,, uint64 endsAt,) = market.order(orderId);
            _orderRecords[orderId] = OrderRecord(buyer, units, endsAt, true);
            _subscriptions.push(orderId);
            ghostUnits[buyer] += units;
            _succeeded("buyCredits", expected);
        } catch (bytes memory reason) {
            _refused("buyCredits", expected, reason);
        }
    }

    function purchaseDataset(uint256 buyerSeed, uint256 productSeed, bytes32 spec, uint256 brokerSeed, uint8 use)
        external
        counted
    {
        ProductId p = _pick(_datasets, productSeed);
        address buyer = _pick(_buyers, buyerSeed);
        address broker = _pick(_brokerChoices, brokerSeed);
        use = _use(use);
        bytes4 expected = _expectPurchase(buyer, p, broker, use, 1);
        (uint256 bBefore, uint256 tBefore) = _before(buyer, p, 1);
        uint64 version = products.saleTerms(p).version;
        vm.prank(buyer);
        try market.purchaseDataset(p, spec, broker, use, version, type(uint256).max) returns (uint256 orderId) {
            _after(buyer, bBefore, tBefore, orderId);
            _orderRecords[orderId] = OrderRecord(buyer, 1, uint64(block.timestamp) + market.DATASET_TERM(), true);
            _subscriptions.push(orderId);
            ghostUnits[buyer] += 1;
            _succeeded("purchaseDataset", expected);
        } catch (bytes memory reason) {
            _refused("purchaseDataset", expected, reason);
        }
    }

    /// @dev Expires a subscription (mostly after warping to its end) or, now and then, an order
    ///      that is not a subscription in force or has not ended, which must be refused.
    function expireOrder(uint256 orderSeed, bool early) external counted {
        uint256 n = market.orderCount();
        if (n == 0) return;
        uint256 orderId = orderSeed % 4 == 0 || _subscriptions.length == 0
            ? bound(orderSeed, 1, n)
            : _subscriptions[orderSeed % _subscriptions.length];
        OrderRecord storage o = _orderRecords[orderId];
        if (o.inForce && !early && block.timestamp < o.endsAt) vm.warp(o.endsAt);
        bytes4 expected = !o.inForce
            ? IMarketplace.NotInForce.selector
            : block.timestamp < o.endsAt ? IMarketplace.OrderNotEnded.selector : OK;
        try market.expireOrder(orderId) {
            o.inForce = false;
            ghostUnits[o.buyer] -= o.units;
            _succeeded("expireOrder", expected);
        } catch (bytes memory reason) {
            _refused("expireOrder", expected, reason);
        }
    }

    function withdrawEarnings(uint256 earnerSeed) external counted {
        address account = _pick(_earners, earnerSeed);
        bytes4 expected = market.claimable(account) == 0 ? IMarketplace.NothingToWithdraw.selector : OK;
        uint256 before = token.balanceOf(account);
        vm.prank(account);
        try market.withdrawEarnings() {
            ghostWithdrawn += token.balanceOf(account) - before;
            _succeeded("withdraw", expected);
        } catch (bytes memory reason) {
            _refused("withdraw", expected, reason);
        }
    }

    // ------------------------------------------------------------------ terms and products

    function updateTerms(uint256 productSeed, uint256 price) external counted {
        ProductId p = _pick(_products, productSeed);
        (address operator,,, IDataProducts.Terms memory t) = products.product(p);
        t.price = bound(price, 1, 100 ether);
        t.membersBps = 10_000 - t.operatorBps - t.brokerBps - products.protocolFeeBps();
        vm.prank(operator);
        try products.updateTerms(p, t) {
            for (uint256 i; i < _vehicleIds.length; ++i) {
                live[p][_vehicleIds[i]] = false;
            }
            _succeeded("updateTerms", OK);
        } catch (bytes memory reason) {
            _refused("updateTerms", OK, reason);
        }
    }

    function setProtocolFee(uint256 seed) external counted {
        uint16[4] memory fees = [uint16(0), 250, 500, 1000];
        vm.prank(governor);
        products.setProtocolFeeBps(fees[seed % 4]);
        done["setProtocolFee"]++;
    }

    function setActive(uint256 productSeed, uint8 seed) external counted {
        ProductId p = _pick(_products, productSeed);
        bool active = seed % 8 != 0; // mostly re-activations, so sales go on
        vm.prank(governor);
        products.setActive(p, active);
        _inactive[p] = !active;
        done["setActive"]++;
    }

    // ------------------------------------------------------------------ membership

    function join(uint256 productSeed, uint256 vehicleSeed) external counted {
        ProductId p = _pick(_products, productSeed);
        uint256 v = _pick(_vehicleIds, vehicleSeed);
        (address operator,,,) = products.product(p);
        bytes4 expected = _inactive[p]
            ? IDataProducts.ProductInactive.selector
            : !staking.isActive(operator, IStaking.Role.Operator)
                ? IDataProducts.OperatorInactive.selector
                : live[p][v] ? IDataProducts.AlreadyMember.selector : OK;
        vm.prank(vehicles.ownerOf(v));
        try products.join(p, v) {
            _track(p, v);
            live[p][v] = true;
            (, uint64 version,,) = products.product(p);
            consentVersion[p][v] = version;
            _consentGeneration[p][v] = vehicles.generation(v);
            _succeeded("join", expected);
        } catch (bytes memory reason) {
            _refused("join", expected, reason);
        }
    }

    function leave(uint256 productSeed, uint256 vehicleSeed, address caller) external counted {
        ProductId p = _pick(_products, productSeed);
        uint256 v = _pick(_vehicleIds, vehicleSeed);
        if (productSeed % 4 != 0 && _pairs.length != 0) {
            // Mostly a pair that once joined, so leaves mostly find a consent to end.
            Pair storage pair = _pairs[vehicleSeed % _pairs.length];
            (p, v) = (pair.productId, pair.vehicleId);
        }
        if (caller == address(0) || uint160(caller) % 2 == 0) caller = vehicles.ownerOf(v);
        bool ownerMustSign = _consentGeneration[p][v] == vehicles.generation(v);
        bytes4 expected = consentVersion[p][v] == 0
            ? IDataProducts.NoConsent.selector
            : ownerMustSign && caller != vehicles.ownerOf(v) ? IDataProducts.NotVehicleOwner.selector : OK;
        vm.prank(caller);
        try products.leave(p, v) {
            live[p][v] = false;
            consentVersion[p][v] = 0;
            _succeeded("leave", expected);
        } catch (bytes memory reason) {
            _refused("leave", expected, reason);
        }
    }

    function transferVehicle(uint256 vehicleSeed, uint256 toSeed) external counted {
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

    function slash(uint256 accountSeed, uint256 amount) external counted {
        address account = _pick(_staked, accountSeed);
        (uint256 active,,) = staking.stakeOf(account);
        if (active == 0) return;
        // Mostly small slashes, now and then one that takes everything.
        amount = amount % 32 == 0 ? active : bound(amount, 1, active / 20 + 1);
        vm.prank(governor);
        staking.slash(account, amount, 0, bytes32(0), "invariant run");
        done["slash"]++;
    }

    function restake(uint256 accountSeed, uint256 amount) external counted {
        address account = _pick(_staked, accountSeed);
        amount = bound(amount, 1, 50_000 ether);
        token.transfer(account, amount);
        vm.startPrank(account);
        token.approve(address(staking), amount);
        staking.stake(amount);
        vm.stopPrank();
        done["restake"]++;
    }

    function warp(uint256 secondsAhead) external counted {
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

    /// @dev Tops the buyer up to what `quantity` units at the current price cost (the handler
    ///      holds the float), then reads the balances the purchase will move.
    function _before(address buyer, ProductId p, uint256 quantity) private returns (uint256, uint256) {
        uint256 cost = products.saleTerms(p).price * quantity;
        uint256 balance = token.balanceOf(buyer);
        if (balance < cost) token.transfer(buyer, cost - balance);
        return (token.balanceOf(buyer), token.balanceOf(treasury));
    }

    function _after(address buyer, uint256 buyerBefore, uint256 treasuryBefore, uint256 orderId) private {
        uint256 paid = buyerBefore - token.balanceOf(buyer);
        ghostPaidIn += paid;
        ghostToTreasury += token.balanceOf(treasury) - treasuryBefore;
        (,,,, uint256 recorded,,,) = market.order(orderId);
        if (recorded != paid) ghostOrderMismatch = true;
    }

    /// @dev The model of a purchase's gates, in the order the market checks them: a buyer that
    ///      is not its own broker, the product
    ///      (and a bundle's components) on sale, its operator active, the broker active, the use
    ///      permitted, and the buyer still active under the lockup curve at its new usage.
    function _expectPurchase(address buyer, ProductId p, address broker, uint8 use, uint256 addedUnits)
        private
        view
        returns (bytes4)
    {
        if (broker == buyer) return IMarketplace.BuyerIsBroker.selector;
        IDataProducts.Sale memory sale = products.saleTerms(p);
        if (_inactive[p]) return IMarketplace.ProductInactive.selector;
        if (ProductId.unwrap(sale.inactiveComponent) != 0) return IMarketplace.ComponentInactive.selector;
        if (!staking.isActive(sale.operator, IStaking.Role.Operator)) return IMarketplace.OperatorInactive.selector;
        if (broker != address(0) && !staking.isActive(broker, IStaking.Role.Broker)) {
            return IMarketplace.BrokerNotActive.selector;
        }
        if ((sale.permittedUses >> use) & 1 == 0) return IMarketplace.UseNotPermitted.selector;
        uint256 units = ghostUnits[buyer] + addedUnits;
        if (!_carries(buyer, IStaking.Role.Consumer, units) && !_carries(buyer, IStaking.Role.Broker, units)) {
            return IMarketplace.BuyerNotActive.selector;
        }
        return OK;
    }

    /// @dev Whether `buyer` is whitelisted for `role` and stakes what the curve asks at `units`.
    function _carries(address buyer, IStaking.Role role, uint256 units) private view returns (bool) {
        if (!staking.isWhitelisted(buyer, role)) return false;
        (uint256 base, uint256 perSqrtUnit) = staking.curve(role);
        uint256 required = LockupCurve.requiredStake(
            uint128(base), uint128(perSqrtUnit), uint64(units), staking.tierMultiplierBps(_tier)
        );
        (uint256 active,,) = staking.stakeOf(buyer);
        return active >= required;
    }

    function _succeeded(bytes32 action, bytes4 expected) private {
        done[action]++;
        if (expected != OK) _unexpected(action, "succeeded where the model expected a refusal", expected);
    }

    function _refused(bytes32 action, bytes4 expected, bytes memory reason) private {
        if (reason.length < 4 || bytes4(reason) != expected) {
            _unexpected(action, "refused for a reason the model did not expect", bytes4(reason));
        }
    }

    function _unexpected(bytes32 action, string memory what, bytes4 selector) private {
        ++unexpected;
        lastUnexpected =
            string.concat(string(abi.encodePacked(action)), ": ", what, ", selector ", vm.toString(uint32(selector)));
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
