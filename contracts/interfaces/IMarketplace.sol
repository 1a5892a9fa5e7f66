// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {ProductId} from "../types/ProductId.sol";

/// @title IMarketplace
/// @notice Sales of data products, the revenue split at purchase, and member-pool settlement
///         by epoch Merkle roots. DESIGN.md §3.6.
interface IMarketplace {
    event OrderPlaced(
        uint256 indexed orderId,
        ProductId indexed productId,
        address indexed buyer,
        address broker,
        uint256 quantity,
        uint256 paid,
        uint64 endsAt,
        uint8 use
    );
    event StewardSet(address indexed broker, bool steward);
    event Settled(ProductId indexed productId, uint64 indexed epoch, uint256 amount, bytes32 membersRoot);
    event Claimed(ProductId indexed productId, uint64 indexed epoch, address indexed account, uint256 amount);
    event EarningsWithdrawn(address indexed account, uint256 amount);
    /// @notice How order `orderId`'s payment was divided (extension). `toTreasury` is the
    ///         protocol fee plus the broker share when there is no broker or it is a steward.
    event PaymentSplit(
        uint256 indexed orderId, uint256 toMembers, uint256 toOperator, uint256 toBroker, uint256 toTreasury
    );
    /// @notice Dataset order `orderId` asked for the build `specHash` (extension).
    event DatasetOrdered(uint256 indexed orderId, bytes32 specHash);
    /// @notice Subscription `orderId` ended; its `units` vehicle-subscriptions left `buyer`'s usage.
    event OrderExpired(uint256 indexed orderId, address indexed buyer, uint256 units);

    /// @notice A constructor argument was the zero address.
    error ZeroAddress();
    /// @notice `buyer` is active as neither Consumer nor Broker (after its usage of this order).
    error BuyerNotActive(address buyer);
    /// @notice `broker` is not an active Broker.
    error BrokerNotActive(address broker);
    /// @notice `productId` is not active.
    error ProductInactive(ProductId productId);
    /// @notice Component `componentId` of bundle `productId` is not active.
    error ComponentInactive(ProductId productId, ProductId componentId);
    /// @notice The operator `operator` of `productId` is not an active Operator.
    error OperatorInactive(ProductId productId, address operator);
    /// @notice `use` is not a use `productId` permits (`permittedUses` its bit mask).
    error UseNotPermitted(ProductId productId, uint8 use, uint256 permittedUses);
    /// @notice This call does not sell products of `productId`'s kind (`kind` as IDataProducts.Kind).
    error WrongProductKind(ProductId productId, uint8 kind);
    /// @notice An order of zero vehicles, months or calls.
    error ZeroQuantity();
    /// @notice The payment `paid` does not fit the order record (above 2^128 - 1).
    error PaymentTooLarge(uint256 paid);
    /// @notice No order has id `orderId`.
    error UnknownOrder(uint256 orderId);
    /// @notice Order `orderId` is not a subscription in force (already expired, or credits or a dataset).
    error NotInForce(uint256 orderId);
    /// @notice Order `orderId` runs until `endsAt`.
    error OrderNotEnded(uint256 orderId, uint64 endsAt);
    /// @notice `epoch` must be above `lastEpoch`, the last one settled for `productId`.
    error EpochNotIncreasing(ProductId productId, uint64 epoch, uint64 lastEpoch);
    /// @notice Settling `amount` from `productId`'s pool, which holds only `pool`.
    error AmountExceedsPool(ProductId productId, uint256 amount, uint256 pool);
    /// @notice A settlement of zero, or with an empty root.
    error EmptySettlement(uint256 amount, bytes32 membersRoot);
    /// @notice `epoch` of `productId` was never settled.
    error UnknownEpoch(ProductId productId, uint64 epoch);
    /// @notice Leaf `index` of the epoch was already paid.
    error AlreadyClaimed(ProductId productId, uint64 epoch, uint256 index);
    /// @notice The proof does not place `(index, account, amount)` under the epoch's root.
    error InvalidProof(ProductId productId, uint64 epoch, uint256 index);
    /// @notice Paying `amount` would take the epoch past its settled amount (`remaining` left).
    error EpochOverdrawn(ProductId productId, uint64 epoch, uint256 amount, uint256 remaining);
    /// @notice The buyer quoted terms version `quoted` of `productId`, which is now at `current`.
    error TermsVersionMoved(ProductId productId, uint64 quoted, uint64 current);
    /// @notice `epoch` is above the current time `nowTime`: epochs are numbered by time
    ///         (the workers use floor(timestamp / EPOCH_SECONDS)), so none can be in the future.
    error EpochInFuture(ProductId productId, uint64 epoch, uint256 nowTime);
    /// @notice A leaf may not pay `account` (the zero address, or the Marketplace itself).
    error InvalidClaimant(address account);
    /// @notice The caller has no earnings to withdraw.
    error NothingToWithdraw(address account);
    /// @notice `buyer` named itself as the broker: a buyer cannot earn a broker share on its
    ///         own purchase.
    error BuyerIsBroker(address buyer);

    /// @notice Buys `vehicles` × `months` of a Stream or Bundle product at its price per
    ///         vehicle-month, for the declared `use`. Runs from now for `months` × 30 days.
    /// @param broker the Data Broker who brokered the sale (an active Broker), or zero
    /// @return orderId the new order
    function subscribe(ProductId productId, uint32 vehicles, uint32 months, address broker, uint8 use)
        external
        returns (uint256 orderId);

    /// @notice Buys `calls` API credits of an Api product at its price per call. The gateway
    ///         counts calls against the order's quantity; credits do not expire.
    function buyCredits(ProductId productId, uint256 calls, address broker, uint8 use)
        external
        returns (uint256 orderId);

    /// @notice Buys one build of a Dataset product, described by `specHash`, at its price.
    function purchaseDataset(ProductId productId, bytes32 specHash, address broker, uint8 use)
        external
        returns (uint256 orderId);

    /// @notice An order as the gateway needs it. `quantity`: vehicles (Stream, Bundle), calls
    ///         (Api) or 1 (Dataset). `endsAt` is `type(uint64).max` for credits and datasets.
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
        );

    /// @notice Marks `broker` as a DAO steward (its commission then goes to the Treasury). GOVERNOR.
    function setSteward(address broker, bool steward) external;

    /// @notice Moves `amount` of `productId`'s member pool into epoch `epoch`, payable to the
    ///         leaves of `membersRoot`. SETTLER_ROLE. Epochs strictly increase per product and
    ///         are never above the current timestamp (they number time); O(1).
    function settle(ProductId productId, uint64 epoch, uint256 amount, bytes32 membersRoot) external;

    /// @notice Pays the `(index, account, amount)` leaf of an epoch to `account`, once. Anyone
    ///         may submit it. Leaves use the OpenZeppelin StandardMerkleTree encoding; a leaf
    ///         paying the zero address or the Marketplace is refused.
    function claim(
        ProductId productId,
        uint64 epoch,
        uint256 index,
        address account,
        uint256 amount,
        bytes32[] calldata proof
    ) external;

    /// @notice An operator's or broker's earnings not yet withdrawn.
    function claimable(address account) external view returns (uint256);

    /// @notice Sends the caller all its earnings.
    function withdrawEarnings() external;

    /// @notice What `productId` has in its member pool, not yet settled into an epoch.
    function memberPool(ProductId productId) external view returns (uint256);

    // ------------------------------------------------------------------ extensions

    /// @notice `subscribe` bound to the terms version the buyer was quoted: refused with
    ///         `TermsVersionMoved` if the product's terms changed since (price, split or fee), so
    ///         an operator cannot reprice a purchase in flight.
    function subscribe(ProductId productId, uint32 vehicles, uint32 months, address broker, uint8 use, uint64 version)
        external
        returns (uint256 orderId);

    /// @notice `buyCredits` bound to the quoted terms `version` (see the `subscribe` overload).
    function buyCredits(ProductId productId, uint256 calls, address broker, uint8 use, uint64 version)
        external
        returns (uint256 orderId);

    /// @notice `purchaseDataset` bound to the quoted terms `version` (see the `subscribe` overload).
    function purchaseDataset(ProductId productId, bytes32 specHash, address broker, uint8 use, uint64 version)
        external
        returns (uint256 orderId);

    /// @notice Ends subscription `orderId` once its time is over: its vehicles leave the
    ///         buyer's usage, which is synced to Staking. Anyone (the workers' sweep).
    function expireOrder(uint256 orderId) external;

    /// @notice The build spec a dataset order asked for (zero for other orders).
    function datasetSpec(uint256 orderId) external view returns (bytes32);

    /// @notice Whether order `orderId`'s vehicles still count in its buyer's usage.
    function inForce(uint256 orderId) external view returns (bool);

    /// @notice The buyer's vehicle-subscriptions in force and the most sensitive tier they reach,
    ///         as last synced to Staking.
    function usageOf(address buyer) external view returns (uint256 units, uint8 tier);

    /// @notice Whether `broker` is a DAO steward.
    function isSteward(address broker) external view returns (bool);

    /// @notice The last epoch settled for `productId` (0: none).
    function lastEpoch(ProductId productId) external view returns (uint64);

    /// @notice A settled epoch's root, amount and what its claims paid so far.
    function epochOf(ProductId productId, uint64 epoch)
        external
        view
        returns (bytes32 membersRoot, uint256 amount, uint256 claimed);

    /// @notice Whether leaf `index` of the epoch was paid.
    function isClaimed(ProductId productId, uint64 epoch, uint256 index) external view returns (bool);

    /// @notice How many orders exist; ids run 1..orderCount().
    function orderCount() external view returns (uint256);
}
