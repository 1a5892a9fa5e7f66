"""EIP-712 typed messages of DESIGN.md §3.7, built for eth-account.

One builder per typed message returns the full typed-data document that
`eth_account.messages.encode_typed_data(full_message=...)` and wallets
(`eth_signTypedData_v4`) take; `sign` turns one into the 65-byte `r || s || v`
signature the contracts verify. Type strings here must stay byte-for-byte those of
the contracts (`GRANT_TYPEHASH`, `MINT_ATTESTATION_TYPEHASH`, `PAIR_TYPEHASH`,
`JOIN_TYPEHASH`); `Telemetry` is signed off-chain by devices and checked by the workers.

Nonces are unordered (a bitmap per signer on each contract): a signer may use any nonce not
used or cancelled yet (`isNonceUsed`, `invalidateNonces`); `free_nonce` finds the lowest one.
`Grant` and `Join` carry the vehicle's generation (`VehicleId.generation`) at signing, so a
sale voids them.

    doc = grant(domain(VEHICLE_DOMAIN, chain_id, vehicle_id_address), vehicle_id=1, ...)
    signature = sign(doc, owner_key)
"""

from __future__ import annotations

import re
from typing import Any, TypedDict

from eth_account import Account
from eth_account.messages import SignableMessage, encode_typed_data
from eth_utils import keccak, to_checksum_address

#: Domain names of the contracts (each signs under its own name, version "1").
VEHICLE_DOMAIN = "DIMO Vehicle"
DEVICE_DOMAIN = "DIMO Device"
#: Off-chain device telemetry: its own name, verifyingContract = AftermarketDevice.
TELEMETRY_DOMAIN = "DIMO Telemetry"
DATA_PRODUCTS_DOMAIN = "DIMO Data Products"
DOMAIN_VERSION = "1"

#: A VIN: 17 characters, digits and capital letters except I, O and Q (ISO 3779).
VIN_PATTERN = re.compile(r"[A-HJ-NPR-Z0-9]{17}")

Field = dict[str, str]

EIP712_DOMAIN_FIELDS: list[Field] = [
    {"name": "name", "type": "string"},
    {"name": "version", "type": "string"},
    {"name": "chainId", "type": "uint256"},
    {"name": "verifyingContract", "type": "address"},
]

GRANT_FIELDS: list[Field] = [
    {"name": "vehicleId", "type": "uint256"},
    {"name": "generation", "type": "uint64"},
    {"name": "grantee", "type": "address"},
    {"name": "permissions", "type": "uint256"},
    {"name": "expiresAt", "type": "uint64"},
    {"name": "termsHash", "type": "bytes32"},
    {"name": "nonce", "type": "uint256"},
    {"name": "deadline", "type": "uint256"},
]

MINT_ATTESTATION_FIELDS: list[Field] = [
    {"name": "to", "type": "address"},
    {"name": "connectionId", "type": "uint256"},
    {"name": "vinHash", "type": "bytes32"},
    {"name": "nonce", "type": "uint256"},
    {"name": "deadline", "type": "uint256"},
]

PAIR_FIELDS: list[Field] = [
    {"name": "vehicleId", "type": "uint256"},
    {"name": "deviceId", "type": "uint256"},
    {"name": "nonce", "type": "uint256"},
    {"name": "deadline", "type": "uint256"},
]


TELEMETRY_FIELDS: list[Field] = [
    {"name": "deviceId", "type": "uint256"},
    {"name": "sequence", "type": "uint64"},
    {"name": "timestamp", "type": "uint64"},
    {"name": "payloadHash", "type": "bytes32"},
]

JOIN_FIELDS: list[Field] = [
    {"name": "productId", "type": "uint256"},
    {"name": "vehicleId", "type": "uint256"},
    {"name": "generation", "type": "uint64"},
    {"name": "version", "type": "uint64"},
    {"name": "nonce", "type": "uint256"},
    {"name": "deadline", "type": "uint256"},
]


class Domain(TypedDict):
    name: str
    version: str
    chainId: int
    verifyingContract: str


class TypedData(TypedDict):
    types: dict[str, list[Field]]
    primaryType: str
    domain: Domain
    message: dict[str, Any]


class InvalidVinError(ValueError):
    """The text is not a 17-character VIN."""


def domain(name: str, chain_id: int, contract: str) -> Domain:
    """The EIP-712 domain of contract `name` (e.g. VEHICLE_DOMAIN) at `contract` on `chain_id`."""
    return {
        "name": name,
        "version": DOMAIN_VERSION,
        "chainId": int(chain_id),
        "verifyingContract": to_checksum_address(contract),
    }


def _typed(primary: str, fields: list[Field], dom: Domain, message: dict[str, Any]) -> TypedData:
    return {
        "types": {"EIP712Domain": EIP712_DOMAIN_FIELDS, primary: fields},
        "primaryType": primary,
        "domain": dom,
        "message": message,
    }


def _bytes32(value: bytes | str) -> bytes:
    raw = bytes.fromhex(value.removeprefix("0x")) if isinstance(value, str) else bytes(value)
    if len(raw) != 32:
        raise ValueError(f"expected 32 bytes, got {len(raw)}")
    return raw


def grant(
    dom: Domain,
    *,
    vehicle_id: int,
    generation: int,
    grantee: str,
    permissions: int,
    expires_at: int,
    terms_hash: bytes | str,
    nonce: int,
    deadline: int,
) -> TypedData:
    """`Grant`, signed by the vehicle's owner or a MANAGE_KEYS holder; `generation` =
    VehicleId.generation(vehicleId) now, `nonce` any of the signer's unused ones on VehicleId."""
    return _typed(
        "Grant",
        GRANT_FIELDS,
        dom,
        {
            "vehicleId": int(vehicle_id),
            "generation": int(generation),
            "grantee": to_checksum_address(grantee),
            "permissions": int(permissions),
            "expiresAt": int(expires_at),
            "termsHash": _bytes32(terms_hash),
            "nonce": int(nonce),
            "deadline": int(deadline),
        },
    )


def mint_attestation(
    dom: Domain,
    *,
    to: str,
    connection_id: int,
    vin_hash: bytes | str,
    nonce: int,
    deadline: int,
) -> TypedData:
    """`MintAttestation`, signed by the connection's oracle; `nonce` any of the oracle's unused
    ones on VehicleId (one per outstanding attestation)."""
    return _typed(
        "MintAttestation",
        MINT_ATTESTATION_FIELDS,
        dom,
        {
            "to": to_checksum_address(to),
            "connectionId": int(connection_id),
            "vinHash": _bytes32(vin_hash),
            "nonce": int(nonce),
            "deadline": int(deadline),
        },
    )


def pair(dom: Domain, *, vehicle_id: int, device_id: int, nonce: int, deadline: int) -> TypedData:
    """`Pair`, signed by the device's own key; `nonce` any of its unused ones on AftermarketDevice."""
    return _typed(
        "Pair",
        PAIR_FIELDS,
        dom,
        {
            "vehicleId": int(vehicle_id),
            "deviceId": int(device_id),
            "nonce": int(nonce),
            "deadline": int(deadline),
        },
    )


def telemetry(
    dom: Domain, *, device_id: int, sequence: int, timestamp: int, payload_hash: bytes | str
) -> TypedData:
    """Off-chain `Telemetry`, signed by the device's own key; `payload_hash` = keccak256 of the
    RFC 8785 canonical JSON of the signals (workers/oem/telemetry.py)."""
    return _typed(
        "Telemetry",
        TELEMETRY_FIELDS,
        dom,
        {
            "deviceId": int(device_id),
            "sequence": int(sequence),
            "timestamp": int(timestamp),
            "payloadHash": _bytes32(payload_hash),
        },
    )


def join(
    dom: Domain,
    *,
    product_id: int,
    vehicle_id: int,
    generation: int,
    version: int,
    nonce: int,
    deadline: int,
) -> TypedData:
    """`Join`, signed by the vehicle's owner: consent to `version` of the product (the version the
    owner saw; the contract refuses it once the terms moved on) for the vehicle's `generation`
    (VehicleId.generation now; a sale voids it); `nonce` any of the owner's unused ones on
    DataProducts."""
    return _typed(
        "Join",
        JOIN_FIELDS,
        dom,
        {
            "productId": int(product_id),
            "vehicleId": int(vehicle_id),
            "generation": int(generation),
            "version": int(version),
            "nonce": int(nonce),
            "deadline": int(deadline),
        },
    )


#: Nonce `n` is bit `n % 256` of the signer's word `n // 256` (NonceBitmap.sol).
NONCE_WORD_BITS = 256
_FULL_WORD = (1 << NONCE_WORD_BITS) - 1


def free_nonce(verifier: Any, signer: str, first: int = 0, block_identifier: Any = "latest") -> int:
    """The lowest nonce from `first` on that `signer` has neither used nor cancelled on
    `verifier` (a web3 contract of VehicleId, AftermarketDevice or DataProducts), read from its
    `nonceBitmap`: what a signer that numbers its messages in order signs next."""
    nonce = int(first)
    while True:
        word_pos = nonce // NONCE_WORD_BITS
        word = int(verifier.functions.nonceBitmap(signer, word_pos).call(block_identifier=block_identifier))
        if word != _FULL_WORD:
            for bit in range(nonce % NONCE_WORD_BITS, NONCE_WORD_BITS):
                if not word >> bit & 1:
                    return word_pos * NONCE_WORD_BITS + bit
        nonce = (word_pos + 1) * NONCE_WORD_BITS


def encode(doc: TypedData) -> SignableMessage:
    """The EIP-191 version 0x01 message: header = domain separator, body = struct hash."""
    return encode_typed_data(full_message=dict(doc))


def digest(doc: TypedData) -> bytes:
    """keccak256("\\x19\\x01" || domainSeparator || structHash): what the signer signs."""
    message = encode(doc)
    return keccak(b"\x19" + message.version + message.header + message.body)


def sign(doc: TypedData, private_key: str | bytes) -> bytes:
    """The 65-byte `r || s || v` signature (v = 27 or 28, low s) the contracts accept."""
    return bytes(Account.sign_message(encode(doc), private_key).signature)


def recover(doc: TypedData, signature: bytes) -> str:
    """The address that signed `doc` (for checking a signature off-chain)."""
    return Account.recover_message(encode(doc), signature=signature)


def vin_hash(vin: str) -> bytes:
    """keccak256 of the VIN's 17 characters, upper case, ASCII (DESIGN.md §3.7)."""
    normalised = vin.strip().upper()
    if not VIN_PATTERN.fullmatch(normalised):
        raise InvalidVinError(f"{vin!r} is not a VIN: 17 characters of 0-9 and A-Z without I, O, Q")
    return keccak(normalised.encode("ascii"))
