"""A product with 70,000 member vehicles, past SQLite's (32,766) and PostgreSQL's (65,535)
bind parameters per statement: every path that reads per member (the live member list, their
profiles, a stream's vehicle selection with a filter, a whole dataset build, crediting the
members' owners at settlement) joins on the membership projection or stays under the limit,
on both databases. The projection rows are bulk-inserted as the indexer would have left them."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import pytest
from sqlalchemy import func, insert, select

from devkit.databases import migrated, postgres_database, postgres_unavailable, sqlite_url
from tests.support.databases import session_scope
from tests.workers.gateway.projections import World
from workers.access import Entitlement, OrderFacts, Purpose, may_use_order
from workers.access.facts import FactsCache, IndexedFacts, member_profiles
from workers.access.rule import Terms
from workers.datasets.build import DatasetRequest, build, has_cohort
from workers.db.gateway import DatasetJob, VehicleProfile
from workers.db.projections import Membership, Vehicle
from workers.db.settlement import SettlementAccount
from workers.gateway.streams import StreamRequest, select_vehicles
from workers.protocol import Kind, Role
from workers.protocol.permissions import TELEMETRY
from workers.settlement.roots import Settlement
from workers.signals.store import SignalValue, store_many

MEMBERS = 70_000
PRODUCT = 1
ORDER = 1
BUYER = "0x" + "0c" * 20
OWNER = "0x" + "0b" * 20
SOH = "Vehicle.Powertrain.TractionBattery.StateOfHealth"
#: The few members of a make a consumer filters on (every 7,000th vehicle).
RARE = list(range(7_000, MEMBERS + 1, 7_000))


def _active(_account: str, _role: Role, _block: int) -> bool:
    return True


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def union(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """One database per backend for the module (the tests write apart from each other)."""
    if request.param == "sqlite":
        with migrated(sqlite_url(tmp_path_factory.mktemp("union"))) as url:
            yield _populate(url)
        return
    reason = postgres_unavailable()
    if reason:
        pytest.skip(reason)
    with postgres_database() as raw, migrated(raw) as url:
        yield _populate(url)


def _populate(db_url: str) -> str:
    """Product 1 (a Dataset, minCohort 3) with 70,000 members; vehicles in RARE are Kias with a
    state of health, the rest Teslas; one order of BUYER."""
    vehicles = range(1, MEMBERS + 1)
    with session_scope(db_url) as session:
        world = World(session)
        world.head(10)
        world.product(PRODUCT, Kind.DATASET, permissions=TELEMETRY, min_cohort=3)
        world.order(ORDER, PRODUCT, BUYER, 1)
        session.flush()
        session.execute(
            insert(Vehicle),
            [{"vehicle_id": v, "owner": OWNER, "generation": 1, "tenure_started_at": 0, "burned": False,
              "block_number": 1} for v in vehicles],
        )  # fmt: skip
        session.execute(
            insert(Membership),
            [{"product_id": PRODUCT, "vehicle_id": v, "owner": OWNER, "version": 1, "generation": 1,
              "joined_at": 0, "block_number": 1} for v in vehicles],
        )  # fmt: skip
        rare = set(RARE)
        session.execute(
            insert(VehicleProfile),
            [{"vehicle_id": v, "make": "Kia" if v in rare else "Tesla", "updated_ms": 0} for v in vehicles],
        )
        now_ms = int(time.time() * 1000)
        store_many(
            session,
            [(v, [SignalValue(SOH, 80.0 + i, "percent", now_ms, "oem:1")]) for i, v in enumerate(RARE)],
        )
    return db_url


def test_members_and_their_profiles_are_read_by_a_join(union):
    with session_scope(union, read_only=True) as session:
        facts = IndexedFacts(session, FactsCache(0.0), _active)
        assert len(facts.members(PRODUCT)) == MEMBERS
        profiles = member_profiles(session, PRODUCT)
        assert len(profiles) == MEMBERS
        assert sorted(v for v, p in profiles.items() if p.make == "Kia") == RARE


def test_a_stream_selects_its_filtered_vehicles_among_70000_members(union):
    with session_scope(union, read_only=True) as session:
        order = OrderFacts(ORDER, PRODUCT, BUYER, 1, 0, 2**40)
        ent = Entitlement(order, PRODUCT, PRODUCT, 100, Terms(TELEMETRY, 1, 0))
        request = StreamRequest(ORDER, BUYER, None, None, {"make": "kia"})
        assert select_vehicles(session, ent, request, 100) == RARE
        assert select_vehicles(session, ent, StreamRequest(ORDER, BUYER, None, None), 3) == [1, 2, 3]


def test_a_dataset_build_over_70000_members(union):
    with session_scope(union) as session:
        facts = IndexedFacts(session, FactsCache(0.0), _active)
        assert may_use_order(facts, BUYER, ORDER, Purpose.DATASET)
        request = DatasetRequest(metric=SOH, filter={"make": "Kia"})
        session.add(
            DatasetJob(id="scale", order_id=ORDER, product_id=PRODUCT, buyer=BUYER,
                       request=request.model_dump_json(), status="queued", epsilon=0.25, created_at=0)
        )  # fmt: skip
    with session_scope(union) as session:
        assert build(session, "scale", _active, 86_400) == "done"
        job = session.get(DatasetJob, "scale")
        assert job is not None and job.cohort == len(RARE)
        assert json.loads(job.result or "{}")["rows"][0][0] == "all"


def test_queueing_a_dataset_checks_the_cohort_among_70000_members(union):
    with session_scope(union, read_only=True) as session:
        facts = IndexedFacts(session, FactsCache(0.0), _active)
        order = OrderFacts(ORDER, PRODUCT, BUYER, 1, 0, 2**40)
        ent = Entitlement(order, PRODUCT, PRODUCT, 1, Terms(TELEMETRY, 1, 3))
        for wanted, enough in (
            ({"make": "Kia"}, True),
            ({"make": "kia"}, True),
            ({"make": "Volvo"}, False),
            ({}, True),
        ):
            request = DatasetRequest(metric=SOH, filter=wanted)
            assert has_cohort(session, facts, BUYER, ent, request) is enough, wanted
        few = Entitlement(order, PRODUCT, PRODUCT, 1, Terms(TELEMETRY, 1, len(RARE) + 1))
        assert not has_cohort(session, facts, BUYER, few, DatasetRequest(metric=SOH, filter={"make": "Kia"}))
        assert has_cohort(session, facts, BUYER, few, DatasetRequest(metric=SOH))


def test_crediting_70000_owners_stays_under_the_bind_limit(union):
    owed = {f"0x{n:040x}": n for n in range(1, MEMBERS + 1)}
    for _ in range(2):
        with session_scope(union) as session:
            Settlement._credit(session, owed)
    with session_scope(union, read_only=True) as session:
        assert session.scalar(select(func.count()).select_from(SettlementAccount)) == MEMBERS
        assert session.get(SettlementAccount, f"0x{MEMBERS:040x}").owed == 2 * MEMBERS
