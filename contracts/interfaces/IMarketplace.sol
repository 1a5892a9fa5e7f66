// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

/// @title IMarketplace
/// @notice Sales of data products, the revenue split at purchase, and member-pool settlement
///         by epoch Merkle roots. DESIGN.md §3.6.
interface IMarketplace {
    event OrderPlaced(
        uint256 indexed orderId,
        uint256 indexed productId,
        address indexed buyer,
        address broker,
        uint256 quantity,
        uint256 paid,
        uint64 endsAt,
        uint8 use
    );
    event StewardSet(address indexed broker, bool steward);
    event Settled(uint256 indexed productId, uint64 indexed epoch, uint256 amount, bytes32 membersRoot);
    event Claimed(uint256 indexed productId, uint64 indexed epoch, address indexed account, uint256 amount);
    event EarningsWithdrawn(address indexed account, uint256 amount);

    function subscribe(uint256 productId, uint32 vehicles, uint32 months, address broker, uint8 use)
        external
        returns (uint256 orderId);

    function buyCredits(uint256 productId, uint256 calls, address broker, uint8 use) external returns (uint256 orderId);

    function purchaseDataset(uint256 productId, bytes32 specHash, address broker, uint8 use)
        external
        returns (uint256 orderId);

    function order(uint256 orderId)
        external
        view
        returns (
            uint256 productId,
            address buyer,
            address broker,
            uint256 quantity,
            uint256 paid,
            uint64 startsAt,
            uint64 endsAt,
            uint8 use
        );

    function setSteward(address broker, bool steward) external;

    function settle(uint256 productId, uint64 epoch, uint256 amount, bytes32 membersRoot) external;

    function claim(
        uint256 productId,
        uint64 epoch,
        uint256 index,
        address account,
        uint256 amount,
        bytes32[] calldata proof
    ) external;

    function claimable(address account) external view returns (uint256);

    function withdrawEarnings() external;

    function memberPool(uint256 productId) external view returns (uint256);
}
