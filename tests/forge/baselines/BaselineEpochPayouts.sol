// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {ReentrancyGuardTransient} from "@openzeppelin/contracts/utils/ReentrancyGuardTransient.sol";
import {SafeCast} from "@openzeppelin/contracts/utils/math/SafeCast.sol";
import {ClaimBitmap} from "../../../contracts/libraries/ClaimBitmap.sol";
import {PayoutProof} from "../../../contracts/libraries/PayoutProof.sol";
import {ProductId} from "../../../contracts/types/ProductId.sol";

/// @title BaselineEpochPayouts
/// @notice Benchmark baseline (not part of the protocol): the member payout path the
///         Marketplace had before issue #15, copied line for line from it — a member pool per
///         product, `settle(productId, epoch, amount, membersRoot)` moving pool funds into one
///         Merkle root per product and epoch, and `claim(productId, epoch, index, account,
///         amount, proof)` paying one leaf `(index, account, amount)` of one epoch, marked in
///         that epoch's bitmap. Only the purchase that filled the pool is replaced, by `fund`.
///         The benchmarks compare a member's collection over many epochs and products this way
///         against one cumulative claim.
contract BaselineEpochPayouts is AccessControl, ReentrancyGuardTransient {
    using SafeERC20 for IERC20;
    using SafeCast for uint256;
    using ClaimBitmap for ClaimBitmap.Bitmap;

    /// @notice May settle epochs.
    bytes32 public constant SETTLER_ROLE = keccak256("SETTLER_ROLE");

    /// @dev One settled epoch: what it may pay and has paid, in one word (as it was).
    struct Epoch {
        uint128 amount;
        uint128 claimed;
    }

    /// @notice The token paid out.
    IERC20 public immutable token;

    mapping(ProductId productId => uint256) private _pools;
    mapping(ProductId productId => uint64) private _lastEpochs;
    mapping(ProductId productId => mapping(uint64 epoch => bytes32)) private _roots;
    mapping(bytes32 epochKey => Epoch) private _epochs;
    mapping(bytes32 epochKey => ClaimBitmap.Bitmap) private _claimedLeaves;

    event Funded(ProductId indexed productId, uint256 amount);
    event Settled(ProductId indexed productId, uint64 indexed epoch, uint256 amount, bytes32 membersRoot);
    event Claimed(ProductId indexed productId, uint64 indexed epoch, address indexed account, uint256 amount);

    error EmptySettlement(uint256 amount, bytes32 membersRoot);
    error EpochInFuture(ProductId productId, uint64 epoch, uint256 nowTime);
    error EpochNotIncreasing(ProductId productId, uint64 epoch, uint64 last);
    error AmountExceedsPool(ProductId productId, uint256 amount, uint256 pool);
    error InvalidClaimant(address account);
    error UnknownEpoch(ProductId productId, uint64 epoch);
    error InvalidProof(ProductId productId, uint64 epoch, uint256 index);
    error AlreadyClaimed(ProductId productId, uint64 epoch, uint256 index);
    error EpochOverdrawn(ProductId productId, uint64 epoch, uint256 amount, uint256 remaining);

    /// @param token_ the token paid out
    /// @param settler may settle epochs (and is the admin)
    constructor(address token_, address settler) {
        token = IERC20(token_);
        _grantRole(DEFAULT_ADMIN_ROLE, settler);
        _grantRole(SETTLER_ROLE, settler);
    }

    /// @notice Adds `amount` (pulled from the caller) to `productId`'s member pool: what the old
    ///         purchase's member share did.
    /// @param productId the product
    /// @param amount the amount
    function fund(ProductId productId, uint256 amount) external {
        _pools[productId] += amount;
        emit Funded(productId, amount);
        token.safeTransferFrom(msg.sender, address(this), amount);
    }

    /// @notice The old `Marketplace.settle`.
    /// @param productId the product
    /// @param epoch the epoch (increasing, not after now)
    /// @param amount what the epoch pays in all
    /// @param membersRoot the epoch's Merkle root of `(index, account, amount)` leaves
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

    /// @notice The old `Marketplace.claim`: one leaf of one product's epoch.
    /// @param productId the product
    /// @param epoch the epoch
    /// @param index the leaf's index
    /// @param account who is paid
    /// @param amount what the leaf pays
    /// @param proof the leaf's Merkle proof
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
            if (_roots[productId][epoch] == bytes32(0)) revert UnknownEpoch(productId, epoch);
            revert InvalidProof(productId, epoch, index);
        }
        if (!_claimedLeaves[key].setClaimed(index)) revert AlreadyClaimed(productId, epoch, index);
        uint256 paidSoFar = e.claimed;
        uint256 remaining = settled - paidSoFar;
        if (amount > remaining) revert EpochOverdrawn(productId, epoch, amount, remaining);
        e.claimed = uint128(paidSoFar + amount);
        emit Claimed(productId, epoch, account, amount);
        token.safeTransfer(account, amount);
    }

    /// @notice What `productId`'s pool holds.
    function memberPool(ProductId productId) external view returns (uint256) {
        return _pools[productId];
    }

    function _epochKey(bytes32 root, ProductId productId, uint64 epoch) private pure returns (bytes32 key) {
        assembly ("memory-safe") {
            let ptr := mload(0x40)
            mstore(ptr, root)
            mstore(add(ptr, 0x20), productId)
            mstore(add(ptr, 0x40), and(epoch, 0xffffffffffffffff))
            key := keccak256(ptr, 0x60)
        }
    }
}
