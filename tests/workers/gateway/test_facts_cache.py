"""The access facts cache: reused within one indexed block, dropped when the indexer moves
to another block — including the same height after a reorg (another hash)."""

from __future__ import annotations

from tests.support.databases import session_scope
from tests.workers.gateway.projections import FAR, World
from workers.access.facts import FactsCache, IndexedFacts
from workers.access.rule import Decision, Purpose
from workers.protocol import Kind, Role
from workers.protocol.permissions import TELEMETRY

SELLER, BUYER = "0x" + "a1" * 20, "0x" + "b2" * 20


def _active(_operator: str, _block: int) -> bool:
    return True


def test_facts_follow_the_indexed_head_and_its_hash(sqlite_db: str) -> None:
    cache = FactsCache(ttl=0)
    with session_scope(sqlite_db) as session:
        w = World(session)
        w.head(10, block_hash="0x" + "aa" * 32)
        w.product(1, Kind.API, active=True)
    with session_scope(sqlite_db) as session:
        assert IndexedFacts(session, cache, _active).product(1).active
    with session_scope(sqlite_db) as session:
        World(session).product(1, Kind.API, active=False)  # written without a new head: not seen yet
    with session_scope(sqlite_db) as session:
        assert IndexedFacts(session, cache, _active).product(1).active
    with session_scope(sqlite_db) as session:
        World(session).head(10, block_hash="0x" + "bb" * 32)  # a reorg re-applied to the same height
    with session_scope(sqlite_db) as session:
        assert not IndexedFacts(session, cache, _active).product(1).active
    with session_scope(sqlite_db) as session:
        w = World(session)
        w.head(11, block_hash="0x" + "cc" * 32)
        w.product(1, Kind.API, active=True)
    with session_scope(sqlite_db) as session:
        facts = IndexedFacts(session, cache, _active)
        assert facts.product(1).active and facts.head.number == 11


def test_a_request_left_behind_by_the_cache_never_stores_its_older_facts(sqlite_db: str) -> None:
    """A request that read head 10 while another request already moved the cache to 11 (the
    sale's block) computes from its own snapshot and stores nothing: before this, it wrote the
    seller's tenure into block 11's memo, and every later request at 11 served the seller's
    history to the buyer's products (the demo's intermittent 'observations of Alice's tenure
    were served after the sale')."""
    cache = FactsCache(ttl=0)
    with session_scope(sqlite_db) as session:
        w = World(session)
        w.head(10)
        w.vehicle(1, SELLER, tenure_from=1_000)
    with session_scope(sqlite_db, read_only=True) as session:
        behind = IndexedFacts(session, cache, _active)  # reads head 10
        with session_scope(sqlite_db) as writer:  # the indexer applies the sale in block 11
            w = World(writer)
            w.head(11)
            w.vehicle(1, BUYER, 2, tenure_from=5_000)
        with session_scope(sqlite_db, read_only=True) as other:  # another request moves the cache to 11
            assert IndexedFacts(other, cache, _active).head.number == 11
        behind.tenure_start(1)  # computed at its own block, whatever it sees
    with session_scope(sqlite_db, read_only=True) as session:
        facts = IndexedFacts(session, cache, _active)
        assert facts.head.number == 11
        assert facts.tenure_start(1) == 5_000, "block 11's memo holds block 11's tenure"


def _staked(_account: str, _role: Role, _block: int) -> bool:
    return True


def _decide(sqlite_db: str, cache: FactsCache, now: int) -> Decision:
    with session_scope(sqlite_db, read_only=True) as session:
        facts = IndexedFacts(session, cache, _staked, clock=lambda: now)
        return facts.may_read(BUYER, 1, 1, 0, purpose=Purpose.CALL, any_of=TELEMETRY)


def _api_world(sqlite_db: str, *, ends: int) -> None:
    with session_scope(sqlite_db) as session:
        w = World(session)
        w.head(10)
        w.product(1, Kind.API)
        w.vehicle(1, SELLER)
        w.join(1, 1, SELLER)
        w.order(7, 1, BUYER, 5, starts=100, ends=ends)


def test_a_memoised_decision_ends_when_its_order_does(sqlite_db: str) -> None:
    """The rule's answer is reused within a block, but never past the instant one of the
    orders it looked at ends: the next call at that instant is decided again."""
    _api_world(sqlite_db, ends=2_000)
    cache = FactsCache(ttl=0)
    assert _decide(sqlite_db, cache, 1_999)
    with session_scope(sqlite_db) as session:  # a write without a new block is not seen...
        World(session).order(7, 1, BUYER, 5, starts=100, ends=5_000)
    assert _decide(sqlite_db, cache, 1_999)  # ...the memo answers
    refused = _decide(sqlite_db, cache, 2_000)  # the order's end (as this block knows it)
    assert not refused and refused.reason == "order_expired"


def test_a_counter_seen_empty_drops_the_memoised_decisions(sqlite_db: str) -> None:
    _api_world(sqlite_db, ends=FAR)
    cache = FactsCache(ttl=0)
    assert _decide(sqlite_db, cache, 1_000)
    cache.mark_exhausted((7, 1))
    refused = _decide(sqlite_db, cache, 1_000)
    assert not refused and refused.reason == "credits_exhausted"
