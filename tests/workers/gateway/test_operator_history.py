"""GET /v1/operators/{address}/history: an operator's member vehicles and revenue per UTC day,
from its own products only, every day from the first event to the last (empty days included)."""

from __future__ import annotations

from fastapi.testclient import TestClient

from tests.support.databases import session_scope
from tests.workers.gateway.conftest import gateway_settings
from tests.workers.gateway.projections import OPERATOR, World
from workers.gateway.app import create_app
from workers.protocol import Kind

DAY = 86_400
OTHER = "0x" + "0b" * 20
BUYER = "0x" + "0c" * 20
OWNER = "0x" + "0d" * 20


def test_members_and_revenue_per_day_count_only_the_operators_products(sqlite_db: str) -> None:
    start = 100 * DAY
    with session_scope(sqlite_db) as session:
        world = World(session)
        world.head(10)
        world.product(1, Kind.STREAM)
        world.product(2, Kind.API)
        world.product(3, Kind.STREAM, operator=OTHER)
        world.join(1, 11, OWNER, joined_at=start + 5)
        world.join(2, 11, OWNER, joined_at=start + 7)
        world.join(1, 12, OWNER, joined_at=start + 2 * DAY + 1)
        world.join(3, 13, OWNER, joined_at=start + 1)  # another operator's product
        world.order(1, 1, BUYER, 1, starts=start + 60, to_operator=300)
        world.order(2, 2, BUYER, 1, starts=start + 2 * DAY + 9, to_operator=40)
        world.order(3, 2, BUYER, 1, starts=start + 2 * DAY + 99, to_operator=2)
        world.order(4, 3, BUYER, 1, starts=start + DAY, to_operator=999_999)
    with TestClient(create_app(gateway_settings(sqlite_db)), base_url="http://localhost:8000") as http:
        answer = http.get(f"/v1/operators/{OPERATOR}/history")
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert body["products"] == [1, 2]
        assert [(d["day"], d["members"], d["orders"], d["revenue"]) for d in body["days"]] == [
            (start, 2, 1, "300"),
            (start + DAY, 2, 0, "0"),
            (start + 2 * DAY, 3, 2, "42"),
        ]
        # the last day only: members joined before it still count
        last = http.get(f"/v1/operators/{OPERATOR}/history", params={"days": 1}).json()["days"]
        assert [(d["day"], d["members"]) for d in last] == [(start + 2 * DAY, 3)]
        assert http.get(f"/v1/operators/{BUYER}/history").json() == {
            "operator": BUYER,
            "products": [],
            "days": [],
        }
        assert http.get("/v1/operators/nobody/history").status_code == 422
