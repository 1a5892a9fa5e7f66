"""Live streams over a real socket (uvicorn): only member vehicles' signals, the consumer's
choice of vehicles, filters and period within the order, the end when the order ends."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator

import httpx
import pytest
import redis
from eth_account import Account
from fastapi.testclient import TestClient
from sqlalchemy import select

from tests.support.anvil import ANVIL_KEYS
from tests.support.databases import session_scope
from tests.workers.gateway.conftest import LiveServer, gateway_settings, sign_in
from tests.workers.gateway.projections import World
from workers.db.gateway import upsert_profile
from workers.db.projections import Membership, Vehicle
from workers.db.settlement import UsageCounter
from workers.gateway.app import create_app
from workers.gateway.hub import StreamHub
from workers.protocol import Kind
from workers.protocol.permissions import LIVE, TELEMETRY
from workers.signals.feed import CHANNEL, decode
from workers.signals.store import SignalValue, latest, store_signals
from workers.signals.zones import cell_centre, create_zone

BUYER_KEY = ANVIL_KEYS[5]
BUYER = Account.from_key(BUYER_KEY).address.lower()
OWNER = "0x" + "0b" * 20
SPEED = "Vehicle.Speed"
LAT = "Vehicle.CurrentLocation.Latitude"


#: Accounts the Staking stand-in answers inactive for (reset by the fixture).
INACTIVE: set[str] = set()


@pytest.fixture
def live(sqlite_db: str, feed: str) -> Iterator[tuple[LiveServer, str, str]]:
    INACTIVE.clear()
    app = create_app(
        gateway_settings(sqlite_db, access_cache_ttl=0, stream_min_refresh=0.2, signals_feed_url=feed),
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
    app.state.gateway.close()


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
    with (
        httpx.Client(base_url=server.url, timeout=10) as http,
        http.stream("GET", f"/v1/orders/{query}", headers={"Authorization": f"Bearer {token}"}) as answer,
    ):  # a stream that opens (the test fails) is closed, not read to its end
        assert answer.headers["content-type"].startswith("application/problem+json"), answer.status_code
        return json.loads(answer.read())


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
        days = session.scalars(select(UsageCounter)).all()
    # once a period each: (product, vehicle, units)
    assert sorted((u.product_id, u.vehicle_id, u.units) for u in days) == [(1, 1, 1), (1, 2, 1)]


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
    # the bundle's refresh floor (1 s) holds, not its component's (0 s)
    assert _problem(server, token, "2/stream?refresh=0.2")["reason"] == "refresh_too_fast"
    events = _events(server, token, "2/stream?refresh=1", 3)
    signals = [e for name, e in events if name == "signals"]
    assert {(e["product_id"], e["vehicle_id"]) for e in signals} == {(2, 3)}  # vehicle 3 joined the bundle
    # product 2 exposes telemetry only: no location signal goes out
    assert all(s["name"] == SPEED for e in signals for s in e["signals"])


def test_a_component_s_later_terms_never_widen_a_bundle_stream(live) -> None:
    server, token, db_url = live
    with session_scope(db_url) as session:
        w = World(session)
        w.head(11)
        # the bundle the owner of vehicle 3 consented to: telemetry, at most every 2 s
        w.product(4, Kind.BUNDLE, permissions=TELEMETRY | LIVE, refresh=2, components=((2, 0), (5, 3)))
        # after the sale its component widens: location too, and no refresh floor
        w.product(2, Kind.STREAM, version=2, refresh=0)
    assert _problem(server, token, "2/stream?refresh=1")["reason"] == "refresh_too_fast"
    events = _events(server, token, "2/stream", 3)
    assert events[0][1]["refresh"] == 2.0
    signals = [e for name, e in events if name == "signals"]
    assert [e["vehicle_id"] for e in signals] == [3, 3]
    assert all(s["name"] == SPEED for e in signals for s in e["signals"])  # never the location


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


def _leave(w: World) -> None:
    w.session.delete(w.session.get(Membership, (6, 1)))  # Left(6, 1)


def _transfer(w: World) -> None:
    w.vehicle(1, "0x" + "0c" * 20, generation=2)


def _terms_bump(w: World) -> None:
    w.product(6, Kind.STREAM, permissions=TELEMETRY | LIVE, refresh=0, version=2)
    w.join(6, 2, OWNER, version=2)  # vehicle 2's owner consents to the new terms; 1's does not


def _order_ends(w: World) -> None:
    w.order(7, 6, BUYER, 5, starts=0, ends=int(time.time()) - 1)


def _buyer_inactive(_w: World) -> None:
    INACTIVE.add(BUYER)  # slashed or de-whitelisted, as of the new indexed block


@pytest.mark.parametrize("change", [_leave, _transfer, _terms_bump, _order_ends, _buyer_inactive])
def test_an_open_stream_stops_carrying_a_vehicle_within_one_indexed_block(live, change) -> None:
    """The change lands while the stream is open; every frame decided at the next indexed
    block (or the stream's end) no longer carries vehicle 1."""
    server, token, db_url = live
    with session_scope(db_url) as session:
        w = World(session)
        w.head(11)
        w.product(6, Kind.STREAM, permissions=TELEMETRY | LIVE, refresh=0)
        for v in (1, 2):
            w.join(6, v, OWNER)
        w.order(7, 6, BUYER, 5, starts=0)
    before: list[dict] = []
    after: list[tuple[str, dict]] = []
    with (
        httpx.Client(base_url=server.url, timeout=10) as http,
        http.stream(
            "GET", "/v1/orders/7/stream?refresh=0.2", headers={"Authorization": f"Bearer {token}"}
        ) as answer,
    ):
        assert answer.status_code == 200
        name = "message"
        for line in answer.iter_lines():
            if line.startswith("event:"):
                name = line.split(":", 1)[1].strip()
                continue
            if not line.startswith("data:"):
                continue
            data = json.loads(line.split(":", 1)[1])
            if name == "signals" and data["block"] == 11:
                before.append(data)
                if len(before) == 2:  # vehicles 1 and 2 went out at block 11
                    with session_scope(db_url) as session:
                        w = World(session)
                        w.head(12)
                        change(w)
            elif name == "end" or (name == "signals" and data["block"] >= 12):
                after.append((name, data))
                if name == "end" or len(after) >= 4:
                    break
    assert 1 in {e["vehicle_id"] for e in before}
    assert after, "no frame after the change"
    assert all(name == "end" or e["vehicle_id"] != 1 for name, e in after)
    ends = {_order_ends: "order_expired", _buyer_inactive: "buyer_inactive"}
    if change in ends:
        assert after == [("end", after[0][1])]
        assert after[0][1]["reason"] == ends[change]


# --- the push path: the signal feed and the process's stream hub -------------------------------

LON = "Vehicle.CurrentLocation.Longitude"


class Reader:
    """A stream read on a thread: its events so far, while the test changes the world."""

    def __init__(self, server: LiveServer, token: str, query: str) -> None:
        self.events: list[tuple[str, dict]] = []
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._read, args=(server, token, query), daemon=True)
        self._thread.start()

    def _read(self, server: LiveServer, token: str, query: str) -> None:
        with (
            httpx.Client(base_url=server.url, timeout=30) as http,
            http.stream("GET", f"/v1/orders/{query}", headers={"Authorization": f"Bearer {token}"}) as answer,
        ):
            name = "message"
            for line in answer.iter_lines():
                if line.startswith("event:"):
                    name = line.split(":", 1)[1].strip()
                elif line.startswith("data:"):
                    self.events.append((name, json.loads(line.split(":", 1)[1])))
                if self._done.is_set() or name == "end":
                    return

    def frames(self, vehicle: int | None = None) -> list[dict]:
        return [e for n, e in list(self.events) if n == "signals" and vehicle in (None, e["vehicle_id"])]

    def wait(self, found: Callable[[], object], timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while not found():
            assert time.monotonic() < deadline, f"timed out; events so far: {self.events[-6:]}"
            time.sleep(0.05)

    def stop(self) -> None:
        self._done.set()
        self._thread.join(timeout=10)


def _values(frame: dict) -> dict[str, object]:
    return {s["name"]: s["value"] for s in frame["signals"]}


def _store(db_url: str, vehicle: int, values: dict[str, float], *, commit: bool = True) -> None:
    """Stores observations of `vehicle` now (published on the feed when the write commits)."""

    class RolledBackError(Exception):
        pass

    try:
        with session_scope(db_url) as session:
            store_signals(
                session,
                vehicle,
                [SignalValue(n, v, None, int(time.time() * 1000), "oem:1") for n, v in values.items()],
            )
            if not commit:
                raise RolledBackError
    except RolledBackError:
        pass


def _hub(server: LiveServer) -> StreamHub:
    hub = server.app.state.gateway.stream_hub
    assert hub.wait_live(10), "the hub never subscribed to the feed"
    return hub


def test_an_observation_stored_after_the_stream_opened_is_pushed_to_the_next_tick(live) -> None:
    server, token, db_url = live
    reader = Reader(server, token, "1/stream?refresh=1")
    try:
        reader.wait(lambda: reader.frames(1))
        assert _values(reader.frames(1)[0])[SPEED] == 1.0
        # the subscription is up: the hub no longer re-reads the store, so only a push brings news
        assert _hub(server).live
        seen = len(reader.frames(1))
        _store(db_url, 1, {SPEED: 99.0})
        reader.wait(lambda: any(_values(f)[SPEED] == 99.0 for f in reader.frames(1)), timeout=5)
        later = [_values(f)[SPEED] for f in reader.frames(1)[seen:]]
        # at the first tick after the write (or the one under way while it committed)
        assert 99.0 in later[:2], later
    finally:
        reader.stop()


def test_a_rolled_back_write_never_reaches_a_stream(live, feed) -> None:
    server, token, db_url = live
    messages = redis.Redis.from_url(feed).pubsub(ignore_subscribe_messages=True)
    messages.subscribe(CHANNEL)
    reader = Reader(server, token, "1/stream?refresh=1")
    try:
        reader.wait(lambda: reader.frames(2))
        assert _hub(server).live
        _store(db_url, 1, {SPEED: 666.0}, commit=False)
        _store(db_url, 2, {SPEED: 22.0})  # committed after it: once this is out, the other had its chance
        reader.wait(lambda: any(_values(f)[SPEED] == 22.0 for f in reader.frames(2)), timeout=5)
        time.sleep(1.2)  # one more tick
        assert all(_values(f)[SPEED] != 666.0 for f in reader.frames(1))
        assert any(_values(f)[SPEED] == 1.0 for f in reader.frames(1)[-1:])
    finally:
        reader.stop()
    published = []
    deadline = time.monotonic() + 1
    while time.monotonic() < deadline:  # (the subscription's confirmation reads as None)
        message = messages.get_message(timeout=0.2)
        if message is not None:
            published += decode(message["data"])
    messages.close()
    assert [(v, [o[1] for o in observed]) for v, observed in published] == [(2, [22.0])]


def test_a_pushed_location_inside_a_privacy_zone_is_coarsened(live) -> None:
    server, token, db_url = live
    reader = Reader(server, token, "1/stream?refresh=1")
    try:
        reader.wait(lambda: reader.frames(1))
        assert _hub(server).live
        with session_scope(db_url) as session:  # the owner's zone, made while the stream is open
            vehicle = session.get(Vehicle, 1)
            assert vehicle is not None
            create_zone(session, vehicle, label="home", latitude=48.1, longitude=11.5, radius_m=1_000)
        _store(db_url, 1, {LAT: 48.1001, LON: 11.5001, SPEED: 7.0})  # inside the zone
        reader.wait(lambda: any(_values(f)[SPEED] == 7.0 for f in reader.frames(1)), timeout=5)
        pushed = next(_values(f) for f in reader.frames(1) if _values(f)[SPEED] == 7.0)
        assert (pushed[LAT], pushed[LON]) == (cell_centre(48.1), cell_centre(11.5))
        with session_scope(db_url, read_only=True) as session:  # exactly what signals/latest serves
            served = {s.name: s.value for s in latest(session, 1, since_ms=0)}
        assert {n: pushed[n] for n in (LAT, LON, SPEED)} == {n: served[n] for n in (LAT, LON, SPEED)}
        _store(db_url, 1, {LAT: 48.3, LON: 11.9, SPEED: 8.0})  # far outside: exact
        reader.wait(lambda: any(_values(f)[SPEED] == 8.0 for f in reader.frames(1)), timeout=5)
        outside = next(_values(f) for f in reader.frames(1) if _values(f)[SPEED] == 8.0)
        assert (outside[LAT], outside[LON]) == (48.3, 11.9)
    finally:
        reader.stop()


@pytest.mark.parametrize("change", [_leave, _transfer])
def test_a_vehicle_that_leaves_stops_at_the_first_tick_after_the_block_while_pushes_go_on(
    live, change
) -> None:
    server, token, db_url = live
    with session_scope(db_url) as session:
        w = World(session)
        w.head(11)
        w.product(6, Kind.STREAM, permissions=TELEMETRY | LIVE, refresh=0)
        for v in (1, 2):
            w.join(6, v, OWNER)
        w.order(7, 6, BUYER, 5, starts=0)
    reader = Reader(server, token, "7/stream?refresh=0.2")
    driving = threading.Event()

    def drive() -> None:  # vehicle 1 keeps reporting (pushed), before and after the change
        speed = 100.0
        while not driving.is_set():
            speed += 1
            _store(db_url, 1, {SPEED: speed})
            time.sleep(0.05)

    writer = threading.Thread(target=drive, daemon=True)
    writer.start()
    try:
        reader.wait(lambda: len({_values(f)[SPEED] for f in reader.frames(1)} - {1.0}) >= 2)
        assert _hub(server).live
        with session_scope(db_url) as session:
            w = World(session)
            w.head(12)
            change(w)
        reader.wait(lambda: len([f for f in reader.frames() if f["block"] >= 12]) >= 4)
    finally:
        driving.set()
        writer.join(timeout=10)
        reader.stop()
    after = [f for f in reader.frames() if f["block"] >= 12]
    assert {f["vehicle_id"] for f in after} == {2}
    assert all(f["block"] == 11 for f in reader.frames(1))


def test_a_message_that_is_not_the_feed_s_is_dropped_and_pushes_go_on(live, feed) -> None:
    server, token, db_url = live
    reader = Reader(server, token, "1/stream?refresh=1")
    try:
        reader.wait(lambda: reader.frames(1))
        assert _hub(server).live
        redis.Redis.from_url(feed).publish(CHANNEL, b'{"not": "observations"}')
        _store(db_url, 1, {SPEED: 42.0})
        reader.wait(lambda: any(_values(f)[SPEED] == 42.0 for f in reader.frames(1)), timeout=5)
        assert _hub(server).live
    finally:
        reader.stop()


def test_without_a_feed_the_hub_reads_the_store_each_period(sqlite_db: str) -> None:
    """No SIGNALS_FEED_URL and a broker that is not a Redis: nothing is published, and the
    stream still carries what was stored after it opened."""
    settings = gateway_settings(
        sqlite_db, access_cache_ttl=0, stream_min_refresh=0.2, broker_url="amqp://guest@127.0.0.1:5672//"
    )
    assert settings.feed_url() is None
    app = create_app(settings, staking_check=lambda *_: True)
    now = int(time.time())
    with session_scope(sqlite_db) as session:
        w = World(session)
        w.head(10)
        w.product(1, Kind.STREAM, refresh=1)
        w.vehicle(1, OWNER)
        w.signals(1, {SPEED: 1.0}, now * 1000)
        w.join(1, 1, OWNER)
        w.order(1, 1, BUYER, 1, starts=now - 10, ends=now + 3600)
    with TestClient(app, base_url="http://localhost:8000") as client:
        token = sign_in(client, BUYER_KEY)
    server = LiveServer(app)
    reader = Reader(server, token, "1/stream?refresh=1")
    try:
        reader.wait(lambda: reader.frames(1))
        _store(sqlite_db, 1, {SPEED: 5.0})
        reader.wait(lambda: any(_values(f)[SPEED] == 5.0 for f in reader.frames(1)), timeout=5)
        assert not app.state.gateway.stream_hub.live
    finally:
        reader.stop()
        server.stop()
        app.state.gateway.close()
