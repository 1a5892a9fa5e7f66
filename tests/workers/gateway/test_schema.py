"""schemathesis against the served OpenAPI document: every operation, with and without a
valid bearer token, on a real anvil deployment: no answer is a server error, and every
refusal is a problem document with a reason."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, settings

from devkit.deployment import ANVIL_DEPLOYER_KEY, deploy_all
from tests.support.anvil import ANVIL_KEYS, AnvilNode
from tests.support.databases import session_scope
from tests.workers.gateway.conftest import gateway_settings, sign_in
from tests.workers.gateway.projections import World
from workers.gateway.app import create_app

EXAMPLES = 30


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[object, str]]:
    from devkit.databases import migrated, sqlite_url  # noqa: PLC0415

    directory = tmp_path_factory.mktemp("schema")
    node = AnvilNode(log_dir=directory)
    _, manifest_file = deploy_all(node.w3, ANVIL_DEPLOYER_KEY, directory=directory / "deployments")
    with migrated(sqlite_url(directory)) as db_url:
        with session_scope(db_url) as session:
            World(session).head(node.w3.eth.block_number)
        settings_ = gateway_settings(
            db_url,
            rpc_url=node.url,
            deployment_file=manifest_file,
            rate_limit_per_second=1e6,
            rate_limit_burst=10**6,
            auth_rate_limit_per_second=1e6,
            auth_rate_limit_burst=10**6,
        )
        app = create_app(settings_)
        with TestClient(app, base_url="http://localhost:8000") as client:
            token = sign_in(client)
        yield app, token
    node.stop()


schema = schemathesis.pytest.from_fixture("api_schema")


@pytest.fixture(scope="module")
def api_schema(served: tuple[object, str]) -> object:
    app, _ = served
    return schemathesis.openapi.from_asgi("/openapi.json", app)


def _check(case: object, response: object) -> None:
    assert response.status_code < 500, (
        f"{case.method} {case.formatted_path}: {response.status_code} {response.text}"
    )  # type: ignore[attr-defined]
    if response.status_code >= 400 and response.status_code != 405:  # type: ignore[attr-defined]
        content_type = response.headers.get("content-type") or [""]  # type: ignore[attr-defined]
        if isinstance(content_type, list):
            content_type = content_type[0]
        assert content_type.startswith("application/problem+json"), response.text  # type: ignore[attr-defined]
        assert response.json()["reason"]  # type: ignore[attr-defined]


@schema.parametrize()
@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_server_errors_without_a_token(case: object) -> None:
    response = case.call()  # type: ignore[attr-defined]
    _check(case, response)


#: Operations that end the session of the token they are called with.
REVOKING = {"/auth/logout", "/auth/revoke-all"}


@schema.parametrize()
@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_server_errors_with_a_token(case: object, served: tuple[object, str]) -> None:
    app, token = served
    if case.path in REVOKING:  # type: ignore[attr-defined]
        # a token of another wallet, so that the other operations keep a live one
        token = sign_in(TestClient(app, base_url="http://localhost:8000"), ANVIL_KEYS[6])  # type: ignore[arg-type]
    headers = dict(case.headers or {})  # type: ignore[attr-defined]
    headers["Authorization"] = f"Bearer {token}"
    response = case.call(headers=headers)  # type: ignore[attr-defined]
    _check(case, response)
