"""Fail closed on a stale index: while the indexer is halted (a reorg deeper than its window)
or too far behind the chain, every endpoint serving vehicle data answers 503 `index_stale`,
an open stream ends with it, and /healthz says so."""

from __future__ import annotations

import random
import threading
import time

import httpx
import pytest
from fastapi.testclient import TestClient

from tests.support.anvil import ANVIL_KEYS
from tests.support.databases import session_scope
from tests.support.history import History
from tests.workers.gateway.conftest import gateway_settings, sign_in
from tests.workers.gateway.test_streams import live  # noqa: F401 - the stream fixture
from tests.workers.test_indexer import make_indexer
from tests.workers.test_reorg import replacement_txs
from workers.db.indexing import IndexerHealth
from workers.gateway.app import create_app
from workers.indexer import health
from workers.indexer.sync import ReorgTooDeepError

#: Every serving endpoint (method, path, JSON body): signals latest (the ASGI fast path) and
#: history, a stream, datasets, commands, consents and claims.
SERVING = [
    ("GET", "/v1/products/1/vehicles/1/signals/latest", None),
    ("GET", "/v1/products/1/vehicles/1/signals?from=0", None),
    ("GET", "/v1/orders/1/stream", None),
    ("POST", "/v1/orders/1/dataset", {}),
    ("GET", "/v1/datasets/1", None),
    ("POST", "/v1/vehicles/1/commands/lock", None),
    ("GET", "/v1/vehicles/1/consents", None),
    ("GET", "/v1/members/0x" + "0b" * 20 + "/claims", None),
]


def _answers(client: TestClient, token: str) -> dict[str, httpx.Response]:
    headers = {"Authorization": f"Bearer {token}"}
    return {
        f"{method} {path}": client.request(method, path, json=body, headers=headers)
        for method, path, body in SERVING
        if "stream" not in path
    } | {"GET /v1/orders/1/stream": _stream_status(client, headers)}


def _stream_status(client: TestClient, headers: dict[str, str]) -> httpx.Response:
    with client.stream("GET", "/v1/orders/1/stream", headers=headers) as answer:
        answer.read() if answer.status_code != 200 else None
        return answer


def _assert_all_stale(answers: dict[str, httpx.Response]) -> None:
    for call, answer in answers.items():
        assert answer.status_code == 503, (call, answer.status_code, answer.text)
        assert answer.headers["content-type"].startswith("application/problem+json"), call
        assert answer.json()["reason"] == "index_stale", call
        assert int(answer.headers["retry-after"]) >= 1, call


def _assert_none_stale(answers: dict[str, httpx.Response]) -> None:
    for call, answer in answers.items():
        assert answer.status_code != 503, (call, answer.text)


@pytest.fixture
def chain(deployment, sqlite_db):
    anvil, manifest, path = deployment
    return anvil, History(anvil.w3, manifest), path, sqlite_db


def test_a_reorg_deeper_than_the_window_stops_every_serving_endpoint(chain) -> None:
    anvil, history, path, db_url = chain
    history.all()
    anvil.mine(10)
    indexer = make_indexer(anvil.url, db_url, path, reorg_window=3)
    indexer.sync()
    app = create_app(gateway_settings(db_url, index_health_ttl=0), staking_check=lambda _a, _r, _b: True)
    with TestClient(app, base_url="http://localhost:8000") as client:
        token = sign_in(client, ANVIL_KEYS[5])
        assert client.get("/healthz").json()["status"] == "ok"
        _assert_none_stale(_answers(client, token))

        history.random_transfers(random.Random(5), 6)
        indexer.sync()
        anvil.reorg(6, replacement_txs(history, random.Random(6), 6))
        with pytest.raises(ReorgTooDeepError):
            indexer.sync()

        healthz = client.get("/healthz")
        assert healthz.status_code == 200  # liveness: the process and its database answer
        assert healthz.json()["status"] == "index_stale"
        assert "REORG_WINDOW" in healthz.json()["index"]["halted"]
        _assert_all_stale(_answers(client, token))
        # signing in serves no vehicle data: it stays open
        assert client.post("/auth/nonce", json={"address": "0x" + "0c" * 20}).status_code == 200


def test_an_index_too_far_behind_the_head_or_not_reporting_is_stale(chain) -> None:
    anvil, history, path, db_url = chain
    history.all()
    indexer = make_indexer(anvil.url, db_url, path)
    indexer.sync()
    settings = gateway_settings(
        db_url, index_health_ttl=0, index_max_blocks_behind=5, index_max_seconds_behind=3
    )
    app = create_app(settings, staking_check=lambda _a, _r, _b: True)
    with TestClient(app, base_url="http://localhost:8000") as client:
        token = sign_in(client, ANVIL_KEYS[5])
        _assert_none_stale(_answers(client, token))

        anvil.mine(20)
        indexer.sync(max_blocks=3)  # the indexer read the head but applied 3 of 20 blocks
        index = client.get("/healthz").json()["index"]
        assert index["blocks_behind"] == 17 and not index["fresh"]
        _assert_all_stale(_answers(client, token))

        indexer.sync()
        _assert_none_stale(_answers(client, token))
        time.sleep(3.5)  # the indexer stops reporting
        assert "last reported" in client.get("/healthz").json()["index"]["detail"]
        _assert_all_stale(_answers(client, token))


def test_an_open_stream_ends_when_the_index_goes_stale(live) -> None:  # noqa: F811
    server, token, db_url = live
    events: list[tuple[str, dict]] = []

    def read() -> None:
        import json  # noqa: PLC0415

        headers = {"Authorization": f"Bearer {token}"}
        with (
            httpx.Client(base_url=server.url, timeout=20) as http,
            http.stream("GET", "/v1/orders/1/stream", headers=headers) as answer,
        ):
            name = "message"
            for line in answer.iter_lines():
                if line.startswith("event:"):
                    name = line.split(":", 1)[1].strip()
                elif line.startswith("data:"):
                    events.append((name, json.loads(line.split(":", 1)[1])))
                    if name == "end":
                        return

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    deadline = time.monotonic() + 10
    while sum(name == "signals" for name, _ in events) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert sum(name == "signals" for name, _ in events) >= 2, events
    with session_scope(db_url) as session:
        row = session.get(IndexerHealth, "main")
        assert row is not None
        head = int(row.indexed_block)
    with session_scope(db_url) as session:
        health.report(
            session.connection(),
            "main",
            chain_head=head + 1,
            chain_head_timestamp=0,
            indexed_block=head,
            indexed_timestamp=0,
            halted="ReorgTooDeepError: block 10 changed below the undo records",
        )
    reader.join(timeout=10)
    assert not reader.is_alive()
    name, data = events[-1]
    assert name == "end" and data["reason"] == "index_stale", events[-3:]
    assert "halted" in data["detail"]
    served_after = [e for e in events[events.index((name, data)) :] if e[0] == "signals"]
    assert served_after == []


def test_the_assessment_names_each_way_to_be_stale(sqlite_db) -> None:
    settings = gateway_settings(sqlite_db, index_max_blocks_behind=10, index_max_seconds_behind=60)
    row = IndexerHealth(
        name="main",
        chain_head=110,
        chain_head_timestamp=1_000,
        indexed_block=100,
        indexed_timestamp=940,
        checked_at=5_000.0,
        halted=None,
    )
    assert health.assess(row, settings, now=5_060).fresh
    assert not health.assess(None, settings).fresh
    row.indexed_block = 99
    assert "11 blocks behind" in health.assess(row, settings, now=5_000).detail
    row.indexed_block, row.indexed_timestamp = 100, 939
    assert "61s older" in health.assess(row, settings, now=5_000).detail
    row.indexed_timestamp = 940
    assert "last reported 61s ago" in health.assess(row, settings, now=5_061).detail
    row.halted = "reorg too deep"
    assert health.assess(row, settings, now=5_000).detail == "indexing halted: reorg too deep"
