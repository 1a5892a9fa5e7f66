"""Onboarding through the automaker end to end: authorize -> the simulator's consent ->
callback -> the oracle's MintAttestation -> `VehicleId.mintWithAttestation` on a real anvil
mints the vehicle to the owner. Tokens are kept encrypted; states are single-use."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from eth_account import Account
from sqlalchemy import select
from web3 import Web3

from devkit.deployment import ANVIL_DEPLOYER_KEY, DeploymentTxError
from devkit.oem_connections import register_connections
from tests.support.databases import database, session_scope
from tests.support.oem_chain import OTHER_KEY, OWNER_KEY, IdentityChain, submit_attestation
from tests.support.simulator import SimulatorProcess, consent
from workers import eip712
from workers.config import ANVIL_SECOND_KEY, Settings, get_settings, use_settings
from workers.db.oem import OemLink
from workers.oem.connectors import callback_uri, connector_for
from workers.oem.links import LinkTokens, cipher_from
from workers.oem.onboarding import Onboarding, OnboardingError, OracleChain

OWNER = Account.from_key(OWNER_KEY).address
OTHER = Account.from_key(OTHER_KEY).address
ORACLE = Account.from_key(ANVIL_SECOND_KEY).address


@pytest.fixture
def settings(sim: SimulatorProcess, sqlite_db: str, chain: IdentityChain) -> Settings:
    sim.reset()
    configured = sim.settings(get_settings(), database_url=sqlite_db, rpc_url=chain.node.url)
    use_settings(configured)
    return configured


@pytest.fixture
def onboarding(settings: Settings, chain: IdentityChain) -> Onboarding:
    return Onboarding(
        settings, database(settings.database_url), OracleChain(chain.vehicle_id, chain.chain_id)
    )


@pytest.mark.parametrize(("connection_id", "oem"), [(1, "smartcar"), (2, "tesla")])
def test_authorize_consent_callback_attestation_mints_the_vehicle(sim, chain, onboarding, connection_id, oem):
    settings = onboarding.settings
    car = sim.vehicles(oem)[0]
    start = onboarding.begin(connection_id, OWNER)
    page = httpx.get(start.url)
    assert page.status_code == 200 and start.state in page.text and car["vin"] in page.text

    code = consent(sim, settings, connection_id, car["vin"], start.state)
    result = onboarding.complete(connection_id, code, start.state)
    assert result.vehicle_id == 0 and result.attestation is not None
    body = result.attestation.to_json()
    assert set(body) == {"to", "connection_id", "vin_hash", "deadline", "signature"}
    assert body["to"] == OWNER and body["connection_id"] == connection_id
    assert body["vin_hash"] == "0x" + Web3.keccak(text=car["vin"]).hex().removeprefix("0x")

    vehicle_id = submit_attestation(chain, body)  # a relayer pays the gas; the NFT goes to the owner
    assert chain.vehicle_id.functions.ownerOf(vehicle_id).call() == OWNER
    assert chain.vehicle_id.functions.vehicleOfVin(eip712.vin_hash(car["vin"])).call() == vehicle_id
    assert chain.vehicle_id.functions.nonces(ORACLE).call() == result.attestation.nonce + 1


def test_the_attestation_is_the_oracles_and_binds_every_field(sim, settings, chain, onboarding):
    car = sim.vehicles("smartcar")[0]
    start = onboarding.begin(1, OWNER)
    attestation = onboarding.complete(
        1, consent(sim, settings, 1, car["vin"], start.state), start.state
    ).attestation
    assert attestation is not None
    domain = eip712.domain(eip712.VEHICLE_DOMAIN, chain.chain_id, chain.vehicle_id.address)
    data = eip712.mint_attestation(
        domain,
        to=OWNER,
        connection_id=1,
        vin_hash=attestation.vin_hash,
        nonce=attestation.nonce,
        deadline=attestation.deadline,
    )
    assert eip712.recover(data, bytes.fromhex(attestation.signature[2:])) == ORACLE
    body = attestation.to_json()
    for tampered in ({"to": OTHER}, {"connection_id": 2}, {"deadline": body["deadline"] + 1}):
        with pytest.raises(DeploymentTxError):
            submit_attestation(chain, {**body, **tampered})
    vehicle_id = submit_attestation(chain, body)
    assert vehicle_id > 0
    with pytest.raises(DeploymentTxError):  # the nonce is spent: no second vehicle
        submit_attestation(chain, body)


def test_tokens_are_stored_encrypted_and_serve_later_pulls(sim, settings, chain, onboarding):
    car = sim.vehicles("smartcar")[1]
    start = onboarding.begin(1, OWNER)
    result = onboarding.complete(1, consent(sim, settings, 1, car["vin"], start.state), start.state)
    with session_scope(settings.database_url, read_only=True) as session:
        link = session.scalar(select(OemLink).where(OemLink.id == result.link_id))
    assert link is not None and link.owner == OWNER.lower() and link.external_id == car["id"]
    cipher = cipher_from(settings)
    tokens = LinkTokens(database(settings.database_url), link.id, cipher)
    access = tokens.current().access_token
    assert access not in link.tokens_ciphertext and car["vin"] not in link.vin_ciphertext
    assert cipher.decrypt_text(link.vin_ciphertext) == car["vin"]
    signals = connector_for(1, settings).read_signals(tokens, link.external_id)
    assert {s.source for s in signals} == {"oem:1"}


def test_a_state_is_single_use_and_bound_to_its_connection(sim, settings, chain, onboarding):
    car = sim.vehicles("tesla")[0]
    start = onboarding.begin(2, OWNER)
    with pytest.raises(OnboardingError) as wrong:  # a state for connection 2 at connection 1's callback
        onboarding.complete(
            1, consent(sim, settings, 1, sim.vehicles("smartcar")[0]["vin"], start.state), start.state
        )
    assert wrong.value.reason == "bad_state"
    onboarding.complete(2, consent(sim, settings, 2, car["vin"], start.state), start.state)
    with pytest.raises(OnboardingError) as reused:
        onboarding.complete(2, consent(sim, settings, 2, car["vin"], start.state), start.state)
    assert reused.value.reason == "bad_state"
    with pytest.raises(OnboardingError) as forged:
        onboarding.complete(2, consent(sim, settings, 2, car["vin"], "made-up"), "made-up")
    assert forged.value.reason == "bad_state"


def test_an_expired_state_is_refused(sim, settings, chain, onboarding):
    start = onboarding.begin(1, OWNER)
    late = Onboarding(
        settings,
        onboarding.db,
        onboarding.chain,
        clock=lambda: start.expires_at + 1,
    )
    with pytest.raises(OnboardingError) as expired:
        late.complete(
            1, consent(sim, settings, 1, sim.vehicles("smartcar")[0]["vin"], start.state), start.state
        )
    assert expired.value.reason == "bad_state"


def test_a_bad_code_is_refused_by_the_automaker(sim, settings, onboarding):
    start = onboarding.begin(1, OWNER)
    with pytest.raises(Exception) as refused:
        onboarding.complete(1, "not-a-code", start.state)
    assert getattr(refused.value, "reason", "") == "oem_invalid_grant"


def test_bad_owner_and_unknown_connection(onboarding):
    with pytest.raises(OnboardingError) as bad_owner:
        onboarding.begin(1, "0xnot-an-address")
    assert bad_owner.value.reason == "bad_owner"
    with pytest.raises(OnboardingError) as unknown:
        onboarding.begin(7, OWNER)
    assert unknown.value.reason == "unknown_connection"


def test_a_connection_whose_oracle_is_not_ours_or_inactive_is_refused(sim, settings, chain, onboarding):
    car = sim.vehicles("smartcar")[0]
    chain.send(ANVIL_DEPLOYER_KEY, chain.vehicle_id, "setConnection", 1, OTHER, True)
    start = onboarding.begin(1, OWNER)
    with pytest.raises(OnboardingError) as mismatch:
        onboarding.complete(1, consent(sim, settings, 1, car["vin"], start.state), start.state)
    assert mismatch.value.reason == "oracle_mismatch"
    chain.send(ANVIL_DEPLOYER_KEY, chain.vehicle_id, "setConnection", 1, ORACLE, False)
    start = onboarding.begin(1, OWNER)
    with pytest.raises(OnboardingError) as inactive:
        onboarding.complete(1, consent(sim, settings, 1, car["vin"], start.state), start.state)
    assert inactive.value.reason == "connection_inactive"


def test_reconnecting_a_minted_vehicle_refreshes_its_link_and_others_are_refused(
    sim, settings, chain, onboarding
):
    car = sim.vehicles("smartcar")[2]
    start = onboarding.begin(1, OWNER)
    first = onboarding.complete(1, consent(sim, settings, 1, car["vin"], start.state), start.state)
    assert first.attestation is not None
    vehicle_id = submit_attestation(chain, first.attestation.to_json())

    again = onboarding.begin(1, OWNER)
    second = onboarding.complete(1, consent(sim, settings, 1, car["vin"], again.state), again.state)
    assert (second.vehicle_id, second.attestation, second.link_id) == (vehicle_id, None, first.link_id)

    stranger = onboarding.begin(1, OTHER)
    with pytest.raises(OnboardingError) as taken:
        onboarding.complete(1, consent(sim, settings, 1, car["vin"], stranger.state), stranger.state)
    assert taken.value.reason == "vehicle_exists"
    with session_scope(settings.database_url, read_only=True) as session:
        link = session.get(OemLink, first.link_id)
    assert link is not None and link.owner == OWNER.lower() and link.vehicle_id == vehicle_id


def test_a_second_attestation_waits_for_the_oracles_next_nonce(
    sim, settings, chain, onboarding, tmp_path: Path
):
    """Two attestations issued before either is used carry the same nonce: the first used
    wins, the other must be requested again (DESIGN.md: nonces are per signer)."""
    cars = sim.vehicles("smartcar")[:2]
    results = []
    for car in cars:
        start = onboarding.begin(1, OWNER)
        results.append(
            onboarding.complete(1, consent(sim, settings, 1, car["vin"], start.state), start.state)
        )
    first, second = (r.attestation.to_json() for r in results if r.attestation)
    assert results[0].attestation.nonce == results[1].attestation.nonce
    submit_attestation(chain, first)
    with pytest.raises(DeploymentTxError):
        submit_attestation(chain, second)
    fresh = onboarding.attest(OWNER, 1, eip712.vin_hash(cars[1]["vin"]))
    assert submit_attestation(chain, fresh.to_json()) > 0


def test_register_connections_is_idempotent_and_repoints_the_oracle(settings, chain):
    governor = chain.sender(ANVIL_DEPLOYER_KEY)
    assert register_connections(chain.vehicle_id, governor, settings) == {1: "smartcar", 2: "tesla"}
    assert chain.vehicle_id.functions.connectionCount().call() == 2
    chain.send(ANVIL_DEPLOYER_KEY, chain.vehicle_id, "setConnection", 1, OTHER, False)
    register_connections(chain.vehicle_id, chain.sender(ANVIL_DEPLOYER_KEY), settings)
    assert chain.vehicle_id.functions.connection(1).call() == ["smartcar", ORACLE, True]
    gap = settings.model_copy(update={"oem_connections": [settings.oem_connection(2)]})
    with pytest.raises(ValueError, match=r"1\.\.n"):
        register_connections(chain.vehicle_id, governor, gap)


def test_a_configured_connection_missing_on_chain_is_unknown(sim, settings, chain):
    third = settings.oem_connection(1).model_copy(update={"connection_id": 3, "name": "third"})
    configured = settings.model_copy(update={"oem_connections": [*settings.oem_connection_list(), third]})
    onboarding = Onboarding(
        configured, database(configured.database_url), OracleChain(chain.vehicle_id, chain.chain_id)
    )
    start = onboarding.begin(3, OWNER)
    code = sim.consent(sim.vehicles("smartcar")[0]["vin"], callback_uri(configured, 3), start.state)
    with pytest.raises(OnboardingError) as unknown:
        onboarding.complete(3, code, start.state)
    assert unknown.value.reason == "unknown_connection"
