// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {freeNonce} from "../lib/FreeNonce.sol";
import {
    IAccessControlDefaultAdminRules
} from "@openzeppelin/contracts/access/extensions/IAccessControlDefaultAdminRules.sol";
import {IAccessControl} from "@openzeppelin/contracts/access/IAccessControl.sol";
import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";
import {IERC1271} from "@openzeppelin/contracts/interfaces/IERC1271.sol";
import {MarketBase} from "./MarketBase.sol";
import {DataProducts} from "../../../contracts/market/DataProducts.sol";
import {IDataProducts} from "../../../contracts/interfaces/IDataProducts.sol";
import {IUnorderedNonces} from "../../../contracts/interfaces/IUnorderedNonces.sol";
import {ProductId} from "../../../contracts/types/ProductId.sol";
import {IStaking} from "../../../contracts/interfaces/IStaking.sol";
import {Permissions} from "../../../contracts/libraries/Permissions.sol";

/// @dev A contract wallet that accepts signatures of its owner key (ERC-1271).
contract OwnerKeyWallet is IERC1271 {
    address public immutable signer;

    constructor(address signer_) {
        signer = signer_;
    }

    function isValidSignature(bytes32 hash, bytes memory signature) external view returns (bytes4) {
        (address recovered,,) = ECDSA.tryRecover(hash, signature);
        return recovered == signer ? IERC1271.isValidSignature.selector : bytes4(0xffffffff);
    }

    function onERC721Received(address, address, uint256, bytes calldata) external pure returns (bytes4) {
        return this.onERC721Received.selector;
    }
}

contract DataProductsTest is MarketBase {
    // ------------------------------------------------------------------ constructor

    function test_constructor_setsRolesDomainAndDefaultFee() public view {
        assertTrue(products.hasRole(products.DEFAULT_ADMIN_ROLE(), governor));
        assertTrue(products.hasRole(products.GOVERNOR_ROLE(), governor));
        assertEq(products.GOVERNOR_ROLE(), keccak256("GOVERNOR_ROLE"));
        assertEq(products.protocolFeeBps(), 500);
        assertEq(address(products.vehicleIds()), address(vehicles));
        assertEq(address(products.staking()), address(staking));
        (, string memory name, string memory version,, address verifying,,) = products.eip712Domain();
        assertEq(name, "DIMO Data Products");
        assertEq(version, "1");
        assertEq(verifying, address(products));
    }

    function test_constructor_revertsWhenZeroAddress() public {
        vm.expectRevert(IDataProducts.ZeroAddress.selector);
        new DataProducts(address(0), address(staking), governor);
        vm.expectRevert(IDataProducts.ZeroAddress.selector);
        new DataProducts(address(vehicles), address(0), governor);
        vm.expectRevert(
            abi.encodeWithSelector(
                IAccessControlDefaultAdminRules.AccessControlInvalidDefaultAdmin.selector, address(0)
            )
        );
        new DataProducts(address(vehicles), address(staking), address(0));
    }

    // ------------------------------------------------------------------ createProduct

    function test_createProduct_storesTermsAsVersionOne() public {
        IDataProducts.Terms memory t = _terms(IDataProducts.Kind.Stream, 2 ether);
        vm.expectEmit(address(products));
        emit IDataProducts.ProductCreated(ProductId.wrap(1), operator, IDataProducts.Kind.Stream);
        vm.expectEmit(address(products));
        emit IDataProducts.TermsUpdated(ProductId.wrap(1), 1);
        vm.expectEmit(address(products));
        emit IDataProducts.ProductActive(ProductId.wrap(1), true);
        vm.prank(operator);
        ProductId id = products.createProduct(t);

        assertEq(id, ProductId.wrap(1));
        assertEq(products.productCount(), 1);
        (address op, uint64 version, bool active, IDataProducts.Terms memory got) = products.product(id);
        assertEq(op, operator);
        assertEq(version, 1);
        assertTrue(active);
        assertEq(keccak256(abi.encode(got)), keccak256(abi.encode(t)));
        assertEq(products.productFeeBps(id), 500);
        assertEq(products.memberCount(id), 0);
    }

    function test_createProduct_idsIncrease() public {
        assertEq(_stream(), ProductId.wrap(1));
        assertEq(_api(), ProductId.wrap(2));
        assertEq(_dataset(), ProductId.wrap(3));
        assertEq(products.productCount(), 3);
    }

    function test_createProduct_revertsWhenNotActiveOperator() public {
        IDataProducts.Terms memory t = _terms(IDataProducts.Kind.Stream, 1);
        vm.expectRevert(abi.encodeWithSelector(IDataProducts.NotActiveOperator.selector, broker));
        vm.prank(broker);
        products.createProduct(t);

        _deactivate(operator, IStaking.Role.Operator);
        vm.expectRevert(abi.encodeWithSelector(IDataProducts.NotActiveOperator.selector, operator));
        vm.prank(operator);
        products.createProduct(t);
    }

    function test_createProduct_revertsWhenKindIsBundle() public {
        IDataProducts.Terms memory t = _terms(IDataProducts.Kind.Bundle, 1);
        vm.expectRevert(
            abi.encodeWithSelector(
                IDataProducts.WrongKind.selector, IDataProducts.Kind.Bundle, IDataProducts.Kind.Stream
            )
        );
        vm.prank(operator);
        products.createProduct(t);
    }

    function test_createProduct_revertsWhenBpsDoNotSumTo10000() public {
        IDataProducts.Terms memory t = _terms(IDataProducts.Kind.Stream, 1);
        t.membersBps = 7001;
        vm.expectRevert(abi.encodeWithSelector(IDataProducts.BpsSumMismatch.selector, 7001, 2000, 500, 500));
        vm.prank(operator);
        products.createProduct(t);

        t.membersBps = 6999;
        vm.expectRevert(abi.encodeWithSelector(IDataProducts.BpsSumMismatch.selector, 6999, 2000, 500, 500));
        vm.prank(operator);
        products.createProduct(t);
    }

    function testFuzz_createProduct_acceptsExactlyTheBpsThatSumTo10000(uint16 m, uint16 o, uint16 b) public {
        IDataProducts.Terms memory t = _terms(IDataProducts.Kind.Stream, 1);
        (t.membersBps, t.operatorBps, t.brokerBps) = (m, o, b);
        bool valid = uint256(m) + o + b + 500 == 10_000;
        if (!valid) vm.expectRevert(abi.encodeWithSelector(IDataProducts.BpsSumMismatch.selector, m, o, b, 500));
        vm.prank(operator);
        products.createProduct(t);
        assertEq(products.productCount(), valid ? 1 : 0);
    }

    function test_createProduct_revertsWhenPriceIsZero() public {
        IDataProducts.Terms memory t = _terms(IDataProducts.Kind.Api, 0);
        vm.expectRevert(IDataProducts.ZeroPrice.selector);
        vm.prank(operator);
        products.createProduct(t);
    }

    function test_createProduct_revertsWhenPermittedUsesEmptyOrUnknown() public {
        IDataProducts.Terms memory t = _terms(IDataProducts.Kind.Stream, 1);
        t.permittedUses = 0;
        vm.expectRevert(abi.encodeWithSelector(IDataProducts.InvalidPermittedUses.selector, 0));
        vm.prank(operator);
        products.createProduct(t);

        t.permittedUses = (1 << 6) | 1;
        vm.expectRevert(abi.encodeWithSelector(IDataProducts.InvalidPermittedUses.selector, t.permittedUses));
        vm.prank(operator);
        products.createProduct(t);
    }

    function test_createProduct_acceptsEveryUseBit() public {
        IDataProducts.Terms memory t = _terms(IDataProducts.Kind.Stream, 1);
        t.permittedUses = 0x3f;
        vm.prank(operator);
        products.createProduct(t);
        assertEq(products.saleTerms(ProductId.wrap(1)).permittedUses, 0x3f);
    }

    function test_createProduct_revertsWhenPermissionBitsUnknown() public {
        IDataProducts.Terms memory t = _terms(IDataProducts.Kind.Stream, 1);
        t.requiredPermissions = Permissions.TELEMETRY | (1 << 9) | (1 << 200);
        vm.expectRevert(
            abi.encodeWithSelector(
                IDataProducts.UnknownPermissionBits.selector, t.requiredPermissions, (1 << 9) | (1 << 200)
            )
        );
        vm.prank(operator);
        products.createProduct(t);
    }

    function test_createProduct_acceptsTheHistoryBit() public {
        IDataProducts.Terms memory t = _terms(IDataProducts.Kind.Api, 1);
        t.requiredPermissions = Permissions.TELEMETRY | Permissions.HISTORY;
        vm.prank(operator);
        products.createProduct(t);
        assertEq(products.saleTerms(ProductId.wrap(1)).requiredPermissions, Permissions.TELEMETRY | Permissions.HISTORY);
        assertEq(products.KNOWN_PERMISSIONS(), Permissions.ALL | Permissions.HISTORY);
    }

    function testFuzz_createProduct_acceptsOnlyKnownPermissionBits(uint256 bits) public {
        IDataProducts.Terms memory t = _terms(IDataProducts.Kind.Stream, 1);
        t.requiredPermissions = bits;
        bool known = bits & ~uint256(0x1ff) == 0;
        if (!known) {
            vm.expectRevert(
                abi.encodeWithSelector(IDataProducts.UnknownPermissionBits.selector, bits, bits & ~uint256(0x1ff))
            );
        }
        vm.prank(operator);
        products.createProduct(t);
        if (known) assertEq(products.saleTerms(ProductId.wrap(1)).requiredPermissions, bits);
    }

    /// @notice Api credits must stay valid between one day and two years; other kinds carry no
    ///         validity. The sale terms and the product view return it.
    function test_createProduct_validatesTheCreditValidity() public {
        uint32 min = products.MIN_CREDIT_VALIDITY();
        uint32 max = products.MAX_CREDIT_VALIDITY();
        assertEq(min, 1 days);
        assertEq(max, 730 days);
        IDataProducts.Terms memory t = _terms(IDataProducts.Kind.Api, 1 ether);
        uint32[3] memory bad = [uint32(0), min - 1, max + 1];
        for (uint256 i; i < bad.length; ++i) {
            t.validitySeconds = bad[i];
            vm.expectRevert(abi.encodeWithSelector(IDataProducts.CreditValidityOutOfRange.selector, bad[i], min, max));
            vm.prank(operator);
            products.createProduct(t);
        }
        t.validitySeconds = min;
        vm.prank(operator);
        ProductId a = products.createProduct(t);
        assertEq(products.saleTerms(a).validitySeconds, min);
        t.validitySeconds = max;
        vm.prank(operator);
        products.updateTerms(a, t);
        (,,, IDataProducts.Terms memory stored) = products.product(a);
        assertEq(stored.validitySeconds, max);

        IDataProducts.Terms memory s = _terms(IDataProducts.Kind.Stream, 1 ether);
        s.validitySeconds = 1;
        vm.expectRevert(abi.encodeWithSelector(IDataProducts.CreditValidityOutOfRange.selector, 1, 0, 0));
        vm.prank(operator);
        products.createProduct(s);
        IDataProducts.Terms memory d = _terms(IDataProducts.Kind.Dataset, 1 ether);
        d.validitySeconds = min;
        vm.expectRevert(abi.encodeWithSelector(IDataProducts.CreditValidityOutOfRange.selector, min, 0, 0));
        vm.prank(operator);
        products.createProduct(d);
        t.validitySeconds = 0;
        vm.expectRevert(abi.encodeWithSelector(IDataProducts.CreditValidityOutOfRange.selector, 0, min, max));
        vm.prank(operator);
        products.updateTerms(a, t);
    }

    function test_createBundle_refusesACreditValidity() public {
        ProductId s = _stream();
        ProductId[] memory ids = new ProductId[](1);
        ids[0] = s;
        uint256[] memory qty = new uint256[](1);
        IDataProducts.Terms memory t = _terms(IDataProducts.Kind.Bundle, 1 ether);
        t.validitySeconds = 30 days;
        vm.expectRevert(abi.encodeWithSelector(IDataProducts.CreditValidityOutOfRange.selector, 30 days, 0, 0));
        vm.prank(operator);
        products.createBundle(t, ids, qty);
    }

    function test_createProduct_revertsWhenDatasetCohortIsZero() public {
        IDataProducts.Terms memory t = _terms(IDataProducts.Kind.Dataset, 1);
        t.minCohort = 0;
        vm.expectRevert(abi.encodeWithSelector(IDataProducts.CohortTooSmall.selector, 0, 1));
        vm.prank(operator);
        products.createProduct(t);
    }

    // ------------------------------------------------------------------ createBundle

    function _package(ProductId a, ProductId b) internal pure returns (ProductId[] memory ids, uint256[] memory qty) {
        ids = new ProductId[](2);
        qty = new uint256[](2);
        (ids[0], ids[1]) = (a, b);
    }

    function test_createBundle_storesPackage() public {
        (ProductId s, ProductId a, ProductId d) = (_stream(), _api(), _dataset());
        ProductId[] memory ids = new ProductId[](3);
        (ids[0], ids[1], ids[2]) = (s, a, d);
        vm.expectEmit(address(products));
        emit IDataProducts.BundleCreated(ProductId.wrap(4), ids);
        ProductId bundle = _bundleOf(s, a, d);
        assertEq(bundle, ProductId.wrap(4));
        (ProductId[] memory got, uint256[] memory qty) = products.components(bundle);
        assertEq(got.length, 3);
        assertEq(got[0], s);
        assertEq(got[1], a);
        assertEq(got[2], d);
        assertEq(qty[0], 0);
        assertEq(qty[1], 1000);
        assertEq(qty[2], 0);
        (, uint64 version, bool active, IDataProducts.Terms memory t) = products.product(bundle);
        assertEq(uint8(t.kind), uint8(IDataProducts.Kind.Bundle));
        assertEq(version, 1);
        assertTrue(active);
    }

    function test_components_emptyForPlainProducts() public {
        ProductId s = _stream();
        (ProductId[] memory ids, uint256[] memory qty) = products.components(s);
        assertEq(ids.length, 0);
        assertEq(qty.length, 0);
    }

    function test_createBundle_revertsWhenNotActiveOperator() public {
        ProductId s = _stream();
        (ProductId[] memory ids, uint256[] memory qty) = _package(s, s);
        vm.expectRevert(abi.encodeWithSelector(IDataProducts.NotActiveOperator.selector, stranger));
        vm.prank(stranger);
        products.createBundle(_terms(IDataProducts.Kind.Bundle, 1), ids, qty);
    }

    function test_createBundle_revertsWhenKindIsNotBundle() public {
        ProductId s = _stream();
        (ProductId[] memory ids, uint256[] memory qty) = _package(s, s);
        vm.expectRevert(
            abi.encodeWithSelector(
                IDataProducts.WrongKind.selector, IDataProducts.Kind.Stream, IDataProducts.Kind.Bundle
            )
        );
        vm.prank(operator);
        products.createBundle(_terms(IDataProducts.Kind.Stream, 1), ids, qty);
    }

    function test_createBundle_revertsWhenTermsInvalid() public {
        ProductId s = _stream();
        (ProductId[] memory ids, uint256[] memory qty) = _package(s, s);
        IDataProducts.Terms memory t = _terms(IDataProducts.Kind.Bundle, 0);
        vm.expectRevert(IDataProducts.ZeroPrice.selector);
        vm.prank(operator);
        products.createBundle(t, ids, qty);
    }

    function test_createBundle_revertsWhenComponentCountBad() public {
        vm.expectRevert(abi.encodeWithSelector(IDataProducts.BadComponentCount.selector, 0, 16));
        vm.prank(operator);
        products.createBundle(_terms(IDataProducts.Kind.Bundle, 1), new ProductId[](0), new uint256[](0));

        vm.expectRevert(abi.encodeWithSelector(IDataProducts.BadComponentCount.selector, 17, 16));
        vm.prank(operator);
        products.createBundle(_terms(IDataProducts.Kind.Bundle, 1), new ProductId[](17), new uint256[](17));
    }

    function test_createBundle_acceptsSixteenComponents() public {
        ProductId[] memory ids = new ProductId[](16);
        uint256[] memory qty = new uint256[](16);
        for (uint256 i; i < 16; ++i) {
            ids[i] = _stream();
        }
        vm.prank(operator);
        ProductId bundle = products.createBundle(_terms(IDataProducts.Kind.Bundle, 1), ids, qty);
        (ProductId[] memory got,) = products.components(bundle);
        assertEq(got.length, 16);
    }

    function test_createBundle_revertsWhenLengthsDiffer() public {
        ProductId s = _stream();
        ProductId[] memory ids = new ProductId[](1);
        ids[0] = s;
        uint256[] memory qty = new uint256[](2);
        vm.expectRevert(abi.encodeWithSelector(IDataProducts.LengthMismatch.selector, 1, 2));
        vm.prank(operator);
        products.createBundle(_terms(IDataProducts.Kind.Bundle, 1), ids, qty);
    }

    function test_createBundle_revertsWhenComponentUnknown() public {
        ProductId s = _stream();
        (ProductId[] memory ids, uint256[] memory qty) = _package(s, ProductId.wrap(99));
        vm.expectRevert(abi.encodeWithSelector(IDataProducts.UnknownProduct.selector, 99));
        vm.prank(operator);
        products.createBundle(_terms(IDataProducts.Kind.Bundle, 1), ids, qty);
    }

    function test_createBundle_revertsWhenComponentNotOwned() public {
        ProductId s = _stream();
        ProductId other = _create(operator2, IDataProducts.Kind.Stream, 1);
        (ProductId[] memory ids, uint256[] memory qty) = _package(s, other);
        vm.expectRevert(abi.encodeWithSelector(IDataProducts.ComponentNotOwned.selector, other, operator));
        vm.prank(operator);
        products.createBundle(_terms(IDataProducts.Kind.Bundle, 1), ids, qty);
    }

    function test_createBundle_revertsWhenComponentIsBundle() public {
        ProductId s = _stream();
        (ProductId[] memory ids, uint256[] memory qty) = _package(s, _stream());
        vm.prank(operator);
        ProductId inner = products.createBundle(_terms(IDataProducts.Kind.Bundle, 1), ids, qty);
        ids[1] = inner;
        vm.expectRevert(abi.encodeWithSelector(IDataProducts.ComponentIsBundle.selector, inner));
        vm.prank(operator);
        products.createBundle(_terms(IDataProducts.Kind.Bundle, 1), ids, qty);
    }

    function test_createBundle_revertsWhenComponentInactive() public {
        (ProductId s, ProductId s2) = (_stream(), _stream());
        vm.prank(operator);
        products.setActive(s2, false);
        (ProductId[] memory ids, uint256[] memory qty) = _package(s, s2);
        vm.expectRevert(abi.encodeWithSelector(IDataProducts.ComponentInactive.selector, s2));
        vm.prank(operator);
        products.createBundle(_terms(IDataProducts.Kind.Bundle, 1), ids, qty);
    }

    function test_createBundle_revertsWhenComponentRepeated() public {
        ProductId s = _stream();
        (ProductId[] memory ids, uint256[] memory qty) = _package(s, s);
        vm.expectRevert(abi.encodeWithSelector(IDataProducts.DuplicateComponent.selector, s));
        vm.prank(operator);
        products.createBundle(_terms(IDataProducts.Kind.Bundle, 1), ids, qty);
    }

    function test_createBundle_revertsWhenMonthlyQuantityWrong() public {
        (ProductId s, ProductId a) = (_stream(), _api());
        (ProductId[] memory ids, uint256[] memory qty) = _package(s, a);
        vm.expectRevert(abi.encodeWithSelector(IDataProducts.BadMonthlyQuantity.selector, a, 0));
        vm.prank(operator);
        products.createBundle(_terms(IDataProducts.Kind.Bundle, 1), ids, qty);

        (qty[0], qty[1]) = (5, 100);
        vm.expectRevert(abi.encodeWithSelector(IDataProducts.BadMonthlyQuantity.selector, s, 5));
        vm.prank(operator);
        products.createBundle(_terms(IDataProducts.Kind.Bundle, 1), ids, qty);
    }

    function test_createBundle_revertsWhenPermissionsNotCovered() public {
        IDataProducts.Terms memory live = _terms(IDataProducts.Kind.Stream, 1);
        live.requiredPermissions = Permissions.TELEMETRY | Permissions.LIVE;
        vm.prank(operator);
        ProductId l = products.createProduct(live);
        (ProductId[] memory ids, uint256[] memory qty) = _package(_stream(), l);
        IDataProducts.Terms memory t = _terms(IDataProducts.Kind.Bundle, 1); // TELEMETRY | LOCATION
        vm.expectRevert(abi.encodeWithSelector(IDataProducts.BundlePermissionsMissing.selector, l, Permissions.LIVE));
        vm.prank(operator);
        products.createBundle(t, ids, qty);
    }

    function test_createBundle_revertsWhenCohortBelowDatasets() public {
        (ProductId[] memory ids, uint256[] memory qty) = _package(_stream(), _dataset()); // dataset cohort 10
        IDataProducts.Terms memory t = _terms(IDataProducts.Kind.Bundle, 1);
        t.minCohort = 9;
        vm.expectRevert(abi.encodeWithSelector(IDataProducts.CohortTooSmall.selector, 9, 10));
        vm.prank(operator);
        products.createBundle(t, ids, qty);
    }

    // ------------------------------------------------------------------ updateTerms

    function test_updateTerms_bumpsVersionAndVoidsMemberships() public {
        ProductId p = _stream();
        uint256 v = _join(p, alice);
        assertTrue(products.isMember(p, v));
        assertEq(products.memberCount(p), 1);

        IDataProducts.Terms memory t = _terms(IDataProducts.Kind.Stream, 3 ether);
        vm.expectEmit(address(products));
        emit IDataProducts.TermsUpdated(p, 2);
        vm.prank(operator);
        products.updateTerms(p, t);

        (, uint64 version,, IDataProducts.Terms memory got) = products.product(p);
        assertEq(version, 2);
        assertEq(got.price, 3 ether);
        assertFalse(products.isMember(p, v));
        assertEq(products.memberCount(p), 0);

        vm.prank(alice);
        products.join(p, v);
        assertTrue(products.isMember(p, v));
        assertEq(products.memberCount(p), 1);
    }

    function test_updateTerms_takesTheCurrentProtocolFee() public {
        ProductId p = _stream();
        vm.prank(governor);
        products.setProtocolFeeBps(1000);
        assertEq(products.productFeeBps(p), 500);
        IDataProducts.Terms memory t = _terms(IDataProducts.Kind.Stream, 1);
        vm.expectRevert(abi.encodeWithSelector(IDataProducts.BpsSumMismatch.selector, 7000, 2000, 500, 1000));
        vm.prank(operator);
        products.updateTerms(p, t);
        t.membersBps = 6500;
        vm.prank(operator);
        products.updateTerms(p, t);
        assertEq(products.productFeeBps(p), 1000);
    }

    function test_updateTerms_revertsWhenUnknownProduct() public {
        IDataProducts.Terms memory t = _terms(IDataProducts.Kind.Stream, 1);
        vm.expectRevert(abi.encodeWithSelector(IDataProducts.UnknownProduct.selector, 7));
        vm.prank(operator);
        products.updateTerms(ProductId.wrap(7), t);
    }

    function test_updateTerms_revertsWhenNotOperator() public {
        ProductId p = _stream();
        IDataProducts.Terms memory t = _terms(IDataProducts.Kind.Stream, 1);
        vm.expectRevert(abi.encodeWithSelector(IDataProducts.NotProductOperator.selector, p, governor));
        vm.prank(governor);
        products.updateTerms(p, t);
    }

    function test_updateTerms_revertsWhenKindChanges() public {
        ProductId p = _stream();
        IDataProducts.Terms memory t = _terms(IDataProducts.Kind.Api, 1);
        vm.expectRevert(
            abi.encodeWithSelector(
                IDataProducts.KindChange.selector, p, IDataProducts.Kind.Stream, IDataProducts.Kind.Api
            )
        );
        vm.prank(operator);
        products.updateTerms(p, t);
    }

    function test_updateTerms_revertsWhenTermsInvalid() public {
        ProductId p = _dataset();
        IDataProducts.Terms memory t = _terms(IDataProducts.Kind.Dataset, 1);
        t.minCohort = 0;
        vm.expectRevert(abi.encodeWithSelector(IDataProducts.CohortTooSmall.selector, 0, 1));
        vm.prank(operator);
        products.updateTerms(p, t);
    }

    function test_updateTerms_revertsWhenBundleStopsCovering() public {
        ProductId bundle = _bundleOf(_stream(), _api(), _dataset());
        IDataProducts.Terms memory t = _terms(IDataProducts.Kind.Bundle, 1);
        t.minCohort = 10;
        t.requiredPermissions = Permissions.TELEMETRY;
        vm.expectRevert(
            abi.encodeWithSelector(IDataProducts.BundlePermissionsMissing.selector, 1, Permissions.LOCATION)
        );
        vm.prank(operator);
        products.updateTerms(bundle, t);
    }

    // ------------------------------------------------------------------ setActive

    function test_setActive_byOperatorAndGovernor() public {
        ProductId p = _stream();
        vm.expectEmit(address(products));
        emit IDataProducts.ProductActive(p, false);
        vm.prank(operator);
        products.setActive(p, false);
        (,, bool active,) = products.product(p);
        assertFalse(active);

        vm.prank(governor);
        products.setActive(p, true);
        (,, active,) = products.product(p);
        assertTrue(active);
    }

    function test_setActive_governorDeactivationHoldsAgainstTheOperator() public {
        ProductId p = _stream();
        vm.expectEmit(address(products));
        emit IDataProducts.GovernorHold(p, true);
        vm.prank(governor);
        products.setActive(p, false);
        assertTrue(products.heldByGovernor(p));

        vm.expectRevert(abi.encodeWithSelector(IDataProducts.ProductHeldByGovernor.selector, p));
        vm.prank(operator);
        products.setActive(p, true);
        vm.prank(operator); // deactivating stays open to the operator
        products.setActive(p, false);

        vm.expectEmit(address(products));
        emit IDataProducts.GovernorHold(p, false);
        vm.prank(governor);
        products.setActive(p, true);
        assertFalse(products.heldByGovernor(p));
        vm.prank(operator);
        products.setActive(p, false);
        vm.prank(operator);
        products.setActive(p, true);
        (,, bool active,) = products.product(p);
        assertTrue(active);
    }

    function test_setActive_revertsWhenStranger() public {
        ProductId p = _stream();
        vm.expectRevert(abi.encodeWithSelector(IDataProducts.NotProductOperator.selector, p, operator2));
        vm.prank(operator2);
        products.setActive(p, false);
    }

    function test_setActive_revertsWhenUnknownProduct() public {
        vm.expectRevert(abi.encodeWithSelector(IDataProducts.UnknownProduct.selector, 1));
        vm.prank(governor);
        products.setActive(ProductId.wrap(1), false);
    }

    function test_product_revertsWhenUnknown() public {
        vm.expectRevert(abi.encodeWithSelector(IDataProducts.UnknownProduct.selector, 0));
        products.product(ProductId.wrap(0));
        vm.expectRevert(abi.encodeWithSelector(IDataProducts.UnknownProduct.selector, 1));
        products.saleTerms(ProductId.wrap(1));
    }

    function test_saleTerms_reportsInactiveComponent() public {
        (ProductId s, ProductId a, ProductId d) = (_stream(), _api(), _dataset());
        ProductId bundle = _bundleOf(s, a, d);
        assertEq(products.saleTerms(bundle).inactiveComponent, ProductId.wrap(0));
        vm.prank(operator);
        products.setActive(a, false);
        assertEq(products.saleTerms(bundle).inactiveComponent, a);
        IDataProducts.Sale memory sale = products.saleTerms(bundle);
        assertEq(sale.operator, operator);
        assertEq(sale.price, 5 ether);
        assertEq(sale.protocolFeeBps, 500);
    }

    // ------------------------------------------------------------------ join and leave

    function test_join_recordsConsent() public {
        ProductId p = _stream();
        uint256 v = _mintVehicle(alice);
        vm.expectEmit(address(products));
        emit IDataProducts.Joined(p, v, alice, 1);
        vm.prank(alice);
        products.join(p, v);
        assertTrue(products.isMember(p, v));
        assertEq(products.memberCount(p), 1);
        (uint64 version, uint64 generation) = products.consentOf(p, v);
        assertEq(version, 1);
        assertEq(generation, vehicles.generation(v));
    }

    function test_join_bundleIsOneConsent() public {
        (ProductId s, ProductId a, ProductId d) = (_stream(), _api(), _dataset());
        ProductId bundle = _bundleOf(s, a, d);
        uint256 v = _join(bundle, alice);
        assertTrue(products.isMember(bundle, v));
        assertFalse(products.isMember(s, v));
        assertEq(products.memberCount(bundle), 1);
    }

    function test_join_revertsWhenNotOwner() public {
        ProductId p = _stream();
        uint256 v = _mintVehicle(alice);
        vm.expectRevert(abi.encodeWithSelector(IDataProducts.NotVehicleOwner.selector, v, bob));
        vm.prank(bob);
        products.join(p, v);
    }

    function test_join_revertsWhenProductInactive() public {
        ProductId p = _stream();
        vm.prank(operator);
        products.setActive(p, false);
        uint256 v = _mintVehicle(alice);
        vm.expectRevert(abi.encodeWithSelector(IDataProducts.ProductInactive.selector, p));
        vm.prank(alice);
        products.join(p, v);
    }

    function test_join_revertsWhenOperatorInactive() public {
        ProductId p = _stream();
        _deactivate(operator, IStaking.Role.Operator);
        uint256 v = _mintVehicle(alice);
        vm.expectRevert(abi.encodeWithSelector(IDataProducts.OperatorInactive.selector, p, operator));
        vm.prank(alice);
        products.join(p, v);
    }

    function test_join_revertsWhenUnknownProduct() public {
        uint256 v = _mintVehicle(alice);
        vm.expectRevert(abi.encodeWithSelector(IDataProducts.UnknownProduct.selector, 5));
        vm.prank(alice);
        products.join(ProductId.wrap(5), v);
    }

    function test_join_revertsWhenAlreadyMember() public {
        ProductId p = _stream();
        uint256 v = _join(p, alice);
        vm.expectRevert(abi.encodeWithSelector(IDataProducts.AlreadyMember.selector, p, v));
        vm.prank(alice);
        products.join(p, v);
    }

    function test_transfer_voidsMembershipAtOnce() public {
        ProductId p = _stream();
        ProductId p2 = _api();
        uint256 v = _join(p, alice);
        vm.prank(alice);
        products.join(p2, v);
        _transferVehicle(v, bob);
        assertFalse(products.isMember(p, v));
        assertFalse(products.isMember(p2, v));
        // The stale consent still counts until someone calls leave for it.
        assertEq(products.memberCount(p), 1);
    }

    function test_burn_voidsMembershipAndAnyoneMayLeave() public {
        ProductId p = _stream();
        uint256 v = _join(p, alice);
        vm.prank(alice);
        vehicles.burn(v);
        assertFalse(products.isMember(p, v));
        vm.prank(stranger);
        products.leave(p, v);
        assertEq(products.memberCount(p), 0);
    }

    function test_join_newOwnerReconsentsWithoutDoubleCount() public {
        ProductId p = _stream();
        uint256 v = _join(p, alice);
        _transferVehicle(v, bob);
        vm.prank(bob);
        products.join(p, v);
        assertTrue(products.isMember(p, v));
        assertEq(products.memberCount(p), 1);
    }

    function test_leave_byOwner() public {
        ProductId p = _stream();
        uint256 v = _join(p, alice);
        vm.expectEmit(address(products));
        emit IDataProducts.Left(p, v);
        vm.prank(alice);
        products.leave(p, v);
        assertFalse(products.isMember(p, v));
        assertEq(products.memberCount(p), 0);
        (uint64 version,) = products.consentOf(p, v);
        assertEq(version, 0);
    }

    function test_leave_revertsWhenStrangerAndVehicleNotTransferred() public {
        ProductId p = _stream();
        uint256 v = _join(p, alice);
        vm.expectRevert(abi.encodeWithSelector(IDataProducts.NotVehicleOwner.selector, v, stranger));
        vm.prank(stranger);
        products.leave(p, v);
    }

    function test_leave_byAnyoneOnceTransferred() public {
        ProductId p = _stream();
        uint256 v = _join(p, alice);
        _transferVehicle(v, bob);
        vm.prank(stranger);
        products.leave(p, v);
        assertEq(products.memberCount(p), 0);
    }

    function test_leave_revertsWhenNoConsent() public {
        ProductId p = _stream();
        uint256 v = _mintVehicle(alice);
        vm.expectRevert(abi.encodeWithSelector(IDataProducts.NoConsent.selector, p, v));
        vm.prank(alice);
        products.leave(p, v);
    }

    function test_leave_ofAnOldVersionLeavesTheCurrentCount() public {
        ProductId p = _stream();
        uint256 v1 = _join(p, alice);
        vm.prank(operator);
        products.updateTerms(p, _terms(IDataProducts.Kind.Stream, 1));
        _join(p, bob);
        assertEq(products.memberCount(p), 1);
        vm.prank(alice);
        products.leave(p, v1);
        assertEq(products.memberCount(p), 1);
    }

    function test_isMember_falseForUnknown() public view {
        assertFalse(products.isMember(ProductId.wrap(1), 1));
        assertEq(products.memberCount(ProductId.wrap(1)), 0);
    }

    // ------------------------------------------------------------------ joinBySig

    function _joinDigest(ProductId productId, uint256 vehicleId, uint64 version, uint256 nonce, uint256 deadline)
        internal
        view
        returns (bytes32)
    {
        bytes32 structHash = keccak256(
            abi.encode(
                keccak256(
                    "Join(uint256 productId,uint256 vehicleId,uint64 generation,uint64 version,uint256 nonce,uint256 deadline)"
                ),
                productId,
                vehicleId,
                vehicles.generation(vehicleId),
                version,
                nonce,
                deadline
            )
        );
        bytes32 domain = keccak256(
            abi.encode(
                keccak256("EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)"),
                keccak256("DIMO Data Products"),
                keccak256("1"),
                block.chainid,
                address(products)
            )
        );
        return keccak256(abi.encodePacked("\x19\x01", domain, structHash));
    }

    function _signJoin(uint256 key, ProductId productId, uint256 vehicleId, uint64 version, uint256 deadline)
        internal
        view
        returns (bytes memory)
    {
        address signer = vm.addr(key);
        return signDigest(key, _joinDigest(productId, vehicleId, version, freeNonce(products, signer), deadline));
    }

    function test_joinBySig_relayedByAnyone() public {
        ProductId p = _stream();
        uint256 v = _mintVehicle(alice);
        uint256 deadline = block.timestamp + 1 hours;
        bytes memory sig = _signJoin(aliceKey, p, v, 1, deadline);
        vm.expectEmit(address(products));
        emit IDataProducts.Joined(p, v, alice, 1);
        vm.prank(stranger);
        products.joinBySig(p, v, 1, 0, deadline, sig);
        assertTrue(products.isMember(p, v));
        assertEq(freeNonce(products, alice), 1);
        assertEq(
            products.JOIN_TYPEHASH(),
            keccak256(
                    "Join(uint256 productId,uint256 vehicleId,uint64 generation,uint64 version,uint256 nonce,uint256 deadline)"
                )
        );
    }

    function test_joinBySig_acceptsTheDeadlineSecond() public {
        ProductId p = _stream();
        uint256 v = _mintVehicle(alice);
        bytes memory sig = _signJoin(aliceKey, p, v, 1, block.timestamp);
        products.joinBySig(p, v, 1, 0, block.timestamp, sig);
        assertTrue(products.isMember(p, v));
    }

    function test_joinBySig_revertsWhenExpired() public {
        ProductId p = _stream();
        uint256 v = _mintVehicle(alice);
        uint256 deadline = block.timestamp + 10;
        bytes memory sig = _signJoin(aliceKey, p, v, 1, deadline);
        vm.warp(deadline + 1);
        vm.expectRevert(abi.encodeWithSelector(IDataProducts.SignatureExpired.selector, deadline));
        products.joinBySig(p, v, 1, 0, deadline, sig);
    }

    function test_joinBySig_revertsWhenVersionMoved() public {
        ProductId p = _stream();
        uint256 v = _mintVehicle(alice);
        uint256 deadline = block.timestamp + 1 hours;
        bytes memory sig = _signJoin(aliceKey, p, v, 1, deadline);
        vm.prank(operator);
        products.updateTerms(p, _terms(IDataProducts.Kind.Stream, 9 ether));
        vm.expectRevert(abi.encodeWithSelector(IDataProducts.VersionMismatch.selector, p, 1, 2));
        products.joinBySig(p, v, 1, 0, deadline, sig);
    }

    function test_joinBySig_revertsWhenSignerIsNotOwner() public {
        ProductId p = _stream();
        uint256 v = _mintVehicle(alice);
        uint256 deadline = block.timestamp + 1 hours;
        bytes memory sig = signDigest(bobKey, _joinDigest(p, v, 1, freeNonce(products, alice), deadline));
        vm.expectRevert(abi.encodeWithSelector(IDataProducts.InvalidSignature.selector, alice));
        products.joinBySig(p, v, 1, 0, deadline, sig);
    }

    function test_joinBySig_revertsWhenReplayed() public {
        ProductId p = _stream();
        uint256 v = _mintVehicle(alice);
        uint256 deadline = block.timestamp + 1 hours;
        bytes memory sig = _signJoin(aliceKey, p, v, 1, deadline);
        products.joinBySig(p, v, 1, 0, deadline, sig);
        vm.prank(alice);
        products.leave(p, v);
        vm.expectRevert(abi.encodeWithSelector(IUnorderedNonces.NonceAlreadyUsed.selector, alice, 0));
        products.joinBySig(p, v, 1, 0, deadline, sig);
    }

    function test_joinBySig_revertsWhenFieldsTampered() public {
        ProductId p = _stream();
        ProductId p2 = _stream();
        uint256 v = _mintVehicle(alice);
        uint256 v2 = _mintVehicle(alice);
        uint256 deadline = block.timestamp + 1 hours;
        bytes memory sig = _signJoin(aliceKey, p, v, 1, deadline);
        vm.expectRevert(abi.encodeWithSelector(IDataProducts.InvalidSignature.selector, alice));
        products.joinBySig(p2, v, 1, 0, deadline, sig);
        vm.expectRevert(abi.encodeWithSelector(IDataProducts.InvalidSignature.selector, alice));
        products.joinBySig(p, v2, 1, 0, deadline, sig);
        vm.expectRevert(abi.encodeWithSelector(IDataProducts.InvalidSignature.selector, alice));
        products.joinBySig(p, v, 1, 0, deadline + 1, sig);
    }

    function test_joinBySig_revertsWhenVehicleTransferredAfterSigning() public {
        ProductId p = _stream();
        uint256 v = _mintVehicle(alice);
        uint256 deadline = block.timestamp + 1 hours;
        bytes memory sig = _signJoin(aliceKey, p, v, 1, deadline);
        _transferVehicle(v, bob);
        vm.expectRevert(abi.encodeWithSelector(IDataProducts.InvalidSignature.selector, bob));
        products.joinBySig(p, v, 1, 0, deadline, sig);
    }

    function test_joinBySig_signedBeforeASaleIsVoidAfterABuyBack() public {
        ProductId p = _stream();
        uint256 v = _mintVehicle(alice);
        uint256 deadline = block.timestamp + 1 hours;
        bytes memory sig = _signJoin(aliceKey, p, v, 1, deadline);
        _transferVehicle(v, bob);
        _transferVehicle(v, alice);
        vm.expectRevert(abi.encodeWithSelector(IDataProducts.InvalidSignature.selector, alice));
        products.joinBySig(p, v, 1, 0, deadline, sig);
        assertFalse(products.isMember(p, v));
    }

    function test_joinBySig_anUnusedSignatureIsCancelledAfterJoiningAndLeaving() public {
        ProductId p = _stream();
        uint256 v = _mintVehicle(alice);
        uint256 deadline = block.timestamp + 1 hours;
        bytes memory sig = _signJoin(aliceKey, p, v, 1, deadline); // signed in an operator's app
        vm.startPrank(alice);
        products.join(p, v);
        products.leave(p, v);
        vm.expectEmit(address(products));
        emit IUnorderedNonces.NoncesInvalidated(alice, 0, 1);
        products.invalidateNonces(0, 1);
        vm.stopPrank();
        vm.expectRevert(abi.encodeWithSelector(IUnorderedNonces.NonceAlreadyUsed.selector, alice, 0));
        products.joinBySig(p, v, 1, 0, deadline, sig);
        assertFalse(products.isMember(p, v));
    }

    function test_joinBySig_manyOutstandingUsedInAnyOrder() public {
        ProductId p = _stream();
        uint256 v1 = _mintVehicle(alice);
        uint256 v2 = _mintVehicle(alice);
        uint256 deadline = block.timestamp + 1 hours;
        bytes memory sig1 = signDigest(aliceKey, _joinDigest(p, v1, 1, 7, deadline));
        bytes memory sig2 = signDigest(aliceKey, _joinDigest(p, v2, 1, 3, deadline));
        products.joinBySig(p, v2, 1, 3, deadline, sig2);
        products.joinBySig(p, v1, 1, 7, deadline, sig1);
        assertTrue(products.isMember(p, v1));
        assertTrue(products.isMember(p, v2));
        assertEq(products.nonceBitmap(alice, 0), (1 << 7) | (1 << 3));
    }

    function test_joinBySig_revertsWhenProductInactive() public {
        ProductId p = _stream();
        uint256 v = _mintVehicle(alice);
        uint256 deadline = block.timestamp + 1 hours;
        bytes memory sig = _signJoin(aliceKey, p, v, 1, deadline);
        vm.prank(operator);
        products.setActive(p, false);
        vm.expectRevert(abi.encodeWithSelector(IDataProducts.ProductInactive.selector, p));
        products.joinBySig(p, v, 1, 0, deadline, sig);
    }

    function test_joinBySig_acceptsAnERC1271Wallet() public {
        OwnerKeyWallet wallet = new OwnerKeyWallet(alice);
        ProductId p = _stream();
        uint256 v = _mintVehicle(address(wallet));
        uint256 deadline = block.timestamp + 1 hours;
        bytes memory sig = signDigest(aliceKey, _joinDigest(p, v, 1, freeNonce(products, address(wallet)), deadline));
        products.joinBySig(p, v, 1, 0, deadline, sig);
        assertTrue(products.isMember(p, v));
        assertEq(freeNonce(products, address(wallet)), 1);

        // The wallet refuses another key's signature.
        uint256 v2 = _mintVehicle(address(wallet));
        bytes memory bad = signDigest(bobKey, _joinDigest(p, v2, 1, freeNonce(products, address(wallet)), deadline));
        vm.expectRevert(abi.encodeWithSelector(IDataProducts.InvalidSignature.selector, address(wallet)));
        products.joinBySig(p, v2, 1, 1, deadline, bad);
    }

    function test_joinBySig_revertsWhenSignatureMalformed() public {
        ProductId p = _stream();
        uint256 v = _mintVehicle(alice);
        vm.expectRevert(abi.encodeWithSelector(IDataProducts.InvalidSignature.selector, alice));
        products.joinBySig(p, v, 1, 0, block.timestamp, hex"1234");
    }

    // ------------------------------------------------------------------ demand

    function test_signalDemand_byEachActiveRole() public {
        address[3] memory authors = [operator, broker, consumer];
        for (uint256 i; i < 3; ++i) {
            vm.expectEmit(address(products));
            emit IDataProducts.DemandSignaled(i + 1, authors[i], bytes32(i), "ipfs://spec", 5000 ether);
            vm.prank(authors[i]);
            uint256 id = products.signalDemand(bytes32(i), "ipfs://spec", 5000 ether);
            assertEq(id, i + 1);
            (address account, bytes32 spec, uint256 budget, bool open) = products.demand(id);
            assertEq(account, authors[i]);
            assertEq(spec, bytes32(i));
            assertEq(budget, 5000 ether);
            assertTrue(open);
        }
    }

    function test_signalDemand_revertsWhenNotActive() public {
        vm.expectRevert(abi.encodeWithSelector(IDataProducts.NotActiveParticipant.selector, stranger));
        vm.prank(stranger);
        products.signalDemand(bytes32(0), "", 0);
    }

    function test_withdrawDemand_byAuthor() public {
        vm.prank(consumer);
        uint256 id = products.signalDemand(keccak256("battery health"), "ipfs://x", 1);
        vm.expectEmit(address(products));
        emit IDataProducts.DemandWithdrawn(id);
        vm.prank(consumer);
        products.withdrawDemand(id);
        (,,, bool open) = products.demand(id);
        assertFalse(open);
    }

    function test_withdrawDemand_revertsWhenNotAuthor() public {
        vm.prank(consumer);
        uint256 id = products.signalDemand(keccak256("battery health"), "ipfs://x", 1);
        vm.expectRevert(abi.encodeWithSelector(IDataProducts.NotDemandAuthor.selector, id, broker));
        vm.prank(broker);
        products.withdrawDemand(id);
    }

    function test_withdrawDemand_revertsWhenNotOpen() public {
        vm.expectRevert(abi.encodeWithSelector(IDataProducts.DemandNotOpen.selector, 1));
        vm.prank(consumer);
        products.withdrawDemand(1);
        vm.prank(consumer);
        uint256 id = products.signalDemand(keccak256("battery health"), "ipfs://x", 1);
        vm.prank(consumer);
        products.withdrawDemand(id);
        vm.expectRevert(abi.encodeWithSelector(IDataProducts.DemandNotOpen.selector, id));
        vm.prank(consumer);
        products.withdrawDemand(id);
    }

    // ------------------------------------------------------------------ protocol fee

    function test_setProtocolFeeBps_byGovernor() public {
        vm.expectEmit(address(products));
        emit IDataProducts.ProtocolFeeSet(250);
        vm.prank(governor);
        products.setProtocolFeeBps(250);
        assertEq(products.protocolFeeBps(), 250);
        IDataProducts.Terms memory t = _terms(IDataProducts.Kind.Stream, 1);
        t.membersBps = 7250;
        vm.prank(operator);
        ProductId p = products.createProduct(t);
        assertEq(products.productFeeBps(p), 250);
    }

    function test_setProtocolFeeBps_acceptsTheMaximum() public {
        vm.prank(governor);
        products.setProtocolFeeBps(2_000);
        assertEq(products.protocolFeeBps(), products.MAX_PROTOCOL_FEE_BPS());
        assertEq(products.MAX_PROTOCOL_FEE_BPS(), 2_000);
    }

    function test_setProtocolFeeBps_revertsWhenAboveTheMaximum() public {
        vm.expectRevert(abi.encodeWithSelector(IDataProducts.FeeTooHigh.selector, 2_001, 2_000));
        vm.prank(governor);
        products.setProtocolFeeBps(2_001);
    }

    function testFuzz_setProtocolFeeBps_boundedAt20Percent(uint16 bps) public {
        vm.prank(governor);
        if (bps > 2_000) {
            vm.expectRevert(abi.encodeWithSelector(IDataProducts.FeeTooHigh.selector, bps, 2_000));
            products.setProtocolFeeBps(bps);
        } else {
            products.setProtocolFeeBps(bps);
            assertEq(products.protocolFeeBps(), bps);
        }
    }

    /// @notice A fee change bumps no version: consents stay memberships, the count stays, and
    ///         the product keeps the fee its terms were agreed under until its next update.
    function test_setProtocolFeeBps_voidsNoConsent() public {
        ProductId p = _stream();
        uint256 v = _join(p, alice);
        (, uint64 before,,) = products.product(p);
        vm.prank(governor);
        products.setProtocolFeeBps(1_000);
        (, uint64 afterChange,,) = products.product(p);
        assertEq(afterChange, before);
        assertTrue(products.isMember(p, v));
        assertEq(products.memberCount(p), 1);
        assertEq(products.productFeeBps(p), 500);
    }

    function test_setProtocolFeeBps_revertsWhenNotGovernor() public {
        vm.expectRevert(
            abi.encodeWithSelector(
                IAccessControl.AccessControlUnauthorizedAccount.selector, operator, products.GOVERNOR_ROLE()
            )
        );
        vm.prank(operator);
        products.setProtocolFeeBps(1);
    }
}
