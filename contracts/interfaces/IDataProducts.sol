// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

/// @title IDataProducts
/// @notice Data unions: operators publish products with terms, vehicle owners consent per
///         product version, bundles package products under one consent. DESIGN.md §3.5.
interface IDataProducts {
    enum Kind {
        Stream,
        Api,
        Dataset,
        Bundle
    }

    /// @notice A product's terms. `price` is per vehicle-month (Stream, Bundle), per call (Api)
    ///         or per dataset (Dataset); the bps shares and the protocol fee sum to 10,000.
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
    }

    event ProductCreated(uint256 indexed productId, address indexed operator, Kind kind);
    event TermsUpdated(uint256 indexed productId, uint64 version);
    event ProductActive(uint256 indexed productId, bool active);
    event Joined(uint256 indexed productId, uint256 indexed vehicleId, address owner, uint64 version);
    event Left(uint256 indexed productId, uint256 indexed vehicleId);
    event BundleCreated(uint256 indexed bundleId, uint256[] components);
    event DemandSignaled(uint256 indexed signalId, address indexed account, bytes32 specHash, string uri, uint256 budget);
    event DemandWithdrawn(uint256 indexed signalId);
    event ProtocolFeeSet(uint16 bps);

    function createProduct(Terms calldata terms) external returns (uint256 productId);

    function createBundle(Terms calldata terms, uint256[] calldata components, uint256[] calldata monthlyQuantities)
        external
        returns (uint256 productId);

    function components(uint256 bundleId)
        external
        view
        returns (uint256[] memory productIds, uint256[] memory monthlyQuantities);

    function signalDemand(bytes32 specHash, string calldata uri, uint256 budget) external returns (uint256 signalId);

    function withdrawDemand(uint256 signalId) external;

    function updateTerms(uint256 productId, Terms calldata terms) external;

    function setActive(uint256 productId, bool active) external;

    function product(uint256 productId)
        external
        view
        returns (address operator, uint64 version, bool active, Terms memory terms);

    function join(uint256 productId, uint256 vehicleId) external;

    function joinBySig(uint256 productId, uint256 vehicleId, uint64 version, uint256 deadline, bytes calldata ownerSig)
        external;

    function leave(uint256 productId, uint256 vehicleId) external;

    function isMember(uint256 productId, uint256 vehicleId) external view returns (bool);

    function memberCount(uint256 productId) external view returns (uint256);

    function protocolFeeBps() external view returns (uint16);

    function setProtocolFeeBps(uint16 bps) external;
}
