"""GET /v1/orders/{orderId}/credits: the calls left on the caller's own Api order, or on each
Api part of a bundle order — the whole allowance before the first call, the counter after
calls, nothing once the order ended."""

from __future__ import annotations

import time

from eth_account import Account
from fastapi.testclient import TestClient

from tests.support.anvil import ANVIL_KEYS
from tests.support.databases import session_scope
from tests.workers.gateway.conftest import gateway_settings, sign_in
from tests.workers.gateway.projections import World
from workers.access.rule import Entitlement, OrderFacts, Terms
from workers.gateway.app import create_app
from workers.gateway.credits import ensure_counter, spend_credit
from workers.protocol import Kind

BUYER_KEY = ANVIL_KEYS[5]
BUYER = Account.from_key(BUYER_KEY).address.lower()
OTHER_KEY = ANVIL_KEYS[4]
FAR = 2**40


def test_credits_left_count_down_with_the_calls_and_only_for_the_buyer(sqlite_db: str) -> None:
    with session_scope(sqlite_db) as session:
        world = World(session)
        world.head(10)
        world.product(1, Kind.API)
        world.product(2, Kind.STREAM)
        world.order(1, 1, BUYER, 10)
        world.order(2, 2, BUYER, 1)
        world.order(3, 1, BUYER, 5, ends=int(time.time()) - 60)
    with TestClient(create_app(gateway_settings(sqlite_db)), base_url="http://localhost:8000") as http:
        token = sign_in(http, BUYER_KEY)
        mine = {"Authorization": f"Bearer {token}"}

        def credits(order_id: int, headers: dict[str, str] = mine) -> dict:
            return http.get(f"/v1/orders/{order_id}/credits", headers=headers).json()

        assert credits(1) == {
            "order_id": 1,
            "product_id": 1,
            "total": 10,
            "remaining": 10,
            "ends_at": FAR,
            "parts": [{"product_id": 1, "total": 10, "remaining": 10}],
        }
        entitlement = Entitlement(OrderFacts(1, 1, BUYER, 10, 0, FAR), 1, 1, 10, Terms(0, 0, 0))
        with session_scope(sqlite_db) as session:
            ensure_counter(session, entitlement)
            for _ in range(3):
                spend_credit(session, entitlement)
        assert credits(1)["remaining"] == 7
        assert credits(3)["remaining"] == 0  # ended: nothing left to call with
        assert credits(2)["reason"] == "wrong_kind"
        other = {"Authorization": f"Bearer {sign_in(http, OTHER_KEY)}"}
        assert credits(1, other)["reason"] == "not_your_order"
        assert credits(99)["reason"] == "not_found"
        assert http.get("/v1/orders/1/credits").status_code == 401


def test_a_bundle_orders_api_parts_count_down_each_on_its_own(sqlite_db: str) -> None:
    month = 30 * 86400
    with session_scope(sqlite_db) as session:
        world = World(session)
        world.head(10)
        world.product(1, Kind.API)
        world.product(2, Kind.API)
        world.product(3, Kind.STREAM)
        world.product(4, Kind.BUNDLE, components=((1, 100), (2, 50), (3, 0)))
        world.product(5, Kind.BUNDLE, components=((3, 0),))
        now = int(time.time())
        world.order(7, 4, BUYER, 2, starts=now, ends=now + 2 * month)  # two months of the bundle
        world.order(8, 5, BUYER, 2)
        world.order(9, 4, BUYER, 2, starts=0, ends=2 * month)
    with TestClient(create_app(gateway_settings(sqlite_db)), base_url="http://localhost:8000") as http:
        mine = {"Authorization": f"Bearer {sign_in(http, BUYER_KEY)}"}
        # an order that ended long ago: its parts are listed, with nothing left
        ended = http.get("/v1/orders/9/credits", headers=mine).json()
        assert ended["parts"] == [
            {"product_id": 1, "total": 200, "remaining": 0},
            {"product_id": 2, "total": 100, "remaining": 0},
        ]
        assert http.get("/v1/orders/8/credits", headers=mine).json()["reason"] == "wrong_kind"
        part = Entitlement(OrderFacts(7, 4, BUYER, 2, 0, FAR), 2, 4, 100, Terms(0, 0, 0))
        with session_scope(sqlite_db) as session:
            for _ in range(4):
                spend_credit(session, part)
        live = http.get("/v1/orders/7/credits", headers=mine).json()
        assert live["parts"] == [
            {"product_id": 1, "total": 200, "remaining": 200},
            {"product_id": 2, "total": 100, "remaining": 96},
        ]
        assert (live["product_id"], live["total"], live["remaining"]) == (4, 300, 296)
