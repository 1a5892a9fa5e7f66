"""A node that lags behind the one that answered the head (eth_getLogs over a range answers
`[]`, by block hash "unknown block") must not make the indexer skip events for good: the
blocks' `logsBloom` names the contracts, so the range is retried, never applied without its
logs, and indexing is reported halted until the node answers."""

from __future__ import annotations

import random

import pytest

from devkit.databases import sqlite_url
from tests.support.history import History
from tests.support.projections import diff, dump, rows
from tests.support.rpc_proxy import RpcProxy
from tests.workers.test_indexer import make_indexer
from workers.db import upgrade
from workers.indexer.sync import IndexerError

#: Events whose loss would let a buyer keep reading: an owner leaving a product, a device key
#: revoked, an order placed (whose credits and terms the gateway must know).
MUST_NOT_SKIP = {("DataProducts", "Left"), ("VehicleId", "KeyRevoked"), ("Marketplace", "OrderPlaced")}


@pytest.fixture
def history(deployment) -> History:
    anvil, manifest, _path = deployment
    return History(anvil.w3, manifest)


@pytest.fixture
def proxy(deployment):
    anvil, _manifest, _path = deployment
    server = RpcProxy(anvil.url)
    yield server
    server.stop()


def test_a_lagging_node_answering_no_logs_makes_the_indexer_wait_not_skip(
    deployment, history, proxy, sqlite_db, tmp_path
):
    anvil, _manifest, path = deployment
    indexer = make_indexer(proxy.url, sqlite_db, path, log_range_max_failures=2)
    indexer.sync()  # the deployment's own blocks, through an honest node
    indexed_before = rows(indexer.engine, "indexer_cursor")[0]["last_block"]
    history.all()
    history.random_transfers(random.Random(3), 4)

    proxy.faults.lagging_logs = True
    with pytest.raises(IndexerError, match="incomplete logs"):
        indexer.sync()
    # nothing of the new blocks was applied, and the halt is on record for the gateway
    assert rows(indexer.engine, "indexer_cursor")[0]["last_block"] == indexed_before
    (health,) = rows(indexer.engine, "indexer_health")
    assert "left out" in health["halted"] or "by hash failed" in health["halted"]
    assert health["indexed_block"] == indexed_before

    proxy.faults.lagging_logs = False
    report = indexer.sync()
    assert report.last_block == anvil.w3.eth.block_number
    (health,) = rows(indexer.engine, "indexer_health")
    assert health["halted"] is None and health["indexed_block"] == report.last_block

    fresh_url = sqlite_url(tmp_path, "fresh.db")
    upgrade(fresh_url)
    reference = make_indexer(anvil.url, fresh_url, path)
    reference.sync()
    assert diff(dump(reference.engine), dump(indexer.engine)) == []
    names = {(r["contract"], r["name"]) for r in rows(indexer.engine, "chain_events")}
    assert names >= MUST_NOT_SKIP


def test_the_bloom_names_exactly_the_blocks_with_logs_of_the_contracts(deployment, history, sqlite_db):
    """The bloom check finds every block with logs of ours (else it could not catch a lying
    node) and, on this chain, no block without them (else it would ask for nothing)."""
    from workers.indexer.sync import _bloom_has  # noqa: PLC0415

    anvil, _manifest, path = deployment
    history.all()
    indexer = make_indexer(anvil.url, sqlite_db, path)
    head = anvil.w3.eth.block_number
    with_logs = {int(e["blockNumber"], 16) for e in indexer.rpc.get_logs(indexer.addresses, 0, head)}
    headers = indexer.rpc.get_blocks(list(range(head + 1)))
    named = {
        int(h["number"], 16)
        for h in headers
        if any(_bloom_has(bytes.fromhex(h["logsBloom"][2:]), bits) for bits in indexer._address_bits)
    }
    assert with_logs and named == with_logs
