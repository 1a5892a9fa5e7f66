"""Sign-In with Ethereum: the happy path, and every way a login is refused."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta

from eth_account import Account
from fastapi.testclient import TestClient
from siwe import SiweMessage

from devkit.deployment import Deployer
from tests.support.anvil import ANVIL_KEYS
from tests.workers.gateway.conftest import gateway_settings, sign, sign_in
from tests.workers.gateway.projections import fresh_index
from workers.config import PROJECT_ROOT
from workers.gateway.app import create_app
from workers.gateway.auth import decode_token

KEY = ANVIL_KEYS[5]
ADDRESS = Account.from_key(KEY).address


def _nonce(client: TestClient, address: str = ADDRESS) -> dict:
    answer = client.post("/auth/nonce", json={"address": address})
    assert answer.status_code == 200, answer.text
    return answer.json()


def _verify(client: TestClient, message: str, signature: str):
    return client.post("/auth/verify", json={"message": message, "signature": signature})


def _problem(answer, status: int, reason: str) -> None:
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"].startswith("application/problem+json")
    body = answer.json()
    assert body["reason"] == reason
    assert body["status"] == status
    assert body["title"] and body["detail"]


def test_sign_in_yields_a_token_for_the_signer(client: TestClient) -> None:
    issued = _nonce(client)
    assert issued["nonce"] in issued["message"]
    assert "localhost:8000 wants you to sign in" in issued["message"]
    answer = _verify(client, issued["message"], sign(issued["message"], KEY))
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["address"] == ADDRESS
    assert body["expires_at"] > time.time()
    secret = client.app.state.gateway.token_secret
    assert decode_token(body["token"], secret).address == ADDRESS


def test_a_nonce_signs_in_once(client: TestClient) -> None:
    issued = _nonce(client)
    signature = sign(issued["message"], KEY)
    assert _verify(client, issued["message"], signature).status_code == 200
    _problem(_verify(client, issued["message"], signature), 409, "replayed")


def test_an_expired_nonce_is_refused(sqlite_db: str) -> None:
    app = create_app(gateway_settings(sqlite_db, siwe_nonce_ttl=1))
    with TestClient(app, base_url="http://localhost:8000") as client:
        issued = _nonce(client)
        time.sleep(1.2)
        _problem(_verify(client, issued["message"], sign(issued["message"], KEY)), 401, "expired")


def _variant(message: str, **changes: object) -> str:
    parsed = SiweMessage.from_message(message=message)
    return parsed.model_copy(update=changes).prepare_message()


def test_a_message_for_another_domain_is_refused(client: TestClient) -> None:
    issued = _nonce(client)
    forged = _variant(issued["message"], domain="evil.example")
    _problem(_verify(client, forged, sign(forged, KEY)), 401, "wrong_domain")
    # the nonce was not consumed by the refused attempt
    assert _verify(client, issued["message"], sign(issued["message"], KEY)).status_code == 200


def test_a_message_for_another_chain_is_refused(client: TestClient) -> None:
    issued = _nonce(client)
    forged = _variant(issued["message"], chain_id=1)
    _problem(_verify(client, forged, sign(forged, KEY)), 401, "wrong_chain")


def test_a_signature_by_another_key_is_refused(client: TestClient) -> None:
    issued = _nonce(client)
    _problem(_verify(client, issued["message"], sign(issued["message"], ANVIL_KEYS[6])), 401, "bad_signature")


def test_a_nonce_never_issued_is_refused(client: TestClient) -> None:
    issued = _nonce(client)
    forged = _variant(issued["message"], nonce="abcdef0123456789")
    _problem(_verify(client, forged, sign(forged, KEY)), 400, "bad_message")


def test_a_nonce_issued_to_another_address_is_refused(client: TestClient) -> None:
    other = Account.from_key(ANVIL_KEYS[6])
    issued = _nonce(client, other.address)
    forged = _variant(issued["message"], address=ADDRESS)
    _problem(_verify(client, forged, sign(forged, KEY)), 400, "bad_message")


def test_a_message_past_its_expiration_time_is_refused(client: TestClient) -> None:
    issued = _nonce(client)
    past = (datetime.now(UTC) - timedelta(minutes=1)).strftime("%Y-%m-%dT%H:%M:%S.000Z")
    forged = _variant(issued["message"], expiration_time=past)
    _problem(_verify(client, forged, sign(forged, KEY)), 401, "expired")


def test_garbage_is_a_bad_message(client: TestClient) -> None:
    _problem(_verify(client, "hello", "0x00"), 400, "bad_message")
    _problem(client.post("/auth/nonce", json={"address": "nope"}), 400, "bad_request")


def test_tokens_are_checked(client: TestClient) -> None:
    fresh_index(client.app.state.gateway.settings.database_url)
    token = sign_in(client)
    secret = client.app.state.gateway.token_secret
    identity = decode_token(token, secret)
    tampered = token.replace(identity.address, Account.from_key(ANVIL_KEYS[6]).address)
    for bad in (tampered, "v1.a.b.c.d", "garbage"):
        answer = client.get("/v1/vehicles/1/consents", headers={"Authorization": f"Bearer {bad}"})
        _problem(answer, 401, "bad_token")
    _problem(client.get("/v1/vehicles/1/consents"), 401, "unauthenticated")


def test_sign_in_is_rate_limited_per_client(sqlite_db: str) -> None:
    app = create_app(gateway_settings(sqlite_db, auth_rate_limit_per_second=0.01, auth_rate_limit_burst=3))
    with TestClient(app, base_url="http://localhost:8000") as client:
        for _ in range(3):
            assert client.post("/auth/nonce", json={"address": ADDRESS}).status_code == 200
        answer = client.post("/auth/nonce", json={"address": ADDRESS})
        _problem(answer, 429, "rate_limited")
        assert int(answer.headers["retry-after"]) >= 1


def test_tokens_are_rate_limited(sqlite_db: str) -> None:
    app = create_app(gateway_settings(sqlite_db, rate_limit_per_second=0.01, rate_limit_burst=2))
    fresh_index(sqlite_db)
    with TestClient(app, base_url="http://localhost:8000") as client:
        token = sign_in(client)
        headers = {"Authorization": f"Bearer {token}"}
        statuses = [client.get("/v1/vehicles/1/consents", headers=headers).status_code for _ in range(3)]
        assert statuses == [404, 404, 429]  # no such vehicle twice, then over the limit
        other = sign_in(client, ANVIL_KEYS[6])  # buckets are per token
        assert (
            client.get("/v1/vehicles/1/consents", headers={"Authorization": f"Bearer {other}"}).status_code
            == 404
        )
        metrics = client.get("/metrics").text
        assert 'gateway_refusals_total{reason="rate_limited"} 1.0' in metrics
        assert (
            'gateway_requests_total{method="GET",route="/v1/vehicles/{vehicleId}/consents",status="404"} 3.0'
            in metrics
        )
        assert "gateway_request_seconds_bucket" in metrics


def test_a_contract_wallet_signs_in_through_erc1271(sqlite_db: str, anvil) -> None:
    """The wallet (tests/forge/identity/IdentityBase.sol OwnerWallet) approves what its owner
    key signed; the gateway asks it through the RPC."""
    artifact = json.loads((PROJECT_ROOT / "out" / "IdentityBase.sol" / "OwnerWallet.json").read_text())
    owner = Account.from_key(ANVIL_KEYS[7])
    deployer = Deployer(anvil.w3, Account.from_key(ANVIL_KEYS[0]))
    factory = anvil.w3.eth.contract(abi=artifact["abi"], bytecode=artifact["bytecode"]["object"])
    receipt = deployer.send(
        factory.constructor(owner.address).build_transaction({"gas": 2_000_000}), "wallet"
    )
    wallet = receipt["contractAddress"]
    app = create_app(gateway_settings(sqlite_db, rpc_url=anvil.url))
    with TestClient(app, base_url="http://localhost:8000") as client:
        issued = _nonce(client, wallet)
        answer = _verify(client, issued["message"], sign(issued["message"], owner.key.hex()))
        assert answer.status_code == 200, answer.text
        assert answer.json()["address"] == wallet
        stranger = _nonce(client, wallet)
        _problem(
            _verify(client, stranger["message"], sign(stranger["message"], ANVIL_KEYS[6])),
            401,
            "bad_signature",
        )
