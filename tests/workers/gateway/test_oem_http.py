"""Onboarding and device telemetry over the gateway's HTTP endpoints, against the OEM
simulator and a real anvil: authorize redirects to the automaker, the callback answers the
oracle's attestation that mints the car; device payloads are accepted or refused with the
verifier's reason."""

from __future__ import annotations

import time
from collections.abc import Iterator
from urllib.parse import parse_qs, urlsplit

import pytest
from eth_account import Account
from eth_utils import keccak
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from tests.support.databases import session_scope
from tests.support.oem_chain import OWNER_KEY, IdentityChain, submit_attestation
from tests.support.simulator import SimulatorProcess, consent
from workers.config import get_settings, use_settings
from workers.db.oem import DevicePayload
from workers.gateway.app import create_app
from workers.oem.telemetry import sign_envelope, telemetry_domain
from workers.signals import catalogue as vss

OWNER = Account.from_key(OWNER_KEY).address
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
    )
    use_settings(settings)
    with TestClient(create_app(settings), base_url="http://localhost:8000") as test_client:
        yield test_client


def test_onboarding_through_the_gateway_mints_the_car_to_its_owner(sim, chain_base, client) -> None:
    identity = chain_base
    car = sim.vehicles("smartcar")[0]
    answer = client.get(f"/v1/oem/1/authorize?owner={OWNER}", follow_redirects=False)
    assert answer.status_code == 307, answer.text
    location = answer.headers["location"]
    assert location.startswith(sim.url)
    state = parse_qs(urlsplit(location).query)["state"][0]
    code = consent(sim, client.app.state.gateway.settings, 1, car["vin"], state)
    answer = client.get(f"/v1/oem/1/callback?code={code}&state={state}")
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["to"] == OWNER and body["connection_id"] == 1
    vehicle_id = submit_attestation(identity, body)
    assert identity.vehicle_id.functions.ownerOf(vehicle_id).call() == OWNER
    replay = client.get(f"/v1/oem/1/callback?code={code}&state={state}")
    assert replay.status_code == 400 and replay.json()["reason"] == "bad_state"


def test_onboarding_refusals_are_problems(client) -> None:
    answer = client.get(f"/v1/oem/99/authorize?owner={OWNER}", follow_redirects=False)
    assert answer.status_code == 404 and answer.json()["reason"] == "unknown_connection"
    answer = client.get("/v1/oem/1/authorize?owner=nobody", follow_redirects=False)
    assert answer.status_code == 422 and answer.json()["reason"] == "bad_request"


def test_device_telemetry_is_accepted_once_and_forgeries_are_refused(chain, client, sqlite_db) -> None:
    identity = chain  # reverted when the test ends
    vehicle = identity.mint_vehicle(OWNER, 1, keccak(text="GATEWAY-VIN"))
    device = identity.mint_device(OWNER, DEVICE_KEY, b"gw-serial-1")
    lone = identity.mint_device(OWNER, LONE_DEVICE_KEY, b"gw-serial-2")
    identity.pair(OWNER_KEY, vehicle, device, DEVICE_KEY)
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
