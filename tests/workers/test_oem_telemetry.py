"""Signed plug-in device telemetry against a real anvil, its device keys and pairings read from
the indexer's projections of AftermarketDevice: valid payloads are stored with their
signature; forged, tampered, replayed, out-of-order, wrong-device, unknown, unpaired, revoked,
stale and malformed payloads are refused with their reason and store nothing; a batch is
judged payload by payload; the verifier's device cache never outlives an indexed change."""

from __future__ import annotations

import math
import random
import struct
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
import rfc8785
from eth_account import Account
from eth_utils import keccak
from sqlalchemy import func, select

from devkit.deployment import ANVIL_DEPLOYER_KEY
from tests.support.databases import database, get_engine, session_scope
from tests.support.oem_chain import OTHER_KEY, OWNER_KEY, IdentityChain, world_fixtures
from workers import eip712
from workers.chain import connect
from workers.config import Settings, get_settings
from workers.db.oem import DevicePayload, DeviceSequence
from workers.db.signals import StoredSignal
from workers.indexer.sync import Indexer
from workers.oem.telemetry import (
    SECP256K1_N,
    Accepted,
    Envelope,
    Outcome,
    TelemetryRefused,
    TelemetryVerifier,
    _flat_canonical,
    canonical_json,
    ingest_batch,
    payload_hash,
    sign_envelope,
    telemetry_domain,
)
from workers.protocol import UINT64_MAX
from workers.signals import catalogue as vss
from workers.signals import store as signal_store

OWNER = Account.from_key(OWNER_KEY).address
OTHER = Account.from_key(OTHER_KEY).address
DEVICE_KEY = "0x" + keccak(text="device one").hex().removeprefix("0x")
SECOND_DEVICE_KEY = "0x" + keccak(text="device two").hex().removeprefix("0x")
UNPAIRED_DEVICE_KEY = "0x" + keccak(text="device three").hex().removeprefix("0x")
SIGNALS = {vss.SPEED: 42.5, vss.SOC: 77.0, vss.LATITUDE: 52.52, vss.IS_LOCKED: False}


class World:
    def __init__(self, chain: IdentityChain) -> None:
        self.chain = chain
        self.vehicle = chain.mint_vehicle(OWNER, 1, keccak(text="VIN-A"))
        self.other_vehicle = chain.mint_vehicle(OWNER, 1, keccak(text="VIN-B"))
        self.device = chain.mint_device(OWNER, DEVICE_KEY, b"serial-1")
        self.second_device = chain.mint_device(OWNER, SECOND_DEVICE_KEY, b"serial-2")
        self.unpaired_device = chain.mint_device(OWNER, UNPAIRED_DEVICE_KEY, b"serial-3")
        chain.pair(OWNER_KEY, self.vehicle, self.device, DEVICE_KEY)
        chain.pair(OWNER_KEY, self.other_vehicle, self.second_device, SECOND_DEVICE_KEY)
        self.domain = telemetry_domain(chain.chain_id, chain.device.address)


world_base, world = world_fixtures(World)


@pytest.fixture
def index(world: World, db_url: str) -> Callable[[], None]:
    """The indexer catching up with the chain (what the verifier reads); run once here."""
    settings = get_settings().model_copy(
        update={
            "database_url": db_url,
            "rpc_url": world.chain.node.url,
            "deployment_file": world.chain.manifest_file,
            "confirmations": 0,
        }
    )

    def catch_up(settings: Settings = settings) -> None:
        Indexer(connect(settings), get_engine(settings.database_url), settings).sync()

    catch_up()
    return catch_up


def verifier(world: World, **overrides: Any) -> TelemetryVerifier:
    options = {"max_age": 300, "max_future": 30, **overrides}
    return TelemetryVerifier(world.domain, **options)


def ingest(
    url: str, check: TelemetryVerifier, payloads: list[Any], device_id: int | None = None
) -> list[Outcome]:
    envelopes: list[Envelope | TelemetryRefused] = []
    for payload in payloads:
        try:
            envelopes.append(Envelope.parse(payload, device_id))
        except TelemetryRefused as exc:
            envelopes.append(exc)
    return ingest_batch(database(url), check, envelopes)


def body(
    world: World, sequence: int, *, key: str = DEVICE_KEY, device_id: int | None = None, **kw: Any
) -> dict:
    return sign_envelope(
        world.domain,
        key,
        device_id=world.device if device_id is None else device_id,
        sequence=sequence,
        timestamp=kw.pop("timestamp", int(time.time())),
        signals=kw.pop("signals", SIGNALS),
    )


def post(url: str, check: TelemetryVerifier, payload: Any, device_id: int | None = None) -> Accepted:
    (outcome,) = ingest(url, check, [payload], device_id)
    if isinstance(outcome, TelemetryRefused):
        raise outcome
    return outcome


def refused(url: str, check: TelemetryVerifier, payload: Any, device_id: int | None = None) -> str:
    with pytest.raises(TelemetryRefused) as caught:
        post(url, check, payload, device_id)
    return caught.value.reason


def stored(url: str) -> tuple[int, int]:
    with session_scope(url, read_only=True) as session:
        return (
            session.scalar(select(func.count()).select_from(DevicePayload)) or 0,
            session.scalar(select(func.count()).select_from(StoredSignal)) or 0,
        )


def test_a_valid_payload_is_stored_with_its_signature(world, db_url, index):
    check = verifier(world)
    signed = body(world, 1)
    accepted = post(db_url, check, signed, world.device)
    assert (accepted.vehicle_id, accepted.device_id, accepted.sequence, accepted.signals) == (
        world.vehicle,
        world.device,
        1,
        len(SIGNALS),
    )
    with session_scope(db_url, read_only=True) as session:
        latest = {s.name: s for s in signal_store.latest(session, world.vehicle, since_ms=0)}
        payload = session.get(DevicePayload, accepted.payload_id)
    assert set(latest) == set(SIGNALS)
    assert latest[vss.SPEED].value == 42.5 and latest[vss.SPEED].unit == "km/h"
    assert latest[vss.IS_LOCKED].value is False
    assert {s.source for s in latest.values()} == {f"device:{world.device}"}
    assert {s.signature for s in latest.values()} == {signed["signature"]}
    assert vss.signal_class(latest[vss.LATITUDE].name) is vss.SignalClass.LOCATION
    # Anyone can check the stored record again: canonical JSON -> hash -> signer.
    assert payload is not None and keccak(payload.canonical.encode()).hex() == payload.payload_hash[2:]
    data = eip712.telemetry(
        world.domain,
        device_id=payload.device_id,
        sequence=payload.sequence,
        timestamp=payload.timestamp,
        payload_hash=payload.payload_hash,
    )
    assert eip712.recover(data, bytes.fromhex(payload.signature[2:])) == Account.from_key(DEVICE_KEY).address


def test_the_payload_hash_is_over_rfc8785_canonical_json(world):
    reordered = dict(reversed(list(SIGNALS.items())))
    assert payload_hash(reordered) == payload_hash(SIGNALS)
    assert payload_hash({vss.SPEED: 1.0}) == keccak(b'{"Vehicle.Speed":1}')


def _any_float(rng: random.Random) -> float:
    """A float of any magnitude and precision (finite), from random bits."""
    while True:
        value = struct.unpack("<d", rng.getrandbits(64).to_bytes(8, "little"))[0]
        if math.isfinite(value):
            return value


EDGE_VALUES = [
    0.0, -0.0, 1.0, -1.0, 51.0, 0.1, 1e-4, 9.99e-5, 1e-7, 5e-5, 1e15, 1e16, 1e16 - 2, 1e21, 1e22,
    2.0**53, 2.0**53 - 1, -(2.0**53), 2.0**60, 123456789.123, 0.30000000000000004, 5e-324,
    1.7976931348623157e308, True, False, 0, -1, 2**53 - 1, -(2**53) + 1, "", "plain",
    'quote " backslash \\ slash / tab \t newline \n \x00 \x1f \x7f', "é ü 🚗",
]  # fmt: skip


def test_the_fast_canonical_path_gives_the_rfc8785_bytes():
    rng = random.Random(8785)
    names = ["Vehicle.Speed", "a", "B", "Vehicle.CurrentLocation.Latitude", "z_", "Ā", "\U0001f697"]
    cases = [{"k": v} for v in EDGE_VALUES] + [{n: rng.choice(EDGE_VALUES) for n in names[:5]}]
    cases += [{"k": _any_float(rng)} for _ in range(5_000)]
    cases += [
        {"k": rng.uniform(-1000, 1000), "j": round(rng.uniform(0, 100), rng.randint(0, 6))}
        for _ in range(2_000)
    ]
    cases += [{n: rng.randint(-(2**60), 2**60) for n in names} for _ in range(200)]
    fast = 0
    for case in cases:
        flat = _flat_canonical(case)
        try:
            general = rfc8785.dumps(case)
        except rfc8785.CanonicalizationError:
            assert flat is None, case
            continue
        assert canonical_json(case) == general, case
        if flat is not None:
            fast += 1
            assert flat == general, case
    assert fast > 2_000  # the plain values took the fast path (the rest went to the general one)


def test_a_payload_signed_by_another_key_is_refused(world, db_url, index):
    assert refused(db_url, verifier(world), body(world, 1, key=OTHER_KEY)) == "bad_signature"
    assert stored(db_url) == (0, 0)


def test_signals_changed_after_signing_are_refused(world, db_url, index):
    tampered = body(world, 1)
    tampered["signals"] = {**SIGNALS, vss.SPEED: 142.5}
    assert refused(db_url, verifier(world), tampered) == "bad_signature"
    tampered = body(world, 1)
    tampered["sequence"] = 2
    assert refused(db_url, verifier(world), tampered) == "bad_signature"
    assert stored(db_url) == (0, 0)


def test_a_replayed_payload_is_refused(world, db_url, index):
    check = verifier(world)
    signed = body(world, 7)
    post(db_url, check, signed)
    assert refused(db_url, check, signed) == "replayed"
    assert stored(db_url) == (1, len(SIGNALS))


def test_out_of_order_sequences_are_refused(world, db_url, index):
    check = verifier(world)
    post(db_url, check, body(world, 5))
    assert refused(db_url, check, body(world, 3)) == "replayed"
    assert refused(db_url, check, body(world, 5, signals={vss.SPEED: 1.0})) == "replayed"
    post(db_url, check, body(world, 6))
    with session_scope(db_url, read_only=True) as session:
        assert session.get(DeviceSequence, world.device).last_sequence == 6
        assert len(signal_store.history(session, world.vehicle, names=[vss.SPEED], since_ms=0)) == 2
    assert stored(db_url) == (2, 2 * len(SIGNALS))


def test_sequences_are_per_device(world, db_url, index):
    check = verifier(world)
    post(db_url, check, body(world, 9))
    accepted = post(db_url, check, body(world, 1, key=SECOND_DEVICE_KEY, device_id=world.second_device))
    assert accepted.vehicle_id == world.other_vehicle


def test_one_device_cannot_speak_for_another(world, db_url, index):
    check = verifier(world)
    as_other = body(world, 1, key=DEVICE_KEY, device_id=world.second_device)
    assert refused(db_url, check, as_other) == "bad_signature"
    genuine = body(world, 1)
    assert refused(db_url, check, genuine, device_id=world.second_device) == "bad_payload"  # URL mismatch
    assert stored(db_url) == (0, 0)


def test_an_unknown_device_is_refused(world, db_url, index):
    assert refused(db_url, verifier(world), body(world, 1, device_id=999)) == "unknown_device"


def test_unpaired_devices_are_refused(world, db_url, index):
    check = verifier(world)
    lone = body(world, 1, key=UNPAIRED_DEVICE_KEY, device_id=world.unpaired_device)
    assert refused(db_url, check, lone) == "unpaired"
    post(db_url, check, body(world, 1))
    world.chain.send(OWNER_KEY, world.chain.device, "unpair", world.vehicle)
    index()
    assert refused(db_url, check, body(world, 2)) == "unpaired"
    assert stored(db_url) == (1, len(SIGNALS))


def test_a_vehicle_transfer_ends_the_pairing(world, db_url, index):
    check = verifier(world)
    world.chain.send(OWNER_KEY, world.chain.vehicle_id, "transferFrom", OWNER, OTHER, world.vehicle)
    index()
    assert refused(db_url, check, body(world, 1)) == "unpaired"


def test_a_device_revoked_by_its_manufacturer_is_refused(world, db_url, index):
    check = verifier(world)
    post(db_url, check, body(world, 1))
    world.chain.send(ANVIL_DEPLOYER_KEY, world.chain.device, "revokeDevice", world.device)
    index()
    assert refused(db_url, check, body(world, 2)) == "revoked"
    assert stored(db_url) == (1, len(SIGNALS))


def test_a_rotated_device_key_replaces_the_old_one_at_once(world, db_url, index):
    """The owner proposes, the manufacturer accepts: once indexed, the very next payload of the
    old key is refused (the cache does not remember it) and the new key's is stored."""
    check = verifier(world)
    post(db_url, check, body(world, 1))
    new_key = "0x" + keccak(text="device one, rotated").hex().removeprefix("0x")
    new_signer = Account.from_key(new_key).address
    world.chain.send(OWNER_KEY, world.chain.device, "proposeDeviceSigner", world.device, new_signer)
    index()
    assert post(db_url, check, body(world, 2)).sequence == 2  # one party alone changes nothing
    world.chain.send(ANVIL_DEPLOYER_KEY, world.chain.device, "acceptDeviceSigner", world.device, new_signer)
    index()
    assert refused(db_url, check, body(world, 3)) == "bad_signature"
    assert post(db_url, check, body(world, 3, key=new_key)).sequence == 3


def test_stale_and_future_timestamps_are_refused(world, db_url, index):
    check = verifier(world, max_age=60, max_future=5)
    now = int(time.time())
    assert refused(db_url, check, body(world, 1, timestamp=now - 120)) == "stale"
    assert refused(db_url, check, body(world, 2, timestamp=now + 60)) == "stale"
    post(db_url, check, body(world, 3, timestamp=now - 30))
    assert stored(db_url) == (1, len(SIGNALS))


@pytest.mark.parametrize(
    "broken",
    [
        {"signals": {"Vehicle.NotASignal": 1}},
        {"signals": {vss.SOC: 140.0}},
        {"signals": {vss.IS_LOCKED: "yes"}},
        {"signals": {}},
        {"sequence": -1},
        {"sequence": UINT64_MAX + 1},
        {"timestamp": "now"},
        {"signature": "0x1234"},
    ],
)
def test_malformed_payloads_are_refused(world, db_url, index, broken):
    signed = {**body(world, 1, signals=broken.get("signals", SIGNALS)), **broken}
    reason = refused(db_url, verifier(world), signed)
    assert reason in {"bad_payload", "bad_signature"}
    if "signals" in broken or "sequence" in broken or "timestamp" in broken:
        assert reason == "bad_payload"
    assert stored(db_url) == (0, 0)


def test_missing_fields_are_bad_payloads(world, db_url, index):
    for missing in ("sequence", "timestamp", "signals", "signature"):
        signed = body(world, 1)
        del signed[missing]
        assert refused(db_url, verifier(world), signed) == "bad_payload"
    assert refused(db_url, verifier(world), ["not", "an", "object"]) == "bad_payload"


def test_concurrent_deliveries_of_one_payload_store_it_once(world, db_url, index):
    check = verifier(world)
    signed = body(world, 1)
    outcomes: list[str] = []
    lock = threading.Lock()

    def deliver() -> None:
        try:
            post(db_url, check, signed)
            result = "accepted"
        except TelemetryRefused as exc:
            result = exc.reason
        with lock:
            outcomes.append(result)

    threads = [threading.Thread(target=deliver) for _ in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["accepted"] + ["replayed"] * 11
    assert stored(db_url) == (1, len(SIGNALS))


def _malleate(signature: str) -> str:
    """The high-s twin of a valid signature: (r, n - s, v flipped) recovers the same key."""
    raw = bytes.fromhex(signature[2:])
    s = int.from_bytes(raw[32:64], "big")
    twin = raw[:32] + (SECP256K1_N - s).to_bytes(32, "big") + bytes([55 - raw[64]])
    return "0x" + twin.hex()


def test_malleated_and_odd_v_signatures_are_refused(world, db_url, index):
    check = verifier(world)
    post(db_url, check, body(world, 1))
    twin = body(world, 2)
    twin["signature"] = _malleate(twin["signature"])
    assert refused(db_url, check, twin) == "bad_signature"
    zero_v = body(world, 3)
    raw = bytes.fromhex(zero_v["signature"][2:])
    zero_v["signature"] = "0x" + (raw[:64] + bytes([raw[64] - 27])).hex()
    assert refused(db_url, check, zero_v) == "bad_signature"
    forged = body(world, 4, key=OTHER_KEY)
    assert refused(db_url, check, forged) == "bad_signature"
    assert post(db_url, check, body(world, 5)).sequence == 5  # the genuine key still passes


def test_a_batch_is_judged_payload_by_payload_in_one_transaction(world, db_url, index):
    check = verifier(world)
    second = {"key": SECOND_DEVICE_KEY, "device_id": world.second_device}
    batch = [
        body(world, 2),
        body(world, 1),  # below the 2 just accepted in this batch
        body(world, 3, key=OTHER_KEY),
        body(world, 1, **second),
        body(world, 2),  # a duplicate within the batch
        body(world, 1, key=UNPAIRED_DEVICE_KEY, device_id=world.unpaired_device),
        body(world, 1, device_id=999),
        {"sequence": "x"},
        body(world, 4),
    ]
    outcomes = ingest(db_url, check, batch)
    assert [o.sequence if isinstance(o, Accepted) else o.reason for o in outcomes] == [
        2,
        "replayed",
        "bad_signature",
        1,
        "replayed",
        "unpaired",
        "unknown_device",
        "bad_payload",
        4,
    ]
    assert stored(db_url) == (3, 3 * len(SIGNALS))
    with session_scope(db_url, read_only=True) as session:
        assert session.get(DeviceSequence, world.device).last_sequence == 4
    again = ingest(db_url, check, [body(world, 4), body(world, 5)])  # a redelivery, and news
    assert [getattr(o, "reason", None) for o in again] == ["replayed", None]


@pytest.mark.parametrize("change", ["revoke", "unpair", "vehicle transfer"])
def test_a_warm_cache_refuses_a_device_once_its_change_is_indexed(world, db_url, index, change):
    """The verifier caches devices between batches; the change counters the indexer bumps with
    the rows drop the cache in the first batch after the change is indexed."""
    check = verifier(world)
    post(db_url, check, body(world, 1))
    assert world.device in check.devices
    if change == "revoke":
        world.chain.send(ANVIL_DEPLOYER_KEY, world.chain.device, "revokeDevice", world.device)
    elif change == "unpair":
        world.chain.send(OWNER_KEY, world.chain.device, "unpair", world.vehicle)
    else:
        world.chain.send(OWNER_KEY, world.chain.vehicle_id, "transferFrom", OWNER, OTHER, world.vehicle)
    # not indexed yet: the index (and so the cache) still says paired
    assert post(db_url, check, body(world, 2)).sequence == 2
    index()
    reason = refused(db_url, check, body(world, 3))
    assert reason == ("revoked" if change == "revoke" else "unpaired")
    assert stored(db_url) == (2, 2 * len(SIGNALS))
