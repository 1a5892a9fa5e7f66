// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {ProductId} from "../types/ProductId.sol";
import {IUnorderedNonces} from "./IUnorderedNonces.sol";

/// @title IDataProducts
/// @notice Data unions: operators publish products with terms, vehicle owners consent per
///         product version, bundles package products under one consent. DESIGN.md §3.5.
interface IDataProducts is IUnorderedNonces {
    enum Kind {
        Stream,
        Api,
        Dataset,
        Bundle
    }

    /// @notice A product's terms. `price` is per vehicle-month (Stream, Bundle), per call (Api)
    ///         or per dataset (Dataset); the bps shares and the protocol fee sum to 10,000.
    ///         `validitySeconds`: how long bought API credits stay valid (Api: 1 to 730 days;
    ///         0 for every other kind).
    struct Terms {
        Kind kind;
        uint256 price;
        uint16 membersBps;
        uint16 operatorBps;
        uint16 brokerBps;
        uint256 permittedUses;
        uint256 requiredPermissions;
        uint32 refreshSeconds;
        uint32 minCohort;
        bytes32 termsHash;
        string termsURI;
        uint32 validitySeconds;
    }

    /// @notice What the Marketplace needs to sell a product, read in one call (extension).
    /// @param operator the product's operator
    /// @param active the product's own active flag
    /// @param inactiveComponent for a bundle, the first component that is not active (0: none)
    /// @param kind the product's kind
    /// @param price the unit price (see `Terms.price`)
    /// @param operatorBps the operator's share
    /// @param brokerBps the broker's share
    /// @param protocolFeeBps the protocol fee this version of the terms was agreed under
    /// @param permittedUses the uses buyers may declare (bits 0..5)
    /// @param requiredPermissions the permission bits the product exposes
    /// @param version the terms version these are
    /// @param validitySeconds how long bought API credits stay valid (0 for other kinds)
    struct Sale {
        address operator;
        bool active;
        ProductId inactiveComponent;
        Kind kind;
        uint256 price;
        uint16 operatorBps;
        uint16 brokerBps;
        uint16 protocolFeeBps;
        uint256 permittedUses;
        uint256 requiredPermissions;
        uint64 version;
        uint32 validitySeconds;
    }

    event ProductCreated(ProductId indexed productId, address indexed operator, Kind kind);
    event TermsUpdated(ProductId indexed productId, uint64 version);
    event ProductActive(ProductId indexed productId, bool active);
    event Joined(ProductId indexed productId, uint256 indexed vehicleId, address owner, uint64 version);
    event Left(ProductId indexed productId, uint256 indexed vehicleId);
    event BundleCreated(ProductId indexed bundleId, ProductId[] components);
    event DemandSignaled(uint256 indexed signalId, address indexed account, bytes32 specHash, string uri, uint256 budget);
    event DemandWithdrawn(uint256 indexed signalId);
    event ProtocolFeeSet(uint16 bps);
    /// @notice A GOVERNOR deactivated `productId` (`held`: only a GOVERNOR may reactivate it) or
    ///         lifted that hold by reactivating it (extension).
    event GovernorHold(ProductId indexed productId, bool held);

    /// @notice A constructor argument was the zero address.
    error ZeroAddress();
    /// @notice `account` is not an active Operator on Staking.
    error NotActiveOperator(address account);
    /// @notice `account` is active on Staking as none of Operator, Broker or Consumer.
    error NotActiveParticipant(address account);
    /// @notice No product has id `productId`.
    error UnknownProduct(ProductId productId);
    /// @notice `account` is not the operator of `productId` (nor, where allowed, a governor).
    error NotProductOperator(ProductId productId, address account);
    /// @notice The shares and the protocol fee do not sum to 10,000 bps.
    error BpsSumMismatch(uint16 membersBps, uint16 operatorBps, uint16 brokerBps, uint16 protocolFeeBps);
    /// @notice `requiredPermissions` holds bits `unknownBits` that no permission defines.
    error UnknownPermissionBits(uint256 requiredPermissions, uint256 unknownBits);
    /// @notice `permittedUses` is zero or holds bits above 5.
    error InvalidPermittedUses(uint256 permittedUses);
    /// @notice The price is zero.
    error ZeroPrice();
    /// @notice A dataset (or a bundle of datasets) needs `required` or more as its minimum cohort.
    error CohortTooSmall(uint32 minCohort, uint32 required);
    /// @notice The terms' kind is `kind`, which this call does not accept (`expected` it does).
    error WrongKind(Kind kind, Kind expected);
    /// @notice Terms may not change a product's kind from `current` to `requested`.
    error KindChange(ProductId productId, Kind current, Kind requested);
    /// @notice A bundle needs between 1 and `max` components; it was given `count`.
    error BadComponentCount(uint256 count, uint256 max);
    /// @notice `components` and `monthlyQuantities` differ in length.
    error LengthMismatch(uint256 components, uint256 monthlyQuantities);
    /// @notice Component `componentId` is not a product of the bundle's operator `operator`.
    error ComponentNotOwned(ProductId componentId, address operator);
    /// @notice Component `componentId` is not active.
    error ComponentInactive(ProductId componentId);
    /// @notice Component `componentId` is itself a bundle.
    error ComponentIsBundle(ProductId componentId);
    /// @notice Component `componentId` appears twice.
    error DuplicateComponent(ProductId componentId);
    /// @notice `quantity` is not a valid monthly quantity for component `componentId` (an Api
    ///         component needs calls > 0; Stream and Dataset components take 0).
    error BadMonthlyQuantity(ProductId componentId, uint256 quantity);
    /// @notice The bundle's required permissions lack `missingBits` that component `componentId` needs.
    error BundlePermissionsMissing(ProductId componentId, uint256 missingBits);
    /// @notice `productId` is not active.
    error ProductInactive(ProductId productId);
    /// @notice The operator `operator` of `productId` is not an active Operator.
    error OperatorInactive(ProductId productId, address operator);
    /// @notice `account` does not own vehicle `vehicleId`.
    error NotVehicleOwner(uint256 vehicleId, address account);
    /// @notice Vehicle `vehicleId` already consented to the current version of `productId`.
    error AlreadyMember(ProductId productId, uint256 vehicleId);
    /// @notice Vehicle `vehicleId` holds no consent record for `productId`.
    error NoConsent(ProductId productId, uint256 vehicleId);
    /// @notice The signed version `signed` is not the current version `current` of `productId`.
    error VersionMismatch(ProductId productId, uint64 signed, uint64 current);
    /// @notice The signature's deadline `deadline` has passed.
    error SignatureExpired(uint256 deadline);
    /// @notice The signature is not `signer`'s over this `Join` (with the vehicle's current generation).
    error InvalidSignature(address signer);
    /// @notice A GOVERNOR deactivated `productId`; only a GOVERNOR may reactivate it.
    error ProductHeldByGovernor(ProductId productId);
    /// @notice The protocol fee `bps` is above `max` (DataProducts.MAX_PROTOCOL_FEE_BPS).
    error FeeTooHigh(uint16 bps, uint16 max);
    /// @notice No demand signal has id `signalId`, or it was already withdrawn.
    error DemandNotOpen(uint256 signalId);
    /// @notice `account` did not author demand signal `signalId`.
    error NotDemandAuthor(uint256 signalId, address account);
    /// @notice The credit validity `given` is outside [`min`, `max`] for the terms' kind (an Api
    ///         product: MIN_CREDIT_VALIDITY..MAX_CREDIT_VALIDITY; any other: exactly 0).
    error CreditValidityOutOfRange(uint32 given, uint32 min, uint32 max);

    /// @notice Publishes a Stream, Api or Dataset product with `terms`, version 1, active.
    ///         The caller must be an active Operator.
    /// @param terms validated: shares + protocol fee = 10,000 bps, price > 0, permitted uses
    ///        non-zero within bits 0..5, known permission bits only, minCohort ≥ 1 for datasets,
    ///        validitySeconds within 1..730 days for Api and 0 otherwise
    /// @return productId the new product's id (from 1)
    function createProduct(Terms calldata terms) external returns (ProductId productId);

    /// @notice Publishes a bundle: a subscription package of the caller's own active Stream,
    ///         Api and Dataset products under one consent, one price and its own split.
    /// @dev At most `MAX_BUNDLE_COMPONENTS` components, no duplicates; `monthlyQuantities[i]` is
    ///      the calls per month of an Api component (> 0) and 0 for the others. The bundle's
    ///      required permissions must cover each component's, and its minCohort each dataset
    ///      component's, so that one consent covers everything the package serves.
    /// @param terms the bundle's terms, `kind` = Bundle, price per vehicle-month
    /// @param components the component product ids
    /// @param monthlyQuantities per component: Api calls a month, else 0
    /// @return productId the bundle's product id
    function createBundle(Terms calldata terms, ProductId[] calldata components, uint256[] calldata monthlyQuantities)
        external
        returns (ProductId productId);

    /// @notice A bundle's components and their monthly quantities (empty for other products).
    function components(ProductId bundleId)
        external
        view
        returns (ProductId[] memory productIds, uint256[] memory monthlyQuantities);

    /// @notice Publishes a request for data. The caller must be an active Operator, Broker or Consumer.
    /// @param specHash hash of the request's specification
    /// @param uri where the specification is published
    /// @param budget what the author offers to pay, in DIMO base units
    /// @return signalId the signal's id (from 1)
    function signalDemand(bytes32 specHash, string calldata uri, uint256 budget) external returns (uint256 signalId);

    /// @notice Withdraws an open demand signal. Its author only.
    function withdrawDemand(uint256 signalId) external;

    /// @notice Replaces a product's terms and bumps its version: every member must consent
    ///         again, and `memberCount` starts from 0. The operator only; the kind cannot change.
    ///         The terms are validated as at creation, against the current protocol fee.
    function updateTerms(ProductId productId, Terms calldata terms) external;

    /// @notice Activates or deactivates a product. Its operator or a GOVERNOR. A product a
    ///         GOVERNOR deactivated stays held: only a GOVERNOR may reactivate it.
    function setActive(ProductId productId, bool active) external;

    /// @notice A product's operator, current version, active flag and terms. Reverts for an unknown id.
    function product(ProductId productId)
        external
        view
        returns (address operator, uint64 version, bool active, Terms memory terms);

    /// @notice The caller, owner of `vehicleId`, consents to the current version of `productId`.
    ///         Only while the product is active and its operator an active Operator.
    function join(ProductId productId, uint256 vehicleId) external;

    /// @notice `join` on the vehicle owner's EIP-712 `Join(productId, vehicleId, generation,
    ///         version, nonce, deadline)` signature (EOA or ERC-1271); anyone may relay it. Refused
    ///         when `version` is no longer the product's current version, after `deadline`, when
    ///         the vehicle changed hands since it was signed (`generation` is the vehicle's current
    ///         one), or when the owner's unordered `nonce` was used or cancelled
    ///         (`invalidateNonces`). Consumes the nonce.
    function joinBySig(
        ProductId productId,
        uint256 vehicleId,
        uint64 version,
        uint256 nonce,
        uint256 deadline,
        bytes calldata ownerSig
    ) external;

    /// @notice Removes the vehicle's consent record. The vehicle's owner; anyone once the record
    ///         belongs to an earlier generation (the vehicle was transferred since it joined).
    function leave(ProductId productId, uint256 vehicleId) external;

    /// @notice Whether the vehicle consented to the product's current version in its current
    ///         generation. O(1): a transfer or a version bump voids memberships without a write.
    function isMember(ProductId productId, uint256 vehicleId) external view returns (bool);

    /// @notice Consent records for the product's current version. A record voided by a
    ///         transfer still counts until someone calls `leave` for it; indexers keep the
    ///         exact live count from the events.
    function memberCount(ProductId productId) external view returns (uint256);

    /// @notice The protocol fee new terms are validated against (default 500 bps).
    function protocolFeeBps() external view returns (uint16);

    /// @notice Sets the protocol fee for terms created or updated from now on, at most
    ///         MAX_PROTOCOL_FEE_BPS (20 %). GOVERNOR.
    ///         Existing terms keep the fee they were agreed under until their next update, and
    ///         the change bumps no product version: members' consents are not voided by it.
    function setProtocolFeeBps(uint16 bps) external;

    // ------------------------------------------------------------------ extensions

    /// @notice Everything a sale needs, in one call. Reverts for an unknown id.
    function saleTerms(ProductId productId) external view returns (Sale memory);

    /// @notice The protocol fee a product's current terms were agreed under.
    function productFeeBps(ProductId productId) external view returns (uint16);

    /// @notice The vehicle's stored consent: the product version and vehicle generation it was
    ///         given for (version 0: none).
    function consentOf(ProductId productId, uint256 vehicleId) external view returns (uint64 version, uint64 generation);

    /// @notice A demand signal's author, spec hash, budget and whether it is still open.
    function demand(uint256 signalId)
        external
        view
        returns (address account, bytes32 specHash, uint256 budget, bool open);

    /// @notice Whether a GOVERNOR's deactivation holds `productId` (its operator cannot reactivate it).
    function heldByGovernor(ProductId productId) external view returns (bool);

    /// @notice How many products (bundles included) exist; ids run 1..productCount().
    function productCount() external view returns (uint256);
}
