// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {IDataProducts} from "../../../contracts/interfaces/IDataProducts.sol";
import {IVehicleId} from "../../../contracts/interfaces/IVehicleId.sol";
import {ProductId} from "../../../contracts/types/ProductId.sol";

/// @notice Benchmark fixture (not a baseline): gives a product thousands of members quickly. It
///         holds MINTER_ROLE on VehicleId, mints vehicles to itself and joins each one, many per
///         transaction, so `make bench` can compare a purchase with 3 members against 10,000.
contract BenchMemberFarm {
    IVehicleId public immutable vehicles;
    IDataProducts public immutable products;
    uint256 public immutable connectionId;
    uint256 public minted;

    constructor(IVehicleId vehicles_, IDataProducts products_, uint256 connectionId_) {
        vehicles = vehicles_;
        products = products_;
        connectionId = connectionId_;
    }

    /// @notice Mints `count` vehicles to this contract and joins each to `productId`.
    function grow(ProductId productId, uint256 count) external {
        uint256 n = minted;
        for (uint256 i; i < count; ++i) {
            uint256 vehicleId = vehicles.mint(address(this), connectionId, keccak256(abi.encode(address(this), n + i)));
            products.join(productId, vehicleId);
        }
        minted = n + count;
    }
}
