"""Owner privacy zones over a real gateway and database: the owner (signed in, checked against
indexed ownership) creates, lists and deletes zones; locations inside one reach buyers only
coarsened on every path (latest, history, streams, the store read datasets use); a transfer
voids them; bad input gets typed problems."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import httpx
import pytest
from eth_account import Account
from fastapi import FastAPI
from fastapi.testclient import TestClient

from tests.support.anvil import ANVIL_KEYS
from tests.support.databases import session_scope
from tests.workers.gateway.conftest import LiveServer, gateway_settings, sign_in
from tests.workers.gateway.projections import World
from workers.access import Purpose, may_use_order
from workers.gateway.app import create_app
from workers.gateway.streams import OpenStream, StreamPlan, StreamRequest, plan, tick
from workers.protocol import Kind
from workers.signals import store
from workers.signals.store import SignalValue, store_signals
from workers.signals.zones import CELL_DEGREES, MAX_ZONES, Zone, cell_centre, shape

BUYER_KEY, OWNER_KEY, NEW_OWNER_KEY, STRANGER_KEY = ANVIL_KEYS[5], ANVIL_KEYS[3], ANVIL_KEYS[4], ANVIL_KEYS[6]
BUYER = Account.from_key(BUYER_KEY).address.lower()
OWNER = Account.from_key(OWNER_KEY).address
NEW_OWNER = Account.from_key(NEW_OWNER_KEY).address
SPEED = "Vehicle.Speed"
LAT = "Vehicle.CurrentLocation.Latitude"
LON = "Vehicle.CurrentLocation.Longitude"
#: Home, and a point 300 m north of it (inside a 500 m zone), and one 3 km east (outside).
HOME = (48.137154, 11.576124)
NEAR = (48.139852, 11.576124)
FAR_AWAY = (48.137154, 11.616500)
T0 = 1_700_000_000_000
HOME_CELL = (cell_centre(HOME[0]), cell_centre(HOME[1]))


def _observe(session, vehicle: int, point: tuple[float, float], ts_ms: int, speed: float = 30.0) -> None:
    store_signals(
        session,
        vehicle,
        [
            SignalValue(LAT, point[0], "degrees", ts_ms, "oem:1"),
            SignalValue(LON, point[1], "degrees", ts_ms, "oem:1"),
            SignalValue(SPEED, speed, "km/h", ts_ms, "oem:1"),
        ],
    )


@pytest.fixture
def world(db_url: str) -> Iterator[tuple[TestClient, str]]:
    app = create_app(gateway_settings(db_url, access_cache_ttl=0), staking_check=lambda _a, _r, _b: True)
    with session_scope(db_url) as session:
        w = World(session)
        w.head(10)
        w.product(1, Kind.API)
        w.vehicle(1, OWNER)
        w.join(1, 1, OWNER)
        w.order(1, 1, BUYER, 100)
        _observe(session, 1, FAR_AWAY, T0)
        _observe(session, 1, NEAR, T0 + 1000)
    with TestClient(app, base_url="http://localhost:8000") as client:
        yield client, db_url


def _auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _home(client: TestClient, token: str, vehicle: int = 1, **changes: object) -> httpx.Response:
    body = {"label": "home", "latitude": HOME[0], "longitude": HOME[1], "radius_m": 500, **changes}
    return client.post(f"/v1/vehicles/{vehicle}/zones", json=body, headers=_auth(token))


def _location(signals: list[dict]) -> dict[str, list[float]]:
    return {name: [s["value"] for s in signals if s["name"] == name] for name in (LAT, LON)}


def _refused(answer: httpx.Response, status: int, reason: str) -> None:
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"].startswith("application/problem+json")
    assert answer.json()["reason"] == reason, answer.text


def test_shape_hides_points_inside_a_zone_and_passes_the_rest() -> None:
    zone = Zone(1, 1, "home", HOME[0], HOME[1], 500.0, 0)
    signals = [
        SignalValue(LAT, NEAR[0], "degrees", 1, "oem:1", "0xsig"),
        SignalValue(LON, NEAR[1], "degrees", 1, "oem:1", "0xsig"),
        SignalValue(SPEED, 12.0, "km/h", 1, "oem:1"),
        SignalValue(LAT, FAR_AWAY[0], "degrees", 2, "oem:1"),
        SignalValue(LON, FAR_AWAY[1], "degrees", 2, "oem:1"),
        SignalValue(LAT, NEAR[0], "degrees", 3, "oem:1"),  # its longitude came from another source
        SignalValue(LON, NEAR[1], "degrees", 3, "device:7"),
    ]
    shaped = shape([zone], signals)
    assert [(s.name, s.value, s.signature) for s in shaped[:3]] == [
        (LAT, HOME_CELL[0], None),
        (LON, HOME_CELL[1], None),
        (SPEED, 12.0, None),
    ]
    assert shaped[3:5] == signals[3:5]  # outside: exact
    # a coordinate without its partner cannot be shown outside: snapped to its own cell
    assert [s.value for s in shaped[5:]] == [cell_centre(NEAR[0]), cell_centre(NEAR[1])]
    assert shape([], signals) == signals
    assert abs(HOME_CELL[0] - HOME[0]) <= CELL_DEGREES / 2 and HOME_CELL != HOME


def test_a_zone_coarsens_latest_and_history_until_deleted(world) -> None:
    client, db_url = world
    buyer, owner = sign_in(client, BUYER_KEY), sign_in(client, OWNER_KEY)
    latest = client.get("/v1/products/1/vehicles/1/signals/latest", headers=_auth(buyer)).json()
    assert _location(latest["signals"]) == {LAT: [NEAR[0]], LON: [NEAR[1]]}  # no zone yet: exact

    created = _home(client, owner)
    assert created.status_code == 201, created.text
    zone = created.json()
    assert zone["label"] == "home" and zone["vehicle_id"] == 1 and zone["radius_m"] == 500

    latest = client.get("/v1/products/1/vehicles/1/signals/latest", headers=_auth(buyer)).json()
    assert _location(latest["signals"]) == {LAT: [HOME_CELL[0]], LON: [HOME_CELL[1]]}
    assert [s["value"] for s in latest["signals"] if s["name"] == SPEED] == [30.0]
    history = client.get("/v1/products/1/vehicles/1/signals?from=0", headers=_auth(buyer)).json()
    # the point 3 km away is exact, the one near home is the home cell's centre
    assert _location(history["signals"]) == {
        LAT: [FAR_AWAY[0], HOME_CELL[0]],
        LON: [FAR_AWAY[1], HOME_CELL[1]],
    }
    # asking for the latitude alone does not escape the zone (its partner is read with it)
    only = client.get(f"/v1/products/1/vehicles/1/signals?from=0&names={LAT}", headers=_auth(buyer)).json()
    assert [(s["name"], s["value"]) for s in only["signals"]] == [(LAT, FAR_AWAY[0]), (LAT, HOME_CELL[0])]
    fast = client.get(f"/v1/products/1/vehicles/1/signals/latest?names={LAT}", headers=_auth(buyer)).json()
    assert [s["value"] for s in fast["signals"]] == [HOME_CELL[0]]
    # the read datasets aggregate (the metric's latest value) is the same store read
    with session_scope(db_url, read_only=True) as session:
        assert [s.value for s in store.latest(session, 1, [LON], since_ms=0)] == [HOME_CELL[1]]

    listed = client.get("/v1/vehicles/1/zones", headers=_auth(owner)).json()
    assert [z["zone_id"] for z in listed["zones"]] == [zone["zone_id"]] and listed["max_zones"] == MAX_ZONES
    deleted = client.delete(f"/v1/vehicles/1/zones/{zone['zone_id']}", headers=_auth(owner))
    assert deleted.status_code == 204, deleted.text
    latest = client.get("/v1/products/1/vehicles/1/signals/latest", headers=_auth(buyer)).json()
    assert _location(latest["signals"]) == {LAT: [NEAR[0]], LON: [NEAR[1]]}
    _refused(client.delete(f"/v1/vehicles/1/zones/{zone['zone_id']}", headers=_auth(owner)), 404, "not_found")


def test_only_the_owner_creates_lists_and_deletes_zones(world) -> None:
    client, _ = world
    owner, stranger = sign_in(client, OWNER_KEY), sign_in(client, STRANGER_KEY)
    zone = _home(client, owner).json()
    _refused(_home(client, stranger), 403, "not_owner")
    _refused(client.get("/v1/vehicles/1/zones", headers=_auth(stranger)), 403, "not_owner")
    _refused(
        client.delete(f"/v1/vehicles/1/zones/{zone['zone_id']}", headers=_auth(stranger)), 403, "not_owner"
    )
    _refused(_home(client, owner, vehicle=2), 404, "not_found")  # no such vehicle indexed
    _refused(client.get("/v1/vehicles/1/zones"), 401, "unauthenticated")
    assert len(client.get("/v1/vehicles/1/zones", headers=_auth(owner)).json()["zones"]) == 1


def test_a_transfer_voids_the_previous_owner_s_zones(world) -> None:
    client, db_url = world
    owner, new_owner = sign_in(client, OWNER_KEY), sign_in(client, NEW_OWNER_KEY)
    zone = _home(client, owner).json()
    with session_scope(db_url) as session:
        w = World(session)
        w.head(11)
        w.vehicle(1, NEW_OWNER, generation=2)
    _refused(client.get("/v1/vehicles/1/zones", headers=_auth(owner)), 403, "not_owner")
    _refused(client.delete(f"/v1/vehicles/1/zones/{zone['zone_id']}", headers=_auth(owner)), 403, "not_owner")
    assert client.get("/v1/vehicles/1/zones", headers=_auth(new_owner)).json()["zones"] == []
    # the new owner cannot delete the old zone either: it is not of their tenure
    _refused(
        client.delete(f"/v1/vehicles/1/zones/{zone['zone_id']}", headers=_auth(new_owner)), 404, "not_found"
    )
    with session_scope(db_url, read_only=True) as session:
        # void: not applied
        assert [s.value for s in store.latest(session, 1, [LAT], since_ms=0)] == [NEAR[0]]
    mine = _home(client, new_owner, label="work", radius_m=1000)
    assert mine.status_code == 201, mine.text
    listed = client.get("/v1/vehicles/1/zones", headers=_auth(new_owner)).json()["zones"]
    assert [(z["label"], z["zone_id"]) for z in listed] == [("work", mine.json()["zone_id"])]
    with session_scope(db_url, read_only=True) as session:
        assert [s.value for s in store.latest(session, 1, [LAT], since_ms=0)] == [HOME_CELL[0]]


@pytest.mark.parametrize(
    "changes",
    [
        {"radius_m": 10},
        {"radius_m": 1e6},
        {"latitude": 91},
        {"longitude": -181},
        {"label": "   "},
        {"label": "x" * 65},
        {"colour": "red"},
        {"radius_m": "wide"},
    ],
)
def test_bad_zones_are_refused_with_typed_problems(world, changes: dict) -> None:
    client, _ = world
    _refused(_home(client, sign_in(client, OWNER_KEY), **changes), 422, "bad_request")


def test_zones_are_bounded_per_vehicle(world) -> None:
    client, _ = world
    owner = sign_in(client, OWNER_KEY)
    for i in range(MAX_ZONES):
        assert _home(client, owner, label=f"place {i}").status_code == 201
    _refused(_home(client, owner, label="one more"), 409, "too_many_zones")
    _refused(client.delete("/v1/vehicles/1/zones/0", headers=_auth(owner)), 422, "bad_request")


def _streamed(sqlite_db: str) -> FastAPI:
    """A gateway where buyer holds stream order 1 of product 1, which vehicle 1 joined; the
    vehicle was last seen 300 m from the owner's home."""
    app = create_app(
        gateway_settings(sqlite_db, access_cache_ttl=0, stream_min_refresh=0.2),
        staking_check=lambda _a, _r, _b: True,
    )
    now = int(time.time())
    with session_scope(sqlite_db) as session:
        w = World(session)
        w.head(10)
        w.product(1, Kind.STREAM, refresh=0)
        w.vehicle(1, OWNER)
        w.join(1, 1, OWNER)
        w.order(1, 1, BUYER, 1, starts=now - 10, ends=now + 3600)
        _observe(session, 1, NEAR, now * 1000)
    return app


def test_a_stream_carries_the_coarsened_location(sqlite_db: str) -> None:
    app = _streamed(sqlite_db)
    with TestClient(app, base_url="http://localhost:8000") as client:
        buyer = sign_in(client, BUYER_KEY)
        assert _home(client, sign_in(client, OWNER_KEY)).status_code == 201
    server = LiveServer(app)
    try:
        events = []
        with (
            httpx.Client(base_url=server.url, timeout=10) as http,
            http.stream("GET", "/v1/orders/1/stream?refresh=0.2", headers=_auth(buyer)) as answer,
        ):
            assert answer.status_code == 200, answer.read()
            for line in answer.iter_lines():
                if line.startswith("data:"):
                    events.append(json.loads(line.split(":", 1)[1]))
                    if len(events) == 3:
                        break
    finally:
        server.stop()
    ticks = [e for e in events[1:] if "signals" in e]
    assert len(ticks) == 2
    assert all(_location(e["signals"]) == {LAT: [HOME_CELL[0]], LON: [HOME_CELL[1]]} for e in ticks)


def test_a_stream_applies_a_zone_made_in_place_of_a_deleted_one_at_once(sqlite_db: str) -> None:
    """The owner deletes their only zone and makes another, between two ticks of a stream and
    within one indexed block: SQLite gives the new zone the deleted one's id (the zones
    table's row count and largest id are as before), and the next tick already coarsens the
    new zone's positions."""
    app = _streamed(sqlite_db)
    with TestClient(app, base_url="http://localhost:8000") as client:
        state = app.state.gateway
        buyer, owner = sign_in(client, BUYER_KEY), sign_in(client, OWNER_KEY)
        request = StreamRequest(1, BUYER, None, None)
        with state.database.session(read_only=True) as session:
            decision = may_use_order(state.facts(session), BUYER, 1, Purpose.STREAM)
        chosen = plan(request, decision, 0.2)
        assert isinstance(chosen, StreamPlan), chosen
        stream = OpenStream(request, chosen, buyer.split(".")[1])

        def shown() -> dict[str, list[float]]:
            frames = [
                json.loads(line.removeprefix("data: "))
                for line in tick(state, stream).events.decode().splitlines()
                if line.startswith("data: ")
            ]
            assert len(frames) == 1, frames
            return _location(frames[0]["signals"])

        work = _home(client, owner, label="work", latitude=FAR_AWAY[0], longitude=FAR_AWAY[1])
        assert work.status_code == 201, work.text
        assert shown() == {LAT: [NEAR[0]], LON: [NEAR[1]]}  # outside the work zone
        answer = client.delete(f"/v1/vehicles/1/zones/{work.json()['zone_id']}", headers=_auth(owner))
        assert answer.status_code == 204, answer.text
        home = _home(client, owner)
        assert home.json()["zone_id"] == work.json()["zone_id"]  # the id came round again
        assert shown() == {LAT: [HOME_CELL[0]], LON: [HOME_CELL[1]]}
        stream.close(state.stream_hub)
