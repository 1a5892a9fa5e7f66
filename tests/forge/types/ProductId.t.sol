// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {Test} from "../lib/Test.sol";
import {IDataProducts} from "../../../contracts/interfaces/IDataProducts.sol";
import {IMarketplace} from "../../../contracts/interfaces/IMarketplace.sol";

/// @notice `ProductId` is a Solidity-side type only: every selector, event topic and error
///         selector that carries one is the `uint256` one the workers, indexers and DESIGN.md use.
contract ProductIdTest is Test {
    function test_functionSelectors_areThoseOfUint256() public pure {
        assertEq(IDataProducts.join.selector, bytes4(keccak256("join(uint256,uint256)")));
        assertEq(
            IDataProducts.createBundle.selector,
            bytes4(
                keccak256(
                    "createBundle((uint8,uint256,uint16,uint16,uint16,uint256,uint256,uint32,uint32,bytes32,string,uint32),uint256[],uint256[])"
                )
            )
        );
        assertEq(IDataProducts.components.selector, bytes4(keccak256("components(uint256)")));
        assertEq(IDataProducts.saleTerms.selector, bytes4(keccak256("saleTerms(uint256)")));
        assertEq(
            IMarketplace.subscribe.selector,
            bytes4(keccak256("subscribe(uint256,uint32,uint32,address,uint8,uint64,uint256)"))
        );
        assertEq(
            IMarketplace.buyCredits.selector,
            bytes4(keccak256("buyCredits(uint256,uint256,address,uint8,uint64,uint256)"))
        );
        assertEq(
            IMarketplace.purchaseDataset.selector,
            bytes4(keccak256("purchaseDataset(uint256,bytes32,address,uint8,uint64,uint256)"))
        );
        assertEq(IMarketplace.vestedMemberAmount.selector, bytes4(keccak256("vestedMemberAmount(uint256)")));
        assertEq(
            IMarketplace.proposeRoot.selector, bytes4(keccak256("proposeRoot(bytes32,uint256[],uint256[],bytes32)"))
        );
        assertEq(IMarketplace.acceptRoot.selector, bytes4(keccak256("acceptRoot(uint256[],uint256[])")));
        assertEq(IMarketplace.claim.selector, bytes4(keccak256("claim(address,uint256,bytes32[])")));
        assertEq(IMarketplace.refund.selector, bytes4(keccak256("refund(uint256)")));
        assertEq(IMarketplace.order.selector, bytes4(keccak256("order(uint256)")));
    }

    function test_eventTopics_areThoseOfUint256() public pure {
        assertEq(IDataProducts.Joined.selector, keccak256("Joined(uint256,uint256,address,uint64)"));
        assertEq(IDataProducts.BundleCreated.selector, keccak256("BundleCreated(uint256,uint256[])"));
        assertEq(
            IMarketplace.OrderPlaced.selector,
            keccak256("OrderPlaced(uint256,uint256,address,address,uint256,uint256,uint64,uint8)")
        );
        assertEq(
            IMarketplace.RootProposed.selector, keccak256("RootProposed(bytes32,uint64,uint256[],uint256[],bytes32)")
        );
        assertEq(IMarketplace.Claimed.selector, keccak256("Claimed(address,uint256,uint256)"));
    }

    function test_errorSelectors_areThoseOfUint256() public pure {
        assertEq(IDataProducts.UnknownProduct.selector, bytes4(keccak256("UnknownProduct(uint256)")));
        assertEq(IMarketplace.TakeAboveVested.selector, bytes4(keccak256("TakeAboveVested(uint256,uint256,uint256)")));
    }
}
