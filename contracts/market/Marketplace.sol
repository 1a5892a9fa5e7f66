// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {ReentrancyGuardTransient} from "@openzeppelin/contracts/utils/ReentrancyGuardTransient.sol";
import {SafeCast} from "@openzeppelin/contracts/utils/math/SafeCast.sol";
import {IDataProducts} from "../interfaces/IDataProducts.sol";
import {IMarketplace} from "../interfaces/IMarketplace.sol";
import {IStaking} from "../interfaces/IStaking.sol";
import {MarketMath} from "../libraries/MarketMath.sol";
import {PayoutProof} from "../libraries/PayoutProof.sol";
import {Roles} from "../libraries/Roles.sol";
import {Vesting} from "../libraries/Vesting.sol";
import {ProductId} from "../types/ProductId.sol";
import {DaoAccessControl} from "../governance/DaoAccessControl.sol";
import {GuardianPausable} from "../governance/GuardianPausable.sol";

/// @title Marketplace
/// @notice Sells data products (DESIGN.md §3.6): streams and bundles by vehicle-month, API
///         credits by the call (valid for the terms' validity), datasets by the build. Each
///         payment is split at purchase — protocol fee (and a missing or steward broker's share)
///         straight to the Treasury, operator and broker shares to pull-based earnings — and the
///         member share vests linearly over the order's term (a dataset's at delivery). The
///         settler publishes one cumulative Merkle root over every product, pending for a delay
///         during which the DAO or a guardian may revoke it; members claim what they are owed in
///         all with one proof. Buyers take back the unvested remainder when a product is
///         deactivated, its terms bumped or its operator slashed.
/// @dev Nothing loops over members, leaves or orders. Each product keeps a release rate with
///      scheduled rate drops and dust bumps on day boundaries (Curve VotingEscrow's slope
///      changes), so a purchase costs the same with 1 or 1,000 live orders and a checkpoint
///      walks at most MAX_CHECKPOINT_DAYS days. Conservation, to the wei: paid in == to the
///      Treasury + operator and broker earnings (withdrawn or not) + Σ member shares, and
///      Σ member shares == Σ refunds + Σ released (scaled); Σ claimed ≤ total taken by roots ≤
///      Σ vested.
contract Marketplace is IMarketplace, DaoAccessControl, ReentrancyGuardTransient, GuardianPausable {
    using SafeERC20 for IERC20;
    using SafeCast for uint256;

    /// @notice The DAO: marks steward brokers, sets the root delay, revokes pending roots.
    bytes32 public constant GOVERNOR_ROLE = Roles.GOVERNOR_ROLE;
    /// @notice The workers' hot wallet: proposes roots, delivers datasets.
    bytes32 public constant SETTLER_ROLE = Roles.SETTLER_ROLE;

    /// @notice A subscription month.
    uint64 public constant MONTH = 30 days;
    /// @notice How long a dataset order runs (and counts in its buyer's usage).
    uint64 public constant DATASET_TERM = 30 days;
    /// @notice After this long undelivered, a dataset order is refundable.
    uint64 public constant DATASET_DELIVERY_WINDOW = 7 days;
    /// @notice API calls per unit of lockup usage (rounded up).
    uint256 public constant CALLS_PER_UNIT = 1_000;
    /// @notice Units of lockup usage a dataset order counts.
    uint256 public constant DATASET_UNITS = 1;
    /// @notice The most days of live vesting one checkpoint walks.
    uint256 public constant MAX_CHECKPOINT_DAYS = 1_000;
    /// @notice The scale of vested amounts (Vesting.PRECISION).
    uint256 public constant PRECISION = Vesting.PRECISION;
    /// @notice The shortest delay a root may be pending.
    uint64 public constant MIN_ROOT_DELAY = 1 hours;
    /// @notice The longest delay a root may be pending.
    uint64 public constant MAX_ROOT_DELAY = 7 days;
    /// @notice The root delay at deployment.
    uint64 public constant DEFAULT_ROOT_DELAY = 24 hours;
    /// @dev Usage tiers 0..3 (MarketMath.TIER_*).
    uint256 private constant TIERS = 4;

    /// @dev One order in five slots. `vestEndsAt`: the end of the member share's vesting (a
    ///      dataset's delivery time, 0 until delivered); its start is `startsAt`, or for a
    ///      dataset `vestEndsAt`.
    struct Order {
        ProductId productId;
        address buyer;
        uint64 startsAt;
        uint8 use;
        uint8 tier;
        bool inForce;
        IDataProducts.Kind kind;
        address broker;
        uint64 endsAt;
        uint128 quantity;
        uint128 paid;
        uint128 memberShare;
        uint64 vestEndsAt;
        uint64 version;
    }

    /// @dev What a purchase entry point hands the common path.
    struct Purchase {
        address broker;
        uint8 use;
        uint256 quantity;
        uint256 paid;
        uint256 maxPayment;
        uint64 endsAt;
        uint256 units;
        bytes32 specHash;
    }

    /// @dev A product's vesting as of `lastCheckpoint`: the sum of its live orders' rates and
    ///      what it has released, scaled by PRECISION.
    struct ProductVesting {
        uint192 rate;
        uint64 lastCheckpoint;
        uint256 vestedScaled;
    }

    /// @dev What happens to a product's vesting at a day boundary, in one slot: the rates of the
    ///      orders ending there stop and their dust is released. Both fit with room to spare: a
    ///      rate is at most memberShare × PRECISION (< 2^128 × 2^60) and a dust is below its
    ///      order's duration (< 2^55 s), so only ~2^9 orders of the longest possible term ending
    ///      on one day could overflow the dust; SafeCast refuses that purchase rather than wrap.
    struct RateChange {
        uint192 rateDrop;
        uint64 dust;
    }

    /// @dev When the pending root may be accepted, and the hash of the takes it was proposed
    ///      with (the root itself is `_pendingRoot`).
    struct PendingTerms {
        uint64 claimableAt;
        bytes32 takesHash;
    }

    /// @dev A buyer's units in force, per tier, in one slot.
    struct Usage {
        uint64[TIERS] unitsByTier;
    }

    /// @notice The DIMO token every price is paid in.
    IERC20 public immutable token;
    /// @notice Where products, terms and bundles live.
    IDataProducts public immutable dataProducts;
    /// @notice Where buyers, brokers and operators are staked and buyers' usage is recorded.
    IStaking public immutable staking;
    /// @notice The DAO treasury.
    address public immutable treasury;

    uint256 private _orderCount;
    mapping(uint256 orderId => Order) private _orders;
    mapping(uint256 orderId => uint64) private _refundedAt;
    mapping(uint256 orderId => bytes32) private _specs;
    mapping(address buyer => Usage) private _usage;
    mapping(address broker => bool) private _stewards;
    mapping(address account => uint256) private _earnings;
    mapping(ProductId productId => ProductVesting) private _vesting;
    mapping(ProductId productId => mapping(uint64 day => RateChange)) private _changes;
    mapping(ProductId productId => uint256) private _taken;
    mapping(address account => uint256) private _claimed;
    bytes32 private _root;
    bytes32 private _pendingRoot;
    PendingTerms private _pending;
    uint64 private _rootDelay;
    uint256 private _totalTaken;
    uint256 private _totalClaimed;

    /// @param token_ the DIMO token
    /// @param dataProducts_ the DataProducts contract
    /// @param staking_ the Staking contract (which must grant this contract MARKET_ROLE)
    /// @param treasury_ the Treasury
    /// @param governor receives DEFAULT_ADMIN_ROLE and GOVERNOR_ROLE (the DAO)
    constructor(address token_, address dataProducts_, address staking_, address treasury_, address governor)
        DaoAccessControl(governor)
    {
        if (
            token_ == address(0) || dataProducts_ == address(0) || staking_ == address(0) || treasury_ == address(0)
                || governor == address(0)
        ) revert ZeroAddress();
        token = IERC20(token_);
        dataProducts = IDataProducts(dataProducts_);
        staking = IStaking(staking_);
        treasury = treasury_;
        _rootDelay = DEFAULT_ROOT_DELAY;
        emit RootDelaySet(DEFAULT_ROOT_DELAY);
    }

    // ------------------------------------------------------------------ purchases

    /// @inheritdoc IMarketplace
    function subscribe(
        ProductId productId,
        uint32 vehicles,
        uint32 months,
        address broker,
        uint8 use,
        uint64 version,
        uint256 maxPayment
    ) external nonReentrant whenNotPaused returns (uint256 orderId) {
        if (vehicles == 0 || months == 0) revert ZeroQuantity();
        IDataProducts.Sale memory sale = _sellable(productId, broker, use, version);
        if (sale.kind != IDataProducts.Kind.Stream && sale.kind != IDataProducts.Kind.Bundle) {
            revert WrongProductKind(productId, uint8(sale.kind));
        }
        Purchase memory buy = Purchase({
            broker: broker,
            use: use,
            quantity: vehicles,
            paid: MarketMath.total(sale.price, uint256(vehicles) * months),
            maxPayment: maxPayment,
            endsAt: uint64(block.timestamp) + uint64(months) * MONTH,
            units: vehicles,
            specHash: bytes32(0)
        });
        return _place(productId, sale, buy);
    }

    /// @inheritdoc IMarketplace
    function buyCredits(
        ProductId productId,
        uint256 calls,
        address broker,
        uint8 use,
        uint64 version,
        uint256 maxPayment
    ) external nonReentrant whenNotPaused returns (uint256 orderId) {
        if (calls == 0) revert ZeroQuantity();
        IDataProducts.Sale memory sale = _sellable(productId, broker, use, version);
        if (sale.kind != IDataProducts.Kind.Api) revert WrongProductKind(productId, uint8(sale.kind));
        Purchase memory buy = Purchase({
            broker: broker,
            use: use,
            quantity: calls,
            paid: MarketMath.total(sale.price, calls),
            maxPayment: maxPayment,
            endsAt: uint64(block.timestamp) + sale.validitySeconds,
            units: _creditUnits(calls),
            specHash: bytes32(0)
        });
        return _place(productId, sale, buy);
    }

    /// @inheritdoc IMarketplace
    function purchaseDataset(
        ProductId productId,
        bytes32 specHash,
        address broker,
        uint8 use,
        uint64 version,
        uint256 maxPayment
    ) external nonReentrant whenNotPaused returns (uint256 orderId) {
        IDataProducts.Sale memory sale = _sellable(productId, broker, use, version);
        if (sale.kind != IDataProducts.Kind.Dataset) revert WrongProductKind(productId, uint8(sale.kind));
        Purchase memory buy = Purchase({
            broker: broker,
            use: use,
            quantity: 1,
            paid: sale.price,
            maxPayment: maxPayment,
            endsAt: uint64(block.timestamp) + DATASET_TERM,
            units: DATASET_UNITS,
            specHash: specHash
        });
        orderId = _place(productId, sale, buy);
    }

    /// @inheritdoc IMarketplace
    function expireOrder(uint256 orderId) external nonReentrant {
        Order storage o = _orders[orderId];
        address buyer = o.buyer;
        if (buyer == address(0)) revert UnknownOrder(orderId);
        if (!o.inForce) revert NotInForce(orderId);
        if (block.timestamp < o.endsAt) revert OrderNotEnded(orderId, o.endsAt);
        _leaveUsage(orderId, o, buyer);
        _syncUsage(buyer);
    }

    /// @inheritdoc IMarketplace
    function order(uint256 orderId)
        external
        view
        returns (
            ProductId productId,
            address buyer,
            address broker,
            uint256 quantity,
            uint256 paid,
            uint64 startsAt,
            uint64 endsAt,
            uint8 use
        )
    {
        Order storage o = _orders[orderId];
        if (o.buyer == address(0)) revert UnknownOrder(orderId);
        return (o.productId, o.buyer, o.broker, o.quantity, o.paid, o.startsAt, o.endsAt, o.use);
    }

    /// @inheritdoc IMarketplace
    function datasetSpec(uint256 orderId) external view returns (bytes32) {
        return _specs[orderId];
    }

    /// @inheritdoc IMarketplace
    function inForce(uint256 orderId) external view returns (bool) {
        return _orders[orderId].inForce;
    }

    /// @inheritdoc IMarketplace
    function usageOf(address buyer) public view returns (uint256 units, uint8 tier) {
        uint64[TIERS] storage byTier = _usage[buyer].unitsByTier;
        for (uint256 t; t < TIERS; ++t) {
            uint64 n = byTier[t];
            if (n != 0) {
                units += n;
                tier = uint8(t);
            }
        }
    }

    /// @inheritdoc IMarketplace
    function orderCount() external view returns (uint256) {
        return _orderCount;
    }

    // ------------------------------------------------------------------ vesting, delivery, refunds

    /// @inheritdoc IMarketplace
    function vestedMemberAmount(ProductId productId) external view returns (uint256) {
        ProductVesting memory v = _vesting[productId];
        _advance(productId, v, uint64(block.timestamp), type(uint256).max);
        return v.vestedScaled / PRECISION;
    }

    /// @inheritdoc IMarketplace
    function takenMemberAmount(ProductId productId) external view returns (uint256) {
        return _taken[productId];
    }

    /// @inheritdoc IMarketplace
    function orderVesting(uint256 orderId)
        external
        view
        returns (uint256 memberShare, uint64 vestStartsAt, uint64 vestEndsAt, uint64 refundedAt, uint64 version)
    {
        Order storage o = _orders[orderId];
        if (o.buyer == address(0)) revert UnknownOrder(orderId);
        vestEndsAt = o.vestEndsAt;
        vestStartsAt = o.kind == IDataProducts.Kind.Dataset ? vestEndsAt : o.startsAt;
        return (o.memberShare, vestStartsAt, vestEndsAt, _refundedAt[orderId], o.version);
    }

    /// @notice A product's vesting record as last checkpointed: the release rate of its live
    ///         orders (scaled per second), what it released (scaled) and when (extension).
    function vestingOf(ProductId productId)
        external
        view
        returns (uint256 rate, uint256 vestedScaled, uint64 lastCheckpoint)
    {
        ProductVesting storage v = _vesting[productId];
        return (v.rate, v.vestedScaled, v.lastCheckpoint);
    }

    /// @notice The rate drop and dust bump scheduled for `productId` at day boundary `day` (extension).
    function scheduledChange(ProductId productId, uint64 day) external view returns (uint256 rateDrop, uint256 dust) {
        RateChange storage c = _changes[productId][day];
        return (c.rateDrop, c.dust);
    }

    /// @inheritdoc IMarketplace
    function checkpoint(ProductId productId) external {
        ProductVesting memory v = _vesting[productId];
        _advance(productId, v, uint64(block.timestamp), MAX_CHECKPOINT_DAYS);
        _vesting[productId] = v;
        emit Checkpointed(productId, v.lastCheckpoint, v.vestedScaled);
    }

    /// @inheritdoc IMarketplace
    function deliverDataset(uint256 orderId, bytes32 resultHash) external onlyRole(SETTLER_ROLE) {
        Order storage o = _orders[orderId];
        if (o.buyer == address(0)) revert UnknownOrder(orderId);
        if (o.kind != IDataProducts.Kind.Dataset) revert NotDatasetOrder(orderId);
        if (o.vestEndsAt != 0) revert AlreadyDelivered(orderId);
        if (_refundedAt[orderId] != 0) revert AlreadyRefunded(orderId);
        uint64 closesAt = o.startsAt + DATASET_DELIVERY_WINDOW;
        if (block.timestamp >= closesAt) revert DeliveryWindowClosed(orderId, closesAt);
        uint64 nowTs = uint64(block.timestamp);
        o.vestEndsAt = nowTs;
        uint256 memberShare = o.memberShare;
        // A constant added to the record holds whatever its checkpoint: no walk is needed.
        _vesting[o.productId].vestedScaled += memberShare * PRECISION;
        emit DatasetDelivered(orderId, resultHash);
        emit OrderVesting(orderId, memberShare, nowTs, nowTs);
    }

    /// @inheritdoc IMarketplace
    function refund(uint256 orderId) external nonReentrant {
        Order storage o = _orders[orderId];
        address buyer = o.buyer;
        if (buyer == address(0)) revert UnknownOrder(orderId);
        if (msg.sender != buyer) revert NotBuyer(orderId, msg.sender);
        if (_refundedAt[orderId] != 0) revert AlreadyRefunded(orderId);
        if (!_refundable(o)) revert NotRefundable(orderId);
        uint64 nowTs = uint64(block.timestamp);
        uint256 amount = o.kind == IDataProducts.Kind.Dataset ? _unvestedDataset(o) : _stopVesting(o, nowTs);
        if (amount < 1) revert NothingToRefund(orderId); // not `== 0`: slither's incorrect-equality heuristic

        _refundedAt[orderId] = nowTs;
        if (o.endsAt > nowTs) o.endsAt = nowTs;
        bool wasInForce = o.inForce;
        if (wasInForce) _leaveUsage(orderId, o, buyer);
        emit Refunded(orderId, buyer, amount);
        if (wasInForce) _syncUsage(buyer);
        token.safeTransfer(buyer, amount);
    }

    // ------------------------------------------------------------------ the cumulative root

    /// @inheritdoc IMarketplace
    function proposeRoot(
        bytes32 newRoot,
        ProductId[] calldata productIds,
        uint256[] calldata cumulativeTaken,
        bytes32 dataHash
    ) external onlyRole(SETTLER_ROLE) whenNotPaused {
        if (newRoot == bytes32(0)) revert EmptyRoot();
        _checkTakes(productIds, cumulativeTaken);
        uint64 claimableAt = uint64(block.timestamp) + _rootDelay;
        _pendingRoot = newRoot;
        _pending =
            PendingTerms({claimableAt: claimableAt, takesHash: keccak256(abi.encode(productIds, cumulativeTaken))});
        emit RootProposed(newRoot, claimableAt, productIds, cumulativeTaken, dataHash);
    }

    /// @inheritdoc IMarketplace
    function acceptRoot(ProductId[] calldata productIds, uint256[] calldata cumulativeTaken) external {
        bytes32 pending = _requirePending();
        uint64 claimableAt = _pending.claimableAt;
        if (block.timestamp < claimableAt) revert RootNotYetClaimable(claimableAt);
        if (keccak256(abi.encode(productIds, cumulativeTaken)) != _pending.takesHash) revert TakesMismatch();
        _checkTakes(productIds, cumulativeTaken);
        uint256 total = _totalTaken;
        for (uint256 i; i < productIds.length; ++i) {
            ProductId id = productIds[i];
            uint256 cumulative = cumulativeTaken[i];
            total += cumulative - _taken[id]; // ≥ 0: _checkTakes
            _taken[id] = cumulative;
        }
        _totalTaken = total;
        _root = pending;
        delete _pendingRoot;
        delete _pending;
        emit RootAccepted(pending, total);
    }

    /// @inheritdoc IMarketplace
    function revokePendingRoot() external {
        if (!hasRole(GOVERNOR_ROLE, msg.sender) && !hasRole(GUARDIAN_ROLE, msg.sender)) {
            revert AccessControlUnauthorizedAccount(msg.sender, GUARDIAN_ROLE);
        }
        bytes32 pending = _requirePending();
        delete _pendingRoot;
        delete _pending;
        emit RootRevoked(pending, msg.sender);
    }

    /// @inheritdoc IMarketplace
    function setRootDelay(uint64 delay) external onlyRole(GOVERNOR_ROLE) {
        if (delay < MIN_ROOT_DELAY || delay > MAX_ROOT_DELAY) {
            revert RootDelayOutOfRange(delay, MIN_ROOT_DELAY, MAX_ROOT_DELAY);
        }
        _rootDelay = delay;
        emit RootDelaySet(delay);
    }

    /// @inheritdoc IMarketplace
    function claim(address account, uint256 cumulative, bytes32[] calldata proof) external nonReentrant {
        if (account == address(0) || account == address(this)) revert InvalidClaimant(account);
        bytes32 current = _root;
        if (current == bytes32(0)) revert NoRoot();
        if (PayoutProof.processProof(proof, PayoutProof.leaf(account, cumulative)) != current) {
            revert InvalidProof(account, cumulative);
        }
        uint256 already = _claimed[account];
        if (cumulative <= already) revert NothingToClaim(account, cumulative, already);
        uint256 amount = cumulative - already;
        uint256 total = _totalClaimed + amount;
        if (total > _totalTaken) revert ClaimsExceedTaken(total, _totalTaken);
        _claimed[account] = cumulative;
        _totalClaimed = total;
        emit Claimed(account, cumulative, amount);
        token.safeTransfer(account, amount);
    }

    /// @inheritdoc IMarketplace
    function claimed(address account) external view returns (uint256) {
        return _claimed[account];
    }

    /// @inheritdoc IMarketplace
    function root() external view returns (bytes32) {
        return _root;
    }

    /// @inheritdoc IMarketplace
    function pendingRoot() external view returns (bytes32, uint64, bytes32) {
        PendingTerms storage p = _pending;
        return (_pendingRoot, p.claimableAt, p.takesHash);
    }

    /// @inheritdoc IMarketplace
    function rootDelay() external view returns (uint64) {
        return _rootDelay;
    }

    /// @inheritdoc IMarketplace
    function totalTaken() external view returns (uint256) {
        return _totalTaken;
    }

    /// @inheritdoc IMarketplace
    function totalClaimed() external view returns (uint256) {
        return _totalClaimed;
    }

    // ------------------------------------------------------------------ earnings and stewards

    /// @inheritdoc IMarketplace
    function claimable(address account) external view returns (uint256) {
        return _earnings[account];
    }

    /// @inheritdoc IMarketplace
    function withdrawEarnings() external nonReentrant {
        uint256 amount = _earnings[msg.sender];
        if (amount == 0) revert NothingToWithdraw(msg.sender);
        _earnings[msg.sender] = 0;
        emit EarningsWithdrawn(msg.sender, amount);
        token.safeTransfer(msg.sender, amount);
    }

    /// @inheritdoc IMarketplace
    function setSteward(address broker, bool steward) external onlyRole(GOVERNOR_ROLE) {
        if (broker == address(0)) revert ZeroAddress();
        _stewards[broker] = steward;
        emit StewardSet(broker, steward);
    }

    /// @inheritdoc IMarketplace
    function isSteward(address broker) external view returns (bool) {
        return _stewards[broker];
    }

    // ------------------------------------------------------------------ internals

    /// @dev The product, its operator, the broker and the declared use all allow this sale, and
    ///      its terms are still the version the buyer was quoted. The one gate every purchase
    ///      path passes, so the buyer-is-not-its-broker rule is here.
    function _sellable(ProductId productId, address broker, uint8 use, uint64 version)
        private
        view
        returns (IDataProducts.Sale memory sale)
    {
        if (broker == msg.sender) revert BuyerIsBroker(msg.sender);
        sale = dataProducts.saleTerms(productId);
        if (version != sale.version) revert TermsVersionMoved(productId, version, sale.version);
        if (!sale.active) revert ProductInactive(productId);
        if (ProductId.unwrap(sale.inactiveComponent) != 0) revert ComponentInactive(productId, sale.inactiveComponent);
        if (!staking.isActive(sale.operator, IStaking.Role.Operator)) {
            revert OperatorInactive(productId, sale.operator);
        }
        if (broker != address(0) && !staking.isActive(broker, IStaking.Role.Broker)) revert BrokerNotActive(broker);
        // permittedUses only holds bits 0..5 (DataProducts validates it), so this also refuses use > 5.
        if ((sale.permittedUses >> use) & 1 == 0) revert UseNotPermitted(productId, use, sale.permittedUses);
    }

    /// @dev Records the order, schedules its member share's vesting, adds its units to the
    ///      buyer's usage, then collects the payment.
    function _place(ProductId productId, IDataProducts.Sale memory sale, Purchase memory buy)
        private
        returns (uint256 orderId)
    {
        if (buy.paid > buy.maxPayment) revert PaymentAboveMax(buy.paid, buy.maxPayment);
        if (buy.paid > type(uint128).max) revert PaymentTooLarge(buy.paid);
        MarketMath.Shares memory s = MarketMath.split(buy.paid, sale.operatorBps, sale.brokerBps, sale.protocolFeeBps);
        uint64 startsAt = uint64(block.timestamp);
        // A dataset vests at delivery: its window stays (0, 0) until then.
        bool vestsOverTerm = sale.kind != IDataProducts.Kind.Dataset;
        uint64 vestStartsAt = vestsOverTerm ? startsAt : 0;
        uint64 vestEndsAt = vestsOverTerm ? Vesting.roundUpToDay(buy.endsAt) : 0;
        if (vestsOverTerm && s.members != 0) _startVesting(productId, s.members, startsAt, vestEndsAt);
        uint8 tier = MarketMath.tierOf(sale.requiredPermissions);
        orderId = ++_orderCount;
        _orders[orderId] = Order({
            productId: productId,
            buyer: msg.sender,
            startsAt: startsAt,
            use: buy.use,
            tier: tier,
            inForce: true,
            kind: sale.kind,
            broker: buy.broker,
            endsAt: buy.endsAt,
            quantity: uint128(buy.quantity), // quantity ≤ paid (price ≥ 1) < 2^128
            paid: uint128(buy.paid),
            memberShare: uint128(s.members), // ≤ paid < 2^128
            vestEndsAt: vestEndsAt,
            version: sale.version
        });
        _usage[msg.sender].unitsByTier[tier] += buy.units.toUint64();
        emit OrderPlaced(orderId, productId, msg.sender, buy.broker, buy.quantity, buy.paid, buy.endsAt, buy.use);
        emit OrderVesting(orderId, s.members, vestStartsAt, vestEndsAt);
        if (sale.kind == IDataProducts.Kind.Dataset) {
            _specs[orderId] = buy.specHash;
            emit DatasetOrdered(orderId, buy.specHash);
        }
        _collect(orderId, sale, buy.broker, buy.paid, s);
    }

    /// @dev Credits the operator's and broker's earnings, syncs the buyer's usage, checks the
    ///      buyer can carry it, then takes the money: the Treasury's part straight to the
    ///      Treasury, the rest here.
    function _collect(
        uint256 orderId,
        IDataProducts.Sale memory sale,
        address broker,
        uint256 paid,
        MarketMath.Shares memory s
    ) private {
        // No broker, or the DAO's steward: the broker share goes to the Treasury.
        bool brokered = broker != address(0) && !_stewards[broker];
        uint256 toBroker = brokered ? s.broker : 0;
        uint256 toTreasury = brokered ? s.protocol : s.protocol + s.broker;
        if (toBroker != 0) _earnings[broker] += toBroker;
        if (s.operator != 0) _earnings[sale.operator] += s.operator;
        emit PaymentSplit(orderId, s.members, s.operator, toBroker, toTreasury);

        _syncUsage(msg.sender);
        if (
            !staking.isActive(msg.sender, IStaking.Role.Consumer) && !staking.isActive(msg.sender, IStaking.Role.Broker)
        ) {
            revert BuyerNotActive(msg.sender);
        }

        if (toTreasury != 0) token.safeTransferFrom(msg.sender, treasury, toTreasury);
        uint256 kept = paid - toTreasury;
        if (kept != 0) token.safeTransferFrom(msg.sender, address(this), kept);
    }

    /// @dev Adds an order's rate to its product from now, and schedules its drop and dust at `end`.
    function _startVesting(ProductId productId, uint256 memberShare, uint64 start, uint64 end) private {
        ProductVesting memory v = _checkpointed(productId);
        (uint256 rate, uint256 dust) = Vesting.schedule(memberShare, start, end);
        RateChange storage c = _changes[productId][end];
        c.rateDrop = (uint256(c.rateDrop) + rate).toUint192();
        c.dust = (uint256(c.dust) + dust).toUint64();
        v.rate = (uint256(v.rate) + rate).toUint192();
        _vesting[productId] = v;
    }

    /// @dev Stops a subscription's or credits' vesting now: its rate leaves the product, its
    ///      scheduled drop and dust are cancelled, and the fraction of a wei of its unvested part
    ///      joins the product's vested amount. Returns the buyer's refund (0: nothing unvested).
    function _stopVesting(Order storage o, uint64 nowTs) private returns (uint256 refundAmount) {
        uint256 memberShare = o.memberShare;
        uint64 start = o.startsAt;
        uint64 end = o.vestEndsAt;
        if (memberShare == 0 || nowTs >= end) return 0;
        ProductId productId = o.productId;
        ProductVesting memory v = _checkpointed(productId);
        (uint256 rate, uint256 dust) = Vesting.schedule(memberShare, start, end);
        uint256 remainderScaled;
        (refundAmount, remainderScaled) = Vesting.splitRefund(memberShare, start, o.endsAt, end, nowTs);
        RateChange storage c = _changes[productId][end];
        c.rateDrop -= uint192(rate); // added at purchase: it fits and is part of the sum
        c.dust -= uint64(dust);
        v.rate = uint192(uint256(v.rate) - rate);
        v.vestedScaled += remainderScaled;
        _vesting[productId] = v;
    }

    /// @dev A dataset's unvested share: all of it until delivered, nothing after.
    function _unvestedDataset(Order storage o) private view returns (uint256) {
        return o.vestEndsAt == 0 ? o.memberShare : 0;
    }

    /// @dev Whether a refund condition holds for the order (DESIGN.md §3.6).
    function _refundable(Order storage o) private view returns (bool) {
        IDataProducts.Sale memory sale = dataProducts.saleTerms(o.productId);
        if (!sale.active || ProductId.unwrap(sale.inactiveComponent) != 0) return true;
        if (sale.version != o.version) return true;
        if (staking.lastSlashedAt(sale.operator) > o.startsAt) return true;
        return o.kind == IDataProducts.Kind.Dataset && o.vestEndsAt == 0
            && block.timestamp >= uint256(o.startsAt) + DATASET_DELIVERY_WINDOW;
    }

    /// @dev `productId`'s vesting advanced to now, not yet stored; reverts if more than
    ///      MAX_CHECKPOINT_DAYS days of live vesting lie behind it.
    function _checkpointed(ProductId productId) private view returns (ProductVesting memory v) {
        v = _vesting[productId];
        uint64 last = v.lastCheckpoint;
        if (!_advance(productId, v, uint64(block.timestamp), MAX_CHECKPOINT_DAYS)) {
            revert CheckpointBehind(productId, last);
        }
    }

    /// @dev Advances `v` towards `target` by at most `maxDays` day boundaries: between two
    ///      boundaries the rate accrues, at each boundary the orders ending there drop their rate
    ///      and release their dust. A zero rate has nothing scheduled after it (every scheduled
    ///      drop is part of the rate), so it jumps straight to `target`.
    /// @return complete whether `v` reached `target`
    function _advance(ProductId productId, ProductVesting memory v, uint64 target, uint256 maxDays)
        private
        view
        returns (bool complete)
    {
        uint64 t = v.lastCheckpoint;
        uint256 rate = v.rate;
        uint256 vested = v.vestedScaled;
        mapping(uint64 day => RateChange) storage changes = _changes[productId];
        uint256 walked;
        while (t < target) {
            if (rate != 0) {
                uint64 next = Vesting.nextDay(t);
                if (next > target) {
                    vested = Vesting.accrue(vested, rate, t, target);
                    t = target;
                } else if (walked < maxDays) {
                    vested = Vesting.accrue(vested, rate, t, next);
                    RateChange memory c = changes[next];
                    if (c.rateDrop != 0) {
                        rate -= c.rateDrop;
                        vested += c.dust;
                    }
                    t = next;
                    ++walked;
                } else {
                    break;
                }
            } else {
                t = target; // no rate: nothing is scheduled after t
            }
        }
        v.lastCheckpoint = t;
        v.rate = uint192(rate); // ≤ the stored rate
        v.vestedScaled = vested;
        return t >= target; // t never passes target
    }

    /// @dev The pending root; reverts `NoPendingRoot` when there is none.
    function _requirePending() private view returns (bytes32 pending) {
        pending = _pendingRoot;
        if (pending == bytes32(0)) revert NoPendingRoot();
    }

    /// @dev Lengths match, ids strictly increase, and each take lies between the product's
    ///      taken and vested amounts.
    function _checkTakes(ProductId[] calldata productIds, uint256[] calldata cumulativeTaken) private view {
        uint256 n = productIds.length;
        if (n != cumulativeTaken.length) revert LengthMismatch(n, cumulativeTaken.length);
        uint64 nowTs = uint64(block.timestamp);
        for (uint256 i; i < n; ++i) {
            ProductId id = productIds[i];
            if (i != 0 && ProductId.unwrap(id) <= ProductId.unwrap(productIds[i - 1])) {
                revert ProductsNotSorted(productIds[i - 1], id);
            }
            uint256 cumulative = cumulativeTaken[i];
            uint256 taken = _taken[id];
            if (cumulative < taken) revert TakeBelowTaken(id, cumulative, taken);
            ProductVesting memory v = _vesting[id];
            uint64 last = v.lastCheckpoint;
            if (!_advance(id, v, nowTs, MAX_CHECKPOINT_DAYS)) revert CheckpointBehind(id, last);
            uint256 vested = v.vestedScaled / PRECISION;
            if (cumulative > vested) revert TakeAboveVested(id, cumulative, vested);
        }
    }

    /// @dev The order's units leave its buyer's usage (the caller syncs Staking).
    function _leaveUsage(uint256 orderId, Order storage o, address buyer) private {
        o.inForce = false;
        uint256 units = _units(o.kind, o.quantity);
        _usage[buyer].unitsByTier[o.tier] -= uint64(units); // added as a uint64 at purchase
        emit OrderExpired(orderId, buyer, units);
    }

    /// @dev The lockup units an order counts: vehicles, ceil(calls / CALLS_PER_UNIT), or DATASET_UNITS.
    function _units(IDataProducts.Kind kind, uint256 quantity) private pure returns (uint256) {
        if (kind == IDataProducts.Kind.Api) return _creditUnits(quantity);
        if (kind == IDataProducts.Kind.Dataset) return DATASET_UNITS;
        return quantity;
    }

    function _creditUnits(uint256 calls) private pure returns (uint256) {
        return calls / CALLS_PER_UNIT + (calls % CALLS_PER_UNIT == 0 ? 0 : 1);
    }

    function _syncUsage(address buyer) private {
        (uint256 units, uint8 tier) = usageOf(buyer);
        staking.setUsage(buyer, units, tier);
    }
}
