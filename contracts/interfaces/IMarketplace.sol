// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {ProductId} from "../types/ProductId.sol";

/// @title IMarketplace
/// @notice Sales of data products, the revenue split at purchase, the linear vesting of each
///         order's member share, one cumulative Merkle root over every product that members
///         claim from, and buyer refunds. DESIGN.md §3.6.
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
    event EarningsWithdrawn(address indexed account, uint256 amount);
    /// @notice How order `orderId`'s payment was divided (extension). `toTreasury` is the
    ///         protocol fee plus the broker share when there is no broker or it is a steward.
    event PaymentSplit(
        uint256 indexed orderId, uint256 toMembers, uint256 toOperator, uint256 toBroker, uint256 toTreasury
    );
    /// @notice Dataset order `orderId` asked for the build `specHash` (extension).
    event DatasetOrdered(uint256 indexed orderId, bytes32 specHash);
    /// @notice Order `orderId` ended (its time ran out, or it was refunded); its `units` left
    ///         `buyer`'s usage.
    event OrderExpired(uint256 indexed orderId, address indexed buyer, uint256 units);
    /// @notice Order `orderId`'s `memberShare` vests linearly from `vestStartsAt` to `vestEndsAt`.
    ///         Emitted at purchase (a dataset: 0, 0, nothing vests yet) and at a dataset's
    ///         delivery (t, t: all of it vests then).
    event OrderVesting(uint256 indexed orderId, uint256 memberShare, uint64 vestStartsAt, uint64 vestEndsAt);
    /// @notice Dataset order `orderId` was delivered as the build `resultHash`.
    event DatasetDelivered(uint256 indexed orderId, bytes32 resultHash);
    /// @notice `buyer` took back `amount`, the member share of order `orderId`'s unserved term.
    event Refunded(uint256 indexed orderId, address indexed buyer, uint256 amount);
    /// @notice Anyone advanced `productId`'s vesting to `checkpointedTo`.
    event Checkpointed(ProductId indexed productId, uint64 checkpointedTo, uint256 vestedScaled);
    /// @notice A root is pending until `claimableAt`; once accepted it takes `cumulativeTaken[i]`
    ///         in total from product `productIds[i]`. `dataHash`: the hash of the file of every
    ///         leaf, for anyone to rebuild the tree.
    event RootProposed(
        bytes32 indexed root, uint64 claimableAt, ProductId[] productIds, uint256[] cumulativeTaken, bytes32 dataHash
    );
    /// @notice The pending `root` became the claimable root; the roots have taken `totalTaken` in all.
    event RootAccepted(bytes32 indexed root, uint256 totalTaken);
    /// @notice The pending `root` was revoked by `by` (a governor or a guardian).
    event RootRevoked(bytes32 indexed root, address indexed by);
    /// @notice Roots proposed from now on are pending for `delay` seconds.
    event RootDelaySet(uint64 delay);
    /// @notice `account` received `amount`, raising what it claimed in all to `cumulative`.
    event Claimed(address indexed account, uint256 cumulative, uint256 amount);

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
    /// @notice The order costs `paid`, above the `maxPayment` the buyer accepted.
    error PaymentAboveMax(uint256 paid, uint256 maxPayment);
    /// @notice No order has id `orderId`.
    error UnknownOrder(uint256 orderId);
    /// @notice Order `orderId` no longer counts in its buyer's usage (expired or refunded).
    error NotInForce(uint256 orderId);
    /// @notice Order `orderId` runs until `endsAt`.
    error OrderNotEnded(uint256 orderId, uint64 endsAt);
    /// @notice The buyer quoted terms version `quoted` of `productId`, which is now at `current`.
    error TermsVersionMoved(ProductId productId, uint64 quoted, uint64 current);
    /// @notice A leaf may not pay `account` (the zero address, or the Marketplace itself).
    error InvalidClaimant(address account);
    /// @notice The caller has no earnings to withdraw.
    error NothingToWithdraw(address account);
    /// @notice `buyer` named itself as the broker: a buyer cannot earn a broker share on its
    ///         own purchase.
    error BuyerIsBroker(address buyer);
    /// @notice `productId`'s vesting was last checkpointed at `lastCheckpoint`, more than
    ///         MAX_CHECKPOINT_DAYS of live vesting ago: call `checkpoint(productId)` first.
    error CheckpointBehind(ProductId productId, uint64 lastCheckpoint);
    /// @notice Order `orderId` is not a dataset order.
    error NotDatasetOrder(uint256 orderId);
    /// @notice Dataset order `orderId` was already delivered.
    error AlreadyDelivered(uint256 orderId);
    /// @notice Dataset order `orderId` can no longer be delivered: its delivery window closed at
    ///         `closesAt` (the buyer may refund it instead; a late delivery cannot race the refund).
    error DeliveryWindowClosed(uint256 orderId, uint64 closesAt);
    /// @notice Order `orderId` was already refunded.
    error AlreadyRefunded(uint256 orderId);
    /// @notice `caller` is not the buyer of order `orderId`.
    error NotBuyer(uint256 orderId, address caller);
    /// @notice Order `orderId` meets none of the refund conditions (product inactive or held,
    ///         terms moved, operator slashed since the order started, dataset undelivered in time).
    error NotRefundable(uint256 orderId);
    /// @notice Order `orderId` has nothing unvested left to refund.
    error NothingToRefund(uint256 orderId);
    /// @notice `productIds` has `products` entries but `cumulativeTaken` has `takes`.
    error LengthMismatch(uint256 products, uint256 takes);
    /// @notice Product ids must strictly increase: `productId` came after `previous`.
    error ProductsNotSorted(ProductId previous, ProductId productId);
    /// @notice A root may not take `cumulative` in total from `productId`, below the `taken` so far.
    error TakeBelowTaken(ProductId productId, uint256 cumulative, uint256 taken);
    /// @notice A root may not take `cumulative` in total from `productId`, above its `vested`.
    error TakeAboveVested(ProductId productId, uint256 cumulative, uint256 vested);
    /// @notice The proposed root is zero.
    error EmptyRoot();
    /// @notice The products and takes do not hash to the pending root's.
    error TakesMismatch();
    /// @notice No root is pending.
    error NoPendingRoot();
    /// @notice The pending root becomes claimable at `claimableAt`.
    error RootNotYetClaimable(uint64 claimableAt);
    /// @notice The root delay `delay` is outside [`min`, `max`].
    error RootDelayOutOfRange(uint64 delay, uint64 min, uint64 max);
    /// @notice No root was accepted yet.
    error NoRoot();
    /// @notice The proof does not place the leaf `(account, cumulative)` under the root.
    error InvalidProof(address account, uint256 cumulative);
    /// @notice `account` already claimed `claimed`, at least the leaf's `cumulative`.
    error NothingToClaim(address account, uint256 cumulative, uint256 claimed);
    /// @notice Paying would raise the claims to `totalClaimed`, above the `totalTaken` by the roots.
    error ClaimsExceedTaken(uint256 totalClaimed, uint256 totalTaken);

    // ------------------------------------------------------------------ purchases

    /// @notice Buys `vehicles` × `months` of a Stream or Bundle product at its price per
    ///         vehicle-month, for the declared `use`. Runs from now for `months` × 30 days; its
    ///         `vehicles` count in the buyer's usage until it ends. Every purchase is refused
    ///         while the guardian's pause holds (`GuardianPauseActive`).
    /// @param broker the Data Broker who brokered the sale (an active Broker other than the
    ///        buyer), or zero
    /// @param version the terms version the buyer was quoted (`TermsVersionMoved` otherwise)
    /// @param maxPayment the most the buyer pays (`PaymentAboveMax` otherwise)
    /// @return orderId the new order
    function subscribe(
        ProductId productId,
        uint32 vehicles,
        uint32 months,
        address broker,
        uint8 use,
        uint64 version,
        uint256 maxPayment
    ) external returns (uint256 orderId);

    /// @notice Buys `calls` API credits of an Api product at its price per call. The credits
    ///         are valid for the terms' `validitySeconds` and count ceil(calls / 1,000) units in
    ///         the buyer's usage until then. `broker`, `version`, `maxPayment`: see `subscribe`.
    function buyCredits(
        ProductId productId,
        uint256 calls,
        address broker,
        uint8 use,
        uint64 version,
        uint256 maxPayment
    ) external returns (uint256 orderId);

    /// @notice Buys one build of a Dataset product, described by `specHash`, at its price. The
    ///         order runs 30 days and counts one unit in the buyer's usage; its member share
    ///         vests when the settler delivers it. `broker`, `version`, `maxPayment`: see `subscribe`.
    function purchaseDataset(
        ProductId productId,
        bytes32 specHash,
        address broker,
        uint8 use,
        uint64 version,
        uint256 maxPayment
    ) external returns (uint256 orderId);

    /// @notice An order as the gateway needs it. `quantity`: vehicles (Stream, Bundle), calls
    ///         (Api) or 1 (Dataset). `endsAt`: when access ends (a refund ends it at once).
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

    /// @notice Ends order `orderId` once its time is over: its units leave the buyer's usage,
    ///         which is synced to Staking. Any kind; anyone (the workers' sweep).
    function expireOrder(uint256 orderId) external;

    // ------------------------------------------------------------------ vesting

    /// @notice What product `productId`'s orders have released to its members so far, in wei
    ///         (rounded down). No root can take more than this from the product.
    function vestedMemberAmount(ProductId productId) external view returns (uint256);

    /// @notice What the accepted roots took from product `productId`, cumulatively.
    function takenMemberAmount(ProductId productId) external view returns (uint256);

    /// @notice Order `orderId`'s member share, its vesting window, when it was refunded (0:
    ///         not) and the terms version it was bought under. A dataset not yet delivered has
    ///         an empty window (0, 0).
    function orderVesting(uint256 orderId)
        external
        view
        returns (uint256 memberShare, uint64 vestStartsAt, uint64 vestEndsAt, uint64 refundedAt, uint64 version);

    /// @notice Advances `productId`'s vesting record by at most MAX_CHECKPOINT_DAYS days of live
    ///         vesting. Anyone; needed only for a product idle that long.
    function checkpoint(ProductId productId) external;

    /// @notice Dataset order `orderId` was delivered as `resultHash`: its whole member share
    ///         vests now. SETTLER_ROLE; once, while the order is not refunded and within
    ///         DATASET_DELIVERY_WINDOW of its purchase (`DeliveryWindowClosed` after).
    function deliverDataset(uint256 orderId, bytes32 resultHash) external;

    /// @notice The buyer of order `orderId` takes back the member share of the unserved part of
    ///         the order's term (rounded down; nothing once the term ended, even while vesting
    ///         runs on to the day boundary; an undelivered dataset's whole share) when the product (or a bundle's component) is inactive, its terms version is no
    ///         longer the order's, its operator was slashed after the order started, or a
    ///         dataset was not delivered within DATASET_DELIVERY_WINDOW. Once; the order ends.
    function refund(uint256 orderId) external;

    // ------------------------------------------------------------------ the cumulative root

    /// @notice Proposes `root`, over leaves (account, cumulative amount owed), pending for the
    ///         root delay. `cumulativeTaken[i]` is what all roots up to this one take in total
    ///         from product `productIds[i]` (ids strictly increasing; products not listed keep
    ///         their taken amount), between its taken and its vested amount. Replaces any pending
    ///         root. SETTLER_ROLE; refused while the guardian's pause holds.
    /// @param dataHash the hash of the off-chain file holding every leaf
    function proposeRoot(
        bytes32 root,
        ProductId[] calldata productIds,
        uint256[] calldata cumulativeTaken,
        bytes32 dataHash
    ) external;

    /// @notice Makes the pending root the claimable root once its delay has passed, applying the
    ///         takes it was proposed with (the same arrays). Anyone.
    function acceptRoot(ProductId[] calldata productIds, uint256[] calldata cumulativeTaken) external;

    /// @notice Drops the pending root. GOVERNOR_ROLE or GUARDIAN_ROLE.
    function revokePendingRoot() external;

    /// @notice Sets how long future roots stay pending, within [MIN_ROOT_DELAY, MAX_ROOT_DELAY].
    ///         GOVERNOR_ROLE.
    function setRootDelay(uint64 delay) external;

    /// @notice Pays `account` `cumulative − claimed(account)` on the proof that the leaf
    ///         (account, cumulative) is under the root. Anyone may submit it.
    function claim(address account, uint256 cumulative, bytes32[] calldata proof) external;

    /// @notice What `account` has claimed in all.
    function claimed(address account) external view returns (uint256);

    /// @notice The claimable root (zero before the first is accepted).
    function root() external view returns (bytes32);

    /// @notice The pending root, when it becomes claimable and the hash of its takes.
    function pendingRoot() external view returns (bytes32 root, uint64 claimableAt, bytes32 takesHash);

    /// @notice How long a proposed root stays pending, in seconds.
    function rootDelay() external view returns (uint64);

    /// @notice What the accepted roots took from every product, in all.
    function totalTaken() external view returns (uint256);

    /// @notice What every claim paid, in all.
    function totalClaimed() external view returns (uint256);

    // ------------------------------------------------------------------ earnings and stewards

    /// @notice Marks `broker` as a DAO steward (its commission then goes to the Treasury). GOVERNOR.
    function setSteward(address broker, bool steward) external;

    /// @notice An operator's or broker's earnings not yet withdrawn.
    function claimable(address account) external view returns (uint256);

    /// @notice Sends the caller all its earnings.
    function withdrawEarnings() external;

    /// @notice Whether `broker` is a DAO steward.
    function isSteward(address broker) external view returns (bool);

    // ------------------------------------------------------------------ orders

    /// @notice The build spec a dataset order asked for (zero for other orders).
    function datasetSpec(uint256 orderId) external view returns (bytes32);

    /// @notice Whether order `orderId`'s units still count in its buyer's usage.
    function inForce(uint256 orderId) external view returns (bool);

    /// @notice The buyer's units in force and the most sensitive tier they reach, as last
    ///         synced to Staking.
    function usageOf(address buyer) external view returns (uint256 units, uint8 tier);

    /// @notice How many orders exist; ids run 1..orderCount().
    function orderCount() external view returns (uint256);
}
