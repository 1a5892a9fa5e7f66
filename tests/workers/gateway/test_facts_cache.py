"""The access facts cache: reused within one indexed block, dropped when the indexer moves
to another block — including the same height after a reorg (another hash)."""

from __future__ import annotations

from tests.support.databases import session_scope
from tests.workers.gateway.projections import World
from workers.access.facts import FactsCache, IndexedFacts
from workers.protocol import Kind


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
