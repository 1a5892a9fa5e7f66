// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {ReentrancyGuardTransient} from "@openzeppelin/contracts/utils/ReentrancyGuardTransient.sol";
import {SafeCast} from "@openzeppelin/contracts/utils/math/SafeCast.sol";
import {IDataProducts} from "../interfaces/IDataProducts.sol";
import {IMarketplace} from "../interfaces/IMarketplace.sol";
import {IStaking} from "../interfaces/IStaking.sol";
import {ClaimBitmap} from "../libraries/ClaimBitmap.sol";
import {MarketMath} from "../libraries/MarketMath.sol";
import {PayoutProof} from "../libraries/PayoutProof.sol";
import {Roles} from "../libraries/Roles.sol";
import {ProductId} from "../types/ProductId.sol";
import {DaoAccessControl} from "../governance/DaoAccessControl.sol";

/// @title Marketplace
/// @notice Sells data products (DESIGN.md §3.6): streams and bundles by vehicle-month, API
///         credits by the call, datasets by the build. Each payment is split at purchase —
///         protocol fee (and a missing or steward broker's share) straight to the Treasury,
///         operator and broker shares to pull-based earnings, the rest to the product's member
///         pool — and the settler later moves pool funds into per-epoch Merkle roots that
///         members claim leaf by leaf.
/// @dev Nothing loops over members, leaves or orders: a purchase, a settlement and a claim
///      each cost the same whatever the number of members. Conservation, to the wei:
///      paid in == to the Treasury + operator and broker earnings (withdrawn or not) +
///      member pools + settled epochs (claimed or not).
contract Marketplace is IMarketplace, DaoAccessControl, ReentrancyGuardTransient {
    using SafeERC20 for IERC20;
    using SafeCast for uint256;
    using ClaimBitmap for ClaimBitmap.Bitmap;

    /// @notice The DAO: marks steward brokers.
    bytes32 public constant GOVERNOR_ROLE = Roles.GOVERNOR_ROLE;
    /// @notice The workers' hot wallet: settles member-pool epochs.
    bytes32 public constant SETTLER_ROLE = Roles.SETTLER_ROLE;

    /// @notice A subscription month.
    uint64 public constant MONTH = 30 days;
    /// @notice `endsAt` of orders that do not expire (API credits, datasets).
    uint64 public constant NO_END = type(uint64).max;
    /// @dev Usage tiers 0..3 (MarketMath.TIER_*).
    uint256 private constant TIERS = 4;

    /// @dev One order in four slots.
    struct Order {
        ProductId productId;
        address buyer;
        uint64 startsAt;
        uint8 use;
        uint8 tier;
        bool inForce;
        address broker;
        uint64 endsAt;
        uint128 quantity;
        uint128 paid;
    }

    /// @dev One settled epoch: what it may pay and has paid, in one word. Stored under
    ///      keccak256(root, productId, epoch), so a claim finds it from the root its proof leads to
    ///      and reads one word for both the proof's check and the epoch's cap.
    struct Epoch {
        uint128 amount;
        uint128 claimed;
    }

    /// @dev A buyer's vehicle-subscriptions in force, per tier, in one slot.
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
    mapping(uint256 orderId => bytes32) private _specs;
    mapping(address buyer => Usage) private _usage;
    mapping(address broker => bool) private _stewards;
    mapping(address account => uint256) private _earnings;
    mapping(ProductId productId => uint256) private _pools;
    mapping(ProductId productId => uint64) private _lastEpochs;
    mapping(ProductId productId => mapping(uint64 epoch => bytes32)) private _roots;
    mapping(bytes32 epochKey => Epoch) private _epochs;
    mapping(bytes32 epochKey => ClaimBitmap.Bitmap) private _claimedLeaves;

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
    }

    // ------------------------------------------------------------------ purchases

    /// @dev What the unbound entry points pass as the quoted version: "any". No product reaches
    ///      it (a version is bumped by one per terms update), and 0 is never a version, so a
    ///      bound purchase quoting 0 is refused.
    uint64 private constant ANY_VERSION = type(uint64).max;

    /// @inheritdoc IMarketplace
    function subscribe(ProductId productId, uint32 vehicles, uint32 months, address broker, uint8 use)
        external
        nonReentrant
        returns (uint256 orderId)
    {
        return _subscribe(productId, vehicles, months, broker, use, ANY_VERSION);
    }

    /// @inheritdoc IMarketplace
    function subscribe(ProductId productId, uint32 vehicles, uint32 months, address broker, uint8 use, uint64 version)
        external
        nonReentrant
        returns (uint256 orderId)
    {
        return _subscribe(productId, vehicles, months, broker, use, version);
    }

    /// @inheritdoc IMarketplace
    function buyCredits(ProductId productId, uint256 calls, address broker, uint8 use)
        external
        nonReentrant
        returns (uint256 orderId)
    {
        return _buyCredits(productId, calls, broker, use, ANY_VERSION);
    }

    /// @inheritdoc IMarketplace
    function buyCredits(ProductId productId, uint256 calls, address broker, uint8 use, uint64 version)
        external
        nonReentrant
        returns (uint256 orderId)
    {
        return _buyCredits(productId, calls, broker, use, version);
    }

    /// @inheritdoc IMarketplace
    function purchaseDataset(ProductId productId, bytes32 specHash, address broker, uint8 use)
        external
        nonReentrant
        returns (uint256 orderId)
    {
        return _purchaseDataset(productId, specHash, broker, use, ANY_VERSION);
    }

    /// @inheritdoc IMarketplace
    function purchaseDataset(ProductId productId, bytes32 specHash, address broker, uint8 use, uint64 version)
        external
        nonReentrant
        returns (uint256 orderId)
    {
        return _purchaseDataset(productId, specHash, broker, use, version);
    }

    /// @inheritdoc IMarketplace
    function expireOrder(uint256 orderId) external nonReentrant {
        Order storage o = _orders[orderId];
        address buyer = o.buyer;
        if (buyer == address(0)) revert UnknownOrder(orderId);
        if (!o.inForce) revert NotInForce(orderId);
        if (block.timestamp < o.endsAt) revert OrderNotEnded(orderId, o.endsAt);
        o.inForce = false;
        uint64 units = uint64(o.quantity); // subscriptions hold at most 2^32 - 1 vehicles
        _usage[buyer].unitsByTier[o.tier] -= units;
        emit OrderExpired(orderId, buyer, units);
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

    // ------------------------------------------------------------------ member pools

    /// @inheritdoc IMarketplace
    function memberPool(ProductId productId) external view returns (uint256) {
        return _pools[productId];
    }

    /// @inheritdoc IMarketplace
    function settle(ProductId productId, uint64 epoch, uint256 amount, bytes32 membersRoot)
        external
        onlyRole(SETTLER_ROLE)
    {
        if (amount == 0 || membersRoot == bytes32(0)) revert EmptySettlement(amount, membersRoot);
        if (epoch > block.timestamp) revert EpochInFuture(productId, epoch, block.timestamp);
        uint64 last = _lastEpochs[productId];
        if (epoch <= last) revert EpochNotIncreasing(productId, epoch, last);
        uint256 pool = _pools[productId];
        if (amount > pool) revert AmountExceedsPool(productId, amount, pool);
        _pools[productId] = pool - amount;
        _lastEpochs[productId] = epoch;
        _roots[productId][epoch] = membersRoot;
        _epochs[_epochKey(membersRoot, productId, epoch)] = Epoch({amount: amount.toUint128(), claimed: 0});
        emit Settled(productId, epoch, amount, membersRoot);
    }

    /// @inheritdoc IMarketplace
    function claim(
        ProductId productId,
        uint64 epoch,
        uint256 index,
        address account,
        uint256 amount,
        bytes32[] calldata proof
    ) external nonReentrant {
        if (account == address(0) || account == address(this)) revert InvalidClaimant(account);
        bytes32 root = PayoutProof.processProof(proof, PayoutProof.leaf(index, account, amount));
        bytes32 key = _epochKey(root, productId, epoch);
        Epoch storage e = _epochs[key];
        uint256 settled = e.amount;
        if (settled == 0) {
            // No epoch under this root: either none was settled, or the proof is wrong.
            if (_roots[productId][epoch] == bytes32(0)) revert UnknownEpoch(productId, epoch);
            revert InvalidProof(productId, epoch, index);
        }
        if (!_claimedLeaves[key].setClaimed(index)) revert AlreadyClaimed(productId, epoch, index);
        uint256 paidSoFar = e.claimed;
        uint256 remaining = settled - paidSoFar;
        if (amount > remaining) revert EpochOverdrawn(productId, epoch, amount, remaining);
        e.claimed = uint128(paidSoFar + amount); // ≤ settled < 2^128
        emit Claimed(productId, epoch, account, amount);
        token.safeTransfer(account, amount);
    }

    /// @inheritdoc IMarketplace
    function lastEpoch(ProductId productId) external view returns (uint64) {
        return _lastEpochs[productId];
    }

    /// @inheritdoc IMarketplace
    function epochOf(ProductId productId, uint64 epoch)
        external
        view
        returns (bytes32 membersRoot, uint256 amount, uint256 claimed)
    {
        membersRoot = _roots[productId][epoch];
        Epoch storage e = _epochs[_epochKey(membersRoot, productId, epoch)];
        return (membersRoot, e.amount, e.claimed);
    }

    /// @inheritdoc IMarketplace
    function isClaimed(ProductId productId, uint64 epoch, uint256 index) external view returns (bool) {
        bytes32 key = _epochKey(_roots[productId][epoch], productId, epoch);
        return _claimedLeaves[key].isClaimed(index);
    }

    // ------------------------------------------------------------------ internals

    function _subscribe(ProductId productId, uint32 vehicles, uint32 months, address broker, uint8 use, uint64 version)
        private
        returns (uint256 orderId)
    {
        if (vehicles == 0 || months == 0) revert ZeroQuantity();
        IDataProducts.Sale memory sale = _sellable(productId, broker, use, version);
        if (sale.kind != IDataProducts.Kind.Stream && sale.kind != IDataProducts.Kind.Bundle) {
            revert WrongProductKind(productId, uint8(sale.kind));
        }
        uint256 paid = MarketMath.total(sale.price, uint256(vehicles) * months);
        uint64 endsAt = uint64(block.timestamp) + uint64(months) * MONTH;
        uint8 tier = MarketMath.tierOf(sale.requiredPermissions);
        orderId = _record(productId, broker, vehicles, paid, endsAt, use, tier, true);
        _usage[msg.sender].unitsByTier[tier] += vehicles;
        _collect(orderId, productId, sale, broker, paid);
    }

    function _buyCredits(ProductId productId, uint256 calls, address broker, uint8 use, uint64 version)
        private
        returns (uint256 orderId)
    {
        if (calls == 0) revert ZeroQuantity();
        IDataProducts.Sale memory sale = _sellable(productId, broker, use, version);
        if (sale.kind != IDataProducts.Kind.Api) revert WrongProductKind(productId, uint8(sale.kind));
        uint256 paid = MarketMath.total(sale.price, calls);
        orderId =
            _record(productId, broker, calls, paid, NO_END, use, MarketMath.tierOf(sale.requiredPermissions), false);
        _collect(orderId, productId, sale, broker, paid);
    }

    function _purchaseDataset(ProductId productId, bytes32 specHash, address broker, uint8 use, uint64 version)
        private
        returns (uint256 orderId)
    {
        IDataProducts.Sale memory sale = _sellable(productId, broker, use, version);
        if (sale.kind != IDataProducts.Kind.Dataset) revert WrongProductKind(productId, uint8(sale.kind));
        orderId =
            _record(productId, broker, 1, sale.price, NO_END, use, MarketMath.tierOf(sale.requiredPermissions), false);
        _specs[orderId] = specHash;
        emit DatasetOrdered(orderId, specHash);
        _collect(orderId, productId, sale, broker, sale.price);
    }

    /// @dev The product, its operator, the broker and the declared use all allow this sale, and
    ///      its terms are still the version the buyer was quoted (unless it quoted ANY_VERSION).
    ///      The one gate every purchase path passes, so the buyer-is-not-its-broker rule is here.
    function _sellable(ProductId productId, address broker, uint8 use, uint64 version)
        private
        view
        returns (IDataProducts.Sale memory sale)
    {
        if (broker == msg.sender) revert BuyerIsBroker(msg.sender);
        sale = dataProducts.saleTerms(productId);
        if (version != ANY_VERSION && version != sale.version) {
            revert TermsVersionMoved(productId, version, sale.version);
        }
        if (!sale.active) revert ProductInactive(productId);
        if (ProductId.unwrap(sale.inactiveComponent) != 0) revert ComponentInactive(productId, sale.inactiveComponent);
        if (!staking.isActive(sale.operator, IStaking.Role.Operator)) {
            revert OperatorInactive(productId, sale.operator);
        }
        if (broker != address(0) && !staking.isActive(broker, IStaking.Role.Broker)) revert BrokerNotActive(broker);
        // permittedUses only holds bits 0..5 (DataProducts validates it), so this also refuses use > 5.
        if ((sale.permittedUses >> use) & 1 == 0) revert UseNotPermitted(productId, use, sale.permittedUses);
    }

    function _record(
        ProductId productId,
        address broker,
        uint256 quantity,
        uint256 paid,
        uint64 endsAt,
        uint8 use,
        uint8 tier,
        bool subscription
    ) private returns (uint256 orderId) {
        if (paid > type(uint128).max) revert PaymentTooLarge(paid);
        orderId = ++_orderCount;
        uint64 startsAt = uint64(block.timestamp);
        _orders[orderId] = Order({
            productId: productId,
            buyer: msg.sender,
            startsAt: startsAt,
            use: use,
            tier: tier,
            inForce: subscription,
            broker: broker,
            endsAt: endsAt,
            quantity: uint128(quantity), // quantity ≤ paid (price ≥ 1) < 2^128
            paid: uint128(paid)
        });
        emit OrderPlaced(orderId, productId, msg.sender, broker, quantity, paid, endsAt, use);
    }

    /// @dev Splits the payment, syncs the buyer's usage, checks the buyer can carry it, then
    ///      takes the money: the Treasury's part straight to the Treasury, the rest here.
    function _collect(
        uint256 orderId,
        ProductId productId,
        IDataProducts.Sale memory sale,
        address broker,
        uint256 paid
    ) private {
        MarketMath.Shares memory s = MarketMath.split(paid, sale.operatorBps, sale.brokerBps, sale.protocolFeeBps);
        uint256 toTreasury = s.protocol;
        uint256 toBroker;
        if (broker == address(0) || _stewards[broker]) {
            toTreasury += s.broker;
        } else {
            toBroker = s.broker;
            if (toBroker != 0) _earnings[broker] += toBroker;
        }
        if (s.operator != 0) _earnings[sale.operator] += s.operator;
        _pools[productId] += s.members;
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

    /// @dev Where an epoch's record and bitmap live: keccak256(abi.encode(root, productId, epoch)).
    function _epochKey(bytes32 root, ProductId productId, uint64 epoch) private pure returns (bytes32 key) {
        assembly ("memory-safe") {
            let ptr := mload(0x40)
            mstore(ptr, root)
            mstore(add(ptr, 0x20), productId)
            mstore(add(ptr, 0x40), and(epoch, 0xffffffffffffffff))
            key := keccak256(ptr, 0x60)
        }
    }

    function _syncUsage(address buyer) private {
        (uint256 units, uint8 tier) = usageOf(buyer);
        staking.setUsage(buyer, units, tier);
    }
}
