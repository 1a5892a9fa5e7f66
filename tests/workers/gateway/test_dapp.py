"""The gateway for third-party dApps and its own web app: CORS for allowed origins, SIWE
messages for the dApp's own domain (an allow-list), the deployment's chain id, tokens that end
when the signed message says (never past SESSION_TTL), and the app's files under /app."""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from eth_account import Account
from fastapi.testclient import TestClient
from siwe import SiweMessage

from devkit.deployment import deploy_all
from tests.support.anvil import ANVIL_KEYS, AnvilNode
from tests.workers.gateway.conftest import gateway_settings, sign
from workers.gateway.app import create_app
from workers.gateway.webapp import APP_CONTRACTS

KEY = ANVIL_KEYS[5]
ADDRESS = Account.from_key(KEY).address
DAPP = "https://dapp.example"
SESSION_TTL = 3_600


def _problem(answer, status: int, reason: str) -> None:
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"].startswith("application/problem+json")
    assert answer.json()["reason"] == reason


@pytest.fixture
def dapp_client(sqlite_db: str) -> Iterator[TestClient]:
    settings = gateway_settings(
        sqlite_db,
        cors_origins=[DAPP],
        siwe_domains=["localhost:8000", "dapp.example"],
        session_ttl=SESSION_TTL,
    )
    with TestClient(create_app(settings), base_url="http://localhost:8000") as client:
        yield client


def test_a_preflight_from_an_allowed_origin_is_answered(dapp_client: TestClient) -> None:
    preflight = dapp_client.options(
        "/auth/nonce",
        headers={
            "Origin": DAPP,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type, authorization",
        },
    )
    assert preflight.status_code == 200, preflight.text
    assert preflight.headers["access-control-allow-origin"] == DAPP
    assert "POST" in preflight.headers["access-control-allow-methods"]
    assert "authorization" in preflight.headers["access-control-allow-headers"].lower()
    # the answer itself carries the header too, and a refusal's as well
    answer = dapp_client.post("/auth/nonce", json={"address": "nope"}, headers={"Origin": DAPP})
    _problem(answer, 400, "bad_request")
    assert answer.headers["access-control-allow-origin"] == DAPP


def test_an_origin_not_allowed_gets_no_cors_headers(dapp_client: TestClient) -> None:
    preflight = dapp_client.options(
        "/auth/nonce", headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"}
    )
    assert preflight.status_code == 400
    assert "access-control-allow-origin" not in preflight.headers
    answer = dapp_client.post(
        "/auth/nonce", json={"address": ADDRESS}, headers={"Origin": "https://evil.example"}
    )
    assert "access-control-allow-origin" not in answer.headers


def test_without_an_allow_list_no_origin_is_allowed(client: TestClient) -> None:
    asked = {"Origin": DAPP, "Access-Control-Request-Method": "POST"}
    preflight = client.options("/auth/nonce", headers=asked)
    assert preflight.status_code == 405
    assert "access-control-allow-origin" not in preflight.headers


def test_a_dapp_signs_in_for_its_own_domain(dapp_client: TestClient) -> None:
    issued = dapp_client.post(
        "/auth/nonce", json={"address": ADDRESS, "domain": "dapp.example", "uri": f"{DAPP}/login"}
    )
    assert issued.status_code == 200, issued.text
    message = issued.json()["message"]
    assert message.startswith("dapp.example wants you to sign in")
    assert f"URI: {DAPP}/login" in message
    answer = dapp_client.post("/auth/verify", json={"message": message, "signature": sign(message, KEY)})
    assert answer.status_code == 200, answer.text
    assert answer.json()["address"] == ADDRESS


def _own_message(client: TestClient, domain: str, expires: datetime | None) -> str:
    """A message the dApp builds itself (the `siwe` package) around a nonce of the gateway."""
    nonce = client.post("/auth/nonce", json={"address": ADDRESS}).json()["nonce"]
    now = datetime.now(UTC)
    return SiweMessage(
        domain=domain,
        address=ADDRESS,
        statement="Sign in to my dApp.",
        uri=f"https://{domain}",
        version="1",
        chain_id=31337,
        nonce=nonce,
        issued_at=now.strftime("%Y-%m-%dT%H:%M:%S.000Z"),
        expiration_time=None if expires is None else expires.strftime("%Y-%m-%dT%H:%M:%S.000Z"),
    ).prepare_message()


def test_a_domain_not_allowed_is_refused(dapp_client: TestClient) -> None:
    _problem(
        dapp_client.post("/auth/nonce", json={"address": ADDRESS, "domain": "evil.example"}),
        401,
        "wrong_domain",
    )
    message = _own_message(dapp_client, "evil.example", None)
    answer = dapp_client.post("/auth/verify", json={"message": message, "signature": sign(message, KEY)})
    _problem(answer, 401, "wrong_domain")
    assert "evil.example" in answer.json()["detail"]


def test_the_token_ends_when_the_message_says(dapp_client: TestClient) -> None:
    asked = dapp_client.post("/auth/nonce", json={"address": ADDRESS, "expires_in": 120}).json()["message"]
    before = int(time.time())
    answer = dapp_client.post("/auth/verify", json={"message": asked, "signature": sign(asked, KEY)})
    assert answer.status_code == 200, answer.text
    assert before + 119 <= answer.json()["expires_at"] <= int(time.time()) + 120
    # the dApp's own message, expiring in ten minutes
    expires = datetime.now(UTC).replace(microsecond=0) + timedelta(minutes=10)
    own = _own_message(dapp_client, "dapp.example", expires)
    answer = dapp_client.post("/auth/verify", json={"message": own, "signature": sign(own, KEY)})
    assert answer.json()["expires_at"] == int(expires.timestamp())


def test_the_token_never_outlives_the_session_limit(dapp_client: TestClient) -> None:
    far = datetime.now(UTC) + timedelta(days=30)
    own = _own_message(dapp_client, "dapp.example", far)
    answer = dapp_client.post("/auth/verify", json={"message": own, "signature": sign(own, KEY)})
    assert answer.status_code == 200, answer.text
    assert answer.json()["expires_at"] <= int(time.time()) + SESSION_TTL
    # a message without an expiry gets the limit
    own = _own_message(dapp_client, "dapp.example", None)
    answer = dapp_client.post("/auth/verify", json={"message": own, "signature": sign(own, KEY)})
    assert int(time.time()) + SESSION_TTL - 5 <= answer.json()["expires_at"] <= int(time.time()) + SESSION_TTL
    # and the gateway's own message is capped when more is asked
    _problem(dapp_client.post("/auth/nonce", json={"address": ADDRESS, "expires_in": 0}), 422, "bad_request")
    issued = dapp_client.post("/auth/nonce", json={"address": ADDRESS, "expires_in": 10 * SESSION_TTL})
    message = issued.json()["message"]
    expiry = SiweMessage.from_message(message=message).expiration_time
    seconds = datetime.fromisoformat(str(expiry).replace("Z", "+00:00")).timestamp() - time.time()
    assert SESSION_TTL - 5 <= seconds <= SESSION_TTL


def test_the_chain_id_is_the_deployments(sqlite_db: str, tmp_path: Path) -> None:
    """On a chain with id 4242 (not anvil's default) messages name 4242, and the web app's
    config carries it with the deployment's addresses."""
    node = AnvilNode("--chain-id", "4242", log_dir=tmp_path)
    try:
        manifest, manifest_file = deploy_all(node.w3, ANVIL_KEYS[0], directory=tmp_path / "deployments")
        settings = gateway_settings(
            sqlite_db, rpc_url=node.url, deployment_file=manifest_file, siwe_chain_id=None
        )
        with TestClient(create_app(settings), base_url="http://localhost:8000") as client:
            message = client.post("/auth/nonce", json={"address": ADDRESS}).json()["message"]
            assert "Chain ID: 4242" in message
            answer = client.post("/auth/verify", json={"message": message, "signature": sign(message, KEY)})
            assert answer.status_code == 200, answer.text
            other = _own_message(client, "localhost:8000", None)  # names 31337
            _problem(
                client.post("/auth/verify", json={"message": other, "signature": sign(other, KEY)}),
                401,
                "wrong_chain",
            )
            config = client.get("/app/config.json").json()
            assert config["chain_id"] == 4242
            assert config["rpc_url"] == node.url
            for name in APP_CONTRACTS:
                assert config["contracts"][name]["address"] == manifest.address(name)
                assert any(item.get("type") == "function" for item in config["contracts"][name]["abi"])
    finally:
        node.stop()


def test_the_app_is_served_with_its_routes(sqlite_db: str, tmp_path: Path) -> None:
    built = tmp_path / "dist"
    (built / "assets").mkdir(parents=True)
    page = f"<!doctype html><title>app {secrets.token_hex(4)}</title>"
    (built / "index.html").write_text(page)
    (built / "assets" / "main-abc.js").write_text("console.log(1)")
    (tmp_path / "secret.txt").write_text("not served")
    with TestClient(create_app(gateway_settings(sqlite_db, webapp_dir=built))) as client:
        assert client.get("/app", follow_redirects=False).headers["location"] == "/app/"
        assert client.get("/app/").text == page
        assert client.get("/app/owner/vehicles").text == page  # a route of the app
        asset = client.get("/app/assets/main-abc.js")
        assert asset.text == "console.log(1)"
        assert "immutable" in asset.headers["cache-control"]
        assert client.get("/app/../secret.txt").text != "not served"
        assert client.get("/app/%2E%2E/secret.txt").text == page
    with TestClient(create_app(gateway_settings(sqlite_db, webapp_dir=tmp_path / "missing"))) as client:
        _problem(client.get("/app/"), 503, "not_ready")
