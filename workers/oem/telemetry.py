"""Signed plug-in device telemetry (DESIGN.md §3.7): what MQTT (`workers.oem.mqtt_ingest`) and
`POST /v1/devices/{deviceId}/telemetry` both hand to `ingest_batch`.

A device signs EIP-712 `Telemetry(deviceId, sequence, timestamp, payloadHash)` in the
"DIMO Telemetry" domain (verifyingContract = AftermarketDevice), where payloadHash is
keccak256 of the RFC 8785 canonical JSON of its signals: an object of VSS name -> value.

A payload is stored only if it is signed by the device key the index holds for the device,
the device is paired (live) with a vehicle and not revoked, its timestamp is within the
freshness window and its sequence is above every sequence accepted from that device before
(claimed in the transaction that stores it). Otherwise it is refused with a stable reason and
nothing of it is written: `bad_payload`, `oversized`, `unknown_device`, `bad_signature`,
`stale`, `unpaired`, `revoked`, `replayed`.

Payloads are verified and stored in batches: the device rows of a batch are one read (and
usually none: `IndexedDevices` caches them), each signature is one native secp256k1 public-key
recovery (coincurve), every hash one call of the C keccak (`workers.merkle.keccak`), a flat
signals object is canonicalised without the general RFC 8785 encoder (`canonical_json`), and
the accepted payloads, their sequence claims and their signals are one multi-row statement per
table in one transaction (payloads and signal history: one COPY each on PostgreSQL).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import rfc8785
from coincurve import PublicKey
from eth_utils import to_checksum_address
from prometheus_client import Counter
from sqlalchemy import Connection, select, tuple_
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from workers import eip712
from workers.chain.views import Chain
from workers.config import Settings
from workers.db import Database, append_rows, for_update, upsert
from workers.db.indexing import ProjectionVersion
from workers.db.oem import DevicePayload, DeviceSequence
from workers.db.projections import Device, Pairing, Vehicle
from workers.merkle import keccak
from workers.oem.errors import MalformedPayloadError
from workers.oem.signals import check_value, device_source
from workers.protocol import UINT64_MAX, UINT256_MAX
from workers.signals.catalogue import CATALOGUE
from workers.signals.store import SignalValue, store_many

log = logging.getLogger(__name__)

SIGNATURE_BYTES = 65
#: The order of secp256k1's group.
SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
#: At most this many signals in one payload.
MAX_SIGNALS = 256
#: Every reason a payload may be refused for (the label values of the refusal counter).
REASONS = (
    "bad_payload",
    "oversized",
    "unknown_device",
    "bad_signature",
    "stale",
    "unpaired",
    "revoked",
    "replayed",
)
_TELEMETRY_TYPEHASH = keccak(
    b"Telemetry(uint256 deviceId,uint64 sequence,uint64 timestamp,bytes32 payloadHash)"
)
#: Integers (and integral floats) JSON carries exactly: RFC 8785 refuses larger integers, and
#: prints larger floats from their shortest digits, not their exact value.
_EXACT_INTEGER = 2**53
#: Floats that Python's repr and ECMAScript's Number-to-string both print in plain decimal
#: notation, with the same (shortest round-trip) digits.
_PLAIN_FLOATS = (1e-4, 1e16)
#: Where a device publishes its envelopes (MQTT, QoS 1): `{prefix}/devices/{deviceId}/telemetry`
#: with MQTT_TOPIC_PREFIX (default `dimo`).
TOPIC = "{prefix}/devices/{device_id}/telemetry"
#: A batch whose claims raced another process's (a first payload of a device, both inserting
#: its sequence row) is retried this many times from a fresh read.
_RACE_RETRIES = 3


class TelemetryRefused(Exception):  # noqa: N818 - a refusal, with its reason, not a fault
    """The payload is refused; `reason` is one of REASONS."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True)
class Envelope:
    """What a device sends: the signed fields, its signals and the signature."""

    device_id: int
    sequence: int
    timestamp: int
    signals: dict[str, Any]
    signature: str

    @classmethod
    def parse(cls, body: Any, device_id: int | None = None) -> Envelope:
        """From JSON `{"device_id", "sequence", "timestamp", "signals": {name: value},
        "signature"}`; `device_id` from the URL or topic must match the body's when both are
        given."""
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


REFUSED = Counter("workers_ingest_refused_total", "Device telemetry payloads refused, by reason", ["reason"])
STORED = Counter(
    "workers_ingest_stored_total", "Device telemetry payloads verified and stored", ["transport"]
)


def topic_of(device_id: int | str, prefix: str = "dimo") -> str:
    """The topic device `device_id` publishes on (`+`: the filter the ingest subscribes to)."""
    return TOPIC.format(prefix=prefix, device_id=device_id)


def device_of_topic(topic: str, prefix: str = "dimo") -> int:
    """The device id of `{prefix}/devices/{deviceId}/telemetry`; `bad_payload` for another."""
    head, _, rest = topic.partition(f"{prefix}/devices/")
    device, _, tail = rest.partition("/")
    if head or tail != "telemetry" or not device.isdigit():
        raise TelemetryRefused("bad_payload", f"{topic!r} is not {topic_of('{deviceId}', prefix)}")
    return _uint(int(device), "the topic's device id", UINT256_MAX)


def record(outcomes: Iterable[Outcome], transport: str) -> int:
    """Counts and logs what a batch came to; returns how many payloads were stored."""
    stored = 0
    for outcome in outcomes:
        if isinstance(outcome, Accepted):
            stored += 1
        else:
            REFUSED.labels(outcome.reason).inc()
            log.info("telemetry refused over %s: %s", transport, outcome)
    STORED.labels(transport).inc(stored)
    return stored


def now_ms() -> int:
    return int(time.time() * 1000)


def _uint(value: Any, what: str, maximum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= maximum:
        raise TelemetryRefused("bad_payload", f"{what} must be an integer in [0, {maximum}], got {value!r}")
    return value


def parse_json(raw: bytes, max_bytes: int) -> Any:
    """A body or message as JSON, refused as `oversized` past `max_bytes`."""
    if len(raw) > max_bytes:
        raise TelemetryRefused("oversized", f"{len(raw)} bytes is more than the {max_bytes} allowed")
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise TelemetryRefused("bad_payload", f"not JSON: {exc}") from exc


def canonical_json(signals: dict[str, Any]) -> bytes:
    """RFC 8785 (JCS) canonical form: what payloadHash is taken over. A flat object of ASCII
    names and plain values (what devices send) takes the fast path, the general encoder the
    rest; both give the same bytes (tests/workers/test_oem_telemetry.py compares them)."""
    flat = _flat_canonical(signals)
    if flat is not None:
        return flat
    try:
        return rfc8785.dumps(signals)
    except (rfc8785.CanonicalizationError, TypeError, ValueError) as exc:
        raise TelemetryRefused("bad_payload", f"signals are not canonicalisable JSON: {exc}") from exc


def _flat_canonical(signals: dict[str, Any]) -> bytes | None:
    """JCS of an object whose names are ASCII and whose values are booleans, exact integers,
    ASCII strings or floats that print alike in Python and ECMAScript; None for anything else.
    For these, JCS is `json.dumps` with sorted keys (ASCII sorts the same by UTF-16 code
    units), no whitespace, and integral floats printed as integers."""
    plain: dict[str, Any] = {}
    for name, value in signals.items():
        if not name.isascii():
            return None
        if value is True or value is False:
            plain[name] = value
        elif type(value) is float:
            magnitude = abs(value)
            if value.is_integer():
                if magnitude >= _EXACT_INTEGER:
                    return None
                plain[name] = int(value)
            elif _PLAIN_FLOATS[0] <= magnitude < _PLAIN_FLOATS[1]:
                plain[name] = value
            else:
                return None
        elif (type(value) is int and -_EXACT_INTEGER < value < _EXACT_INTEGER) or (
            type(value) is str and value.isascii()
        ):
            plain[name] = value
        else:
            return None
    return json.dumps(plain, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


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
    """What a device does: the JSON body of a signed telemetry message (used by devices'
    tools, the demo, the benchmarks and the tests)."""
    unsigned = Envelope(device_id, sequence, timestamp, signals, "")
    signature = eip712.sign(typed(domain, unsigned, payload_hash(signals)), private_key)
    return {
        "device_id": device_id,
        "sequence": sequence,
        "timestamp": timestamp,
        "signals": signals,
        "signature": "0x" + signature.hex(),
    }


class TelemetryDigest:
    """The EIP-712 digest of a `Telemetry` in one domain: the domain separator is computed once
    (by `workers.eip712`), the struct hash per payload from its four words (what
    `eip712.digest(typed(...))` gives, without building typed data each time)."""

    def __init__(self, domain: eip712.Domain) -> None:
        probe = eip712.encode(typed(domain, Envelope(0, 0, 0, {}, ""), bytes(32)))
        self._prefix = b"\x19\x01" + probe.header

    def __call__(self, envelope: Envelope, digest: bytes) -> bytes:
        struct = keccak(
            _TELEMETRY_TYPEHASH
            + envelope.device_id.to_bytes(32, "big")
            + envelope.sequence.to_bytes(32, "big")
            + envelope.timestamp.to_bytes(32, "big")
            + digest
        )
        return keccak(self._prefix + struct)


def recover_signer(digest: bytes, signature: str) -> str:
    """The address whose key made the 65-byte `r ‖ s ‖ v` signature over `digest` (native
    secp256k1 public-key recovery); `bad_signature` for anything OpenZeppelin's ECDSA refuses
    on chain: not 65 bytes, `v` other than 27/28, `r` or `s` out of range, a high `s` (the
    malleable twin)."""
    try:
        raw = bytes.fromhex(signature.removeprefix("0x"))
    except ValueError as exc:
        raise TelemetryRefused("bad_signature", "the signature is not hex") from exc
    if len(raw) != SIGNATURE_BYTES:
        raise TelemetryRefused("bad_signature", f"a signature is {SIGNATURE_BYTES} bytes, got {len(raw)}")
    r = int.from_bytes(raw[:32], "big")
    s = int.from_bytes(raw[32:64], "big")
    v = raw[64]
    if v not in (27, 28) or not 0 < r < SECP256K1_N or not 0 < s <= SECP256K1_N // 2:
        raise TelemetryRefused("bad_signature", "v, r or s is out of range (or s is high)")
    try:
        public = PublicKey.from_signature_and_message(raw[:64] + bytes([v - 27]), digest, hasher=None)
    except ValueError as exc:
        raise TelemetryRefused("bad_signature", "no public key recovers from the signature") from exc
    return "0x" + keccak(public.format(compressed=False)[1:])[-20:].hex()


@dataclass(frozen=True)
class DeviceState:
    """A device as the index says it is now."""

    #: The device key's address, lower case; None when the device is burned.
    signer: str | None
    #: The vehicle of the device's live pairing, or 0.
    vehicle_id: int
    revoked: bool
    #: The device key's address, checksummed (as stored with each payload); "" when burned.
    checksummed: str = ""


class IndexedDevices:
    """Devices' keys and live pairings read from the indexer's projections, kept in process.

    Why a change counter and not a message: the indexer must not know who caches its rows
    (indexing knows no automakers), and a message sent on commit can be lost or arrive before
    the commit is visible. Instead the indexer bumps `projection_versions` for every table it
    writes, in the transaction that writes it (`workers.indexer.store.bump_versions`, also on a
    reorg rollback). Before each batch this cache reads the versions of the tables a device's
    state is made of (one indexed read of three rows) and drops every cached device when one
    moved, so a batch that begins after a pairing, unpairing, rotation, revocation, transfer
    or burn is indexed reads the device again: a stale entry never outlives the batch in which
    its change became visible. Devices not cached are read together, one statement a batch.

    A pairing is live as on chain (`AftermarketDevice._livePairing`): recorded for the device's
    and the vehicle's current generations, and the device not revoked."""

    TABLES = (Device.__tablename__, Pairing.__tablename__, Vehicle.__tablename__)
    #: Devices kept at most (the cache is dropped whole past it).
    MAX_DEVICES = 200_000

    def __init__(self) -> None:
        # (the versions read, the devices read under them): replaced whole, never changed in
        # place but by adding devices, so threads sharing the cache need no lock.
        self._cache: tuple[dict[str, int] | None, dict[int, DeviceState | None]] = (None, {})

    def __contains__(self, device_id: int) -> bool:
        return device_id in self._cache[1]

    def states(self, bind: Connection, device_ids: Iterable[int]) -> dict[int, DeviceState | None]:
        """The state of each device (None: no such device), from the cache when the indexer
        changed nothing since it was filled, else from the projections (one read)."""
        versions = dict(
            bind.execute(
                select(ProjectionVersion.table_name, ProjectionVersion.version).where(
                    ProjectionVersion.table_name.in_(self.TABLES)
                )
            ).all()
        )
        tag, devices = self._cache
        if versions != tag or len(devices) > self.MAX_DEVICES:
            devices = {}
            self._cache = (versions, devices)
        wanted = set(device_ids)
        missing = wanted - devices.keys()
        if missing:
            devices.update(_read_devices(bind, missing))
        return {d: devices[d] for d in wanted}


def _read_devices(bind: Connection, device_ids: set[int]) -> dict[int, DeviceState | None]:
    found: dict[int, DeviceState | None] = dict.fromkeys(device_ids)
    rows = bind.execute(
        select(
            Device.device_id,
            Device.owner,
            Device.device_signer,
            Device.revoked,
            Device.generation,
            Pairing.vehicle_id,
            Pairing.generation,
            Pairing.device_generation,
            Vehicle.generation,
        )
        .outerjoin(Pairing, Pairing.device_id == Device.device_id)
        .outerjoin(Vehicle, Vehicle.vehicle_id == Pairing.vehicle_id)
        .where(Device.device_id.in_(sorted(device_ids)))
    ).all()
    for device_id, owner, signer, revoked, generation, vehicle_id, vehicle_gen, device_gen, current in rows:
        live = (
            vehicle_id is not None
            and not revoked
            and device_gen == generation
            and vehicle_gen is not None
            and vehicle_gen == current
        )
        burned = owner is None or signer is None
        found[int(device_id)] = DeviceState(
            signer=None if burned else signer.lower(),
            vehicle_id=int(vehicle_id) if live else 0,
            revoked=bool(revoked),
            checksummed="" if burned else to_checksum_address(signer),
        )
    return found


@dataclass(frozen=True)
class Verified:
    """A payload that passed every check but the sequence (which `store_batch` settles)."""

    envelope: Envelope
    vehicle_id: int
    signer: str
    payload_hash: bytes
    canonical: str
    signals: list[SignalValue]


@dataclass(frozen=True)
class Accepted:
    payload_id: int
    vehicle_id: int
    device_id: int
    sequence: int
    signals: int


#: What one item of a batch came to: stored, or refused with its reason.
Outcome = Accepted | TelemetryRefused


@dataclass(frozen=True)
class Checked:
    """A payload whose signature, time and signals passed: only its device is left to check."""

    envelope: Envelope
    signer: str
    payload_hash: bytes
    canonical: str


class TelemetryVerifier:
    """Checks payloads against the index (through `devices`) and the clock."""

    def __init__(
        self,
        domain: eip712.Domain,
        *,
        max_age: int,
        max_future: int,
        devices: IndexedDevices | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.digest = TelemetryDigest(domain)
        self.devices = devices if devices is not None else IndexedDevices()
        self.max_age = max_age
        self.max_future = max_future
        self._clock = clock

    def check(self, envelope: Envelope) -> Checked:
        """What needs no database: the signals, the recovered signer, the timestamp."""
        canonical = canonical_json(envelope.signals)
        digest = keccak(canonical)
        signer = recover_signer(self.digest(envelope, digest), envelope.signature)
        now = self._clock()
        if not now - self.max_age <= envelope.timestamp <= now + self.max_future:
            raise TelemetryRefused(
                "stale",
                f"timestamp {envelope.timestamp} is outside [now - {self.max_age}, now + {self.max_future}]",
            )
        return Checked(envelope, signer, digest, canonical.decode())

    def precheck(self, item: Envelope | TelemetryRefused) -> Checked | TelemetryRefused:
        """`check` as an outcome: what a payload comes to before any database is read (the MQTT
        ingest runs it as each message arrives, beside the batch being stored)."""
        if isinstance(item, TelemetryRefused):
            return item
        try:
            return self.check(item)
        except TelemetryRefused as exc:
            return exc

    def verify_batch(
        self, bind: Connection, items: Sequence[Envelope | Checked | TelemetryRefused]
    ) -> list[Verified | TelemetryRefused]:
        """Every check but the sequence, for each item (prechecked ones keep their outcome,
        refusals pass through)."""
        checked = [item if isinstance(item, Checked) else self.precheck(item) for item in items]
        states = self.devices.states(bind, {c.envelope.device_id for c in checked if isinstance(c, Checked)})
        out: list[Verified | TelemetryRefused] = []
        for item in checked:
            if isinstance(item, TelemetryRefused):
                out.append(item)
                continue
            try:
                out.append(self._verified(item, states[item.envelope.device_id]))
            except TelemetryRefused as exc:
                out.append(exc)
        return out

    @staticmethod
    def _verified(checked: Checked, state: DeviceState | None) -> Verified:
        envelope = checked.envelope
        if state is None or state.signer is None:
            raise TelemetryRefused("unknown_device", f"no device {envelope.device_id} on chain")
        if checked.signer != state.signer:
            raise TelemetryRefused(
                "bad_signature",
                f"not signed by device {envelope.device_id}'s key {state.checksummed}",
            )
        if state.revoked:
            raise TelemetryRefused("revoked", f"device {envelope.device_id} was revoked by its manufacturer")
        if state.vehicle_id == 0:
            raise TelemetryRefused("unpaired", f"device {envelope.device_id} is paired with no vehicle")
        observed_ms = envelope.timestamp * 1000
        source = device_source(envelope.device_id)
        signature = "0x" + envelope.signature.removeprefix("0x").lower()
        try:
            signals = [
                SignalValue(
                    name, check_value(name, value), CATALOGUE[name].unit, observed_ms, source, signature
                )
                for name, value in envelope.signals.items()
            ]
        except MalformedPayloadError as exc:
            raise TelemetryRefused("bad_payload", exc.detail) from exc
        return Verified(
            envelope,
            state.vehicle_id,
            state.checksummed,
            checked.payload_hash,
            checked.canonical,
            signals,
        )


def telemetry_verifier(settings: Settings, chain: Chain) -> TelemetryVerifier:
    """The verifier of this deployment's devices (the domain: its chain and AftermarketDevice)."""
    return TelemetryVerifier(
        telemetry_domain(chain.chain_id, chain.aftermarket_device.address),
        max_age=settings.telemetry_max_age,
        max_future=settings.telemetry_max_future,
    )


def store_batch(session: Session, batch: Sequence[Verified | TelemetryRefused]) -> list[Outcome]:
    """Claims the sequences and writes the accepted payloads and their signals, in the caller's
    transaction, with one statement per table: the devices' high-water marks are read locked
    (FOR UPDATE on PostgreSQL; SQLite's writer holds the database), each payload is accepted in
    batch order when its sequence is above its device's mark so far (`replayed` otherwise), and
    the marks are raised with one upsert. Two processes claiming a device's first sequence at
    once both insert: the loser's transaction fails with IntegrityError (the caller retries it)."""
    verified = [v for v in batch if isinstance(v, Verified)]
    if not verified:
        return [item for item in batch if isinstance(item, TelemetryRefused)]
    connection = session.connection()
    devices = sorted({v.envelope.device_id for v in verified})
    marks: dict[int, int] = {
        int(d): int(s)
        for d, s in connection.execute(
            for_update(
                select(DeviceSequence.device_id, DeviceSequence.last_sequence).where(
                    DeviceSequence.device_id.in_(devices)
                )
            )
        ).all()
    }
    claims: dict[int, int] = {}
    taken: list[Verified] = []
    outcomes: list[Verified | TelemetryRefused] = []
    for item in batch:
        if isinstance(item, Verified):
            envelope = item.envelope
            last = claims.get(envelope.device_id, marks.get(envelope.device_id, -1))
            if envelope.sequence <= last:
                outcomes.append(
                    TelemetryRefused("replayed", f"sequence {envelope.sequence} is not above {last}")
                )
                continue
            claims[envelope.device_id] = envelope.sequence
            taken.append(item)
        outcomes.append(item)
    if not taken:
        return [o for o in outcomes if isinstance(o, TelemetryRefused)]
    stamp = now_ms()
    connection.execute(
        upsert(connection, DeviceSequence, update=("last_sequence", "updated_at"), if_newer="last_sequence"),
        [{"device_id": d, "last_sequence": s, "updated_at": stamp} for d, s in claims.items()],
    )
    append_rows(connection, DevicePayload, [_payload_row(v, stamp) for v in taken])
    ids = _payload_ids(connection, [(v.envelope.device_id, v.envelope.sequence) for v in taken])
    store_many(session, [(v.vehicle_id, v.signals) for v in taken])
    accepted = iter(zip(taken, ids, strict=True))
    results: list[Outcome] = []
    for item in outcomes:
        if isinstance(item, TelemetryRefused):
            results.append(item)
            continue
        done, payload_id = next(accepted)
        envelope = done.envelope
        results.append(
            Accepted(
                int(payload_id), done.vehicle_id, envelope.device_id, envelope.sequence, len(done.signals)
            )
        )
    return results


def _payload_ids(connection: Connection, keys: list[tuple[int, int]]) -> list[int]:
    """The ids of the payloads just inserted, by (device, sequence) (unique), in `keys` order:
    one indexed read, where an insert returning its ids in order would be one statement per
    row on SQLite (which does not promise the order of RETURNING)."""
    rows = connection.execute(
        select(DevicePayload.device_id, DevicePayload.sequence, DevicePayload.id).where(
            tuple_(DevicePayload.device_id, DevicePayload.sequence).in_(keys)
        )
    ).all()
    found = {(int(d), int(s)): int(i) for d, s, i in rows}
    return [found[key] for key in keys]


def _payload_row(verified: Verified, stamp: int) -> dict[str, Any]:
    envelope = verified.envelope
    return {
        "device_id": envelope.device_id,
        "vehicle_id": verified.vehicle_id,
        "sequence": envelope.sequence,
        "timestamp": envelope.timestamp,
        "payload_hash": "0x" + verified.payload_hash.hex(),
        "canonical": verified.canonical,
        "signer": verified.signer,
        "signature": "0x" + envelope.signature.removeprefix("0x").lower(),
        "received_at": stamp,
    }


def ingest_batch(
    database: Database,
    verifier: TelemetryVerifier,
    envelopes: Sequence[Envelope | Checked | TelemetryRefused],
) -> list[Outcome]:
    """Verifies and stores a batch in one transaction (committed when this returns): one
    outcome per envelope (or prechecked payload), in order. Refusals are outcomes, not
    exceptions; a database failure raises (nothing of the batch is stored then)."""
    for attempt in range(_RACE_RETRIES + 1):
        try:
            with database.session() as session:
                verified = verifier.verify_batch(session.connection(), envelopes)
                return store_batch(session, verified)
        except IntegrityError:
            if attempt == _RACE_RETRIES:
                raise
            log.info(
                "a telemetry batch raced another process's claims; retrying it (attempt %d)", attempt + 1
            )
    raise AssertionError("unreachable")
