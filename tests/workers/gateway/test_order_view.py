"""GET /v1/orders/{orderId}: an order's vesting, delivery and refund as the index has them,
its released amount computed exactly as the Marketplace does (SPEC15 §3)."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from tests.support.databases import session_scope
from tests.workers.gateway.conftest import gateway_settings
from tests.workers.gateway.projections import World
from workers.gateway.app import create_app
from workers.protocol import DATASET_DELIVERY_WINDOW, DAY_SECONDS, MONTH_SECONDS, VESTING_PRECISION, Kind
from workers.protocol.vesting import released

BUYER = "0x" + "11" * 20
SHARE = 7 * 10**18 + 3  # an odd share: the rate rounds down


@pytest.fixture
def client(sqlite_db: str) -> Iterator[tuple[TestClient, str]]:
    with session_scope(sqlite_db) as session:
        World(session).head(10)
    with TestClient(create_app(gateway_settings(sqlite_db)), base_url="http://localhost:8000") as http:
        yield http, sqlite_db


def _at(db_url: str, block: int, timestamp: int) -> None:
    with session_scope(db_url) as session:
        World(session).head(block, timestamp=timestamp)


def test_a_subscription_vests_linearly_and_its_refund_stops_it(client) -> None:
    http, db_url = client
    start = int(time.time()) + 1_000  # the chain runs ahead of the wall: its clock is the view's
    end = start + MONTH_SECONDS
    with session_scope(db_url) as session:
        w = World(session)
        w.product(1, Kind.STREAM, version=2)
        w.order(
            1, 1, BUYER, 3, starts=start, ends=end,
            terms_version=1, member_share=SHARE, vest_starts_at=start, vest_ends_at=end,
        )  # fmt: skip
    _at(db_url, 11, start + MONTH_SECONDS // 3)
    body = http.get("/v1/orders/1").json()
    rate = SHARE * VESTING_PRECISION // MONTH_SECONDS
    expected = rate * (MONTH_SECONDS // 3) // VESTING_PRECISION
    unserved = SHARE * (end - (start + MONTH_SECONDS // 3)) // MONTH_SECONDS  # what a refund pays
    assert body["vesting"] == {
        "member_share": str(SHARE),
        "vest_starts_at": start,
        "vest_ends_at": end,
        "released": str(expected),
        "unvested": str(unserved),
    }
    assert unserved <= SHARE - expected
    assert (body["status"], body["kind"], body["terms_version"], body["as_of"]) == (
        "active",
        "Stream",
        1,
        start + MONTH_SECONDS // 3,
    )
    assert body["refundable"] == ["terms_changed"]  # bought under version 1, the product is at 2
    refund_at = start + MONTH_SECONDS // 2
    refund = SHARE * (end - refund_at) // MONTH_SECONDS  # the Refunded event's amount
    with session_scope(db_url) as session:
        w = World(session)
        w.order(
            1, 1, BUYER, 3, starts=start, ends=end, refunded_at=refund_at, refunded_amount=refund,
            terms_version=1, member_share=SHARE, vest_starts_at=start, vest_ends_at=end,
        )  # fmt: skip
        w.head(12, timestamp=end + DAY_SECONDS)
    body = http.get("/v1/orders/1").json()
    kept = SHARE - refund  # from the refund on, the members have everything the buyer left
    assert body["status"] == "refunded" and body["refunded_at"] == refund_at
    assert body["vesting"]["released"] == str(kept) and body["vesting"]["unvested"] == "0"
    assert released(SHARE, start, end, refund_at - 1) < kept < SHARE and body["refundable"] == []


def test_a_dataset_vests_nothing_until_delivered_then_everything(client) -> None:
    http, db_url = client
    start = int(time.time()) + 1_000
    with session_scope(db_url) as session:
        w = World(session)
        w.product(3, Kind.DATASET)
        w.order(
            2, 3, BUYER, 1, starts=start, ends=start + 30 * DAY_SECONDS,
            terms_version=1, member_share=SHARE, vest_starts_at=0, vest_ends_at=0,
        )  # fmt: skip
    _at(db_url, 11, start + DATASET_DELIVERY_WINDOW - 1)
    body = http.get("/v1/orders/2").json()
    assert body["status"] == "awaiting_delivery" and body["refundable"] == []
    assert (body["vesting"]["released"], body["vesting"]["unvested"]) == ("0", str(SHARE))
    _at(db_url, 12, start + DATASET_DELIVERY_WINDOW)
    assert http.get("/v1/orders/2").json()["refundable"] == ["not_delivered"]
    delivered = start + DATASET_DELIVERY_WINDOW + 5
    with session_scope(db_url) as session:
        w = World(session)
        w.order(
            2, 3, BUYER, 1, starts=start, ends=start + 30 * DAY_SECONDS,
            terms_version=1, member_share=SHARE, vest_starts_at=delivered, vest_ends_at=delivered,
            delivered_at=delivered, result_hash="0x" + "ab" * 32,
        )  # fmt: skip
        w.head(13, timestamp=delivered)
    body = http.get("/v1/orders/2").json()
    assert body["status"] == "active" and body["delivered_at"] == delivered
    assert (body["vesting"]["released"], body["vesting"]["unvested"]) == (str(SHARE), "0")
    assert body["result_hash"] == "0x" + "ab" * 32 and body["refundable"] == []


def test_an_unknown_order_is_not_found(client) -> None:
    http, _ = client
    assert http.get("/v1/orders/404").json()["reason"] == "not_found"
    assert http.get("/v1/orders/-1").status_code == 422
