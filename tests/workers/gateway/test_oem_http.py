"""Onboarding and device telemetry over the gateway's HTTP endpoints, against the OEM
simulator and a real anvil: the signed-in owner's authorize answers the automaker's consent
URL (PKCE), the callback answers the oracle's attestation that mints the car to that owner and
nobody else; device payloads are accepted or refused with the verifier's reason."""

from __future__ import annotations

import time
from collections.abc import Iterator
from urllib.parse import parse_qs, urlsplit

import pytest
from eth_account import Account
from eth_utils import keccak
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from tests.support.databases import get_engine, session_scope
from tests.support.oem_chain import OTHER_KEY, OWNER_KEY, IdentityChain, submit_attestation
from tests.support.simulator import SimulatorProcess, consent
from tests.workers.gateway.conftest import sign_in
from workers.chain import connect
from workers.config import get_settings, use_settings
from workers.db.oem import DevicePayload, OemLink
from workers.gateway.app import create_app
from workers.indexer.sync import Indexer
from workers.oem.telemetry import sign_envelope, telemetry_domain
from workers.signals import catalogue as vss

OWNER = Account.from_key(OWNER_KEY).address
BUYER_KEY = OTHER_KEY
BUYER = Account.from_key(BUYER_KEY).address
DEVICE_KEY = "0x" + keccak(text="gateway device").hex().removeprefix("0x")
LONE_DEVICE_KEY = "0x" + keccak(text="gateway lone device").hex().removeprefix("0x")


@pytest.fixture
def client(sim: SimulatorProcess, chain_base: IdentityChain, sqlite_db: str) -> Iterator[TestClient]:
    sim.reset()
    settings = sim.settings(
        get_settings(),
        database_url=sqlite_db,
        rpc_url=chain_base.node.url,
        deployment_file=chain_base.manifest_file,
        confirmations=0,
    )
    use_settings(settings)
    with TestClient(create_app(settings), base_url="http://localhost:8000") as test_client:
        yield test_client


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def start_onboarding(client: TestClient, token: str, connection_id: int = 1) -> str:
    """GET authorize as the signed-in owner: the automaker's consent URL."""
    answer = client.get(f"/v1/oem/{connection_id}/authorize", headers=bearer(token))
    assert answer.status_code == 200, answer.text
    assert answer.json()["expires_at"] > time.time()
    return answer.json()["authorize_url"]


def callback(client: TestClient, sim: SimulatorProcess, url: str, vin: str, connection_id: int = 1):
    """The owner clicks "allow" for `vin`; the automaker sends the browser (no token) back."""
    state = parse_qs(urlsplit(url).query)["state"][0]
    return client.get(f"/v1/oem/{connection_id}/callback?code={consent(sim, url, vin)}&state={state}")


def link_tokens(db_url: str, vin: str) -> list[tuple[str, str]]:
    """(owner, encrypted tokens) of every link of `vin`."""
    digest = "0x" + keccak(text=vin).hex().removeprefix("0x")
    with session_scope(db_url, read_only=True) as session:
        rows = session.scalars(select(OemLink).where(OemLink.vin_hash == digest))
        return [(row.owner, row.tokens_ciphertext) for row in rows]


def test_onboarding_through_the_gateway_mints_the_car_to_its_owner(sim, chain_base, client) -> None:
    identity = chain_base
    car = sim.vehicles("smartcar")[0]
    url = start_onboarding(client, sign_in(client, OWNER_KEY))
    assert url.startswith(sim.url)
    query = parse_qs(urlsplit(url).query)
    assert query["code_challenge_method"] == ["S256"] and "owner" not in query
    state = query["state"][0]
    code = consent(sim, url, car["vin"])
    answer = client.get(f"/v1/oem/1/callback?code={code}&state={state}")
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["to"] == OWNER and body["connection_id"] == 1
    vehicle_id = submit_attestation(identity, body)
    assert identity.vehicle_id.functions.ownerOf(vehicle_id).call() == OWNER
    replay = client.get(f"/v1/oem/1/callback?code={code}&state={state}")
    assert replay.status_code == 400 and replay.json()["reason"] == "bad_state"


def test_onboarding_refusals_are_problems(client) -> None:
    answer = client.get(f"/v1/oem/1/authorize?owner={OWNER}")  # the owner is whoever signed in
    assert answer.status_code == 401 and answer.json()["reason"] == "unauthenticated"
    answer = client.get("/v1/oem/99/authorize", headers=bearer(sign_in(client, OWNER_KEY)))
    assert answer.status_code == 404 and answer.json()["reason"] == "unknown_connection"


def test_the_state_belongs_to_the_session_that_asked(sim, client) -> None:
    """A state outlives neither a sign-out nor a revoke-all of the session that started it."""
    car = sim.vehicles("tesla")[0]
    token = sign_in(client, OWNER_KEY)
    url = start_onboarding(client, token, 2)
    assert client.post("/auth/logout", headers=bearer(token)).json()["revoked"] == 1
    answer = callback(client, sim, url, car["vin"], 2)
    assert answer.status_code == 401 and answer.json()["reason"] == "session_revoked"

    token = sign_in(client, OWNER_KEY)
    url = start_onboarding(client, token, 2)
    other_device = sign_in(client, OWNER_KEY)
    assert client.post("/auth/revoke-all", headers=bearer(other_device)).json()["revoked"] == 2
    answer = callback(client, sim, url, car["vin"], 2)
    assert answer.status_code == 401 and answer.json()["reason"] == "session_revoked"
    assert link_tokens(client.app.state.gateway.settings.database_url, car["vin"]) == []


def test_a_previous_owner_cannot_replace_the_current_owners_tokens(sim, chain, client) -> None:
    """Issue #14, path 5: the seller, still on the automaker account, starts onboarding naming
    the buyer (`?owner=`, which the gateway used to take from anyone) and consents with the
    same automaker account. The buyer's link and tokens stay; the seller's consent is refused."""
    settings = client.app.state.gateway.settings
    car = sim.vehicles("smartcar")[1]
    seller = sign_in(client, OWNER_KEY)
    minted = callback(client, sim, start_onboarding(client, seller), car["vin"])
    assert minted.status_code == 200, minted.text
    vehicle_id = submit_attestation(chain, minted.json())
    chain.send(OWNER_KEY, chain.vehicle_id, "transferFrom", OWNER, BUYER, vehicle_id)  # the sale
    Indexer(connect(settings), get_engine(settings.database_url), settings).sync()

    buyer = sign_in(client, BUYER_KEY)
    relinked = callback(client, sim, start_onboarding(client, buyer), car["vin"])
    assert relinked.status_code == 200, relinked.text
    assert relinked.json()["vehicle_id"] == vehicle_id
    buyers_link = link_tokens(settings.database_url, car["vin"])
    assert [owner for owner, _ in buyers_link] == [BUYER.lower()]  # the seller's tokens are gone

    seller = sign_in(client, OWNER_KEY)
    answer = client.get(f"/v1/oem/1/authorize?owner={BUYER}", headers=bearer(seller))
    assert answer.status_code == 200, answer.text
    attack = callback(client, sim, answer.json()["authorize_url"], car["vin"])
    assert attack.status_code == 409 and attack.json()["reason"] == "vehicle_exists", attack.text
    assert link_tokens(settings.database_url, car["vin"]) == buyers_link


def test_device_telemetry_is_accepted_once_and_forgeries_are_refused(chain, client, sqlite_db) -> None:
    identity = chain  # reverted when the test ends
    vehicle = identity.mint_vehicle(OWNER, 1, keccak(text="GATEWAY-VIN"))
    device = identity.mint_device(OWNER, DEVICE_KEY, b"gw-serial-1")
    lone = identity.mint_device(OWNER, LONE_DEVICE_KEY, b"gw-serial-2")
    identity.pair(OWNER_KEY, vehicle, device, DEVICE_KEY)
    settings = get_settings()
    Indexer(connect(settings), get_engine(settings.database_url), settings).sync()  # what ingest reads
    domain = telemetry_domain(identity.chain_id, identity.device.address)
    signals = {vss.SPEED: 42.5, vss.LATITUDE: 52.52}

    def envelope(sequence: int, key: str = DEVICE_KEY, device_id: int = device) -> dict:
        return sign_envelope(
            domain,
            key,
            device_id=device_id,
            sequence=sequence,
            timestamp=int(time.time()),
            signals=signals,
        )

    def post(body: dict, device_id: int = device):
        return client.post(f"/v1/devices/{device_id}/telemetry", json=body)

    accepted = post(envelope(1))
    assert accepted.status_code == 202, accepted.text
    assert accepted.json()["vehicle_id"] == vehicle and accepted.json()["signals"] == 2
    for answer, status, reason in (
        (post(envelope(1)), 409, "replayed"),
        (post(envelope(2, key=LONE_DEVICE_KEY)), 401, "bad_signature"),
        (post(envelope(1, key=LONE_DEVICE_KEY, device_id=lone), lone), 403, "unpaired"),
        (post({"sequence": "x"}), 400, "bad_payload"),
    ):
        assert answer.status_code == status, answer.text
        assert answer.headers["content-type"].startswith("application/problem+json")
        assert answer.json()["reason"] == reason
    with session_scope(sqlite_db, read_only=True) as session:
        assert session.scalar(select(func.count()).select_from(DevicePayload)) == 1
    # a list: one transaction, one outcome per envelope
    answer = client.post(f"/v1/devices/{device}/telemetry", json=[envelope(2), envelope(2), envelope(3)])
    assert answer.status_code == 202, answer.text
    results = answer.json()["results"]
    assert [(r["accepted"], r["sequence"], r["reason"]) for r in results] == [
        (True, 2, None),
        (False, 2, "replayed"),
        (True, 3, None),
    ]
    assert answer.json()["accepted"] == 2 and answer.json()["refused"] == 1
    # a body past TELEMETRY_MAX_BODY_BYTES: 413, typed, before it is parsed
    limit = settings.telemetry_max_body_bytes
    huge = client.post(
        f"/v1/devices/{device}/telemetry",
        content=b"[" + b" " * limit + b"]",
        headers={"content-type": "application/json"},
    )
    assert huge.status_code == 413, huge.text
    assert huge.headers["content-type"].startswith("application/problem+json")
    assert huge.json()["reason"] == "oversized"
    with session_scope(sqlite_db, read_only=True) as session:
        assert session.scalar(select(func.count()).select_from(DevicePayload)) == 3
