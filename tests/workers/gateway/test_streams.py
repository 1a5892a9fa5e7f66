"""Live streams over a real socket (uvicorn): only member vehicles' signals, the consumer's
choice of vehicles, filters and period within the order, the end when the order ends."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import httpx
import pytest
from eth_account import Account
from fastapi.testclient import TestClient
from sqlalchemy import select

from tests.support.anvil import ANVIL_KEYS
from tests.support.databases import session_scope
from tests.workers.gateway.conftest import LiveServer, gateway_settings, sign_in
from tests.workers.gateway.projections import World
from workers.db.gateway import upsert_profile
from workers.db.settlement import Usage
from workers.gateway.app import create_app
from workers.protocol import Kind
from workers.protocol.permissions import LIVE, TELEMETRY

BUYER_KEY = ANVIL_KEYS[5]
BUYER = Account.from_key(BUYER_KEY).address.lower()
OWNER = "0x" + "0b" * 20
SPEED = "Vehicle.Speed"
LAT = "Vehicle.CurrentLocation.Latitude"


#: Accounts the Staking stand-in answers inactive for (reset by the fixture).
INACTIVE: set[str] = set()


@pytest.fixture
def live(sqlite_db: str) -> Iterator[tuple[LiveServer, str, str]]:
    INACTIVE.clear()
    app = create_app(
        gateway_settings(sqlite_db, access_cache_ttl=0, stream_min_refresh=0.2),
        staking_check=lambda account, _role, _block: account.lower() not in INACTIVE,
    )
    now = int(time.time())
    with session_scope(sqlite_db) as session:
        w = World(session)
        w.head(10)
        w.product(1, Kind.STREAM, refresh=1)
        w.product(2, Kind.STREAM, permissions=TELEMETRY | LIVE, refresh=0)
        w.product(5, Kind.API)
        w.product(4, Kind.BUNDLE, components=((2, 0), (5, 3)))
        for v, make in ((1, "Tesla"), (2, "Ford"), (3, "Tesla"), (4, "Ford")):
            w.vehicle(v, OWNER)
            w.signals(v, {SPEED: float(v), LAT: 48.0}, now * 1000)
            upsert_profile(session, v, make=make, model="M", powertrain="BEV", region="EU")
        for v in (1, 2, 4):
            w.join(1, v, OWNER)
        w.join(4, 3, OWNER)
        w.order(1, 1, BUYER, 2, starts=now - 10, ends=now + 3600)
        w.order(2, 4, BUYER, 5, starts=now - 10, ends=now + 3600)
        w.order(3, 5, BUYER, 10)  # an Api order opens no stream
    with TestClient(app, base_url="http://localhost:8000") as client:
        token = sign_in(client, BUYER_KEY)
    server = LiveServer(app)
    yield server, token, sqlite_db
    server.stop()


def _events(
    server: LiveServer, token: str, query: str, count: int, timeout: float = 10.0
) -> list[tuple[str, dict]]:
    """The first `count` events of a stream (the connection is closed after)."""
    events: list[tuple[str, dict]] = []
    with (
        httpx.Client(base_url=server.url, timeout=timeout) as http,
        http.stream("GET", f"/v1/orders/{query}", headers={"Authorization": f"Bearer {token}"}) as answer,
    ):
        assert answer.status_code == 200, answer.read()
        name = "message"
        for line in answer.iter_lines():
            if line.startswith("event:"):
                name = line.split(":", 1)[1].strip()
            elif line.startswith("data:"):
                events.append((name, json.loads(line.split(":", 1)[1])))
                if len(events) >= count or name == "end":
                    break
    return events


def _problem(server: LiveServer, token: str, query: str) -> dict:
    answer = httpx.get(f"{server.url}/v1/orders/{query}", headers={"Authorization": f"Bearer {token}"})
    assert answer.headers["content-type"].startswith("application/problem+json"), answer.text
    return answer.json()


def test_a_stream_carries_only_member_vehicles_up_to_the_order(live) -> None:
    server, token, db_url = live
    events = _events(server, token, "1/stream?refresh=1", 1 + 2 * 2)
    assert events[0] == ("open", {"order_id": 1, "vehicles": 2, "refresh": 1.0})
    served = [
        (e["vehicle_id"], sorted(s["name"] for s in e["signals"]))
        for name, e in events[1:]
        if name == "signals"
    ]
    # members 1, 2, 4; the order covers 2 vehicles: the two lowest; vehicle 3 never joined
    assert served == [(1, [LAT, SPEED]), (2, [LAT, SPEED])] * 2
    with session_scope(db_url, read_only=True) as session:
        days = session.scalars(select(Usage).where(Usage.kind == "stream")).all()
    assert sorted((u.product_id, u.vehicle_id) for u in days) == [(1, 1), (1, 2)]  # once a day each


def test_the_consumer_picks_vehicles_by_filter_and_count(live) -> None:
    server, token, _ = live
    events = _events(server, token, "1/stream?make=ford&vehicles=1&refresh=1", 2)
    assert [e["vehicle_id"] for name, e in events if name == "signals"] == [2]
    events = _events(server, token, "1/stream?make=Ford&refresh=1", 3)
    assert [e["vehicle_id"] for name, e in events if name == "signals"] == [2, 4]


def test_the_period_and_the_vehicle_count_stay_within_the_order(live) -> None:
    server, token, _ = live
    assert _problem(server, token, "1/stream?refresh=0.5")["reason"] == "refresh_too_fast"
    assert _problem(server, token, "1/stream?vehicles=3")["reason"] == "too_many_vehicles"
    assert _problem(server, token, "3/stream")["reason"] == "wrong_kind"
    assert _problem(server, token, "99/stream")["reason"] == "not_found"
    other = None
    with TestClient(create_app(), base_url="http://localhost:8000") as client:
        other = sign_in(client, ANVIL_KEYS[6])
    assert _problem(server, other, "1/stream")["reason"] == "not_your_order"


def test_a_bundle_order_streams_its_stream_component_to_bundle_members(live) -> None:
    server, token, _ = live
    events = _events(server, token, "2/stream?refresh=0.2", 3)
    signals = [e for name, e in events if name == "signals"]
    assert {(e["product_id"], e["vehicle_id"]) for e in signals} == {(2, 3)}  # vehicle 3 joined the bundle
    # product 2 exposes telemetry only: no location signal goes out
    assert all(s["name"] == SPEED for e in signals for s in e["signals"])


def test_the_stream_ends_when_the_order_does(live) -> None:
    server, token, db_url = live
    with session_scope(db_url) as session:
        w = World(session)
        w.head(11)
        w.order(1, 1, BUYER, 2, starts=int(time.time()) - 10, ends=int(time.time()) + 2)
    events = _events(server, token, "1/stream?refresh=1", 20, timeout=15)
    assert events[-1][0] == "end"
    assert events[-1][1]["reason"] == "order_expired"
    assert 1 <= sum(1 for name, _ in events if name == "signals") <= 6


def test_the_stream_drops_a_vehicle_whose_consent_is_gone(live) -> None:
    server, token, db_url = live
    with session_scope(db_url) as session:
        w = World(session)
        w.head(11)
        w.vehicle(1, "0x" + "0c" * 20, generation=2)  # transferred: its membership is void
    events = _events(server, token, "1/stream?refresh=1", 3)
    assert [e["vehicle_id"] for name, e in events if name == "signals"] == [2, 4]


def test_the_stream_ends_when_the_buyer_is_no_longer_active(live) -> None:
    """Slashed or de-whitelisted: the next tick after the indexed block ends the stream."""
    server, token, db_url = live
    with (
        httpx.Client(base_url=server.url, timeout=15) as http,
        http.stream(
            "GET", "/v1/orders/1/stream?refresh=1", headers={"Authorization": f"Bearer {token}"}
        ) as answer,
    ):
        events: list[tuple[str, dict]] = []
        name = "message"
        for line in answer.iter_lines():
            if line.startswith("event:"):
                name = line.split(":", 1)[1].strip()
            elif line.startswith("data:"):
                events.append((name, json.loads(line.split(":", 1)[1])))
                if name == "signals" and not INACTIVE:
                    INACTIVE.add(BUYER.lower())
                    with session_scope(db_url) as session:
                        World(session).head(11)
                if name == "end":
                    break
    assert events[-1] == ("end", {"reason": "buyer_inactive", "detail": events[-1][1]["detail"]})
    assert 1 <= sum(1 for name, _ in events if name == "signals") <= 4
