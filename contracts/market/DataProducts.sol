// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";
import {SignatureChecker} from "@openzeppelin/contracts/utils/cryptography/SignatureChecker.sol";
import {SafeCast} from "@openzeppelin/contracts/utils/math/SafeCast.sol";
import {IDataProducts} from "../interfaces/IDataProducts.sol";
import {IStaking} from "../interfaces/IStaking.sol";
import {IVehicleId} from "../interfaces/IVehicleId.sol";
import {MarketMath} from "../libraries/MarketMath.sol";
import {Permissions} from "../libraries/Permissions.sol";
import {Roles} from "../libraries/Roles.sol";
import {UnorderedNonces} from "../libraries/UnorderedNonces.sol";
import {ProductId} from "../types/ProductId.sol";
import {DaoAccessControl} from "../governance/DaoAccessControl.sol";

/// @title DataProducts
/// @notice Data unions (DESIGN.md §3.5): operators publish products and bundles with terms,
///         vehicle owners consent per product version, anyone active on Staking signals demand.
/// @dev A consent is stored as (product version, vehicle generation). It is a membership only
///      while both still match, so a vehicle transfer (which bumps the generation on VehicleId)
///      or a terms update (which bumps the version) voids memberships with no loop and no
///      write. Member counts are kept per version, so a version bump starts the count at 0.
contract DataProducts is IDataProducts, DaoAccessControl, EIP712, UnorderedNonces {
    using SafeCast for uint256;

    /// @notice The DAO: sets the protocol fee and may deactivate any product.
    bytes32 public constant GOVERNOR_ROLE = Roles.GOVERNOR_ROLE;

    /// @notice The EIP-712 type every `joinBySig` signature is over (DESIGN.md §3.7): `generation`
    ///         is the vehicle's when signed, so a sale voids every unused `Join`.
    bytes32 public constant JOIN_TYPEHASH = keccak256(
        "Join(uint256 productId,uint256 vehicleId,uint64 generation,uint64 version,uint256 nonce,uint256 deadline)"
    );

    /// @notice The protocol fee at deployment, in bps.
    uint16 public constant DEFAULT_PROTOCOL_FEE_BPS = 500;
    /// @notice The highest protocol fee the DAO may set, in bps (20 %): members, operators and
    ///         brokers always share at least 80 % of every payment.
    uint16 public constant MAX_PROTOCOL_FEE_BPS = 2_000;
    /// @notice The most components a bundle may have (keeps every bundle loop bounded).
    uint256 public constant MAX_BUNDLE_COMPONENTS = 16;
    /// @notice The shortest validity an Api product may give its credits.
    uint32 public constant MIN_CREDIT_VALIDITY = 1 days;
    /// @notice The longest validity an Api product may give its credits.
    uint32 public constant MAX_CREDIT_VALIDITY = 730 days;
    /// @notice Permitted-use bits: 0 insurance, 1 research, 2 fleet management, 3 marketing,
    ///         4 resale, 5 public good.
    uint256 public constant KNOWN_USES = (1 << 6) - 1;
    /// @notice Every permission bit a product may require (DESIGN.md §3.1): the key bits and
    ///         HISTORY.
    uint256 public constant KNOWN_PERMISSIONS = Permissions.TERMS;

    /// @dev A product's terms as stored: five slots plus the URI's.
    struct StoredProduct {
        address operator;
        uint64 version;
        bool active;
        uint16 protocolFeeBps;
        Kind kind;
        uint256 price;
        uint16 membersBps;
        uint16 operatorBps;
        uint16 brokerBps;
        uint8 permittedUses;
        uint64 requiredPermissions;
        uint32 refreshSeconds;
        uint32 minCohort;
        uint32 validitySeconds;
        bool heldByGovernor;
        bytes32 termsHash;
        string termsURI;
    }

    /// @dev One vehicle's consent: the product version and vehicle generation it was given for.
    struct Consent {
        uint64 version;
        uint64 generation;
    }

    /// @dev A bundle's package.
    struct Bundle {
        ProductId[] components;
        uint256[] monthlyQuantities;
    }

    /// @dev A demand signal (its URI lives in the event).
    struct Demand {
        address account;
        bool open;
        bytes32 specHash;
        uint256 budget;
    }

    /// @notice The vehicle NFT whose owners consent and whose generations void consents.
    IVehicleId public immutable vehicleIds;
    /// @notice Where operators, brokers and consumers are whitelisted and staked.
    IStaking public immutable staking;

    /// @inheritdoc IDataProducts
    uint16 public protocolFeeBps;

    uint256 private _productCount;
    uint256 private _signalCount;
    mapping(ProductId productId => StoredProduct) private _products;
    mapping(ProductId bundleId => Bundle) private _bundles;
    mapping(ProductId productId => mapping(uint256 vehicleId => Consent)) private _consents;
    mapping(ProductId productId => mapping(uint64 version => uint256)) private _memberCounts;
    mapping(uint256 signalId => Demand) private _demands;

    /// @param vehicleId_ the VehicleId contract
    /// @param staking_ the Staking contract
    /// @param governor receives DEFAULT_ADMIN_ROLE and GOVERNOR_ROLE (the DAO)
    constructor(address vehicleId_, address staking_, address governor)
        EIP712("DIMO Data Products", "1")
        DaoAccessControl(governor)
    {
        if (vehicleId_ == address(0) || staking_ == address(0) || governor == address(0)) revert ZeroAddress();
        vehicleIds = IVehicleId(vehicleId_);
        staking = IStaking(staking_);
        protocolFeeBps = DEFAULT_PROTOCOL_FEE_BPS;
        emit ProtocolFeeSet(DEFAULT_PROTOCOL_FEE_BPS);
    }

    // ------------------------------------------------------------------ products

    /// @inheritdoc IDataProducts
    function createProduct(Terms calldata terms) external returns (ProductId productId) {
        _requireActiveOperator(msg.sender);
        if (terms.kind == Kind.Bundle) revert WrongKind(Kind.Bundle, Kind.Stream);
        _validateTerms(terms);
        productId = _newProduct(terms);
    }

    /// @inheritdoc IDataProducts
    function createBundle(Terms calldata terms, ProductId[] calldata components_, uint256[] calldata monthlyQuantities)
        external
        returns (ProductId productId)
    {
        _requireActiveOperator(msg.sender);
        if (terms.kind != Kind.Bundle) revert WrongKind(terms.kind, Kind.Bundle);
        _validateTerms(terms);
        _validatePackage(terms, components_, monthlyQuantities);
        productId = _newProduct(terms);
        Bundle storage bundle = _bundles[productId];
        bundle.components = components_;
        bundle.monthlyQuantities = monthlyQuantities;
        emit BundleCreated(productId, components_);
    }

    /// @inheritdoc IDataProducts
    function updateTerms(ProductId productId, Terms calldata terms) external {
        StoredProduct storage p = _existing(productId);
        if (msg.sender != p.operator) revert NotProductOperator(productId, msg.sender);
        if (terms.kind != p.kind) revert KindChange(productId, p.kind, terms.kind);
        _validateTerms(terms);
        if (terms.kind == Kind.Bundle) _validateCover(terms, _bundles[productId].components);
        uint64 version = p.version + 1;
        p.version = version;
        _storeTerms(p, terms);
        emit TermsUpdated(productId, version);
    }

    /// @inheritdoc IDataProducts
    function setActive(ProductId productId, bool active) external {
        StoredProduct storage p = _existing(productId);
        bool governor = hasRole(GOVERNOR_ROLE, msg.sender);
        if (msg.sender != p.operator && !governor) revert NotProductOperator(productId, msg.sender);
        if (governor) {
            // The DAO's deactivation holds until the DAO reactivates: the operator cannot undo it.
            if (p.heldByGovernor == active) {
                p.heldByGovernor = !active;
                emit GovernorHold(productId, !active);
            }
        } else if (active && p.heldByGovernor) {
            revert ProductHeldByGovernor(productId);
        }
        p.active = active;
        emit ProductActive(productId, active);
    }

    /// @inheritdoc IDataProducts
    function heldByGovernor(ProductId productId) external view returns (bool) {
        return _existing(productId).heldByGovernor;
    }

    /// @inheritdoc IDataProducts
    function product(ProductId productId)
        external
        view
        returns (address operator, uint64 version, bool active, Terms memory terms)
    {
        StoredProduct storage p = _existing(productId);
        terms = Terms({
            kind: p.kind,
            price: p.price,
            membersBps: p.membersBps,
            operatorBps: p.operatorBps,
            brokerBps: p.brokerBps,
            permittedUses: p.permittedUses,
            requiredPermissions: p.requiredPermissions,
            refreshSeconds: p.refreshSeconds,
            minCohort: p.minCohort,
            termsHash: p.termsHash,
            termsURI: p.termsURI,
            validitySeconds: p.validitySeconds
        });
        return (p.operator, p.version, p.active, terms);
    }

    /// @inheritdoc IDataProducts
    function components(ProductId bundleId)
        external
        view
        returns (ProductId[] memory productIds, uint256[] memory monthlyQuantities)
    {
        Bundle storage bundle = _bundles[bundleId];
        return (bundle.components, bundle.monthlyQuantities);
    }

    /// @inheritdoc IDataProducts
    function saleTerms(ProductId productId) external view returns (Sale memory sale) {
        StoredProduct storage p = _existing(productId);
        sale.operator = p.operator;
        sale.active = p.active;
        sale.kind = p.kind;
        sale.price = p.price;
        sale.operatorBps = p.operatorBps;
        sale.brokerBps = p.brokerBps;
        sale.protocolFeeBps = p.protocolFeeBps;
        sale.permittedUses = p.permittedUses;
        sale.requiredPermissions = p.requiredPermissions;
        sale.version = p.version;
        sale.validitySeconds = p.validitySeconds;
        if (p.kind == Kind.Bundle) sale.inactiveComponent = _firstInactiveComponent(productId);
    }

    /// @inheritdoc IDataProducts
    function productFeeBps(ProductId productId) external view returns (uint16) {
        return _existing(productId).protocolFeeBps;
    }

    /// @inheritdoc IDataProducts
    function productCount() external view returns (uint256) {
        return _productCount;
    }

    // ------------------------------------------------------------------ membership

    /// @inheritdoc IDataProducts
    function join(ProductId productId, uint256 vehicleId) external {
        address owner = vehicleIds.ownerOf(vehicleId);
        if (msg.sender != owner) revert NotVehicleOwner(vehicleId, msg.sender);
        _join(productId, vehicleId, owner);
    }

    /// @inheritdoc IDataProducts
    function joinBySig(
        ProductId productId,
        uint256 vehicleId,
        uint64 version,
        uint256 nonce,
        uint256 deadline,
        bytes calldata ownerSig
    ) external {
        if (block.timestamp > deadline) revert SignatureExpired(deadline);
        uint64 current = _existing(productId).version;
        if (version != current) revert VersionMismatch(productId, version, current);
        address owner = vehicleIds.ownerOf(vehicleId);
        _useUnorderedNonce(owner, nonce);
        bytes32 digest = _hashTypedDataV4(
            keccak256(
                abi.encode(
                    JOIN_TYPEHASH, productId, vehicleId, vehicleIds.generation(vehicleId), version, nonce, deadline
                )
            )
        );
        if (!SignatureChecker.isValidSignatureNow(owner, digest, ownerSig)) revert InvalidSignature(owner);
        _join(productId, vehicleId, owner);
    }

    /// @inheritdoc IDataProducts
    function leave(ProductId productId, uint256 vehicleId) external {
        Consent memory consent = _consents[productId][vehicleId];
        if (consent.version == 0) revert NoConsent(productId, vehicleId);
        if (consent.generation == vehicleIds.generation(vehicleId)) {
            address owner = vehicleIds.ownerOf(vehicleId);
            if (msg.sender != owner) revert NotVehicleOwner(vehicleId, msg.sender);
        }
        delete _consents[productId][vehicleId];
        if (consent.version == _products[productId].version) _memberCounts[productId][consent.version] -= 1;
        emit Left(productId, vehicleId);
    }

    /// @inheritdoc IDataProducts
    function isMember(ProductId productId, uint256 vehicleId) external view returns (bool) {
        Consent memory consent = _consents[productId][vehicleId];
        return consent.version != 0 && consent.version == _products[productId].version
            && consent.generation == vehicleIds.generation(vehicleId);
    }

    /// @inheritdoc IDataProducts
    function memberCount(ProductId productId) external view returns (uint256) {
        return _memberCounts[productId][_products[productId].version];
    }

    /// @inheritdoc IDataProducts
    function consentOf(ProductId productId, uint256 vehicleId)
        external
        view
        returns (uint64 version, uint64 generation)
    {
        Consent memory consent = _consents[productId][vehicleId];
        return (consent.version, consent.generation);
    }

    // ------------------------------------------------------------------ demand

    /// @inheritdoc IDataProducts
    function signalDemand(bytes32 specHash, string calldata uri, uint256 budget) external returns (uint256 signalId) {
        if (
            !staking.isActive(msg.sender, IStaking.Role.Operator) && !staking.isActive(msg.sender, IStaking.Role.Broker)
                && !staking.isActive(msg.sender, IStaking.Role.Consumer)
        ) revert NotActiveParticipant(msg.sender);
        signalId = ++_signalCount;
        _demands[signalId] = Demand({account: msg.sender, open: true, specHash: specHash, budget: budget});
        emit DemandSignaled(signalId, msg.sender, specHash, uri, budget);
    }

    /// @inheritdoc IDataProducts
    function withdrawDemand(uint256 signalId) external {
        Demand storage d = _demands[signalId];
        if (!d.open) revert DemandNotOpen(signalId);
        if (d.account != msg.sender) revert NotDemandAuthor(signalId, msg.sender);
        d.open = false;
        emit DemandWithdrawn(signalId);
    }

    /// @inheritdoc IDataProducts
    function demand(uint256 signalId)
        external
        view
        returns (address account, bytes32 specHash, uint256 budget, bool open)
    {
        Demand storage d = _demands[signalId];
        return (d.account, d.specHash, d.budget, d.open);
    }

    // ------------------------------------------------------------------ governance

    /// @inheritdoc IDataProducts
    function setProtocolFeeBps(uint16 bps) external onlyRole(GOVERNOR_ROLE) {
        if (bps > MAX_PROTOCOL_FEE_BPS) revert FeeTooHigh(bps, MAX_PROTOCOL_FEE_BPS);
        protocolFeeBps = bps;
        emit ProtocolFeeSet(bps);
    }

    // ------------------------------------------------------------------ internals

    function _join(ProductId productId, uint256 vehicleId, address owner) private {
        StoredProduct storage p = _existing(productId);
        if (!p.active) revert ProductInactive(productId);
        address operator = p.operator;
        if (!staking.isActive(operator, IStaking.Role.Operator)) revert OperatorInactive(productId, operator);
        uint64 version = p.version;
        uint64 generation = vehicleIds.generation(vehicleId);
        Consent storage consent = _consents[productId][vehicleId];
        if (consent.version == version) {
            // Already counted for this version: a stale generation is re-consented in place.
            if (consent.generation == generation) revert AlreadyMember(productId, vehicleId);
        } else {
            _memberCounts[productId][version] += 1;
        }
        consent.version = version;
        consent.generation = generation;
        emit Joined(productId, vehicleId, owner, version);
    }

    function _newProduct(Terms calldata terms) private returns (ProductId productId) {
        productId = ProductId.wrap(++_productCount);
        StoredProduct storage p = _products[productId];
        p.operator = msg.sender;
        p.version = 1;
        p.active = true;
        _storeTerms(p, terms);
        emit ProductCreated(productId, msg.sender, terms.kind);
        emit TermsUpdated(productId, 1);
        emit ProductActive(productId, true);
    }

    function _storeTerms(StoredProduct storage p, Terms calldata terms) private {
        p.protocolFeeBps = protocolFeeBps;
        p.kind = terms.kind;
        p.price = terms.price;
        p.membersBps = terms.membersBps;
        p.operatorBps = terms.operatorBps;
        p.brokerBps = terms.brokerBps;
        // Both fit: _validateTerms bounded them by KNOWN_USES and KNOWN_PERMISSIONS.
        p.permittedUses = uint8(terms.permittedUses);
        p.requiredPermissions = terms.requiredPermissions.toUint64();
        p.refreshSeconds = terms.refreshSeconds;
        p.minCohort = terms.minCohort;
        p.validitySeconds = terms.validitySeconds;
        p.termsHash = terms.termsHash;
        p.termsURI = terms.termsURI;
    }

    function _validateTerms(Terms calldata terms) private view {
        uint16 fee = protocolFeeBps;
        if (uint256(terms.membersBps) + terms.operatorBps + terms.brokerBps + fee != MarketMath.MAX_BPS) {
            revert BpsSumMismatch(terms.membersBps, terms.operatorBps, terms.brokerBps, fee);
        }
        if (terms.price == 0) revert ZeroPrice();
        if (terms.permittedUses == 0 || terms.permittedUses & ~KNOWN_USES != 0) {
            revert InvalidPermittedUses(terms.permittedUses);
        }
        uint256 unknown = Permissions.unknownTermsBits(terms.requiredPermissions);
        if (unknown != 0) revert UnknownPermissionBits(terms.requiredPermissions, unknown);
        if (terms.kind == Kind.Dataset && terms.minCohort == 0) revert CohortTooSmall(0, 1);
        if (terms.kind == Kind.Api) {
            if (terms.validitySeconds < MIN_CREDIT_VALIDITY || terms.validitySeconds > MAX_CREDIT_VALIDITY) {
                revert CreditValidityOutOfRange(terms.validitySeconds, MIN_CREDIT_VALIDITY, MAX_CREDIT_VALIDITY);
            }
        } else if (terms.validitySeconds != 0) {
            revert CreditValidityOutOfRange(terms.validitySeconds, 0, 0);
        }
    }

    /// @dev A new bundle's package: between 1 and MAX components, all distinct, the caller's
    ///      own, active, not bundles, with a monthly quantity exactly for the Api ones.
    function _validatePackage(Terms calldata terms, ProductId[] calldata ids, uint256[] calldata quantities)
        private
        view
    {
        uint256 n = ids.length;
        if (n == 0 || n > MAX_BUNDLE_COMPONENTS) revert BadComponentCount(n, MAX_BUNDLE_COMPONENTS);
        if (quantities.length != n) revert LengthMismatch(n, quantities.length);
        for (uint256 i; i < n; ++i) {
            ProductId id = ids[i];
            StoredProduct storage c = _existing(id);
            if (c.operator != msg.sender) revert ComponentNotOwned(id, msg.sender);
            if (c.kind == Kind.Bundle) revert ComponentIsBundle(id);
            if (!c.active) revert ComponentInactive(id);
            if ((c.kind == Kind.Api) != (quantities[i] != 0)) revert BadMonthlyQuantity(id, quantities[i]);
            for (uint256 j; j < i; ++j) {
                if (ProductId.unwrap(ids[j]) == ProductId.unwrap(id)) revert DuplicateComponent(id);
            }
        }
        _validateCover(terms, ids);
    }

    /// @dev One consent to the bundle must cover what each component serves: its permission
    ///      bits, and for datasets its minimum cohort.
    function _validateCover(Terms calldata terms, ProductId[] memory ids) private view {
        for (uint256 i; i < ids.length; ++i) {
            StoredProduct storage c = _products[ids[i]];
            uint256 missing = c.requiredPermissions & ~terms.requiredPermissions;
            if (missing != 0) revert BundlePermissionsMissing(ids[i], missing);
            if (c.kind == Kind.Dataset && terms.minCohort < c.minCohort) {
                revert CohortTooSmall(terms.minCohort, c.minCohort);
            }
        }
    }

    function _firstInactiveComponent(ProductId bundleId) private view returns (ProductId) {
        ProductId[] storage ids = _bundles[bundleId].components;
        uint256 n = ids.length;
        for (uint256 i; i < n; ++i) {
            ProductId id = ids[i];
            if (!_products[id].active) return id;
        }
        return ProductId.wrap(0);
    }

    function _existing(ProductId productId) private view returns (StoredProduct storage p) {
        p = _products[productId];
        if (p.operator == address(0)) revert UnknownProduct(productId);
    }

    function _requireActiveOperator(address account) private view {
        if (!staking.isActive(account, IStaking.Role.Operator)) revert NotActiveOperator(account);
    }
}
