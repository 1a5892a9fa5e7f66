"""Signed plug-in device telemetry (DESIGN.md §3.7, `POST /v1/devices/{deviceId}/telemetry`).

A device signs EIP-712 `Telemetry(deviceId, sequence, timestamp, payloadHash)` in the
"DIMO Telemetry" domain (verifyingContract = AftermarketDevice), where payloadHash is
keccak256 of the RFC 8785 canonical JSON of its signals: an object of VSS name -> value.

A payload is stored only if it is signed by the device key registered on chain, the device
is paired to a vehicle, its timestamp is within the freshness window and its sequence is
above every sequence accepted from that device before (checked and raised atomically with
the insert). Otherwise it is refused with a stable reason and nothing is written:
`bad_payload`, `unknown_device`, `bad_signature`, `stale`, `unpaired`, `replayed`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any, Protocol

import rfc8785
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed, encode_dss_signature
from eth_keys import keys
from eth_keys.exceptions import BadSignature
from eth_utils import keccak, to_checksum_address
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from web3.contract import Contract
from web3.exceptions import ContractLogicError

from workers import eip712
from workers.db.oem import DevicePayload, DeviceSequence
from workers.oem.errors import MalformedPayloadError
from workers.oem.signals import Signal, device_source, make_signal
from workers.protocol import UINT64_MAX, UINT256_MAX
from workers.signals.store import store_signals

SIGNATURE_BYTES = 65
#: The order of secp256k1's group.
SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
#: The digest is an EIP-712 hash already: ECDSA over it as is (32 bytes, like SHA-256's).
_PREHASHED = ec.ECDSA(Prehashed(hashes.SHA256()))
#: At most this many signals in one payload.
MAX_SIGNALS = 256


class TelemetryRefused(Exception):  # noqa: N818 - a refusal, with its reason, not a fault
    """The payload is refused; `reason` is one of the module's stable codes."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True)
class Envelope:
    """What a device posts: the signed fields, its signals and the signature."""

    device_id: int
    sequence: int
    timestamp: int
    signals: dict[str, Any]
    signature: str

    @classmethod
    def parse(cls, body: Any, device_id: int | None = None) -> Envelope:
        """From JSON `{"device_id", "sequence", "timestamp", "signals": {name: value},
        "signature"}`; `device_id` from the URL must match the body's when both are given."""
        if not isinstance(body, dict):
            raise TelemetryRefused("bad_payload", "the body must be a JSON object")
        try:
            envelope = cls(
                device_id=_uint(body.get("device_id", device_id), "device_id", UINT256_MAX),
                sequence=_uint(body["sequence"], "sequence", UINT64_MAX),
                timestamp=_uint(body["timestamp"], "timestamp", UINT64_MAX),
                signals=body["signals"],
                signature=str(body["signature"]),
            )
        except KeyError as exc:
            raise TelemetryRefused("bad_payload", f"missing {exc.args[0]!r}") from exc
        if device_id is not None and envelope.device_id != device_id:
            raise TelemetryRefused("bad_payload", f"body device_id {envelope.device_id} is not {device_id}")
        if not isinstance(envelope.signals, dict) or not 0 < len(envelope.signals) <= MAX_SIGNALS:
            raise TelemetryRefused("bad_payload", f"signals must be an object of 1..{MAX_SIGNALS} entries")
        return envelope


def now_ms() -> int:
    return int(time.time() * 1000)


def _uint(value: Any, what: str, maximum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= maximum:
        raise TelemetryRefused("bad_payload", f"{what} must be an integer in [0, {maximum}], got {value!r}")
    return value


def canonical_json(signals: dict[str, Any]) -> bytes:
    """RFC 8785 (JCS) canonical form: what payloadHash is taken over."""
    try:
        return rfc8785.dumps(signals)
    except (rfc8785.CanonicalizationError, TypeError, ValueError) as exc:
        raise TelemetryRefused("bad_payload", f"signals are not canonicalisable JSON: {exc}") from exc


def payload_hash(signals: dict[str, Any]) -> bytes:
    return keccak(canonical_json(signals))


def telemetry_domain(chain_id: int, aftermarket_device: str) -> eip712.Domain:
    return eip712.domain(eip712.TELEMETRY_DOMAIN, chain_id, aftermarket_device)


def typed(domain: eip712.Domain, envelope: Envelope, digest: bytes) -> eip712.TypedData:
    return eip712.telemetry(
        domain,
        device_id=envelope.device_id,
        sequence=envelope.sequence,
        timestamp=envelope.timestamp,
        payload_hash=digest,
    )


def sign_envelope(
    domain: eip712.Domain,
    private_key: str,
    *,
    device_id: int,
    sequence: int,
    timestamp: int,
    signals: dict[str, Any],
) -> dict[str, Any]:
    """What a device does: the JSON body of a signed telemetry post (used by devices' tools,
    the demo and the tests)."""
    unsigned = Envelope(device_id, sequence, timestamp, signals, "")
    signature = eip712.sign(typed(domain, unsigned, payload_hash(signals)), private_key)
    return {
        "device_id": device_id,
        "sequence": sequence,
        "timestamp": timestamp,
        "signals": signals,
        "signature": "0x" + signature.hex(),
    }


class DeviceRegistry(Protocol):
    """What the verifier needs to know about a device, as the chain says it now."""

    def signer_of(self, device_id: int) -> str | None:
        """The device key, or None if there is no such device."""
        ...

    def vehicle_of(self, device_id: int) -> int:
        """The vehicle the device is paired with now, or 0 (also for a revoked device)."""
        ...

    def is_revoked(self, device_id: int) -> bool:
        """Whether the device's manufacturer revoked it."""
        ...


class ChainDeviceRegistry:
    """AftermarketDevice's views on the latest block, read on every payload: the owner and the
    manufacturer may rotate a device's key and the manufacturer may revoke it, so neither the
    signer nor the pairing may be remembered (the public keys behind signers are, by the
    SignatureChecker)."""

    def __init__(self, aftermarket_device: Contract) -> None:
        self.contract = aftermarket_device

    def signer_of(self, device_id: int) -> str | None:
        try:
            signer = self.contract.functions.deviceSigner(device_id).call(block_identifier="latest")
        except ContractLogicError:  # ERC721NonexistentToken: maybe minted later
            return None
        if int(signer, 16) == 0:
            return None
        return to_checksum_address(signer)

    def vehicle_of(self, device_id: int) -> int:
        return int(self.contract.functions.vehicleOfDevice(device_id).call(block_identifier="latest"))

    def is_revoked(self, device_id: int) -> bool:
        return bool(self.contract.functions.isDeviceRevoked(device_id).call(block_identifier="latest"))


@dataclass(frozen=True)
class Verified:
    """A payload that passed every check but the sequence (which `store` settles)."""

    envelope: Envelope
    vehicle_id: int
    signer: str
    payload_hash: bytes
    canonical: str
    signals: list[Signal]


class TelemetryVerifier:
    def __init__(
        self,
        domain: eip712.Domain,
        registry: DeviceRegistry,
        *,
        max_age: int,
        max_future: int,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.domain = domain
        self.registry = registry
        self.max_age = max_age
        self.max_future = max_future
        self.signatures = SignatureChecker()
        self._clock = clock

    def verify(self, envelope: Envelope) -> Verified:
        """Every check except the sequence; TelemetryRefused on the first that fails."""
        canonical = canonical_json(envelope.signals)
        digest = keccak(canonical)
        signer = self.registry.signer_of(envelope.device_id)
        if signer is None:
            raise TelemetryRefused("unknown_device", f"no device {envelope.device_id} on chain")
        message_hash = eip712.digest(typed(self.domain, envelope, digest))
        if not self.signatures.check(message_hash, _signature_bytes(envelope.signature), signer):
            raise TelemetryRefused(
                "bad_signature", f"not signed by device {envelope.device_id}'s key {signer}"
            )
        now = self._clock()
        if not now - self.max_age <= envelope.timestamp <= now + self.max_future:
            raise TelemetryRefused(
                "stale",
                f"timestamp {envelope.timestamp} is outside [now - {self.max_age}, now + {self.max_future}]",
            )
        vehicle_id = self.registry.vehicle_of(envelope.device_id)
        if vehicle_id == 0:
            # A revoked device is paired with nothing on chain; say why (read only when refusing).
            if self.registry.is_revoked(envelope.device_id):
                raise TelemetryRefused(
                    "revoked", f"device {envelope.device_id} was revoked by its manufacturer"
                )
            raise TelemetryRefused("unpaired", f"device {envelope.device_id} is paired with no vehicle")
        observed = datetime.fromtimestamp(envelope.timestamp, UTC)
        source = device_source(envelope.device_id)
        signature = "0x" + envelope.signature.removeprefix("0x").lower()
        try:
            signals = [
                replace(make_signal(name, value, observed, source), signature=signature)
                for name, value in envelope.signals.items()
            ]
        except MalformedPayloadError as exc:
            raise TelemetryRefused("bad_payload", exc.detail) from exc
        return Verified(envelope, vehicle_id, signer, digest, canonical.decode(), signals)


def _signature_bytes(signature: str) -> bytes:
    try:
        raw = bytes.fromhex(signature.removeprefix("0x"))
    except ValueError as exc:
        raise TelemetryRefused("bad_signature", "the signature is not hex") from exc
    if len(raw) != SIGNATURE_BYTES:
        raise TelemetryRefused("bad_signature", f"a signature is {SIGNATURE_BYTES} bytes, got {len(raw)}")
    return raw


class SignatureChecker:
    """Whether a 65-byte `r ‖ s ‖ v` signature over a digest is a given address's.

    The first signature seen from an address is checked by recovering its public key
    (eth-keys, pure Python: milliseconds) and comparing the address; the key is then kept
    and later signatures are verified against it with OpenSSL (`cryptography`), which is
    ~20x faster. Signatures with a high `s` (malleable twins) or a `v` other than 27/28 are
    refused either way, as OpenZeppelin's ECDSA refuses them on chain."""

    #: Public keys kept at most.
    MAX_KEYS = 100_000

    def __init__(self) -> None:
        self._keys: dict[str, ec.EllipticCurvePublicKey] = {}

    def check(self, digest: bytes, signature: bytes, signer: str) -> bool:
        r = int.from_bytes(signature[:32], "big")
        s = int.from_bytes(signature[32:64], "big")
        v = signature[64]
        if v not in (27, 28) or not 0 < r < SECP256K1_N or not 0 < s <= SECP256K1_N // 2:
            return False
        known = self._keys.get(signer)
        if known is not None:
            try:
                known.verify(encode_dss_signature(r, s), digest, _PREHASHED)
            except InvalidSignature:
                return False
            return True
        try:
            public = keys.Signature(vrs=(v - 27, r, s)).recover_public_key_from_msg_hash(digest)
        except (BadSignature, ValueError):
            return False
        if public.to_checksum_address() != signer:
            return False
        raw = public.to_bytes()
        numbers = ec.EllipticCurvePublicNumbers(
            int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big"), ec.SECP256K1()
        )
        if len(self._keys) >= self.MAX_KEYS:
            self._keys.clear()
        self._keys[signer] = numbers.public_key()
        return True


def _claim_sequence(session: Session, device_id: int, sequence: int) -> None:
    """Raises the device's high-water mark to `sequence`, or refuses it as replayed."""
    stamp = now_ms()
    raised = session.execute(
        update(DeviceSequence)
        .where(DeviceSequence.device_id == device_id, DeviceSequence.last_sequence < sequence)
        .values(last_sequence=sequence, updated_at=stamp)
    )
    if raised.rowcount == 1:
        return
    last = session.scalar(select(DeviceSequence.last_sequence).where(DeviceSequence.device_id == device_id))
    if last is not None:
        raise TelemetryRefused("replayed", f"sequence {sequence} is not above {last}")
    try:
        with session.begin_nested():
            session.add(DeviceSequence(device_id=device_id, last_sequence=sequence, updated_at=stamp))
    except IntegrityError as exc:  # another delivery created the row first: it won
        raise TelemetryRefused("replayed", f"sequence {sequence} raced another delivery") from exc


def store(session: Session, verified: Verified) -> int:
    """Claims the sequence and writes the payload and its signals, all in the caller's
    transaction (a refusal rolls everything back); returns the payload id."""
    envelope = verified.envelope
    _claim_sequence(session, envelope.device_id, envelope.sequence)
    payload = DevicePayload(
        device_id=envelope.device_id,
        vehicle_id=verified.vehicle_id,
        sequence=envelope.sequence,
        timestamp=envelope.timestamp,
        payload_hash=verified.payload_hash,
        canonical=verified.canonical,
        signer=verified.signer,
        signature="0x" + envelope.signature.removeprefix("0x").lower(),
        received_at=now_ms(),
    )
    session.add(payload)
    session.flush()
    store_signals(session, verified.vehicle_id, verified.signals)
    return payload.id


@dataclass(frozen=True)
class Accepted:
    payload_id: int
    vehicle_id: int
    device_id: int
    sequence: int
    signals: int


def ingest(
    session: Session, verifier: TelemetryVerifier, body: Any, device_id: int | None = None
) -> Accepted:
    """Parse, verify, store: the whole of `POST /v1/devices/{deviceId}/telemetry` but HTTP.
    The caller commits the session on success and rolls it back on TelemetryRefused."""
    verified = verifier.verify(Envelope.parse(body, device_id))
    payload_id = store(session, verified)
    envelope = verified.envelope
    return Accepted(
        payload_id, verified.vehicle_id, envelope.device_id, envelope.sequence, len(verified.signals)
    )
