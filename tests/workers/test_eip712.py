"""workers.eip712 off-chain: type strings equal the contracts', signatures recover to the
signer, VIN hashing follows DESIGN.md §3.7. On-chain acceptance is tests/ape/test_identity.py."""

from __future__ import annotations

import pytest
from eth_account import Account
from eth_utils import keccak

from workers import eip712
from workers.protocol import NO_END
from workers.protocol.permissions import LOCATION, LOCK, TELEMETRY

CONTRACT = "0x5FbDB2315678afecb367f032d93F642f64180aa3"
KEY = "0x" + "11" * 32


def _type_string(primary: str, fields: list[dict[str, str]]) -> str:
    return primary + "(" + ",".join(f"{f['type']} {f['name']}" for f in fields) + ")"


def test_type_strings_are_those_of_the_contracts():
    assert _type_string("Grant", eip712.GRANT_FIELDS) == (
        "Grant(uint256 vehicleId,uint64 generation,address grantee,uint256 permissions,uint64 expiresAt,"
        "bytes32 termsHash,uint256 nonce,uint256 deadline)"
    )
    assert _type_string("MintAttestation", eip712.MINT_ATTESTATION_FIELDS) == (
        "MintAttestation(address to,uint256 connectionId,bytes32 vinHash,uint256 nonce,uint256 deadline)"
    )
    assert _type_string("Pair", eip712.PAIR_FIELDS) == (
        "Pair(uint256 vehicleId,uint256 deviceId,uint256 nonce,uint256 deadline)"
    )
    assert _type_string("Join", eip712.JOIN_FIELDS) == (
        "Join(uint256 productId,uint256 vehicleId,uint64 generation,uint64 version,"
        "uint256 nonce,uint256 deadline)"
    )


def test_domain_separator_is_the_eip712_hash_of_the_domain():
    dom = eip712.domain(eip712.VEHICLE_DOMAIN, 31337, CONTRACT.lower())
    assert dom["verifyingContract"] == CONTRACT
    doc = eip712.pair(dom, vehicle_id=1, device_id=2, nonce=0, deadline=10)
    type_hash = keccak(b"EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)")
    expected = keccak(
        type_hash
        + keccak(b"DIMO Vehicle")
        + keccak(b"1")
        + (31337).to_bytes(32, "big")
        + bytes.fromhex(CONTRACT[2:]).rjust(32, b"\0")
    )
    assert eip712.encode(doc).header == expected


def test_struct_hash_of_pair_matches_manual_encoding():
    doc = eip712.pair(
        eip712.domain(eip712.DEVICE_DOMAIN, 1, CONTRACT), vehicle_id=7, device_id=9, nonce=3, deadline=99
    )
    type_hash = keccak(b"Pair(uint256 vehicleId,uint256 deviceId,uint256 nonce,uint256 deadline)")
    body = type_hash + b"".join(v.to_bytes(32, "big") for v in (7, 9, 3, 99))
    assert eip712.encode(doc).body == keccak(body)


@pytest.mark.parametrize(
    "build",
    [
        lambda d: eip712.grant(
            d,
            vehicle_id=1,
            generation=1,
            grantee=CONTRACT,
            permissions=TELEMETRY | LOCATION,
            expires_at=NO_END,
            terms_hash="0x" + "ab" * 32,
            nonce=0,
            deadline=1,
        ),
        lambda d: eip712.mint_attestation(
            d, to=CONTRACT, connection_id=1, vin_hash=b"\x01" * 32, nonce=5, deadline=1
        ),
        lambda d: eip712.pair(d, vehicle_id=1, device_id=1, nonce=0, deadline=1),
        lambda d: eip712.join(d, product_id=3, vehicle_id=1, generation=1, version=2, nonce=0, deadline=1),
    ],
)
def test_signatures_recover_to_the_signer_with_low_s(build):
    doc = build(eip712.domain(eip712.VEHICLE_DOMAIN, 31337, CONTRACT))
    signature = eip712.sign(doc, KEY)
    assert len(signature) == 65
    assert signature[64] in (27, 28)
    s = int.from_bytes(signature[32:64], "big")
    assert s <= 0x7FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF5D576E7357A4501DDFE92F46681B20A0
    assert eip712.recover(doc, signature) == Account.from_key(KEY).address
    assert len(eip712.digest(doc)) == 32


def test_struct_hash_of_join_matches_manual_encoding():
    dom = eip712.domain(eip712.DATA_PRODUCTS_DOMAIN, 31337, CONTRACT)
    doc = eip712.join(
        dom, product_id=4, vehicle_id=11, generation=3, version=2, nonce=1, deadline=1_800_000_000
    )
    type_hash = keccak(
        b"Join(uint256 productId,uint256 vehicleId,uint64 generation,uint64 version,"
        b"uint256 nonce,uint256 deadline)"
    )
    body = type_hash + b"".join(v.to_bytes(32, "big") for v in (4, 11, 3, 2, 1, 1_800_000_000))
    assert eip712.encode(doc).body == keccak(body)
    assert dom["name"] == "DIMO Data Products" and dom["version"] == "1"


def test_grant_rejects_a_terms_hash_that_is_not_32_bytes():
    with pytest.raises(ValueError, match="32 bytes"):
        eip712.grant(
            eip712.domain(eip712.VEHICLE_DOMAIN, 1, CONTRACT),
            vehicle_id=1,
            generation=1,
            grantee=CONTRACT,
            permissions=LOCK,
            expires_at=2,
            terms_hash=b"short",
            nonce=0,
            deadline=1,
        )


def test_vin_hash_is_keccak_of_upper_case_ascii():
    assert eip712.vin_hash(" 1hgcm82633a004352 ") == keccak(b"1HGCM82633A004352")


@pytest.mark.parametrize(
    "vin", ["", "1HGCM82633A00435", "1HGCM82633A0043521", "1HGCM82633A00435O", "VIN-0000000000000"]
)
def test_vin_hash_refuses_what_is_not_a_vin(vin):
    with pytest.raises(eip712.InvalidVinError):
        eip712.vin_hash(vin)
