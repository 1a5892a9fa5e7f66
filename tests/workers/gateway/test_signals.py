"""Metered signals/latest and history over projections written as the indexer would: the
access rule's every refusal, one credit a call, usage counted for the member's share."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import httpx
import pytest
from eth_account import Account
from fastapi.testclient import TestClient
from sqlalchemy import delete, select

from tests.support.anvil import ANVIL_KEYS
from tests.support.databases import session_scope
from tests.workers.gateway.conftest import gateway_settings, sign_in
from tests.workers.gateway.projections import OPERATOR, World
from workers.access.sweep import expire_credits
from workers.db.gateway import ApiCredit
from workers.db.projections import Membership
from workers.db.settlement import UsageCounter
from workers.gateway.app import create_app
from workers.protocol import MONTH_SECONDS, Kind
from workers.protocol.permissions import HISTORY, LIVE, TELEMETRY

BUYER_KEY = ANVIL_KEYS[5]
BUYER = Account.from_key(BUYER_KEY).address
OWNER = "0x" + "0b" * 20
SPEED = "Vehicle.Speed"
LAT = "Vehicle.CurrentLocation.Latitude"


@pytest.fixture
def world(db_url: str) -> Iterator[tuple[TestClient, str, set[str]]]:
    inactive: set[str] = set()
    app = create_app(
        gateway_settings(db_url, access_cache_ttl=0),
        staking_check=lambda account, _role, _block: account.lower() not in inactive,
    )
    with session_scope(db_url) as session:
        w = World(session)
        w.head(10)
        w.product(1, Kind.API)
        w.product(2, Kind.API, permissions=TELEMETRY)
        w.product(3, Kind.STREAM)
        w.product(4, Kind.BUNDLE, components=((1, 5), (3, 0)))
        for v in (1, 2, 3):
            w.vehicle(v, OWNER)
            w.signals(v, {SPEED: 50.0 + v, LAT: 48.1}, 1_700_000_000_000)
        w.join(1, 1, OWNER)
        w.join(2, 1, OWNER)
        w.join(4, 2, OWNER)
        w.order(1, 1, BUYER.lower(), 3)
        w.order(2, 2, BUYER.lower(), 100)
    with TestClient(app, base_url="http://localhost:8000") as client:
        yield client, db_url, inactive


def _get(client: TestClient, token: str, product: int, vehicle: int, query: str = "") -> httpx.Response:
    return client.get(
        f"/v1/products/{product}/vehicles/{vehicle}/signals/latest{query}",
        headers={"Authorization": f"Bearer {token}"},
    )


def _refused(answer: httpx.Response, reason: str) -> None:
    assert answer.status_code >= 400, answer.text
    assert answer.headers["content-type"].startswith("application/problem+json")
    assert answer.json()["reason"] == reason, answer.text


def test_a_member_vehicle_is_served_and_each_call_spends_a_credit(world) -> None:
    client, db_url, _ = world
    token = sign_in(client, BUYER_KEY)
    lefts = []
    for _ in range(3):
        answer = _get(client, token, 1, 1)
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert body["vehicle_id"] == 1
        assert {s["name"] for s in body["signals"]} == {SPEED, LAT}
        speed = next(s for s in body["signals"] if s["name"] == SPEED)
        assert speed == {
            "name": SPEED,
            "value": 51.0,
            "unit": "km/h",
            "timestamp": "2023-11-14T22:13:20.000Z",
            "source": "oem:1",
        }
        lefts.append(body["credits_left"])
    assert lefts == [2, 1, 0]
    _refused(_get(client, token, 1, 1), "credits_exhausted")
    with session_scope(db_url, read_only=True) as session:
        rows = session.scalars(select(UsageCounter)).all()
    # one counter per (product, order, vehicle, period, owner): the three calls add up
    assert [(u.product_id, u.order_id, u.vehicle_id, u.units, u.owner) for u in rows] == [(1, 1, 1, 3, OWNER)]


def test_refusals_carry_the_rule_s_reason(world) -> None:
    client, db_url, inactive = world
    token = sign_in(client, BUYER_KEY)
    _refused(_get(client, token, 1, 2), "no_consent")  # vehicle 2 never joined product 1
    _refused(_get(client, token, 3, 1), "wrong_kind")  # a Stream product is not metered
    _refused(_get(client, token, 99, 1), "not_found")
    _refused(_get(client, token, 2, 1, f"?names={LAT}"), "signal_not_permitted")
    # product 2 exposes telemetry only: latitude is left out of the answer
    answer = _get(client, token, 2, 1)
    assert [s["name"] for s in answer.json()["signals"]] == [SPEED]
    other = sign_in(client, ANVIL_KEYS[6])
    _refused(_get(client, other, 1, 1), "no_order")
    # facts are cached per indexed block: each change below comes with a new block
    inactive.add(OPERATOR)
    with session_scope(db_url) as session:
        World(session).head(11)
    _refused(_get(client, token, 1, 1), "operator_inactive")
    inactive.clear()
    with session_scope(db_url) as session:
        w = World(session)
        w.head(12)
        w.product(1, Kind.API, active=False)
    _refused(_get(client, token, 1, 1), "product_inactive")
    with session_scope(db_url) as session:
        w = World(session)
        w.head(13)
        w.product(1, Kind.API, version=2)  # new terms: members must consent again
    _refused(_get(client, token, 1, 1), "no_consent")
    with session_scope(db_url) as session:
        w = World(session)
        w.head(14)
        w.join(1, 1, OWNER, version=2)
    assert _get(client, token, 1, 1).status_code == 200
    with session_scope(db_url) as session:
        w = World(session)
        w.head(15)
        w.vehicle(1, "0x" + "0c" * 20, generation=2)  # transferred: the consent is void
    _refused(_get(client, token, 1, 1), "no_consent")


def test_expired_orders_are_refused(world) -> None:
    client, db_url, _ = world
    with session_scope(db_url) as session:
        World(session).order(1, 1, BUYER.lower(), 3, starts=0, ends=1000)
    token = sign_in(client, BUYER_KEY)
    _refused(_get(client, token, 1, 1), "order_expired")


def test_a_refunded_order_is_refused_from_its_refund_on_and_its_credits_are_zeroed(world) -> None:
    client, db_url, _ = world
    token = sign_in(client, BUYER_KEY)
    assert _get(client, token, 1, 1).json()["credits_left"] == 2
    now = int(time.time())
    with session_scope(db_url) as session:
        w = World(session)
        w.head(11)
        # the operator bumped its terms; the buyer took back the unvested remainder
        w.order(1, 1, BUYER.lower(), 3, refunded_at=now - 60)
    answer = _get(client, token, 1, 1)
    _refused(answer, "order_refunded")
    assert f"refunded to its buyer at {now - 60}" in answer.json()["detail"]
    with session_scope(db_url) as session:
        assert expire_credits(session, now) == 1
    with session_scope(db_url, read_only=True) as session:
        counter = session.scalars(select(ApiCredit).where(ApiCredit.order_id == 1)).one()
    assert (counter.remaining, counter.expired) == (0, True)


def test_credits_expire_with_their_validity(world) -> None:
    """Credits end `validitySeconds` after the purchase (SPEC15 §2): calls left do not keep
    an ended credit order serving, and the sweep zeroes its counter."""
    client, db_url, _ = world
    now = int(time.time())
    with session_scope(db_url) as session:
        World(session).order(1, 1, BUYER.lower(), 3, starts=now - 120, ends=now + 3600)
    token = sign_in(client, BUYER_KEY)
    assert _get(client, token, 1, 1).json()["credits_left"] == 2
    with session_scope(db_url) as session:
        World(session).head(11, timestamp=now + 3600)  # the chain's clock passed the validity
    answer = _get(client, token, 1, 1)
    _refused(answer, "order_expired")
    assert f"to {now + 3600}" in answer.json()["detail"]
    with session_scope(db_url) as session:
        assert expire_credits(session, now + 3600) == 1
    with session_scope(db_url, read_only=True) as session:
        counter = session.scalars(select(ApiCredit).where(ApiCredit.order_id == 1)).one()
    assert (counter.remaining, counter.total, counter.expired) == (0, 3, True)


def test_a_bundle_order_opens_its_api_component_for_bundle_members(world) -> None:
    client, db_url, _ = world
    now = int(time.time())
    with session_scope(db_url) as session:
        World(session).order(3, 4, BUYER.lower(), 1, starts=now + MONTH_SECONDS, ends=now + 3 * MONTH_SECONDS)
    token = sign_in(client, BUYER_KEY)
    # the bundle order has not started; order 1 (credits left) lacks only vehicle 2's consent:
    # the refusal names what blocks the most useful order
    _refused(_get(client, token, 1, 2), "no_consent")
    # the chain runs ahead of the wall: the rule's clock follows the indexed block
    with session_scope(db_url) as session:
        World(session).head(11, timestamp=now + 2 * MONTH_SECONDS)
    token = sign_in(client, BUYER_KEY)
    answer = _get(client, token, 1, 2)  # vehicle 2 joined the bundle, not product 1
    assert answer.status_code == 200, answer.text
    assert answer.json()["credits_left"] == 5 * 2 - 1  # 5 calls a month for 2 months
    with session_scope(db_url, read_only=True) as session:
        usage = session.scalars(select(UsageCounter)).one()
    assert (usage.product_id, usage.order_id) == (4, 3)  # the bundle order's members are paid


def test_a_component_s_later_terms_never_widen_a_bundle_call(world) -> None:
    client, db_url, _ = world
    with session_scope(db_url) as session:
        w = World(session)
        w.head(11)
        # vehicle 2's owner consented to bundle 4 for telemetry only (its components then
        # served telemetry only); after the sale Api component 1 widens to location too
        w.product(4, Kind.BUNDLE, permissions=TELEMETRY | LIVE, components=((1, 5), (3, 0)))
        w.product(1, Kind.API, version=2)
        w.order(3, 4, BUYER.lower(), 1)
    token = sign_in(client, BUYER_KEY)
    answer = _get(client, token, 1, 2)  # every signal the order's terms allow: telemetry
    assert answer.status_code == 200, answer.text
    assert {s["name"] for s in answer.json()["signals"]} == {SPEED}
    assert _get(client, token, 1, 2, f"?names={LAT}").status_code == 403  # location: never
    history = client.get("/v1/products/1/vehicles/2/signals", headers={"Authorization": f"Bearer {token}"})
    assert history.status_code == 200, history.text
    assert {s["name"] for s in history.json()["signals"]} == {SPEED}


def test_history_is_metered_and_filtered(world) -> None:
    client, db_url, _ = world
    with session_scope(db_url) as session:
        World(session).signals(1, {SPEED: 80.0}, 1_700_000_100_000)
    token = sign_in(client, BUYER_KEY)
    answer = client.get(
        f"/v1/products/1/vehicles/1/signals?names={SPEED}&from=1700000000&to=2023-11-14T22:15:00Z",
        headers={"Authorization": f"Bearer {token}"},
    )
    assert answer.status_code == 200, answer.text
    assert [s["value"] for s in answer.json()["signals"]] == [51.0, 80.0]
    assert answer.json()["credits_left"] == 2


def test_fifty_concurrent_calls_on_ten_credits_exactly_ten_succeed(world) -> None:
    client, db_url, _ = world
    with session_scope(db_url) as session:
        World(session).order(1, 1, BUYER.lower(), 10)
    token = sign_in(client, BUYER_KEY)

    async def burst() -> list[int]:
        transport = httpx.ASGITransport(app=client.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://localhost:8000") as http:
            answers = await asyncio.gather(
                *(
                    http.get(
                        "/v1/products/1/vehicles/1/signals/latest",
                        headers={"Authorization": f"Bearer {token}"},
                    )
                    for _ in range(50)
                )
            )
        return [a.status_code for a in answers]

    statuses = asyncio.run(burst())
    assert statuses.count(200) == 10, statuses
    assert statuses.count(402) == 40
    with session_scope(db_url, read_only=True) as session:
        assert sum(session.scalars(select(UsageCounter.units)).all()) == 10


def _history(client: TestClient, token: str, product: int, vehicle: int) -> httpx.Response:
    return client.get(
        f"/v1/products/{product}/vehicles/{vehicle}/signals?names={SPEED}&from=0",
        headers={"Authorization": f"Bearer {token}"},
    )


def test_reads_serve_only_the_current_tenure_since_joining_unless_terms_ask_for_history(world) -> None:
    """`from=0` never reaches a previous owner's data; without HISTORY nor data from before the
    vehicle joined; with HISTORY the current tenure's earlier data, never the previous owner's."""
    client, db_url, _ = world
    buyer, new_owner, sold = BUYER.lower(), "0x" + "0c" * 20, 1_700_001_000
    with session_scope(db_url) as session:
        w = World(session)
        w.head(11)
        w.product(5, Kind.API, permissions=TELEMETRY | HISTORY)
        w.order(5, 5, buyer, 10)
        # vehicle 1 (previous owner's speed at 1_700_000_000) is sold; its new owner drives
        # before and after joining products 1 and 5
        w.vehicle(1, new_owner, generation=2, tenure_from=sold)
        w.signals(1, {SPEED: 61.0}, (sold + 100) * 1000)
        w.join(1, 1, new_owner, generation=2, joined_at=sold + 500)
        w.join(5, 1, new_owner, generation=2, joined_at=sold + 500)
        w.signals(1, {SPEED: 62.0}, (sold + 600) * 1000)
    token = sign_in(client, BUYER_KEY)
    answer = _history(client, token, 1, 1)
    assert answer.status_code == 200, answer.text
    assert [s["value"] for s in answer.json()["signals"]] == [62.0]
    answer = _history(client, token, 5, 1)
    assert [s["value"] for s in answer.json()["signals"]] == [61.0, 62.0]
    # signals/latest of a vehicle whose every stored value is its previous owner's: nothing
    with session_scope(db_url) as session:
        w = World(session)
        w.head(12)
        w.vehicle(3, new_owner, generation=2, tenure_from=sold)
        w.join(1, 3, new_owner, generation=2, joined_at=sold)
    answer = _get(client, token, 1, 3)
    assert answer.status_code == 200, answer.text
    assert answer.json()["signals"] == []


def test_a_call_that_returns_no_signals_costs_no_credit_and_records_no_usage(world) -> None:
    client, db_url, _ = world
    with session_scope(db_url) as session:
        w = World(session)
        w.head(11)
        w.join(1, 3, OWNER, joined_at=1_800_000_000)  # its only data predates the joining
    token = sign_in(client, BUYER_KEY)
    for _ in range(4):  # more calls than the order's 3 credits
        answer = _get(client, token, 1, 3)
        assert answer.status_code == 200, answer.text
        assert answer.json() == {"vehicle_id": 3, "signals": [], "credits_left": 3}
        assert answer.headers["X-Credits-Remaining"] == "3"
    history = _history(client, token, 1, 3)
    assert history.status_code == 200 and history.json()["signals"] == []
    with session_scope(db_url, read_only=True) as session:
        assert session.scalars(select(UsageCounter)).all() == []
    assert _get(client, token, 1, 1).json()["credits_left"] == 2  # a call with data pays


def test_a_refusal_names_what_blocks_the_most_useful_order(world) -> None:
    """The old order is spent, the new one has credits: after the owner leaves the buyer
    hears `no_consent` (what a new order cannot fix), not `credits_exhausted`."""
    client, db_url, _ = world
    token = sign_in(client, BUYER_KEY)
    for _ in range(3):
        assert _get(client, token, 1, 1).status_code == 200
    _refused(_get(client, token, 1, 1), "credits_exhausted")
    with session_scope(db_url) as session:
        w = World(session)
        w.head(11)
        w.order(7, 1, BUYER.lower(), 5)
    assert _get(client, token, 1, 1).json()["credits_left"] == 4
    with session_scope(db_url) as session:
        World(session).head(12)
        session.execute(delete(Membership).where(Membership.product_id == 1, Membership.vehicle_id == 1))
    _refused(_get(client, token, 1, 1), "no_consent")


def test_an_inactive_buyer_is_refused(world) -> None:
    """A slashed or de-whitelisted buyer (no longer active as Consumer nor Broker at the
    indexed block) reads nothing, whatever orders it holds."""
    client, db_url, inactive = world
    token = sign_in(client, BUYER_KEY)
    assert _get(client, token, 1, 1).status_code == 200
    inactive.add(BUYER.lower())
    with session_scope(db_url) as session:
        World(session).head(11)
    _refused(_get(client, token, 1, 1), "buyer_inactive")
    answer = _history(client, token, 1, 1)
    _refused(answer, "buyer_inactive")
    assert answer.status_code == 403
