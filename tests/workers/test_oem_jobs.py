"""The work behind oem.pull, oem.schedule and oem.command, against the OEM simulator (real
HTTP), a migrated database and, for commands, a real anvil: pulls store normalised signals
with stored (and refreshed) tokens; the schedule picks exactly the live members of active
products at their refreshSeconds; commands go out only on `hasPermissions` at the latest
block, once per request, never late."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator

import pytest
from eth_account import Account
from prometheus_client import REGISTRY
from sqlalchemy import select

from devkit.databases import migrated, postgres_database, postgres_unavailable
from tests.support.databases import database, session_scope
from tests.support.oem_chain import OTHER_KEY, OWNER_KEY, RELAYER_KEY
from tests.support.simulator import CONNECTION_IDS, SimulatorProcess, link_vehicle
from tests.workers.gateway.projections import World
from workers import eip712
from workers.chain import Chain, connect
from workers.config import Settings, get_settings, use_settings
from workers.db import Database
from workers.db.gateway import VehicleProfile
from workers.db.oem import OemCommand, OemLink
from workers.db.projections import Vehicle
from workers.oem.connectors import connector_for
from workers.oem.errors import MalformedPayloadError, UnavailableError
from workers.oem.jobs import pull_vehicle, region_of, relay_command
from workers.oem.links import LinkTokens, cipher_from
from workers.oem.schedule import schedule_pulls
from workers.protocol import NO_END
from workers.protocol.permissions import LOCK, UNLOCK
from workers.signals import catalogue as vss
from workers.signals import store as signal_store

OWNER = Account.from_key(OWNER_KEY).address
OTHER = Account.from_key(OTHER_KEY).address
GRANTEE = Account.from_key(RELAYER_KEY).address


@pytest.fixture
def settings(sim: SimulatorProcess, sqlite_db: str) -> Settings:
    sim.reset()
    configured = sim.settings(
        get_settings(),
        database_url=sqlite_db,
        oem_max_attempts=2,
        oem_backoff_base=0.01,
        oem_pace_smartcar=1000.0,
        oem_pace_tesla=1000.0,
    )
    use_settings(configured)
    return configured


@pytest.fixture
def db(settings: Settings) -> Database:
    return database(settings.database_url)


def indexed(settings: Settings, vehicles: dict[int, str]) -> None:
    with session_scope(settings.database_url) as session:
        world = World(session)
        for vehicle_id, owner in vehicles.items():
            world.vehicle(vehicle_id, owner)


def link_row(settings: Settings, link_id: int) -> OemLink:
    with session_scope(settings.database_url, read_only=True) as session:
        row = session.get(OemLink, link_id)
    assert row is not None
    return row


# --- oem.pull ------------------------------------------------------------------------------


@pytest.mark.parametrize("oem", ["smartcar", "tesla"])
def test_a_pull_stores_normalised_signals_and_the_profile(sim, settings, db, oem):
    link_id = link_vehicle(sim, settings, oem, 1, OWNER)
    indexed(settings, {1: OWNER})
    outcome = pull_vehicle(1, settings, db)
    assert outcome.status == "stored" and outcome.stored > 5
    with session_scope(settings.database_url, read_only=True) as session:
        latest = {s.name: s for s in signal_store.latest(session, 1, since_ms=0)}
        profile = session.get(VehicleProfile, 1)
    car = sim.vehicles(oem)[0]
    truth = sim.vehicle(car["vin"])["state"]
    assert latest[vss.TRAVELED_DISTANCE].value == pytest.approx(truth["odometer_km"], abs=0.5)
    assert latest[vss.SOC].unit == "percent"
    assert {s.source for s in latest.values()} == {f"oem:{1 if oem == 'smartcar' else 2}"}
    assert profile is not None and (profile.make, profile.model) == (car["make"], car["model"])
    assert profile.powertrain == car["powertrain"] and profile.region == car["region"]
    assert link_row(settings, link_id).last_pull_at is not None


def test_regions_match_the_simulated_cities(sim, settings):
    assert region_of(37.77, -122.42) == "us-west"
    assert region_of(41.88, -87.63) == "us-central"
    assert region_of(40.71, -74.0) == "us-east"
    assert region_of(52.52, 13.40) == "eu-central"
    assert region_of(-33.9, 151.2) == "other"


def test_no_link_and_a_new_owner_are_not_pulled(sim, settings, db):
    assert pull_vehicle(9, settings, db).status == "no_link"
    link_id = link_vehicle(sim, settings, "smartcar", 1, OWNER)
    indexed(settings, {1: OTHER})  # the NFT moved: the old owner's consent does not carry over
    assert pull_vehicle(1, settings, db).status == "owner_changed"
    assert link_row(settings, link_id).status == "owner_changed"
    assert sim.stats()["requests"].get("smartcar", 0) == 0
    indexed(settings, {1: OWNER})
    assert pull_vehicle(1, settings, db).status == "link_inactive"  # until the owner consents again


def test_an_expired_token_is_refreshed_and_the_new_pair_stored(sim, settings, db):
    link_id = link_vehicle(sim, settings, "smartcar", 1, OWNER)
    indexed(settings, {1: OWNER})
    before = link_row(settings, link_id).tokens_ciphertext
    sim.expire_tokens()
    assert pull_vehicle(1, settings, db).status == "stored"
    after = link_row(settings, link_id).tokens_ciphertext
    assert after != before
    assert pull_vehicle(1, settings, db).status == "stored"
    assert sim.stats()["refreshes"] == 1  # the stored pair served the second pull


def test_a_dead_refresh_token_marks_the_link_for_a_new_consent(sim, settings, db):
    link_id = link_vehicle(sim, settings, "tesla", 1, OWNER)
    indexed(settings, {1: OWNER})
    stale = LinkTokens(db, link_id, cipher_from(settings)).current()
    connector_for(2, settings).refresh(stale.refresh_token)  # rotated elsewhere: ours is dead
    sim.expire_tokens()
    assert pull_vehicle(1, settings, db).status == "reauth_required"
    assert link_row(settings, link_id).status == "reauth_required"
    requests = sim.stats()["requests"]
    assert pull_vehicle(1, settings, db).status == "reauth_required"
    assert sim.stats()["requests"] == requests  # no further calls to the automaker


def test_racing_refreshes_use_the_winners_tokens(sim, settings, db):
    link_id = link_vehicle(sim, settings, "smartcar", 1, OWNER)
    connector = connector_for(1, settings)
    loser = LinkTokens(db, link_id, cipher_from(settings))
    winner = LinkTokens(db, link_id, cipher_from(settings))
    stale = loser.current()
    won = {}

    def refresh_after_the_winner(refresh_token: str):
        won["tokens"] = winner.refreshed(stale, connector.refresh)  # stored first
        return connector.refresh(refresh_token)  # the automaker refuses the spent token

    got = loser.refreshed(stale, refresh_after_the_winner)
    assert got == won["tokens"] == loser.current()
    assert link_row(settings, link_id).status == "active"


@pytest.mark.parametrize(
    ("fault", "error"), [("outage", UnavailableError), ("malformed", MalformedPayloadError)]
)
def test_transient_failures_store_nothing_and_are_raised_for_a_retry(sim, settings, db, fault, error):
    link_id = link_vehicle(sim, settings, "smartcar", 1, OWNER)
    indexed(settings, {1: OWNER})
    sim.fault(fault, "smartcar", seconds=30)
    with pytest.raises(error):
        pull_vehicle(1, settings, db)
    with session_scope(settings.database_url, read_only=True) as session:
        assert signal_store.latest(session, 1, since_ms=0) == []
    assert link_row(settings, link_id).last_error.startswith(error.reason)
    sim.clear_faults()
    assert pull_vehicle(1, settings, db).status == "stored"
    assert link_row(settings, link_id).last_error is None


# --- oem.schedule ----------------------------------------------------------------------------


def test_the_schedule_picks_live_members_of_active_products_at_their_refresh(sim, settings, db):
    with session_scope(settings.database_url) as session:
        world = World(session)
        world.product(1, 0, refresh=60)  # active stream
        world.product(2, 0, refresh=5, active=False)  # inactive: its members are not pulled for it
        world.product(3, 3, refresh=30, version=2)  # a bundle, terms bumped to version 2
        for vehicle_id in range(1, 8):
            world.vehicle(vehicle_id, OWNER, generation=1 if vehicle_id != 4 else 2)
        world.join(1, 1, OWNER)  # live
        world.join(2, 2, OWNER)  # only in the inactive product
        world.join(3, 3, OWNER, version=1)  # consented to the old terms
        world.join(1, 4, OWNER, generation=1)  # consented before a transfer
        world.join(3, 6, OWNER, version=2)  # live bundle member, but its link needs a new consent
        world.join(3, 7, OWNER, version=2)  # live bundle member, link still to be resolved
    for index, vehicle_id in enumerate(range(1, 7)):  # vehicle 5: linked but in no product
        link_vehicle(sim, settings, "smartcar", vehicle_id, OWNER, index=index % 6)
    with session_scope(settings.database_url) as session:
        link6 = session.scalar(select(OemLink).where(OemLink.vehicle_id == 6))
        link6.status = "reauth_required"
    seventh = link_vehicle(sim, settings, "tesla", None, OWNER)  # onboarded, minted later as vehicle 7
    minted_vin_hash = link_row(settings, seventh).vin_hash
    with session_scope(settings.database_url) as session:
        session.get(Vehicle, 7).vin_hash = minted_vin_hash

    queued: list[int] = []
    now = int(time.time())
    assert schedule_pulls(settings, db, queued.append, now) == [1, 7] == queued
    assert sample("workers_oem_links_due") == 6  # every active link was due; 1 and 7 are members
    assert link_row(settings, seventh).vehicle_id == 7  # resolved when claimed
    assert schedule_pulls(settings, db, queued.append, now + 10) == []  # claimed: leased to its pull
    assert pull_vehicle(1, settings, db, now=now).status == "stored"
    assert pull_vehicle(7, settings, db, now=now).status == "stored"
    assert schedule_pulls(settings, db, queued.append, now + 29) == []
    assert schedule_pulls(settings, db, queued.append, now + 30) == [7]  # the bundle's 30 s
    assert pull_vehicle(7, settings, db, now=now + 30).status == "stored"
    assert schedule_pulls(settings, db, queued.append, now + 60) == [1, 7]
    assert queued == [1, 7, 7, 1, 7]  # each due link once; never the others


def test_a_pull_that_dies_is_claimed_again_when_its_lease_ends(sim, settings, db):
    with session_scope(settings.database_url) as session:
        world = World(session)
        world.product(1, 0, refresh=60)
        world.vehicle(1, OWNER)
        world.join(1, 1, OWNER)
    link_id = link_vehicle(sim, settings, "smartcar", 1, OWNER)
    now = int(time.time())
    assert schedule_pulls(settings, db, lambda _: None, now) == [1]  # its pull is lost
    assert link_row(settings, link_id).next_pull_at == now + settings.oem_pull_lease
    assert schedule_pulls(settings, db, lambda _: None, now + settings.oem_pull_lease - 1) == []
    assert schedule_pulls(settings, db, lambda _: None, now + settings.oem_pull_lease) == [1]


def test_a_link_in_no_product_is_looked_at_again_only_after_the_idle_period(sim, settings, db):
    with session_scope(settings.database_url) as session:
        world = World(session)
        world.product(1, 0, refresh=10)
        world.vehicle(1, OWNER)
    link_id = link_vehicle(sim, settings, "smartcar", 1, OWNER)
    now = int(time.time())
    assert schedule_pulls(settings, db, lambda _: None, now) == []
    assert link_row(settings, link_id).next_pull_at == now + settings.oem_schedule_idle
    with session_scope(settings.database_url) as session:
        World(session).join(1, 1, OWNER)  # joins: pulled from its next look on
    assert schedule_pulls(settings, db, lambda _: None, now + settings.oem_schedule_idle - 1) == []
    assert schedule_pulls(settings, db, lambda _: None, now + settings.oem_schedule_idle) == [1]


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def members(settings: Settings, vehicle_ids: list[int], refresh: int = 60) -> None:
    with session_scope(settings.database_url) as session:
        world = World(session)
        world.product(1, 0, refresh=refresh)
        for vehicle_id in vehicle_ids:
            world.vehicle(vehicle_id, OWNER)
            world.join(1, vehicle_id, OWNER)


def test_an_application_429_holds_the_connection_until_retry_after_across_restarts(sim, settings):
    smartcars = [link_vehicle(sim, settings, "smartcar", v, OWNER, index=v - 1) for v in (1, 2)]
    link_vehicle(sim, settings, "tesla", 3, OWNER)
    members(settings, [1, 2, 3])
    db = database(settings.database_url)
    sim.fault("rate_limit", "smartcar", count=1, retry_after=3600, scope="application")
    limited = sample("workers_oem_rate_limited_total", connection="smartcar")
    now = int(time.time())
    outcome = pull_vehicle(1, settings, db, now=now)
    assert (outcome.status, outcome.reason) == ("rate_limited", "oem_rate_limited")
    assert sample("workers_oem_rate_limited_total", connection="smartcar") == limited + 1
    calls = sim.stats()["requests"]["smartcar"]

    assert schedule_pulls(settings, db, lambda _: None, now + 10) == [3]  # Tesla is not held
    held = pull_vehicle(2, settings, db, now=now + 10)  # a pull queued earlier makes no call
    assert (held.status, held.detail) == ("held", f"held until {now + 3600}")
    assert link_row(settings, smartcars[1]).next_pull_at == now + 3600
    restarted = Database(settings.database_url)  # a new process: the hold is a row, not memory
    try:
        smartcar = {1, 2}  # (the Tesla's lease ends meanwhile: it is claimed again)
        assert not smartcar & set(schedule_pulls(settings, restarted, lambda _: None, now + 3599))
        assert pull_vehicle(1, settings, restarted, now=now + 3599).status == "held"
        assert sim.stats()["requests"]["smartcar"] == calls  # nothing went out while held
        assert smartcar <= set(schedule_pulls(settings, restarted, lambda _: None, now + 3600))
        assert pull_vehicle(1, settings, restarted, now=now + 3600).status == "stored"
    finally:
        restarted.dispose()


def test_a_vehicle_429_with_an_http_date_holds_only_that_vehicle(sim, settings, db):
    first = link_vehicle(sim, settings, "tesla", 1, OWNER)
    link_vehicle(sim, settings, "tesla", 2, OWNER, index=1)
    members(settings, [1, 2])
    sim.fault("rate_limit", "tesla", count=1, retry_after=3600, retry_after_form="http-date")
    now = int(time.time())
    assert pull_vehicle(1, settings, db, now=now).status == "rate_limited"
    held_until = link_row(settings, first).held_until
    assert held_until is not None and abs(held_until - (now + 3600)) <= 2  # the date, in seconds
    assert schedule_pulls(settings, db, lambda _: None, now + 10) == [2]
    calls = sim.stats()["requests"]["tesla"]
    assert pull_vehicle(1, settings, db, now=now + 10).status == "held"
    assert sim.stats()["requests"]["tesla"] == calls
    assert pull_vehicle(2, settings, db, now=now + 10).status == "stored"
    assert schedule_pulls(settings, db, lambda _: None, held_until - 1) == [2]  # 2 at its refresh
    assert schedule_pulls(settings, db, lambda _: None, held_until) == [1]


# --- two schedulers on PostgreSQL -------------------------------------------------------------

FLEET = 400


@pytest.fixture
def pg_settings() -> Iterator[Settings]:
    reason = postgres_unavailable()
    if reason:
        pytest.skip(reason)
    with postgres_database() as raw, migrated(raw) as url:
        yield get_settings().model_copy(
            update={"database_url": url, "oem_connections": [], "oem_schedule_batch": 25}
        )


def fleet_links(settings: Settings, count: int) -> None:
    """`count` minted, linked member vehicles (tokens are never used: nothing is pulled)."""
    now = int(time.time())
    with session_scope(settings.database_url) as session:
        world = World(session)
        world.product(1, 0, refresh=60)
        for vehicle_id in range(1, count + 1):
            world.vehicle(vehicle_id, OWNER)
            world.join(1, vehicle_id, OWNER)
        session.add_all(
            OemLink(
                connection_id=1 + vehicle_id % 2,
                vin_hash="0x" + f"{vehicle_id:064x}",
                vin_ciphertext="-",
                external_id=str(vehicle_id),
                owner=OWNER.lower(),
                vehicle_id=vehicle_id,
                tokens_ciphertext="-",
                token_expires_at=now,
                status="active",
                created_at=now,
                updated_at=now,
            )
            for vehicle_id in range(1, count + 1)
        )


@pytest.mark.postgres
def test_two_schedulers_claim_disjoint_links_and_queue_each_due_link_once(pg_settings):
    fleet_links(pg_settings, FLEET)
    now = int(time.time())
    start = threading.Barrier(2)
    queued: list[list[int]] = [[], []]

    def scheduler(index: int) -> None:
        db = Database(pg_settings.database_url)  # its own pool, as a second process has
        try:
            start.wait()
            while schedule_pulls(pg_settings, db, queued[index].append, now):
                pass
        finally:
            db.dispose()

    threads = [threading.Thread(target=scheduler, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert queued[0] and queued[1]  # both claimed, at the same time
    assert not set(queued[0]) & set(queued[1])
    together = queued[0] + queued[1]
    assert sorted(together) == list(range(1, FLEET + 1))  # every due link, exactly once
    db = Database(pg_settings.database_url)
    try:
        assert schedule_pulls(pg_settings, db, lambda _: None, now + 59) == []
    finally:
        db.dispose()


# --- oem.command -----------------------------------------------------------------------------


@pytest.fixture
def commanded(sim, settings, chain) -> tuple[Chain, dict[str, tuple[int, str]]]:
    """Two minted vehicles (a Smartcar-style and a Tesla), linked, owned by OWNER; GRANTEE
    holds UNLOCK (not LOCK) on both."""
    views = connect(
        settings.model_copy(update={"rpc_url": chain.node.url, "deployment_file": chain.manifest_file})
    )
    cars = {}
    for oem in ("smartcar", "tesla"):
        car = sim.vehicles(oem)[0]
        vehicle_id = chain.mint_vehicle(OWNER, CONNECTION_IDS[oem], eip712.vin_hash(car["vin"]))
        link_vehicle(sim, settings, oem, vehicle_id, OWNER)
        chain.send(OWNER_KEY, chain.vehicle_id, "grant", vehicle_id, GRANTEE, UNLOCK, NO_END, b"\0" * 32)
        cars[oem] = (vehicle_id, car["vin"])
    return views, cars


def command(settings, views, vehicle_id, caller, what, *, request_id=None, requested_at=None):
    return relay_command(
        request_id or uuid.uuid4().hex,
        vehicle_id=vehicle_id,
        caller=caller,
        command=what,
        requested_at=int(time.time()) if requested_at is None else requested_at,
        settings=settings,
        db=database(settings.database_url),
        chain=views,
    )


def test_commands_follow_has_permissions_on_the_latest_block(sim, settings, chain, commanded):
    views, cars = commanded
    vehicle_id, vin = cars["smartcar"]
    assert command(settings, views, vehicle_id, GRANTEE, "unlock").status == "sent"
    assert sim.vehicle(vin)["locked"] is False
    refused = command(settings, views, vehicle_id, GRANTEE, "lock")  # GRANTEE holds no LOCK bit
    assert (refused.status, refused.reason) == ("refused", "no_permission")
    assert command(settings, views, vehicle_id, OTHER, "lock").status == "refused"
    assert sim.vehicle(vin)["locked"] is False
    assert command(settings, views, vehicle_id, OWNER, "lock").status == "sent"
    assert sim.vehicle(vin)["locked"] is True

    chain.send(OWNER_KEY, chain.vehicle_id, "grant", vehicle_id, GRANTEE, LOCK | UNLOCK, NO_END, b"\0" * 32)
    assert command(settings, views, vehicle_id, GRANTEE, "unlock").status == "sent"  # the new key, at once
    chain.send(OWNER_KEY, chain.vehicle_id, "revoke", vehicle_id, GRANTEE)
    assert command(settings, views, vehicle_id, GRANTEE, "lock").status == "refused"  # revoked, at once
    assert [c["command"] for c in sim.vehicle(vin)["commands"]] == ["UNLOCK", "LOCK", "UNLOCK"]


def test_remote_start_goes_to_the_tesla_and_is_not_offered_by_smartcar(sim, settings, chain, commanded):
    views, cars = commanded
    tesla_id, tesla_vin = cars["tesla"]
    assert command(settings, views, tesla_id, OWNER, "start").status == "sent"
    assert sim.vehicle(tesla_vin)["remote_started"] is True
    failed = command(settings, views, cars["smartcar"][0], OWNER, "start")
    assert (failed.status, failed.reason) == ("failed", "oem_not_capable")
    assert command(settings, views, tesla_id, GRANTEE, "start").status == "refused"  # no DRIVE bit


def test_a_command_is_sent_once_per_request_and_never_late(sim, settings, chain, commanded):
    views, cars = commanded
    vehicle_id, vin = cars["smartcar"]
    first = command(settings, views, vehicle_id, OWNER, "unlock", request_id="req-1")
    again = command(settings, views, vehicle_id, OWNER, "unlock", request_id="req-1")
    assert first == again and first.status == "sent"
    assert len(sim.vehicle(vin)["commands"]) == 1
    late = command(settings, views, vehicle_id, OWNER, "lock", requested_at=int(time.time()) - 3600)
    assert (late.status, late.reason) == ("expired", "command_expired")
    assert len(sim.vehicle(vin)["commands"]) == 1
    with session_scope(settings.database_url, read_only=True) as session:
        rows = {r.request_id: r.status for r in session.scalars(select(OemCommand))}
    assert rows["req-1"] == "sent" and sorted(rows.values()) == ["expired", "sent"]


def test_a_new_owner_cannot_drive_with_the_old_owners_consent(sim, settings, chain, commanded):
    views, cars = commanded
    vehicle_id, vin = cars["smartcar"]
    chain.send(OWNER_KEY, chain.vehicle_id, "transferFrom", OWNER, OTHER, vehicle_id)
    outcome = command(settings, views, vehicle_id, OTHER, "unlock")  # OTHER owns it: may command
    assert (outcome.status, outcome.reason) == ("failed", "owner_changed")
    assert sim.vehicle(vin)["commands"] == []
