"""Onboarding through the automaker end to end: the signed-in owner's authorize -> the
simulator's consent (PKCE) -> callback -> the oracle's MintAttestation ->
`VehicleId.mintWithAttestation` on a real anvil mints the vehicle to the owner. Tokens and the
PKCE verifier are kept encrypted; states are single-use, bound to a live session, expire and
are purged; a consent never silently replaces another wallet's link of the car."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest
from eth_account import Account
from sqlalchemy import select
from web3 import Web3

from devkit.deployment import ANVIL_DEPLOYER_KEY, DeploymentTxError
from devkit.oem_connections import register_connections
from tests.support.databases import database, get_engine, session_scope
from tests.support.oem_chain import OTHER_KEY, OWNER_KEY, IdentityChain, submit_attestation
from tests.support.simulator import SimulatorProcess, consent
from workers import eip712
from workers.chain import connect
from workers.config import ANVIL_SECOND_KEY, Settings, get_settings, use_settings
from workers.db.oem import OemAuthState, OemLink
from workers.gateway.auth import Identity, open_session, revoke_all_sessions, revoke_session
from workers.indexer.sync import Indexer
from workers.oem import pkce
from workers.oem.connectors import callback_uri, connector_for
from workers.oem.errors import InvalidGrantError
from workers.oem.links import LinkTokens, cipher_from
from workers.oem.onboarding import AuthorizeStart, Onboarded, Onboarding, OnboardingError, OracleChain

OWNER = Account.from_key(OWNER_KEY).address
OTHER = Account.from_key(OTHER_KEY).address
ORACLE = Account.from_key(ANVIL_SECOND_KEY).address


@pytest.fixture
def settings(sim: SimulatorProcess, sqlite_db: str, chain: IdentityChain) -> Settings:
    sim.reset()
    configured = sim.settings(
        get_settings(),
        database_url=sqlite_db,
        rpc_url=chain.node.url,
        deployment_file=chain.manifest_file,
        confirmations=0,
    )
    use_settings(configured)
    return configured


@pytest.fixture
def onboarding(settings: Settings, chain: IdentityChain) -> Onboarding:
    return Onboarding(
        settings, database(settings.database_url), OracleChain(chain.vehicle_id, chain.chain_id)
    )


def signed_in(settings: Settings, address: str = OWNER) -> Identity:
    """A bearer session of `address`, as POST /auth/verify records it."""
    with session_scope(settings.database_url) as session:
        return open_session(session, address, int(time.time()), settings.session_ttl)


def begin(onboarding: Onboarding, connection_id: int, address: str = OWNER) -> AuthorizeStart:
    identity = signed_in(onboarding.settings, address)
    return onboarding.begin(connection_id, identity.address, identity.session_id)


def onboard(
    onboarding: Onboarding, sim: SimulatorProcess, connection_id: int, vin: str, address: str = OWNER
) -> Onboarded:
    start = begin(onboarding, connection_id, address)
    return onboarding.complete(connection_id, consent(sim, start.url, vin), start.state)


def link_of(settings: Settings, link_id: int) -> OemLink | None:
    with session_scope(settings.database_url, read_only=True) as session:
        return session.get(OemLink, link_id)


def links_of_vin(settings: Settings, vin: str) -> list[OemLink]:
    digest = "0x" + eip712.vin_hash(vin).hex()
    with session_scope(settings.database_url, read_only=True) as session:
        return list(session.scalars(select(OemLink).where(OemLink.vin_hash == digest)))


def index(settings: Settings) -> None:
    """The indexer catches up with the chain (the projections onboarding reads)."""
    Indexer(connect(settings), get_engine(settings.database_url), settings).sync()


@pytest.mark.parametrize(("connection_id", "oem"), [(1, "smartcar"), (2, "tesla")])
def test_authorize_consent_callback_attestation_mints_the_vehicle(sim, chain, onboarding, connection_id, oem):
    car = sim.vehicles(oem)[0]
    start = begin(onboarding, connection_id)
    page = httpx.get(start.url)
    assert page.status_code == 200 and start.state in page.text and car["vin"] in page.text
    query = httpx.URL(start.url).params
    assert query["code_challenge_method"] == "S256" and len(query["code_challenge"]) == 43

    result = onboarding.complete(connection_id, consent(sim, start.url, car["vin"]), start.state)
    assert result.vehicle_id == 0 and result.attestation is not None
    body = result.attestation.to_json()
    assert set(body) == {"to", "connection_id", "vin_hash", "nonce", "deadline", "signature"}
    assert 0 <= body["nonce"] < 2**53  # random, unordered on chain: JSON-safe
    assert body["to"] == OWNER and body["connection_id"] == connection_id
    assert body["vin_hash"] == "0x" + Web3.keccak(text=car["vin"]).hex().removeprefix("0x")

    vehicle_id = submit_attestation(chain, body)  # a relayer pays the gas; the NFT goes to the owner
    assert chain.vehicle_id.functions.ownerOf(vehicle_id).call() == OWNER
    assert chain.vehicle_id.functions.vehicleOfVin(eip712.vin_hash(car["vin"])).call() == vehicle_id
    assert chain.vehicle_id.functions.isNonceUsed(ORACLE, result.attestation.nonce).call()


def test_the_attestation_is_the_oracles_and_binds_every_field(sim, settings, chain, onboarding):
    car = sim.vehicles("smartcar")[0]
    attestation = onboard(onboarding, sim, 1, car["vin"]).attestation
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
    result = onboard(onboarding, sim, 1, car["vin"])
    link = link_of(settings, result.link_id)
    assert link is not None and link.owner == OWNER.lower() and link.external_id == car["id"]
    cipher = cipher_from(settings)
    tokens = LinkTokens(database(settings.database_url), link.id, cipher)
    access = tokens.current().access_token
    assert access not in link.tokens_ciphertext and car["vin"] not in link.vin_ciphertext
    assert cipher.decrypt_text(link.vin_ciphertext) == car["vin"]
    signals = connector_for(1, settings).read_signals(tokens, link.external_id)
    assert {s.source for s in signals} == {"oem:1"}


def test_the_state_keeps_its_session_and_an_encrypted_pkce_verifier(sim, settings, onboarding):
    identity = signed_in(settings)
    start = onboarding.begin(2, identity.address, identity.session_id)
    with session_scope(settings.database_url, read_only=True) as session:
        row = session.scalar(select(OemAuthState))
    assert row is not None and row.owner == OWNER.lower() and row.session_id == identity.session_id
    assert start.state not in row.state_hash  # only the state's hash is kept
    verifier = cipher_from(settings).decrypt_text(row.verifier_ciphertext or "")
    assert verifier not in (row.verifier_ciphertext or "")
    assert httpx.URL(start.url).params["code_challenge"] == pkce.challenge(verifier)


def test_a_code_without_its_pkce_verifier_is_useless(sim, settings, onboarding):
    """Whoever intercepts the automaker's redirect (code and state) cannot redeem the code:
    the automaker wants the verifier, which never left the gateway."""
    car = sim.vehicles("tesla")[0]
    start = begin(onboarding, 2)
    connector = connector_for(2, settings)
    for verifier in (None, pkce.new_verifier()):
        code = consent(sim, start.url, car["vin"])
        with pytest.raises(InvalidGrantError):
            connector.exchange_code(code, verifier)
    code = consent(sim, start.url, car["vin"])
    assert onboarding.complete(2, code, start.state).attestation is not None


def test_a_connection_without_pkce_sends_no_challenge(sim, settings, chain):
    plain = settings.oem_connection(1).model_copy(update={"pkce": None})  # Smartcar's default: off
    configured = settings.model_copy(update={"oem_connections": [plain, settings.oem_connection(2)]})
    onboarding = Onboarding(
        configured, database(configured.database_url), OracleChain(chain.vehicle_id, chain.chain_id)
    )
    start = begin(onboarding, 1)
    assert "code_challenge" not in httpx.URL(start.url).params
    result = onboarding.complete(1, consent(sim, start.url, sim.vehicles("smartcar")[0]["vin"]), start.state)
    assert result.attestation is not None


def test_a_state_is_single_use_and_bound_to_its_connection(sim, settings, chain, onboarding):
    car = sim.vehicles("tesla")[0]
    start = begin(onboarding, 2)
    with pytest.raises(OnboardingError) as wrong:  # a state for connection 2 at connection 1's callback
        onboarding.complete(1, consent(sim, start.url, car["vin"]), start.state)
    assert wrong.value.reason == "bad_state"
    onboarding.complete(2, consent(sim, start.url, car["vin"]), start.state)
    with pytest.raises(OnboardingError) as reused:
        onboarding.complete(2, consent(sim, start.url, car["vin"]), start.state)
    assert reused.value.reason == "bad_state"
    with pytest.raises(OnboardingError) as forged:
        onboarding.complete(2, sim.consent(car["vin"], callback_uri(settings, 2), "made-up"), "made-up")
    assert forged.value.reason == "bad_state"


def test_an_expired_state_is_refused_and_purged(sim, settings, chain, onboarding):
    def states() -> list[str]:
        with session_scope(settings.database_url, read_only=True) as session:
            return list(session.scalars(select(OemAuthState.state_hash)))

    start = begin(onboarding, 1)
    late = Onboarding(settings, onboarding.db, onboarding.chain, clock=lambda: start.expires_at + 1)
    with pytest.raises(OnboardingError) as expired:
        late.complete(1, consent(sim, start.url, sim.vehicles("smartcar")[0]["vin"]), start.state)
    assert expired.value.reason == "bad_state"
    assert states() == []  # the refused callback purged it

    waiting = begin(onboarding, 1)
    assert len(states()) == 1
    later = Onboarding(settings, onboarding.db, onboarding.chain, clock=lambda: waiting.expires_at)
    identity = signed_in(settings)
    fresh = later.begin(1, identity.address, identity.session_id)
    assert len(states()) == 1  # the next write purged the one that had expired
    with pytest.raises(OnboardingError):
        later.complete(1, consent(sim, waiting.url, sim.vehicles("smartcar")[0]["vin"]), waiting.state)
    assert later.complete(1, consent(sim, fresh.url, sim.vehicles("smartcar")[0]["vin"]), fresh.state)


def test_a_state_whose_session_was_signed_out_is_refused(sim, settings, onboarding):
    car = sim.vehicles("smartcar")[0]
    identity = signed_in(settings)
    start = onboarding.begin(1, identity.address, identity.session_id)
    with session_scope(settings.database_url) as session:
        assert revoke_session(session, identity.session_id) == 1
    with pytest.raises(OnboardingError) as revoked:
        onboarding.complete(1, consent(sim, start.url, car["vin"]), start.state)
    assert revoked.value.reason == "session_revoked"

    identity = signed_in(settings)
    start = onboarding.begin(1, identity.address, identity.session_id)
    with session_scope(settings.database_url) as session:
        assert revoke_all_sessions(session, OWNER) == 1
    with pytest.raises(OnboardingError) as all_revoked:
        onboarding.complete(1, consent(sim, start.url, car["vin"]), start.state)
    assert all_revoked.value.reason == "session_revoked"
    assert links_of_vin(settings, car["vin"]) == []


def test_a_bad_code_is_refused_by_the_automaker(sim, settings, onboarding):
    start = begin(onboarding, 1)
    with pytest.raises(Exception) as refused:
        onboarding.complete(1, "not-a-code", start.state)
    assert getattr(refused.value, "reason", "") == "oem_invalid_grant"


def test_an_unknown_connection_is_refused(settings, onboarding):
    with pytest.raises(OnboardingError) as unknown:
        begin(onboarding, 7)
    assert unknown.value.reason == "unknown_connection"


def test_a_connection_whose_oracle_is_not_ours_or_inactive_is_refused(sim, settings, chain, onboarding):
    car = sim.vehicles("smartcar")[0]
    chain.send(ANVIL_DEPLOYER_KEY, chain.vehicle_id, "setConnection", 1, OTHER, True)
    with pytest.raises(OnboardingError) as mismatch:
        onboard(onboarding, sim, 1, car["vin"])
    assert mismatch.value.reason == "oracle_mismatch"
    chain.send(ANVIL_DEPLOYER_KEY, chain.vehicle_id, "setConnection", 1, ORACLE, False)
    with pytest.raises(OnboardingError) as inactive:
        onboard(onboarding, sim, 1, car["vin"])
    assert inactive.value.reason == "connection_inactive"


def test_reconnecting_a_minted_vehicle_refreshes_its_link_and_others_are_refused(
    sim, settings, chain, onboarding
):
    car = sim.vehicles("smartcar")[2]
    first = onboard(onboarding, sim, 1, car["vin"])
    assert first.attestation is not None
    vehicle_id = submit_attestation(chain, first.attestation.to_json())

    second = onboard(onboarding, sim, 1, car["vin"])
    assert (second.vehicle_id, second.attestation, second.link_id) == (vehicle_id, None, first.link_id)

    with pytest.raises(OnboardingError) as taken:
        onboard(onboarding, sim, 1, car["vin"], OTHER)
    assert taken.value.reason == "vehicle_exists"
    link = link_of(settings, first.link_id)
    assert link is not None and link.owner == OWNER.lower() and link.vehicle_id == vehicle_id


def test_after_a_sale_the_new_owner_replaces_the_link_and_the_previous_owner_cannot_take_it_back(
    sim, settings, chain, onboarding
):
    """The issue's attack: the previous owner, still on the automaker account, tries to put
    their consent back in place of the current owner's after the sale."""
    car = sim.vehicles("smartcar")[3]
    sold = onboard(onboarding, sim, 1, car["vin"])
    assert sold.attestation is not None
    vehicle_id = submit_attestation(chain, sold.attestation.to_json())
    old_tokens = (link_of(settings, sold.link_id) or OemLink()).tokens_ciphertext
    chain.send(OWNER_KEY, chain.vehicle_id, "transferFrom", OWNER, OTHER, vehicle_id)

    with pytest.raises(OnboardingError) as unconfirmed:  # the indexer has not seen the sale yet
        onboard(onboarding, sim, 1, car["vin"], OTHER)
    assert unconfirmed.value.reason == "vehicle_linked_to_other_owner"
    assert [link.owner for link in links_of_vin(settings, car["vin"])] == [OWNER.lower()]

    index(settings)
    bought = onboard(onboarding, sim, 1, car["vin"], OTHER)
    assert (bought.vehicle_id, bought.attestation) == (vehicle_id, None)
    links = links_of_vin(settings, car["vin"])
    assert [(link.owner, link.vehicle_id) for link in links] == [(OTHER.lower(), vehicle_id)]
    assert links[0].tokens_ciphertext != old_tokens  # the previous owner's tokens are gone

    with pytest.raises(OnboardingError) as previous:  # the previous owner's own consent
        onboard(onboarding, sim, 1, car["vin"], OWNER)
    assert previous.value.reason == "vehicle_exists"
    after = links_of_vin(settings, car["vin"])
    assert [(link.id, link.owner, link.tokens_ciphertext) for link in after] == [
        (bought.link_id, OTHER.lower(), links[0].tokens_ciphertext)
    ]


def test_a_car_another_wallet_is_onboarding_waits_for_its_attestation_to_expire(
    sim, settings, chain, onboarding
):
    car = sim.vehicles("tesla")[1]
    first = onboard(onboarding, sim, 2, car["vin"])
    assert first.attestation is not None
    with pytest.raises(OnboardingError) as pending:
        onboard(onboarding, sim, 2, car["vin"], OTHER)
    assert pending.value.reason == "vehicle_linked_to_other_owner"
    assert [link.owner for link in links_of_vin(settings, car["vin"])] == [OWNER.lower()]

    chain_now = chain.w3.eth.get_block("latest")["timestamp"]
    chain.node.increase_time(first.attestation.deadline - chain_now + 1)  # never used, it expires
    with pytest.raises(DeploymentTxError):
        submit_attestation(chain, first.attestation.to_json())
    later = time.time() + settings.oem_attestation_ttl + 1
    late = Onboarding(settings, onboarding.db, onboarding.chain, clock=lambda: later)
    identity = signed_in(settings, OTHER)
    start = late.begin(2, identity.address, identity.session_id)
    taken = late.complete(2, consent(sim, start.url, car["vin"]), start.state)
    assert taken.attestation is not None and taken.attestation.to == OTHER
    assert [link.owner for link in links_of_vin(settings, car["vin"])] == [OTHER.lower()]
    vehicle_id = submit_attestation(chain, taken.attestation.to_json())
    assert chain.vehicle_id.functions.ownerOf(vehicle_id).call() == OTHER


def test_outstanding_attestations_are_used_in_any_order_and_each_once(
    sim, settings, chain, onboarding, tmp_path: Path
):
    """A fleet onboards at once: attestations issued before any is used carry their own random
    nonces (unordered on chain), so each mints whatever the order, and none twice; a cancelled
    one (`invalidateNonces` by the oracle) is refused."""
    cars = sim.vehicles("smartcar")[:3]
    results = [onboard(onboarding, sim, 1, car["vin"]) for car in cars]
    first, second, third = (r.attestation for r in results if r.attestation)
    assert len({first.nonce, second.nonce, third.nonce}) == 3
    assert submit_attestation(chain, second.to_json()) > 0
    assert submit_attestation(chain, first.to_json()) > 0
    with pytest.raises(DeploymentTxError):
        submit_attestation(chain, first.to_json())
    chain.send(
        ANVIL_SECOND_KEY, chain.vehicle_id, "invalidateNonces", third.nonce // 256, 1 << third.nonce % 256
    )
    with pytest.raises(DeploymentTxError):
        submit_attestation(chain, third.to_json())


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
    start = begin(onboarding, 3)
    with pytest.raises(OnboardingError) as unknown:
        onboarding.complete(3, consent(sim, start.url, sim.vehicles("smartcar")[0]["vin"]), start.state)
    assert unknown.value.reason == "unknown_connection"
