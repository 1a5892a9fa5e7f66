// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {Math} from "@openzeppelin/contracts/utils/math/Math.sol";
import {Test} from "../lib/Test.sol";
import {DimoToken} from "../../../contracts/token/DimoToken.sol";
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

/// @notice Drives random sequences over the market's money flow — purchases of every kind
///         (versioned, with a maximum payment), time, dataset deliveries, refunds after a
///         deactivation, a terms bump or an operator slash, expiries, cumulative roots proposed,
///         revoked and accepted over real Merkle trees of member accounts, claims and earnings
///         withdrawals — and keeps an independent model of what every order has released.
/// @dev Every call first asks the model what must happen: success, or one of the refusals that
///      apply. An outcome the model did not predict is counted in `unexpected` (asserted zero);
///      successes are counted per action in `done`. Every GUIDE_EVERY-th call also runs the next
///      action of a fixed rotation in its guided form, which first makes the action possible
///      (buys an order to deliver, deactivates a product so an order is refundable, proposes a
///      root to accept, warps past an order's end...), so each action runs at least
///      `minimumRuns()` times in every run, whatever the fuzzer picks; the suite asserts it.
contract MarketHandler is Test {
    struct Stack {
        DimoToken token;
        address treasury;
        Staking staking;
        DataProducts products;
        Marketplace market;
        address governor;
        address settler;
    }

    /// @dev The model's copy of an order.
    struct Rec {
        ProductId productId;
        address buyer;
        Kind kind;
        bool inForce;
        bool delivered;
        bool refunded;
        uint64 units;
        uint64 startsAt;
        uint64 endsAt;
        uint64 vestStartsAt;
        uint64 vestEndsAt;
        uint64 version;
        address operator;
        uint256 memberShare;
        uint256 refundAmount;
    }

    enum Kind {
        Subscription,
        Credits,
        Dataset
    }

    /// @dev The refusals that may apply to a call (none: it must succeed; bytes4(0): either
    ///      outcome is right).
    struct Expect {
        bytes4[10] reasons;
        uint256 n;
    }

    uint256 internal constant PRECISION = 1e18;
    uint64 internal constant DAY = 1 days;
    uint64 internal constant MONTH = 30 days;
    uint64 internal constant DATASET_TERM = 30 days;
    uint64 internal constant DATASET_DELIVERY_WINDOW = 7 days;
    uint256 internal constant CALLS_PER_UNIT = 1_000;
    /// @dev One call in GUIDE_EVERY also runs the next action of the rotation, guided.
    uint256 internal constant GUIDE_EVERY = 2;
    /// @dev Fault injection: one call in FAULT_ODDS of an action tries one invalid input.
    uint256 internal constant FAULT_ODDS = 12;
    uint256 internal constant MAX_WARP = 20 days;
    uint256 internal constant MAX_SCAN = 64;

    /// @notice The actions, in the guided rotation's order.
    bytes32[18] public ACTIONS = [
        bytes32("subscribe"),
        "buyCredits",
        "purchaseDataset",
        "warp",
        "deliverDataset",
        "refund",
        "expireOrder",
        "proposeRoot",
        "acceptRoot",
        "claim",
        "revokePendingRoot",
        "withdrawEarnings",
        "updateTerms",
        "setActive",
        "slashOperator",
        "setProtocolFee",
        "checkpoint",
        "proposeRoot"
    ];

    DimoToken internal immutable token;
    address internal immutable treasury;
    Staking internal immutable staking;
    DataProducts internal immutable products;
    Marketplace internal immutable market;
    address internal immutable governor;
    address internal immutable settler;

    address[] internal _buyers;
    address[] internal _brokerChoices;
    address[] internal _earners;
    address[] internal _operators;
    address[] internal _members;
    ProductId[] internal _streams; // Stream and Bundle products
    ProductId[] internal _apis;
    ProductId[] internal _datasets;
    ProductId[] internal _products; // every product, ids increasing
    /// @dev The usage tier of every product here (their terms all ask for the same permissions).
    uint8 internal _tier;

    // ------------------------------------------------------------------ the model
    mapping(uint256 orderId => Rec) internal _recs;
    uint256[] internal _orderIds;
    /// @dev Orders still releasing (not refunded, not fully vested), per product; the rest are
    ///      summed in `_finishedScaled`.
    mapping(ProductId productId => uint256[]) internal _open;
    mapping(ProductId productId => uint256) internal _finishedScaled;
    /// @dev Orders in force (counted in their buyer's usage).
    uint256[] internal _live;
    mapping(uint256 orderId => uint256 slotPlusOne) internal _liveSlot;
    mapping(address buyer => uint256) public ghostUnits;
    mapping(address operator => uint64) public ghostSlashedAt;
    mapping(ProductId productId => uint256) public lastVestedSeen;

    /// @dev Accepted root: each member's cumulative, each product's taken.
    mapping(address member => uint256) public ghostCumulative;
    mapping(address member => uint256) public ghostClaimedOf;
    mapping(ProductId productId => uint256) public ghostTaken;
    bool public hasRoot;
    /// @dev The pending proposal.
    bool public hasPending;
    uint64 internal _pendingClaimableAt;
    ProductId[] internal _pendingIds;
    uint256[] internal _pendingTakes;
    uint256[] internal _pendingCumulative;

    // ghost accounting (SPEC15 §6)
    uint256 public ghostPaidIn;
    uint256 public ghostToTreasury;
    uint256 public ghostWithdrawn;
    uint256 public ghostMemberShares;
    uint256 public ghostRefunded;
    uint256 public ghostClaimed;
    uint256 public ghostTotalTaken;
    bool public ghostVestedDecreased;
    bool public ghostRefundAboveUnvested;
    bool public ghostRefundedTwice;
    bool public ghostOrderMismatch;
    string public lastMismatch;

    // call counters
    uint256 public calls;
    uint256 internal _guideTurn;
    mapping(bytes32 action => uint256) public done; // successful state changes
    mapping(bytes32 action => uint256) public refused; // refusals the model predicted
    uint256 public unexpected; // outcomes the model did not predict: must stay 0
    string public lastUnexpected;
    bool internal _guiding;
    /// @dev Guided turns whose action did not succeed: must stay 0.
    uint256 public guidedMisses;
    bytes32 public lastGuidedMiss;

    constructor(
        Stack memory s,
        address[] memory buyers_,
        address[] memory brokerChoices_,
        address[] memory earners_,
        address[] memory operators_,
        address[] memory members_
    ) {
        token = s.token;
        treasury = s.treasury;
        staking = s.staking;
        products = s.products;
        market = s.market;
        governor = s.governor;
        settler = s.settler;
        _buyers = buyers_;
        _brokerChoices = brokerChoices_;
        _earners = earners_;
        _operators = operators_;
        _members = members_;
    }

    // ------------------------------------------------------------------ registration (setUp)

    /// @dev Products must be added in increasing id order (a root lists them so).
    function addProduct(ProductId productId) external {
        (,,, IDataProducts.Terms memory t) = products.product(productId);
        if (t.kind == IDataProducts.Kind.Api) _apis.push(productId);
        else if (t.kind == IDataProducts.Kind.Dataset) _datasets.push(productId);
        else _streams.push(productId);
        require(
            _products.length == 0
                || ProductId.unwrap(_products[_products.length - 1]) < ProductId.unwrap(productId),
            "products in increasing id order"
        );
        _products.push(productId);
        uint8 tier = MarketMath.tierOf(t.requiredPermissions);
        require(_products.length == 1 || tier == _tier, "handler products must share one usage tier");
        _tier = tier;
    }

    modifier counted() {
        ++calls;
        _prune();
        if (!_guiding && calls % GUIDE_EVERY == 0) {
            _guiding = true;
            _guide(uint256(keccak256(abi.encode(calls, block.timestamp, _guideTurn))));
            _guiding = false;
        }
        _;
        _observe();
    }

    /// @notice The fewest successful runs each action must have had after `calls` calls.
    function minimumRuns() public view returns (uint256) {
        // Every rotation turn succeeds; "proposeRoot" is in the rotation twice.
        return calls / GUIDE_EVERY / ACTIONS.length;
    }

    // ------------------------------------------------------------------ purchases

    function subscribe(uint256 seed, uint32 count, uint32 months, uint8 fault) external counted {
        _subscribe(seed, count, months, fault);
    }

    function buyCredits(uint256 seed, uint256 calls_, uint8 fault) external counted {
        _buyCredits(seed, calls_, fault);
    }

    function purchaseDataset(uint256 seed, bytes32 spec, uint8 fault) external counted {
        _purchaseDataset(seed, spec, fault);
    }

    /// @dev The inputs of one purchase: a buyer, a broker that is not the buyer, a permitted
    ///      use, the current version and exactly the price as the maximum — unless `fault`
    ///      picks one invalid input.
    struct Buy {
        ProductId productId;
        address buyer;
        address broker;
        uint8 use;
        uint64 version;
        uint256 paid;
        uint256 maxPayment;
        uint256 units;
        IDataProducts.Sale sale;
    }

    function _buy(ProductId p, uint256 seed, uint256 quantity, uint256 units, uint8 fault)
        private
        view
        returns (Buy memory b)
    {
        b.productId = p;
        b.sale = products.saleTerms(p);
        b.buyer = _buyers[seed % _buyers.length];
        b.broker = _brokerChoices[(seed >> 8) % _brokerChoices.length];
        if (b.broker == b.buyer) b.broker = address(0);
        b.use = uint8((seed >> 16) % 2); // the products permit uses 0 and 1
        b.version = b.sale.version;
        b.paid = b.sale.price * quantity;
        b.maxPayment = b.paid + (seed >> 24) % 3;
        b.units = units;
        if (fault % FAULT_ODDS == 0) {
            uint256 which = (fault / FAULT_ODDS) % 4;
            if (which == 0) b.broker = b.buyer;
            else if (which == 1) b.version = b.sale.version - 1;
            else if (which == 2) b.maxPayment = b.paid - 1;
            else b.use = 2 + uint8(fault % 4);
        }
    }

    function _subscribe(uint256 seed, uint32 count, uint32 months, uint8 fault) private returns (uint256 orderId) {
        ProductId p = _streams[seed % _streams.length];
        count = uint32(bound(count, 1, 20));
        months = uint32(bound(months, 1, 12));
        Buy memory b = _buy(p, seed >> 32, uint256(count) * months, count, fault);
        Expect memory e = _expectPurchase(b);
        uint256 balanceBefore = _topUp(b.buyer, b.paid);
        uint256 treasuryBefore = token.balanceOf(treasury);
        vm.prank(b.buyer);
        try market.subscribe(p, count, months, b.broker, b.use, b.version, b.maxPayment) returns (uint256 id) {
            orderId = id;
            _recordPurchase(id, b, Kind.Subscription, balanceBefore, treasuryBefore, uint64(months) * MONTH);
            _succeeded("subscribe", e);
        } catch (bytes memory reason) {
            _refused("subscribe", e, reason);
        }
    }

    function _buyCredits(uint256 seed, uint256 calls_, uint8 fault) private returns (uint256 orderId) {
        ProductId p = _apis[seed % _apis.length];
        calls_ = bound(calls_, 1, 10_000);
        Buy memory b = _buy(p, seed >> 32, calls_, (calls_ + CALLS_PER_UNIT - 1) / CALLS_PER_UNIT, fault);
        Expect memory e = _expectPurchase(b);
        uint256 balanceBefore = _topUp(b.buyer, b.paid);
        uint256 treasuryBefore = token.balanceOf(treasury);
        vm.prank(b.buyer);
        try market.buyCredits(p, calls_, b.broker, b.use, b.version, b.maxPayment) returns (uint256 id) {
            orderId = id;
            _recordPurchase(id, b, Kind.Credits, balanceBefore, treasuryBefore, b.sale.validitySeconds);
            _succeeded("buyCredits", e);
        } catch (bytes memory reason) {
            _refused("buyCredits", e, reason);
        }
    }

    function _purchaseDataset(uint256 seed, bytes32 spec, uint8 fault) private returns (uint256 orderId) {
        ProductId p = _datasets[seed % _datasets.length];
        Buy memory b = _buy(p, seed >> 32, 1, 1, fault);
        Expect memory e = _expectPurchase(b);
        uint256 balanceBefore = _topUp(b.buyer, b.paid);
        uint256 treasuryBefore = token.balanceOf(treasury);
        vm.prank(b.buyer);
        try market.purchaseDataset(p, spec, b.broker, b.use, b.version, b.maxPayment) returns (uint256 id) {
            orderId = id;
            _recordPurchase(id, b, Kind.Dataset, balanceBefore, treasuryBefore, DATASET_TERM);
            _succeeded("purchaseDataset", e);
        } catch (bytes memory reason) {
            _refused("purchaseDataset", e, reason);
        }
    }

    // ------------------------------------------------------------------ orders over time

    function warp(uint256 secondsAhead) external counted {
        _warp(secondsAhead);
    }

    function _warp(uint256 secondsAhead) private {
        vm.warp(block.timestamp + bound(secondsAhead, 1, MAX_WARP));
        done["warp"]++;
    }

    /// @dev Delivers an undelivered dataset order (now and then one already delivered or
    ///      refunded, or a subscription, which must be refused).
    function deliverDataset(uint256 seed, bytes32 resultHash) external counted {
        _deliver(seed, resultHash);
    }

    function _deliver(uint256 seed, bytes32 resultHash) private {
        uint256 orderId = _findOrder(seed, _isDeliverable);
        if (orderId == 0 || seed % FAULT_ODDS == 0) orderId = _anyOrder(seed);
        if (orderId == 0) return;
        Rec storage r = _recs[orderId];
        Expect memory e;
        if (r.kind != Kind.Dataset) _add(e, IMarketplace.NotDatasetOrder.selector);
        if (r.delivered) _add(e, IMarketplace.AlreadyDelivered.selector);
        if (r.refunded) _add(e, IMarketplace.AlreadyRefunded.selector);
        if (r.kind == Kind.Dataset && block.timestamp >= uint256(r.startsAt) + market.DATASET_DELIVERY_WINDOW()) {
            _add(e, IMarketplace.DeliveryWindowClosed.selector);
        }
        vm.prank(settler);
        try market.deliverDataset(orderId, resultHash) {
            r.delivered = true;
            r.vestStartsAt = uint64(block.timestamp);
            r.vestEndsAt = uint64(block.timestamp);
            _checkVesting(orderId);
            _succeeded("deliverDataset", e);
        } catch (bytes memory reason) {
            _refused("deliverDataset", e, reason);
        }
    }

    /// @dev The buyer takes back an order's unvested remainder; mostly an order whose product
    ///      was deactivated, bumped or slashed (found by scanning the orders).
    function refund(uint256 seed, address stranger) external counted {
        uint256 orderId = _findOrder(seed, _isRefundable);
        if (orderId == 0 || seed % FAULT_ODDS == 1) orderId = _anyOrder(seed);
        if (orderId == 0) return;
        address caller = seed % FAULT_ODDS == 2 ? stranger : _recs[orderId].buyer;
        _refund(orderId, caller);
    }

    function _refund(uint256 orderId, address caller) private {
        Rec storage r = _recs[orderId];
        Expect memory e;
        if (caller != r.buyer) _add(e, IMarketplace.NotBuyer.selector);
        if (r.refunded) _add(e, IMarketplace.AlreadyRefunded.selector);
        (bool refundable, bool onTheEdge) = _refundCondition(r);
        if (onTheEdge) _add(e, bytes4(0)); // the window's last second: either outcome is right
        else if (!refundable) _add(e, IMarketplace.NotRefundable.selector);
        uint256 amount = _refundDue(r, block.timestamp);
        if (amount == 0 && !r.refunded) _add(e, IMarketplace.NothingToRefund.selector);
        uint256 before = token.balanceOf(r.buyer);
        vm.prank(caller);
        try market.refund(orderId) {
            uint256 got = token.balanceOf(r.buyer) - before;
            if (r.refunded) ghostRefundedTwice = true;
            if (got != amount) _mismatch("refund paid another amount than the unserved part of the term");
            if (got > r.memberShare - _releasedScaled(r, block.timestamp) / PRECISION) ghostRefundAboveUnvested = true;
            r.refunded = true;
            r.refundAmount = got;
            ghostRefunded += got;
            if (r.inForce) _leave(orderId);
            _checkVesting(orderId);
            _succeeded("refund", e);
        } catch (bytes memory reason) {
            _refused("refund", e, reason);
        }
    }

    /// @dev Expires an order in force, mostly after warping to its end.
    function expireOrder(uint256 seed, bool early) external counted {
        uint256 orderId = _live.length == 0 || seed % FAULT_ODDS == 0 ? _anyOrder(seed) : _live[seed % _live.length];
        if (orderId == 0) return;
        _expire(orderId, !early);
    }

    function _expire(uint256 orderId, bool warpToEnd) private {
        Rec storage r = _recs[orderId];
        if (r.inForce && warpToEnd && block.timestamp < r.endsAt) vm.warp(r.endsAt);
        Expect memory e;
        if (!r.inForce) _add(e, IMarketplace.NotInForce.selector);
        else if (block.timestamp < r.endsAt) _add(e, IMarketplace.OrderNotEnded.selector);
        try market.expireOrder(orderId) {
            _leave(orderId);
            _succeeded("expireOrder", e);
        } catch (bytes memory reason) {
            _refused("expireOrder", e, reason);
        }
    }

    function checkpoint(uint256 productSeed) external counted {
        _checkpoint(productSeed);
    }

    function _checkpoint(uint256 productSeed) private {
        ProductId p = _products[productSeed % _products.length];
        try market.checkpoint(p) {
            done["checkpoint"]++;
        } catch (bytes memory reason) {
            _refused("checkpoint", _none(), reason);
        }
    }

    // ------------------------------------------------------------------ roots and claims

    /// @dev Proposes a cumulative root: for a subset of the products (all of them when
    ///      guided), a new cumulative take between the taken and the vested amount, the
    ///      increase spread over the member accounts on top of the ACCEPTED root's leaves (a
    ///      pending root it replaces is forgotten). Now and then one take is out of bounds.
    function proposeRoot(uint256 seed, uint8 fault) external counted {
        _propose(seed, fault, false);
    }

    /// @dev `everything`: every product, each taking all it vested (the guided form).
    function _propose(uint256 seed, uint8 fault, bool everything) private {
        (ProductId[] memory ids, uint256[] memory takes, uint256 added) = _takes(seed, everything);
        Expect memory e;
        uint256 n = ids.length;
        if (n != 0 && fault % FAULT_ODDS == 0) {
            uint256 i = (fault / FAULT_ODDS) % n;
            uint256 taken = ghostTaken[ids[i]];
            if ((fault / FAULT_ODDS) % 2 == 0 || taken == 0) {
                takes[i] = market.vestedMemberAmount(ids[i]) + 1;
                _add(e, IMarketplace.TakeAboveVested.selector);
            } else {
                takes[i] = taken - 1;
                _add(e, IMarketplace.TakeBelowTaken.selector);
            }
        }
        uint256[] memory cumulative = _spread(added, seed);
        (bytes32 root,) = _tree(cumulative, 0);
        vm.prank(settler);
        try market.proposeRoot(root, ids, takes, keccak256(abi.encode(cumulative))) {
            hasPending = true;
            _pendingClaimableAt = uint64(block.timestamp) + market.rootDelay();
            _pendingIds = ids;
            _pendingTakes = takes;
            _pendingCumulative = cumulative;
            _succeeded("proposeRoot", e);
        } catch (bytes memory reason) {
            _refused("proposeRoot", e, reason);
        }
    }

    /// @dev The products a proposal lists (a seeded subset, or all) and the cumulative take of
    ///      each: mostly all it vested, sometimes a part, as a cautious settler might.
    function _takes(uint256 seed, bool everything)
        private
        view
        returns (ProductId[] memory ids, uint256[] memory takes, uint256 added)
    {
        uint256 n;
        for (uint256 i; i < _products.length; ++i) {
            if (everything || (seed >> i) & 1 == 1) ++n;
        }
        ids = new ProductId[](n);
        takes = new uint256[](n);
        uint256 k;
        for (uint256 i; i < _products.length; ++i) {
            if (!everything && (seed >> i) & 1 == 0) continue;
            ProductId p = _products[i];
            uint256 taken = ghostTaken[p];
            uint256 vested = market.vestedMemberAmount(p);
            uint256 take = vested;
            if (!everything && (seed >> (8 + i)) % 4 == 0) take = bound(seed >> (16 + i), taken, vested);
            ids[k] = p;
            takes[k] = take;
            added += take - taken;
            ++k;
        }
    }

    /// @dev The accepted leaves plus `added` spread over the members by the seed's weights.
    function _spread(uint256 added, uint256 seed) private view returns (uint256[] memory cumulative) {
        uint256 m = _members.length;
        cumulative = new uint256[](m);
        uint256 left = added;
        for (uint256 i; i < m; ++i) {
            uint256 part = i + 1 == m ? left : added * ((seed >> (4 * i + 100)) % 16) / (16 * m);
            if (part > left) part = left;
            left -= part;
            cumulative[i] = ghostCumulative[_members[i]] + part;
        }
    }

    /// @dev Accepts the pending root, mostly once its delay has passed (warping there); now and
    ///      then with takes that are not the proposal's.
    function acceptRoot(uint256 seed, bool early) external counted {
        _accept(seed, !early);
    }

    function _accept(uint256 seed, bool warpToClaimable) private {
        Expect memory e;
        ProductId[] memory ids = _pendingIds;
        uint256[] memory takes = _pendingTakes;
        if (!hasPending) {
            _add(e, IMarketplace.NoPendingRoot.selector);
        } else {
            if (warpToClaimable && block.timestamp < _pendingClaimableAt) vm.warp(_pendingClaimableAt);
            if (block.timestamp < _pendingClaimableAt) _add(e, IMarketplace.RootNotYetClaimable.selector);
            if (seed % FAULT_ODDS == 0 && ids.length != 0) {
                takes[0] += 1;
                _add(e, IMarketplace.TakesMismatch.selector);
            }
        }
        try market.acceptRoot(ids, takes) {
            for (uint256 i; i < ids.length; ++i) {
                ghostTotalTaken += takes[i] - ghostTaken[ids[i]];
                ghostTaken[ids[i]] = takes[i];
            }
            for (uint256 i; i < _members.length; ++i) {
                ghostCumulative[_members[i]] = _pendingCumulative[i];
            }
            hasRoot = true;
            hasPending = false;
            _succeeded("acceptRoot", e);
        } catch (bytes memory reason) {
            _refused("acceptRoot", e, reason);
        }
    }

    function revokePendingRoot() external counted {
        _revoke();
    }

    function _revoke() private {
        Expect memory e;
        if (!hasPending) _add(e, IMarketplace.NoPendingRoot.selector);
        vm.prank(governor);
        try market.revokePendingRoot() {
            hasPending = false;
            _succeeded("revokePendingRoot", e);
        } catch (bytes memory reason) {
            _refused("revokePendingRoot", e, reason);
        }
    }

    /// @dev Anyone claims a member's leaf of the accepted root: mostly a member owed something;
    ///      now and then a leaf that is not in the tree.
    function claim(uint256 seed, address relayer) external counted {
        _claim(seed, relayer);
    }

    function _claim(uint256 seed, address relayer) private {
        uint256 m = _members.length;
        uint256 index = seed % m;
        for (uint256 j; j < m; ++j) {
            address a = _members[(seed % m + j) % m];
            if (ghostCumulative[a] > ghostClaimedOf[a]) {
                index = (seed % m + j) % m;
                break;
            }
        }
        address account = _members[index];
        uint256[] memory cumulative = new uint256[](m);
        for (uint256 i; i < m; ++i) {
            cumulative[i] = ghostCumulative[_members[i]];
        }
        (, bytes32[] memory proof) = _tree(cumulative, index);
        uint256 amount = cumulative[index];
        Expect memory e;
        if (!hasRoot) {
            _add(e, IMarketplace.NoRoot.selector);
            _add(e, IMarketplace.InvalidProof.selector);
        } else if (seed % FAULT_ODDS == 0) {
            amount += 1 + (seed >> 8) % 1000;
            _add(e, IMarketplace.InvalidProof.selector);
        } else if (amount <= ghostClaimedOf[account]) {
            _add(e, IMarketplace.NothingToClaim.selector);
        }
        uint256 before = token.balanceOf(account);
        vm.prank(relayer);
        try market.claim(account, amount, proof) {
            uint256 got = token.balanceOf(account) - before;
            if (got != amount - ghostClaimedOf[account]) _mismatch("claim paid another amount than owed");
            ghostClaimedOf[account] = amount;
            ghostClaimed += got;
            _succeeded("claim", e);
        } catch (bytes memory reason) {
            _refused("claim", e, reason);
        }
    }

    function withdrawEarnings(uint256 earnerSeed) external counted {
        _withdraw(earnerSeed);
    }

    function _withdraw(uint256 earnerSeed) private {
        address account = _earners[earnerSeed % _earners.length];
        for (uint256 j; j < _earners.length; ++j) {
            address a = _earners[(earnerSeed % _earners.length + j) % _earners.length];
            if (market.claimable(a) != 0) {
                account = a;
                break;
            }
        }
        Expect memory e;
        if (market.claimable(account) == 0) _add(e, IMarketplace.NothingToWithdraw.selector);
        uint256 before = token.balanceOf(account);
        vm.prank(account);
        try market.withdrawEarnings() {
            ghostWithdrawn += token.balanceOf(account) - before;
            _succeeded("withdrawEarnings", e);
        } catch (bytes memory reason) {
            _refused("withdrawEarnings", e, reason);
        }
    }

    // ------------------------------------------------------------------ what makes orders refundable

    /// @dev The operator bumps the terms (a new price; credits a new validity): every order
    ///      under the old version becomes refundable.
    function updateTerms(uint256 productSeed, uint256 price, uint32 validity) external counted {
        _updateTerms(productSeed, price, validity);
    }

    function _updateTerms(uint256 productSeed, uint256 price, uint32 validity) private {
        ProductId p = _products[productSeed % _products.length];
        (address operator,,, IDataProducts.Terms memory t) = products.product(p);
        t.price = bound(price, 0.01 ether, 100 ether);
        t.membersBps = 10_000 - t.operatorBps - t.brokerBps - products.protocolFeeBps();
        if (t.kind == IDataProducts.Kind.Api) t.validitySeconds = uint32(bound(validity, 1 days, 60 days));
        vm.prank(operator);
        products.updateTerms(p, t);
        done["updateTerms"]++;
    }

    function setActive(uint256 productSeed, uint8 seed) external counted {
        _setActive(_products[productSeed % _products.length], seed % 4 != 0);
    }

    function _setActive(ProductId p, bool active) private {
        vm.prank(governor);
        products.setActive(p, active);
        done["setActive"]++;
    }

    function setProtocolFee(uint8 seed) external counted {
        _setProtocolFee(seed);
    }

    function _setProtocolFee(uint8 seed) private {
        uint16[5] memory fees = [uint16(0), 250, 500, 1000, 2000];
        vm.prank(governor);
        products.setProtocolFeeBps(fees[seed % fees.length]);
        done["setProtocolFee"]++;
    }

    /// @dev A small slash of an operator (it stays active): its orders that started before
    ///      become refundable.
    function slashOperator(uint256 accountSeed, uint256 amount) external counted {
        _slash(accountSeed, amount);
    }

    function _slash(uint256 accountSeed, uint256 amount) private {
        address account = _operators[accountSeed % _operators.length];
        (uint256 active,,) = staking.stakeOf(account);
        (uint256 base,) = staking.curve(IStaking.Role.Operator);
        if (active <= base + 100) return;
        amount = bound(amount, 1, (active - base) / 100);
        vm.startPrank(governor);
        uint256 slashId = staking.proposeSlash(account, amount, IStaking.SlashSubject.Product, 0, "invariant run");
        staking.slash(slashId, 0, bytes32(0));
        vm.stopPrank();
        ghostSlashedAt[account] = uint64(block.timestamp);
        done["slashOperator"]++;
    }

    // ------------------------------------------------------------------ the guided rotation

    /// @dev Runs the rotation's next action so that it succeeds: each first makes itself
    ///      possible (products active, an order to deliver or refund, a root to accept...).
    function _guide(uint256 seed) private {
        bytes32 action = ACTIONS[_guideTurn++ % ACTIONS.length];
        uint256 before = done[action];
        _guided(action, seed);
        if (done[action] == before) {
            ++guidedMisses;
            lastGuidedMiss = action;
        }
    }

    function _guided(bytes32 action, uint256 seed) private {
        if (action == "subscribe") {
            _guidedBuy(seed, 0);
        } else if (action == "buyCredits") {
            _guidedBuy(seed, 1);
        } else if (action == "purchaseDataset") {
            _guidedBuy(seed, 2);
        } else if (action == "warp") {
            _warp(seed);
        } else if (action == "deliverDataset") {
            if (_findOrder(seed, _isDeliverable) == 0) _guidedBuy(seed, 2);
            _deliver(seed | 1, keccak256(abi.encode(seed)));
        } else if (action == "refund") {
            uint256 orderId = _findOrder(seed, _hasRefundDue);
            if (orderId == 0) orderId = _guidedBuy(seed, seed % 2);
            (bool refundable, bool onTheEdge) = _refundCondition(_recs[orderId]);
            if (!refundable || onTheEdge) _setActive(_recs[orderId].productId, false);
            _refund(orderId, _recs[orderId].buyer);
        } else if (action == "expireOrder") {
            if (_live.length == 0) _guidedBuy(seed, seed % 3);
            _expire(_soonestEnd(), true);
        } else if (action == "proposeRoot") {
            _propose(seed, 1, true);
        } else if (action == "acceptRoot") {
            if (!hasPending) _propose(seed, 1, true);
            _accept(1, true);
        } else if (action == "claim") {
            if (!_someoneOwed()) {
                if (!_somethingToTake()) {
                    _guidedBuy(seed, 0);
                    vm.warp(block.timestamp + DAY);
                }
                _propose(seed, 1, true);
                _accept(1, true);
            }
            _claim(seed | 1, address(uint160(seed)));
        } else if (action == "revokePendingRoot") {
            if (!hasPending) _propose(seed, 1, true);
            _revoke();
        } else if (action == "withdrawEarnings") {
            bool any;
            for (uint256 i; i < _earners.length; ++i) {
                if (market.claimable(_earners[i]) != 0) any = true;
            }
            if (!any) _guidedBuy(seed, 0);
            _withdraw(seed);
        } else if (action == "updateTerms") {
            _updateTerms(seed, seed >> 64, uint32(seed >> 128));
        } else if (action == "setActive") {
            _setActive(_products[seed % _products.length], true);
        } else if (action == "slashOperator") {
            _slash(seed, seed >> 64);
        } else if (action == "setProtocolFee") {
            _setProtocolFee(uint8(seed));
        } else if (action == "checkpoint") {
            _checkpoint(seed);
        }
    }

    /// @dev A purchase that must succeed: the product (and a bundle's components) reactivated
    ///      first, valid inputs.
    function _guidedBuy(uint256 seed, uint256 kind) private returns (uint256 orderId) {
        ProductId p = kind == 0
            ? _streams[seed % _streams.length]
            : kind == 1 ? _apis[seed % _apis.length] : _datasets[seed % _datasets.length];
        IDataProducts.Sale memory sale = products.saleTerms(p);
        if (!sale.active) _setActive(p, true);
        if (ProductId.unwrap(sale.inactiveComponent) != 0) {
            for (uint256 i; i < _products.length; ++i) {
                (,, bool active,) = products.product(_products[i]);
                if (!active) _setActive(_products[i], true);
            }
        }
        uint8 noFault = 1;
        if (kind == 0) orderId = _subscribe(seed, uint32(seed >> 40), uint32(seed >> 80), noFault);
        else if (kind == 1) orderId = _buyCredits(seed, seed >> 40, noFault);
        else orderId = _purchaseDataset(seed, keccak256(abi.encode(seed)), noFault);
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

    function memberList() external view returns (address[] memory) {
        return _members;
    }

    /// @notice "action done/refused, ..." for every action: what a run did (for reports).
    function summary() external view returns (string memory out) {
        out = string.concat("calls ", vm.toString(calls));
        for (uint256 i; i + 1 < ACTIONS.length; ++i) {
            bytes32 a = ACTIONS[i];
            out = string.concat(
                out, ", ", string(abi.encodePacked(a)), " ", vm.toString(done[a]), "/", vm.toString(refused[a])
            );
        }
    }

    function actionCount() external view returns (uint256) {
        return ACTIONS.length;
    }

    /// @notice The model's vested amount of `p` now: Σ over its orders of what each released
    ///         (a refunded order: its member share less the refund), floored once.
    function modelVested(ProductId p) public view returns (uint256) {
        uint256 scaled = _finishedScaled[p];
        uint256[] storage open = _open[p];
        for (uint256 i; i < open.length; ++i) {
            scaled += _contribution(_recs[open[i]], block.timestamp);
        }
        return scaled / PRECISION;
    }

    /// @notice Σ memberShare − Σ refunds of `p`'s orders: what `p` vests once every order ended.
    mapping(ProductId productId => uint256) public ghostShareLeft;

    /// @notice Whether every order of `p` has ended its vesting (a dataset: delivered or refunded).
    function allVested(ProductId p) external view returns (bool) {
        return _open[p].length == 0;
    }

    // ------------------------------------------------------------------ the vesting model

    /// @dev What order `r` has released by `t`, scaled by PRECISION (SPEC15 §3).
    function _releasedScaled(Rec storage r, uint256 t) private view returns (uint256) {
        if (r.kind == Kind.Dataset && !r.delivered) return 0;
        uint256 full = r.memberShare * PRECISION;
        if (t >= r.vestEndsAt) return full;
        if (t <= r.vestStartsAt) return 0;
        uint256 duration = r.vestEndsAt - r.vestStartsAt;
        return full / duration * (t - r.vestStartsAt);
    }

    /// @dev What `r` adds to its product's vested amount at `t`: its release, or once refunded
    ///      everything but the refund (the fraction of a wei the refund floors off stays vested).
    function _contribution(Rec storage r, uint256 t) private view returns (uint256) {
        if (r.refunded) return (r.memberShare - r.refundAmount) * PRECISION;
        return _releasedScaled(r, t);
    }

    function _unvested(Rec storage r, uint256 t) private view returns (uint256) {
        if (r.refunded) return 0;
        return r.memberShare * PRECISION - _releasedScaled(r, t);
    }

    /// @dev What a refund at `t` pays: a dataset's whole unvested share; for an order vesting
    ///      over its term, the unserved part of the term (nothing once it ended: the tail up to
    ///      the day boundary stays with the members), never above the whole unvested wei.
    function _refundDue(Rec storage r, uint256 t) private view returns (uint256) {
        if (r.refunded) return 0;
        uint256 whole = _unvested(r, t) / PRECISION;
        if (r.kind == Kind.Dataset) return whole;
        if (t >= r.endsAt) return 0;
        uint256 unserved = Math.mulDiv(r.memberShare, r.endsAt - t, r.endsAt - r.startsAt);
        return unserved < whole ? unserved : whole;
    }

    /// @dev Whether `r` may be refunded now (SPEC15 §5); `onTheEdge` at the dataset delivery
    ///      window's last second, where the spec's "within" may be read either way.
    function _refundCondition(Rec storage r) private view returns (bool refundable, bool onTheEdge) {
        IDataProducts.Sale memory sale = products.saleTerms(r.productId);
        if (!sale.active || ProductId.unwrap(sale.inactiveComponent) != 0) return (true, false);
        if (sale.version != r.version) return (true, false);
        if (ghostSlashedAt[r.operator] > r.startsAt) return (true, false);
        if (r.kind == Kind.Dataset && !r.delivered) {
            uint256 deadline = r.startsAt + DATASET_DELIVERY_WINDOW;
            if (block.timestamp == deadline) return (false, true);
            if (block.timestamp > deadline) return (true, false);
        }
        return (false, false);
    }

    // ------------------------------------------------------------------ order picking

    function _isDeliverable(uint256 orderId) private view returns (bool) {
        Rec storage r = _recs[orderId];
        return r.kind == Kind.Dataset && !r.delivered && !r.refunded
            && block.timestamp < uint256(r.startsAt) + market.DATASET_DELIVERY_WINDOW();
    }

    function _hasRefundDue(uint256 orderId) private view returns (bool) {
        Rec storage r = _recs[orderId];
        return _refundDue(r, block.timestamp) != 0;
    }

    function _isRefundable(uint256 orderId) private view returns (bool) {
        Rec storage r = _recs[orderId];
        if (!_hasRefundDue(orderId)) return false;
        (bool refundable, bool onTheEdge) = _refundCondition(r);
        return refundable && !onTheEdge;
    }

    /// @dev The first order from a seeded offset (scanning at most MAX_SCAN of the newest) that
    ///      `wanted` accepts; 0 if none.
    function _findOrder(uint256 seed, function(uint256) view returns (bool) wanted) private view returns (uint256) {
        uint256 n = _orderIds.length;
        if (n == 0) return 0;
        uint256 span = n < MAX_SCAN ? n : MAX_SCAN;
        uint256 offset = seed % span;
        for (uint256 j; j < span; ++j) {
            uint256 orderId = _orderIds[n - 1 - (offset + j) % span];
            if (wanted(orderId)) return orderId;
        }
        return 0;
    }

    function _anyOrder(uint256 seed) private view returns (uint256) {
        return _orderIds.length == 0 ? 0 : _orderIds[seed % _orderIds.length];
    }

    function _soonestEnd() private view returns (uint256 best) {
        uint64 soonest = type(uint64).max;
        for (uint256 i; i < _live.length; ++i) {
            uint64 endsAt = _recs[_live[i]].endsAt;
            if (endsAt < soonest) (soonest, best) = (endsAt, _live[i]);
        }
    }

    function _someoneOwed() private view returns (bool) {
        for (uint256 i; i < _members.length; ++i) {
            if (ghostCumulative[_members[i]] > ghostClaimedOf[_members[i]]) return true;
        }
        return false;
    }

    function _somethingToTake() private view returns (bool) {
        for (uint256 i; i < _products.length; ++i) {
            if (market.vestedMemberAmount(_products[i]) > ghostTaken[_products[i]]) return true;
        }
        return false;
    }

    // ------------------------------------------------------------------ bookkeeping

    /// @dev Tops the buyer up to `cost` (the handler holds the float); its balance before.
    function _topUp(address buyer, uint256 cost) private returns (uint256) {
        uint256 balance = token.balanceOf(buyer);
        if (balance < cost) token.transfer(buyer, cost - balance);
        return token.balanceOf(buyer);
    }

    function _recordPurchase(
        uint256 orderId,
        Buy memory b,
        Kind kind,
        uint256 balanceBefore,
        uint256 treasuryBefore,
        uint64 term
    ) private {
        uint256 paid = balanceBefore - token.balanceOf(b.buyer);
        ghostPaidIn += paid;
        ghostToTreasury += token.balanceOf(treasury) - treasuryBefore;
        if (paid != b.paid) _mismatch("a purchase took another amount than price x quantity");
        uint256 share =
            MarketMath.split(paid, b.sale.operatorBps, b.sale.brokerBps, b.sale.protocolFeeBps).members;
        ghostMemberShares += share;
        ghostShareLeft[b.productId] += share;
        uint64 startsAt = uint64(block.timestamp);
        Rec storage r = _recs[orderId];
        r.productId = b.productId;
        r.buyer = b.buyer;
        r.kind = kind;
        r.inForce = true;
        r.units = uint64(b.units);
        r.startsAt = startsAt;
        r.endsAt = startsAt + term;
        if (kind != Kind.Dataset) {
            r.vestStartsAt = startsAt;
            r.vestEndsAt = (r.endsAt + DAY - 1) / DAY * DAY;
        }
        r.version = b.sale.version;
        r.operator = b.sale.operator;
        r.memberShare = share;
        _orderIds.push(orderId);
        _open[b.productId].push(orderId);
        _live.push(orderId);
        _liveSlot[orderId] = _live.length;
        ghostUnits[b.buyer] += b.units;
        (,,,, uint256 recorded,, uint64 endsAt,) = market.order(orderId);
        if (recorded != paid) _mismatch("an order recorded another price than was paid");
        if (endsAt != r.endsAt) _mismatch("an order ends at another time than its term");
        _checkVesting(orderId);
    }

    /// @dev The market's vesting record of an order is the model's.
    function _checkVesting(uint256 orderId) private {
        Rec storage r = _recs[orderId];
        (uint256 share, uint64 vestStartsAt, uint64 vestEndsAt, uint64 refundedAt, uint64 version) =
            market.orderVesting(orderId);
        if (share != r.memberShare) _mismatch("orderVesting: member share");
        if (vestStartsAt != r.vestStartsAt || vestEndsAt != r.vestEndsAt) _mismatch("orderVesting: vesting window");
        if ((refundedAt != 0) != r.refunded) _mismatch("orderVesting: refundedAt");
        if (version != r.version) _mismatch("orderVesting: version");
    }

    /// @dev The order leaves its buyer's usage (expired or refunded).
    function _leave(uint256 orderId) private {
        Rec storage r = _recs[orderId];
        r.inForce = false;
        ghostUnits[r.buyer] -= r.units;
        uint256 slot = _liveSlot[orderId] - 1;
        uint256 last = _live[_live.length - 1];
        _live[slot] = last;
        _liveSlot[last] = slot + 1;
        _live.pop();
        delete _liveSlot[orderId];
    }

    /// @dev Moves orders that released everything (or were refunded) out of the open lists.
    function _prune() private {
        for (uint256 i; i < _products.length; ++i) {
            ProductId p = _products[i];
            uint256[] storage open = _open[p];
            uint256 j;
            while (j < open.length) {
                Rec storage r = _recs[open[j]];
                bool finished = r.refunded
                    || (block.timestamp >= r.vestEndsAt && (r.kind != Kind.Dataset || r.delivered));
                if (finished) {
                    if (r.refunded) ghostShareLeft[p] -= r.refundAmount;
                    _finishedScaled[p] += _contribution(r, block.timestamp);
                    open[j] = open[open.length - 1];
                    open.pop();
                } else {
                    ++j;
                }
            }
        }
    }

    /// @dev Vested amounts never decrease.
    function _observe() private {
        for (uint256 i; i < _products.length; ++i) {
            uint256 vested = market.vestedMemberAmount(_products[i]);
            if (vested < lastVestedSeen[_products[i]]) ghostVestedDecreased = true;
            lastVestedSeen[_products[i]] = vested;
        }
    }

    /// @dev The model of a purchase's gates: every refusal that applies (the market may check
    ///      them in any order).
    function _expectPurchase(Buy memory b) private view returns (Expect memory e) {
        if (b.broker == b.buyer) _add(e, IMarketplace.BuyerIsBroker.selector);
        if (b.version != b.sale.version) _add(e, IMarketplace.TermsVersionMoved.selector);
        if (!b.sale.active) _add(e, IMarketplace.ProductInactive.selector);
        if (ProductId.unwrap(b.sale.inactiveComponent) != 0) _add(e, IMarketplace.ComponentInactive.selector);
        if (!staking.isActive(b.sale.operator, IStaking.Role.Operator)) _add(e, IMarketplace.OperatorInactive.selector);
        if (b.broker != address(0) && b.broker != b.buyer && !staking.isActive(b.broker, IStaking.Role.Broker)) {
            _add(e, IMarketplace.BrokerNotActive.selector);
        }
        if ((b.sale.permittedUses >> b.use) & 1 == 0) _add(e, IMarketplace.UseNotPermitted.selector);
        if (b.paid > b.maxPayment) _add(e, IMarketplace.PaymentAboveMax.selector);
        uint256 units = ghostUnits[b.buyer] + b.units;
        if (!_carries(b.buyer, IStaking.Role.Consumer, units) && !_carries(b.buyer, IStaking.Role.Broker, units)) {
            _add(e, IMarketplace.BuyerNotActive.selector);
        }
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

    /// @dev The cumulative tree over the members — StandardMerkleTree leaves
    ///      keccak256(keccak256(abi.encode(account, cumulative))), sorted pairs — its root and
    ///      leaf `index`'s proof.
    function _tree(uint256[] memory cumulative, uint256 index)
        private
        view
        returns (bytes32 root, bytes32[] memory proof)
    {
        bytes32[] memory leaves = new bytes32[](_members.length);
        for (uint256 i; i < leaves.length; ++i) {
            leaves[i] = keccak256(bytes.concat(keccak256(abi.encode(_members[i], cumulative[i]))));
        }
        return (MarketMerkle.root(leaves), MarketMerkle.proof(leaves, index));
    }

    function _add(Expect memory e, bytes4 reason) private pure {
        e.reasons[e.n++] = reason;
    }

    function _none() private pure returns (Expect memory e) {}

    function _succeeded(bytes32 action, Expect memory e) private {
        done[action]++;
        for (uint256 i; i < e.n; ++i) {
            if (e.reasons[i] == bytes4(0)) return; // either outcome is right
        }
        if (e.n != 0) _unexpected(action, "succeeded where the model expected a refusal", e.reasons[0]);
    }

    function _refused(bytes32 action, Expect memory e, bytes memory reason) private {
        bytes4 selector = reason.length < 4 ? bytes4(0) : bytes4(reason);
        for (uint256 i; i < e.n; ++i) {
            if (e.reasons[i] == bytes4(0) || (reason.length >= 4 && e.reasons[i] == selector)) {
                refused[action]++;
                return;
            }
        }
        _unexpected(action, "refused for a reason the model did not expect", selector);
    }

    function _unexpected(bytes32 action, string memory what, bytes4 selector) private {
        ++unexpected;
        lastUnexpected =
            string.concat(string(abi.encodePacked(action)), ": ", what, ", selector ", vm.toString(uint32(selector)));
    }

    function _mismatch(string memory what) private {
        ghostOrderMismatch = true;
        lastMismatch = what;
    }
}
