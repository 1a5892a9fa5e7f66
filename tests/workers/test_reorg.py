"""Reorgs while the indexer follows the head (confirmations 0, so every reorg reaches blocks it
applied): after each, the database equals a fresh index of the canonical chain."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from devkit.databases import sqlite_url
from tests.support.chain_views import index_vs_chain
from tests.support.history import OWNERS, History
from tests.support.projections import diff, dump, rows
from tests.support.rpc_proxy import RpcProxy
from tests.workers.test_indexer import make_indexer
from workers.db import upgrade
from workers.indexer.sync import Indexer, ReorgTooDeepError


@pytest.fixture
def history(deployment) -> History:
    anvil, manifest, _path = deployment
    return History(anvil.w3, manifest)


def fresh_index(anvil_url: str, path: Path, directory: Path, name: str) -> Indexer:
    url = sqlite_url(directory, name)
    upgrade(url)
    indexer = make_indexer(anvil_url, url, path)
    indexer.sync()
    return indexer


def replacement_txs(history: History, rng: random.Random, depth: int) -> list[tuple[dict, int]]:
    return [(history.transfer_request(rng), offset) for offset in range(0, depth, 2)]


def test_reorgs_of_depth_1_to_10_while_following(deployment, history, db_url, tmp_path):
    anvil, _manifest, path = deployment
    rng = random.Random(7)
    history.all()
    history.random_transfers(rng, 12)
    indexer = make_indexer(anvil.url, db_url, path)
    indexer.sync()
    for depth in range(1, 11):
        history.random_transfers(rng, depth + 2)  # the blocks about to be replaced carry events
        indexer.sync()
        before = dump(indexer.engine)
        anvil.reorg(depth, replacement_txs(history, rng, depth))
        report = indexer.sync()
        assert report.rollbacks, f"depth {depth}: the reorg went unnoticed"
        ((_from, fork),) = report.rollbacks
        assert fork >= anvil.w3.eth.block_number - depth - 1
        after = dump(indexer.engine)
        assert after != before
        reference = fresh_index(anvil.url, path, tmp_path, f"fresh-{depth}.db")
        assert diff(dump(reference.engine), after) == [], f"depth {depth}"
        assert index_vs_chain(indexer.engine, history) == [], f"depth {depth}"


def test_a_reorg_while_reading_a_range_is_caught(deployment, history, db_url, tmp_path):
    anvil, _manifest, path = deployment
    rng = random.Random(11)
    history.all()
    history.random_transfers(rng, 6)
    proxy = RpcProxy(anvil.url)
    try:
        indexer = make_indexer(proxy.url, db_url, path)
        # The node answers eth_getLogs from the old chain, then the chain reorganises before
        # the headers are read: the batch must not be applied with the stale logs.
        proxy.faults.after_call = ("eth_getLogs", lambda: anvil.reorg(3, replacement_txs(history, rng, 3)))
        indexer.sync()
    finally:
        proxy.stop()
    reference = fresh_index(anvil.url, path, tmp_path, "fresh.db")
    assert diff(dump(reference.engine), dump(indexer.engine)) == []


def test_a_reorg_below_the_window_is_refused_and_changes_nothing(deployment, history, db_url):
    anvil, _manifest, path = deployment
    rng = random.Random(5)
    history.all()
    anvil.mine(10)
    indexer = make_indexer(anvil.url, db_url, path, reorg_window=3)
    indexer.sync()
    history.random_transfers(rng, 6)
    indexer.sync()
    before = dump(indexer.engine)
    anvil.reorg(6, replacement_txs(history, rng, 6))
    with pytest.raises(ReorgTooDeepError, match="REORG_WINDOW"):
        indexer.sync()
    assert dump(indexer.engine) == before
    assert rows(indexer.engine, "indexer_cursor")[0]["last_block"] == anvil.w3.eth.block_number


def test_undo_records_stay_inside_the_window(deployment, history, db_url):
    anvil, _manifest, path = deployment
    history.all()
    indexer = make_indexer(anvil.url, db_url, path, reorg_window=4)
    history.random_transfers(random.Random(3), 10)
    indexer.sync()
    head = anvil.w3.eth.block_number
    blocks = {r["block_number"] for r in rows(indexer.engine, "indexer_undo")}
    assert blocks and min(blocks) > head - 4
    cursor = rows(indexer.engine, "indexer_cursor")[0]
    assert cursor["undo_from"] == head - 3


def test_a_reorg_of_a_root_proposal_brings_back_the_root_it_replaced(deployment, history, db_url, tmp_path):
    """RootProposed marks the pending root `replaced`; when the block of the new proposal is
    reorganised away, the first root is pending again, exactly as a fresh index has it."""
    anvil, _manifest, path = deployment
    history.all()
    stream, _api, dataset, _bundle = history.products
    indexer = make_indexer(anvil.url, db_url, path)
    first = history.propose_root([(OWNERS[0], 5_000), (OWNERS[1], 2_000)], {stream: 7_000})
    indexer.sync()
    second = history.propose_root([(OWNERS[0], 6_000), (OWNERS[1], 2_000)], {stream: 7_000, dataset: 1_000})
    indexer.sync()
    status = {r["root"]: r["status"] for r in rows(indexer.engine, "market_roots")}
    assert (status[first.root], status[second.root]) == ("replaced", "pending")
    anvil.reorg(1, replacement_txs(history, random.Random(13), 1))
    report = indexer.sync()
    assert report.rollbacks
    status = {r["root"]: r["status"] for r in rows(indexer.engine, "market_roots")}
    assert status[first.root] == "pending" and second.root not in status
    reference = fresh_index(anvil.url, path, tmp_path, "fresh-roots.db")
    assert diff(dump(reference.engine), dump(indexer.engine)) == []
    assert index_vs_chain(indexer.engine, history) == []
