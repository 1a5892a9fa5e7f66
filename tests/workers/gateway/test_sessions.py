"""Revocable sessions: POST /auth/logout ends this token, POST /auth/revoke-all every token
of the address, at once in every gateway over the same database — two app instances on
SQLite and PostgreSQL, two `python -m workers.gateway` processes — on every route, the
metered fast path and open live streams included."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from eth_account import Account
from fastapi.testclient import TestClient

from devkit.devnet import free_port, stop_process, wait_ready
from tests.support.anvil import ANVIL_KEYS
from tests.support.databases import session_scope
from tests.workers.gateway.conftest import LiveServer, gateway_settings, sign, sign_in
from tests.workers.gateway.projections import World, fresh_index
from workers.config import PROJECT_ROOT
from workers.gateway.app import create_app
from workers.protocol import Kind
from workers.protocol.permissions import LIVE, TELEMETRY

KEY = ANVIL_KEYS[5]
ADDRESS = Account.from_key(KEY).address
OTHER_KEY = ANVIL_KEYS[6]
#: A route any signed-in caller may ask (vehicle 1 does not exist: 404 with a live token).
PROBE = "/v1/vehicles/1/consents"
#: The metered read, served by the ASGI fast path (no product 1 here: 404 with a live token).
FAST_PROBE = "/v1/products/1/vehicles/1/signals/latest"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def reason(answer: httpx.Response) -> str | None:
    return answer.json().get("reason") if answer.status_code >= 400 else None


@pytest.fixture
def two_gateways(db_url: str) -> Iterator[tuple[TestClient, TestClient]]:
    """Two gateway apps, each with its own runtime (engine, pool, caches), on one database."""
    settings = gateway_settings(db_url, access_cache_ttl=0)
    fresh_index(db_url)
    with (
        TestClient(create_app(settings), base_url="http://localhost:8000") as first,
        TestClient(create_app(settings), base_url="http://localhost:8000") as second,
    ):
        yield first, second


def test_logout_ends_this_token_everywhere_and_no_other(two_gateways) -> None:
    first, second = two_gateways
    token, kept = sign_in(first, KEY), sign_in(second, KEY)
    for gateway in (first, second):
        assert gateway.get(PROBE, headers=bearer(token)).status_code == 404
        assert gateway.get(FAST_PROBE, headers=bearer(token)).status_code == 404

    answer = first.post("/auth/logout", headers=bearer(token))
    assert answer.status_code == 200 and answer.json() == {"address": ADDRESS, "revoked": 1}
    for gateway in (second, first):  # the other process first: no propagation delay to wait for
        for path in (PROBE, FAST_PROBE):
            refused = gateway.get(path, headers=bearer(token))
            assert refused.status_code == 401 and reason(refused) == "session_revoked", path
            assert refused.headers["content-type"].startswith("application/problem+json")
    assert reason(second.post("/auth/logout", headers=bearer(token))) == "session_revoked"
    assert second.get(PROBE, headers=bearer(kept)).status_code == 404  # the address's other token


def test_revoke_all_ends_every_token_of_the_address_and_signing_in_again_works(two_gateways) -> None:
    first, second = two_gateways
    tokens = [sign_in(first, KEY), sign_in(second, KEY), sign_in(first, KEY)]
    stranger = sign_in(second, OTHER_KEY)
    answer = second.post("/auth/revoke-all", headers=bearer(tokens[1]))
    assert answer.status_code == 200 and answer.json() == {"address": ADDRESS, "revoked": 3}
    for gateway in (first, second):
        for token in tokens:
            assert reason(gateway.get(PROBE, headers=bearer(token))) == "session_revoked"
            assert reason(gateway.get(FAST_PROBE, headers=bearer(token))) == "session_revoked"
        assert gateway.get(PROBE, headers=bearer(stranger)).status_code == 404
    fresh = sign_in(first, KEY)
    assert second.get(PROBE, headers=bearer(fresh)).status_code == 404


def test_revocation_needs_the_token_it_revokes(client: TestClient) -> None:
    assert reason(client.post("/auth/logout")) == "unauthenticated"
    assert reason(client.post("/auth/revoke-all", headers=bearer("v1.a.b.c.d"))) == "bad_token"


def _gateway_process(db_url: str, log: Path, started: list[subprocess.Popen[bytes]]) -> str:
    """`python -m workers.gateway` on `db_url`, appended to `started` (to be stopped) before
    it is waited for; its URL once it answers."""
    port = free_port()
    env = {
        **os.environ,
        "DATABASE_URL": db_url,
        "GATEWAY_PORT": str(port),
        "PYTHONPATH": str(PROJECT_ROOT),
        "SIWE_CHAIN_ID": "31337",  # no chain to read it from
    }
    with open(log, "w") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "workers.gateway"],
            cwd=PROJECT_ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    started.append(process)
    url = f"http://127.0.0.1:{port}"
    wait_ready(
        process, lambda: httpx.get(f"{url}/healthz").status_code == 200, f"gateway {url}", log=log, timeout=60
    )
    return url


def _sign_in_over_http(url: str, key: str) -> str:
    address = Account.from_key(key).address
    message = httpx.post(f"{url}/auth/nonce", json={"address": address}).json()["message"]
    verified = httpx.post(f"{url}/auth/verify", json={"message": message, "signature": sign(message, key)})
    assert verified.status_code == 200, verified.text
    return verified.json()["token"]


def test_two_gateway_processes_refuse_a_revoked_token_at_once(sqlite_db: str, tmp_path: Path) -> None:
    processes: list[subprocess.Popen[bytes]] = []
    fresh_index(sqlite_db)
    try:
        a = _gateway_process(sqlite_db, tmp_path / "a.log", processes)
        b = _gateway_process(sqlite_db, tmp_path / "b.log", processes)
        token = _sign_in_over_http(a, KEY)
        assert httpx.get(f"{b}{PROBE}", headers=bearer(token)).status_code == 404
        with httpx.Client() as http:  # kept-alive connections to both processes
            assert http.get(f"{b}{FAST_PROBE}", headers=bearer(token)).status_code == 404
            assert http.post(f"{a}/auth/logout", headers=bearer(token)).json()["revoked"] == 1
            started = time.monotonic()
            refused = http.get(f"{b}{FAST_PROBE}", headers=bearer(token))
            elapsed = time.monotonic() - started
        assert refused.status_code == 401 and reason(refused) == "session_revoked"
        assert elapsed < 1.0  # the very next request, no waiting for a cache to expire
        assert reason(httpx.get(f"{b}{PROBE}", headers=bearer(token))) == "session_revoked"
    finally:
        for process in processes:
            stop_process(process)


def test_an_open_stream_ends_at_its_next_tick_after_a_revocation_elsewhere(sqlite_db: str) -> None:
    settings = gateway_settings(sqlite_db, access_cache_ttl=0, stream_min_refresh=0.2)
    now = int(time.time())
    with session_scope(sqlite_db) as session:
        world = World(session)
        world.head(10)
        world.product(1, Kind.STREAM, permissions=TELEMETRY | LIVE, refresh=0)
        world.vehicle(1, "0x" + "0b" * 20)
        world.signals(1, {"Vehicle.Speed": 12.0}, now * 1000)
        world.join(1, 1, "0x" + "0b" * 20)
        world.order(1, 1, ADDRESS, 1, starts=now - 10, ends=now + 3600)
    streaming = create_app(settings, staking_check=lambda _account, _role, _block: True)
    with TestClient(streaming, base_url="http://localhost:8000") as client:
        token = sign_in(client, KEY)
    server = LiveServer(streaming)
    events: list[tuple[str, str]] = []
    opened = threading.Event()

    def listen() -> None:
        with (
            httpx.Client(base_url=server.url, timeout=10) as http,
            http.stream("GET", "/v1/orders/1/stream?refresh=0.2", headers=bearer(token)) as answer,
        ):
            name = "message"
            for line in answer.iter_lines():
                if line.startswith("event:"):
                    name = line.split(":", 1)[1].strip()
                elif line.startswith("data:"):
                    events.append((name, line.split(":", 1)[1].strip()))
                    if name == "signals":
                        opened.set()
                    if name == "end":
                        return

    listener = threading.Thread(target=listen)
    listener.start()
    try:
        assert opened.wait(10), events
        with TestClient(create_app(settings), base_url="http://localhost:8000") as elsewhere:
            revoked_at = time.monotonic()
            assert elsewhere.post("/auth/logout", headers=bearer(token)).json()["revoked"] == 1
        listener.join(10)
        ended_after = time.monotonic() - revoked_at
    finally:
        server.stop()
    assert events[-1][0] == "end" and '"session_revoked"' in events[-1][1], events
    assert ended_after < 2.0  # one 0.2 s period, with room for a slow machine
