"""Datasets: member vehicles only, refused below minCohort, groups below minCohort
suppressed, one build per order, one usage row per contributing vehicle."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import pytest
from eth_account import Account
from fastapi.testclient import TestClient
from sqlalchemy import select

from tests.support.anvil import ANVIL_KEYS
from tests.support.databases import session_scope
from tests.workers.gateway.conftest import gateway_settings, sign_in
from tests.workers.gateway.projections import World
from workers.datasets.build import build
from workers.db.gateway import DatasetJob, upsert_profile
from workers.db.settlement import Usage
from workers.gateway.app import create_app
from workers.protocol import Kind, Role
from workers.protocol.permissions import TELEMETRY

BUYER_KEY = ANVIL_KEYS[5]
BUYER = Account.from_key(BUYER_KEY).address.lower()
OWNER = "0x" + "0b" * 20
SOH = "Vehicle.Powertrain.TractionBattery.StateOfHealth"


def _active(_account: str, _role: Role, _block: int) -> bool:
    return True


@pytest.fixture
def world(db_url: str) -> Iterator[tuple[TestClient, str]]:
    app = create_app(gateway_settings(db_url, access_cache_ttl=0), staking_check=_active)
    now = int(time.time())
    with session_scope(db_url) as session:
        w = World(session)
        w.head(10)
        w.product(1, Kind.DATASET, permissions=TELEMETRY, min_cohort=3)
        w.product(2, Kind.DATASET, permissions=TELEMETRY, min_cohort=5)
        # vehicles 1..7: 1-4 Tesla, 5-6 Ford, 7 Kia; 1-6 joined product 1, 7 did not
        makes = {1: "Tesla", 2: "Tesla", 3: "Tesla", 4: "Tesla", 5: "Ford", 6: "Ford", 7: "Kia"}
        for v, make in makes.items():
            w.vehicle(v, OWNER)
            w.signals(v, {SOH: 90.0 + v}, now * 1000)
            upsert_profile(session, v, make=make)
            if v <= 6:
                w.join(1, v, OWNER)
                w.join(2, v, OWNER)
        w.order(1, 1, BUYER, 1)
        w.order(2, 2, BUYER, 1)
    with TestClient(app, base_url="http://localhost:8000") as client:
        yield client, db_url


def _post(client: TestClient, token: str, order: int, body: dict):
    return client.post(f"/v1/orders/{order}/dataset", json=body, headers={"Authorization": f"Bearer {token}"})


def test_a_cohort_below_min_cohort_is_refused(world) -> None:
    client, _ = world
    token = sign_in(client, BUYER_KEY)
    answer = _post(client, token, 2, {"metric": SOH})  # 6 members, minCohort 5: fine…
    assert answer.json().get("reason") != "cohort_too_small"
    answer = _post(client, token, 1, {"metric": SOH, "filter": {"make": "Ford"}})  # 2 Fords < 3
    assert answer.status_code == 422, answer.text
    assert answer.json()["reason"] == "cohort_too_small"
    assert answer.json()["cohort"] == 2
    answer = _post(client, token, 1, {"metric": "Vehicle.CurrentLocation.Latitude"})
    assert answer.json()["reason"] == "signal_not_permitted"


def test_the_build_aggregates_members_only_and_suppresses_small_groups(world) -> None:
    client, db_url = world
    token = sign_in(client, BUYER_KEY)
    _post(client, token, 1, {"metric": SOH, "group_by": "make"})  # queued (the broker may be absent)
    with session_scope(db_url) as session:
        job = session.scalars(select(DatasetJob).where(DatasetJob.order_id == 1)).one()
        assert job.status == "queued"
        job_id = job.id
    with session_scope(db_url) as session:
        assert build(session, job_id, _active, 86_400) == "done"
    answer = client.get(f"/v1/datasets/{job_id}", headers={"Authorization": f"Bearer {token}"})
    assert answer.status_code == 200, answer.text
    result = answer.json()["result"]
    # Tesla: vehicles 1-4 (SoH 91..94); Ford (2 vehicles) is below minCohort 3: suppressed;
    # Kia's vehicle 7 is no member: never counted
    assert result["rows"] == [["Tesla", 4, 92.5, 91.0, 94.0]]
    assert result["suppressed_groups"] == 1
    assert result["cohort"] == 4
    csv_answer = client.get(f"/v1/datasets/{job_id}?format=csv", headers={"Authorization": f"Bearer {token}"})
    assert csv_answer.text.splitlines() == ["make,vehicles,mean,min,max", "Tesla,4,92.5,91.0,94.0"]
    with session_scope(db_url, read_only=True) as session:
        rows = session.scalars(select(Usage).where(Usage.kind == "dataset")).all()
    assert sorted(int(u.vehicle_id) for u in rows) == [1, 2, 3, 4]
    # one build per order
    assert _post(client, token, 1, {"metric": SOH}).json()["reason"] == "already_built"
    # a rebuild of a finished job changes nothing
    with session_scope(db_url) as session:
        assert build(session, job_id, _active, 86_400) == "done"
    with session_scope(db_url, read_only=True) as session:
        assert len(session.scalars(select(Usage).where(Usage.kind == "dataset")).all()) == 4


def test_a_cohort_that_shrank_before_the_build_is_refused_by_the_build(world) -> None:
    client, db_url = world
    token = sign_in(client, BUYER_KEY)
    _post(client, token, 2, {"metric": SOH})
    with session_scope(db_url) as session:
        w = World(session)
        w.head(11)
        w.product(2, Kind.DATASET, permissions=TELEMETRY, min_cohort=5, version=2)  # new terms: 0 members
        job_id = session.scalars(select(DatasetJob).where(DatasetJob.order_id == 2)).one().id
    with session_scope(db_url) as session:
        assert build(session, job_id, _active, 86_400) == "refused"
    body = client.get(f"/v1/datasets/{job_id}", headers={"Authorization": f"Bearer {token}"}).json()
    assert body["status"] == "refused"
    assert body["reason"] == "cohort_too_small"
    assert body["result"] is None


def test_jobs_are_their_buyer_s_only(world) -> None:
    client, db_url = world
    token = sign_in(client, BUYER_KEY)
    _post(client, token, 1, {"metric": SOH})
    with session_scope(db_url, read_only=True) as session:
        job_id = session.scalars(select(DatasetJob)).one().id
    other = sign_in(client, ANVIL_KEYS[6])
    answer = client.get(f"/v1/datasets/{job_id}", headers={"Authorization": f"Bearer {other}"})
    assert answer.json()["reason"] == "not_your_order"
    assert _post(client, other, 1, {"metric": SOH}).json()["reason"] == "not_your_order"
    assert (
        json.loads(client.get("/v1/datasets/nope", headers={"Authorization": f"Bearer {token}"}).text)[
            "reason"
        ]
        == "not_found"
    )


def test_the_build_needs_an_active_buyer_and_the_current_tenure_s_data(world) -> None:
    """A buyer slashed or de-whitelisted after queuing gets no build (`buyer_inactive`); sold
    vehicles whose every value is their previous owner's are left out of the aggregate."""
    client, db_url = world
    token = sign_in(client, BUYER_KEY)
    _post(client, token, 1, {"metric": SOH})
    _post(client, token, 2, {"metric": SOH})
    with session_scope(db_url) as session:
        jobs = {j.order_id: j.id for j in session.scalars(select(DatasetJob))}
        w = World(session)
        w.head(11)
        later = int(time.time()) + 60
        for v in (1, 2):  # sold: the new owner joins again, no value of theirs yet
            w.vehicle(v, BUYER, generation=2, tenure_from=later)
            w.join(1, v, BUYER, generation=2, joined_at=later)
    with session_scope(db_url) as session:
        assert build(session, jobs[1], _active, 86_400) == "done"
        # members 1-6, of which 1 and 2 only hold their previous owner's values
        assert json.loads(session.get(DatasetJob, jobs[1]).result)["rows"] == [["all", 4, 94.5, 93.0, 96.0]]

    def inactive(account: str, _role: Role, _block: int) -> bool:
        return account.lower() != BUYER

    with session_scope(db_url) as session:
        assert build(session, jobs[2], inactive, 86_400) == "refused"
        assert session.get(DatasetJob, jobs[2]).reason == "buyer_inactive"
