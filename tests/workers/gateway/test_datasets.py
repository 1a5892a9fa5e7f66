"""Datasets: member vehicles only, refused below minCohort, groups below minCohort
suppressed, one usage row per contributing vehicle; released with differential privacy
(noisy count and mean, never a single vehicle's value, epsilon and noise scales stated),
each job spending the order's privacy budget until it is exhausted."""

from __future__ import annotations

import json
import math
import statistics
import threading
import time
from collections import Counter
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
from workers.datasets.privacy import Mechanism, spend
from workers.db.gateway import DatasetJob, DatasetPrivacyBudget, upsert_profile
from workers.db.settlement import UsageCounter
from workers.gateway.app import create_app
from workers.protocol import Kind, Role
from workers.protocol.permissions import LOCATION, TELEMETRY

BUYER_KEY = ANVIL_KEYS[5]
BUYER = Account.from_key(BUYER_KEY).address.lower()
OWNER = "0x" + "0b" * 20
SOH = "Vehicle.Powertrain.TractionBattery.StateOfHealth"


def _active(_account: str, _role: Role, _block: int) -> bool:
    return True


@pytest.fixture
def world(db_url: str) -> Iterator[tuple[TestClient, str]]:
    settings = gateway_settings(
        db_url, access_cache_ttl=0, dataset_epsilon_per_order=1.0, dataset_epsilon_per_query=0.25
    )
    app = create_app(settings, staking_check=_active)
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
    # the refusal states the minimum, never the exact count of a filter
    assert "cohort" not in answer.json() and "2 member" not in answer.json()["detail"]
    answer = _post(client, token, 1, {"metric": "Vehicle.CurrentLocation.Latitude"})
    assert answer.json()["reason"] == "signal_not_permitted"


def _queue_and_build(client: TestClient, token: str, db_url: str, order: int, body: dict) -> dict:
    queued = _post(client, token, order, body)  # queued (the broker may be absent)
    assert queued.status_code == 202, queued.text
    job_id = queued.json()["job_id"]
    with session_scope(db_url) as session:
        assert build(session, job_id, _active, 86_400) == "done"
    answer = client.get(f"/v1/datasets/{job_id}", headers={"Authorization": f"Bearer {token}"})
    assert answer.status_code == 200, answer.text
    return answer.json()


def test_the_build_releases_noisy_aggregates_of_members_only_and_suppresses_small_groups(world) -> None:
    client, db_url = world
    token = sign_in(client, BUYER_KEY)
    job = _queue_and_build(client, token, db_url, 1, {"metric": SOH, "group_by": "make"})
    result = job["result"]
    # Tesla: vehicles 1-4 (SoH 91..94); Ford (2 vehicles) is below minCohort 3: suppressed;
    # Kia's vehicle 7 is no member: never counted. No min, max or other exact value.
    assert result["columns"] == ["make", "vehicles", "mean", "mean_scale"]
    [row] = result["rows"]
    assert row[0] == "Tesla"
    assert "cohort" not in result and "suppressed_groups" not in result
    assert all(exact not in row[2:] for exact in (91.0, 92.0, 93.0, 94.0, 92.5))
    assert 0 <= row[2] <= 100  # the mean, clamped to SoH's catalogued range
    # the answer states its epsilon and the noise scale of each released value
    privacy = result["privacy"]
    assert privacy["bounds"] == [0.0, 100.0]
    assert privacy["vehicles"]["mechanism"] == "discrete_laplace"
    assert privacy["vehicles"]["epsilon"] == pytest.approx(0.125)
    assert privacy["vehicles"]["scale"] == pytest.approx(1 / 0.125, rel=1e-6)  # sensitivity 1
    assert privacy["mean"]["epsilon"] <= 0.125
    assert privacy["mean"]["sum_scale"] == pytest.approx(100 / 0.125, rel=1e-6)  # the range's width
    assert privacy["epsilon"] <= 0.25
    assert row[3] == pytest.approx(privacy["mean"]["sum_scale"] / max(row[1], 1))
    assert job["epsilon"] == 0.25 and job["epsilon_remaining"] == pytest.approx(0.75)
    csv_answer = client.get(
        f"/v1/datasets/{job['job_id']}?format=csv", headers={"Authorization": f"Bearer {token}"}
    )
    lines = csv_answer.text.splitlines()
    assert lines[0] == "make,vehicles,mean,mean_scale" and len(lines) == 2 and lines[1].startswith("Tesla,")
    with session_scope(db_url, read_only=True) as session:
        rows = session.scalars(select(UsageCounter)).all()
    assert sorted(int(u.vehicle_id) for u in rows) == [1, 2, 3, 4]  # one row each (per period)
    # a rebuild of a finished job changes nothing
    with session_scope(db_url) as session:
        assert build(session, job["job_id"], _active, 86_400) == "done"
    with session_scope(db_url, read_only=True) as session:
        assert sum(session.scalars(select(UsageCounter.units)).all()) == 4


def test_declared_bounds_narrow_the_noise_and_must_lie_within_the_signal_s_range(world) -> None:
    client, db_url = world
    token = sign_in(client, BUYER_KEY)
    job = _queue_and_build(client, token, db_url, 1, {"metric": SOH, "bounds": [80, 100]})
    privacy = job["result"]["privacy"]
    assert privacy["bounds"] == [80.0, 100.0]
    assert privacy["mean"]["sum_scale"] == pytest.approx(20 / 0.125, rel=1e-6)
    assert 80 <= job["result"]["rows"][0][2] <= 100
    for bounds in ([-10, 100], [90, 80], [0, 1000]):
        answer = _post(client, token, 1, {"metric": SOH, "bounds": bounds})
        assert answer.status_code == 422 and answer.json()["reason"] == "bad_request", answer.text
    # a signal without a catalogued range needs declared bounds
    answer = _post(client, token, 1, {"metric": "Vehicle.Body.Mystery"})
    assert answer.status_code == 422 and "declare its bounds" in answer.json()["detail"]
    answer = _post(client, token, 1, {"metric": "Vehicle.Body.Mystery", "bounds": [-1e300, 1e300]})
    assert answer.status_code == 422 and "within" in answer.json()["detail"]


def test_repeated_jobs_spend_the_order_s_budget_and_the_one_past_it_is_refused(world) -> None:
    client, db_url = world
    token = sign_in(client, BUYER_KEY)
    filters = [{}, {"make": "Tesla"}, {"make": "Tesla"}, {}]
    remaining = []
    for wanted in filters:  # differencing needs several jobs: each spends 0.25 of 1.0
        answer = _post(client, token, 1, {"metric": SOH, "filter": wanted})
        assert answer.status_code == 202, answer.text
        remaining.append(answer.json()["epsilon_remaining"])
    assert remaining == pytest.approx([0.75, 0.5, 0.25, 0.0])
    refused = _post(client, token, 1, {"metric": SOH, "filter": {"make": "Ford", "model": "x"}})
    # (the cohort check comes first: a filter matching too few is refused as such, free)
    assert refused.json()["reason"] == "cohort_too_small"
    refused = _post(client, token, 1, {"metric": SOH, "group_by": "make"})
    assert refused.status_code == 409, refused.text
    assert refused.json()["reason"] == "privacy_budget_exhausted"
    assert refused.json()["epsilon_total"] == 1.0 and refused.json()["epsilon_spent"] == pytest.approx(1.0)
    with session_scope(db_url, read_only=True) as session:
        assert len(session.scalars(select(DatasetJob).where(DatasetJob.order_id == 1)).all()) == 4
        budget = session.get(DatasetPrivacyBudget, 1)
        assert budget is not None and budget.epsilon_spent == pytest.approx(1.0)
    # another order has its own budget
    assert _post(client, token, 2, {"metric": SOH}).json()["epsilon_remaining"] == pytest.approx(0.75)
    # the jobs already queued still build, each within its epsilon
    with session_scope(db_url, read_only=True) as session:
        job_ids = [j.id for j in session.scalars(select(DatasetJob).where(DatasetJob.order_id == 1))]
    for job_id in job_ids:
        with session_scope(db_url) as session:
            assert build(session, job_id, _active, 86_400) == "done"
            assert json.loads(session.get(DatasetJob, job_id).result)["privacy"]["epsilon"] <= 0.25


def test_concurrent_jobs_never_overspend_the_budget(world) -> None:
    _, db_url = world
    spent: list[bool] = []

    def one() -> None:
        with session_scope(db_url) as session:
            spent.append(spend(session, 77, 0.25, total=1.0, now=0) is not None)

    threads = [threading.Thread(target=one) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(spent) == [False] * 4 + [True] * 4
    with session_scope(db_url, read_only=True) as session:
        budget = session.get(DatasetPrivacyBudget, 77)
        assert budget is not None and budget.epsilon_spent == pytest.approx(1.0)


SAMPLES = 4000


def test_one_vehicle_more_moves_the_answer_s_distribution_by_at_most_e_to_the_epsilon() -> None:
    """Neighbouring cohorts (one vehicle added): the released count's distributions differ,
    per value, by a factor within e^epsilon (OpenDP samples the noise: unseeded, so the bound
    carries a sampling tolerance of several standard errors)."""
    mechanism = Mechanism((0.0, 100.0), 2.0)
    assert mechanism.count_epsilon == pytest.approx(1.0) and mechanism.count_scale == pytest.approx(1.0)
    cohort = [91.0, 92.0, 93.0, 94.0]
    with_one_more = [*cohort, 10.0]
    counts = Counter(mechanism.release(cohort).vehicles for _ in range(SAMPLES))
    counts_more = Counter(mechanism.release(with_one_more).vehicles for _ in range(SAMPLES))
    assert len(counts) > 3 and len(counts_more) > 3  # noised, not the exact 4 and 5
    bound = math.exp(mechanism.count_epsilon)
    for value in range(3, 7):  # every value with enough mass in both (≥ 6 % each)
        ratio = counts[value] / counts_more[value]
        assert 1 / (1.3 * bound) <= ratio <= 1.3 * bound, (value, counts, counts_more)
    assert counts[4] / counts_more[4] > 2  # and they do differ: the mechanism is no constant


def test_the_mean_s_noise_has_the_stated_scale() -> None:
    mechanism = Mechanism((50.0, 150.0), 20.0)  # count noise negligible, sum noise scale 10
    assert mechanism.sum_scale == pytest.approx(100 / 10, rel=1e-6)
    cohort = [91.0, 92.0, 93.0, 94.0]
    released = [mechanism.release(cohort) for _ in range(SAMPLES)]
    assert all(r.vehicles == 4 for r in released[:50])
    assert released[0].mean_scale == pytest.approx(10 / 4, rel=1e-6)
    means = [r.mean for r in released]
    # Laplace(b): standard deviation b·√2
    assert statistics.pstdev(means) == pytest.approx(math.sqrt(2) * 10 / 4, rel=0.1)
    assert statistics.fmean(means) == pytest.approx(92.5, abs=0.3)


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


def test_a_bundle_order_aggregates_under_the_bundle_s_min_cohort(world) -> None:
    client, db_url = world
    with session_scope(db_url) as session:
        w = World(session)
        w.head(11)
        w.product(3, Kind.DATASET, permissions=TELEMETRY, min_cohort=4)
        w.product(5, Kind.BUNDLE, permissions=TELEMETRY, min_cohort=4, components=((3, 0),))
        for v in range(1, 7):
            w.join(5, v, OWNER)
        w.order(3, 5, BUYER, 1)
        # after the sale the component lowers its cohort and widens its bits: the bundle's
        # members consented to aggregates of 4 vehicles or more, of telemetry only
        w.product(3, Kind.DATASET, permissions=TELEMETRY | LOCATION, min_cohort=1, version=2)
    token = sign_in(client, BUYER_KEY)
    answer = _post(client, token, 3, {"metric": SOH, "filter": {"make": "Ford"}})  # 2 Fords < 4
    assert answer.status_code == 422, answer.text
    assert answer.json()["reason"] == "cohort_too_small"
    answer = _post(client, token, 3, {"metric": "Vehicle.CurrentLocation.Latitude"})
    assert answer.json()["reason"] == "signal_not_permitted"
    answer = _post(client, token, 3, {"metric": SOH, "group_by": "make"})
    assert answer.status_code == 202, answer.text
    job_id = answer.json()["job_id"]
    with session_scope(db_url) as session:
        assert build(session, job_id, _active, 86_400) == "done"
        assert session.get(DatasetJob, job_id).cohort == 4
        order_id = session.get(DatasetJob, job_id).order_id
        contributors = {
            int(v)
            for v in session.scalars(select(UsageCounter.vehicle_id).where(UsageCounter.order_id == order_id))
        }
    assert contributors == {1, 2, 3, 4}  # the Teslas; the 2 Fords stay suppressed (2 < 4)
    result = client.get(f"/v1/datasets/{job_id}", headers={"Authorization": f"Bearer {token}"}).json()
    assert [row[0] for row in result["result"]["rows"]] == ["Tesla"]


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
        assert session.get(DatasetJob, jobs[1]).cohort == 4
        contributors = {
            int(v) for v in session.scalars(select(UsageCounter.vehicle_id).where(UsageCounter.order_id == 1))
        }
        assert contributors == {3, 4, 5, 6}

    def inactive(account: str, _role: Role, _block: int) -> bool:
        return account.lower() != BUYER

    with session_scope(db_url) as session:
        assert build(session, jobs[2], inactive, 86_400) == "refused"
        assert session.get(DatasetJob, jobs[2]).reason == "buyer_inactive"
