"""The indexer against a real anvil: a fresh index equals the chain read through its views;
syncing is idempotent; eth_getLogs ranges adapt to a node's limits; rate limits, stalls,
malformed logs and a foreign deployment file give clear errors and apply nothing half-way."""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine

from tests.support.chain_views import index_vs_chain
from tests.support.databases import get_engine
from tests.support.history import History
from tests.support.projections import diff, dump, rows
from tests.support.rpc_proxy import RpcProxy
from workers.chain import DeploymentMismatchError, TransientRpcError, connect
from workers.chain.deployment import Manifest
from workers.config import Settings, use_settings
from workers.db import upgrade
from workers.indexer import handlers as handler_registry
from workers.indexer.decode import MalformedLogError
from workers.indexer.handlers import registered_handlers
from workers.indexer.sync import Indexer, IndexerError
from workers.protocol import DEFAULT_CREDIT_VALIDITY, Kind


def make_indexer(rpc_url: str, db_url: str, manifest_path: Path, **overrides: object) -> Indexer:
    values = {"confirmations": 0, "rpc_timeout": 2.0, **overrides}
    settings = Settings(rpc_url=rpc_url, database_url=db_url, deployment_file=manifest_path, **values)
    use_settings(settings)
    return Indexer(connect(settings), get_engine(db_url), settings)


@pytest.fixture
def history(deployment) -> History:
    anvil, manifest, _path = deployment
    return History(anvil.w3, manifest)


@pytest.fixture
def proxy(deployment) -> Iterator[RpcProxy]:
    anvil, _manifest, _path = deployment
    server = RpcProxy(anvil.url)
    yield server
    server.stop()


def test_fresh_index_equals_chain_views(deployment, history, db_url):
    anvil, _manifest, path = deployment
    history.all()
    indexer = make_indexer(anvil.url, db_url, path)
    report = indexer.sync()
    assert report.events > 0 and report.last_block == anvil.w3.eth.block_number
    assert index_vs_chain(indexer.engine, history) == []
    names = {(r["contract"], r["name"]) for r in rows(indexer.engine, "chain_events")}
    # The history touches every event a projection is built from, of every contract.
    handled = {key for key in registered_handlers() if key[0] != "*"}
    assert handled <= names, f"the history never emits {sorted(handled - names)}"
    assert {("Treasury", "RoleGranted"), ("Marketplace", "RoleRevoked"), ("Treasury", "Received")} <= names
    # The Treasury, the timelock and the Governor have no projection: their events stay in
    # chain_events and their roles in role_members.
    unprojected = {"Treasury", "DimoTimelock", "DimoGovernor"}
    assert {contract for contract, _ in handled} == set(indexer.chain.manifest.contracts) - unprojected


def test_sync_is_idempotent_and_incremental(deployment, history, db_url):
    anvil, _manifest, path = deployment
    history.token_and_treasury()
    indexer = make_indexer(anvil.url, db_url, path)
    indexer.sync()
    first = dump(indexer.engine)
    again = indexer.sync()
    assert again.events == 0 and dump(indexer.engine) == first
    history.random_transfers(random.Random(1), 5)
    assert indexer.sync().events >= 5  # transfers, and vote moves of delegated balances
    transfers = [r for r in rows(indexer.engine, "chain_events") if r["name"] == "Transfer"]
    assert len(transfers) == len({(r["block_number"], r["log_index"]) for r in transfers})
    assert index_vs_chain(indexer.engine, history) == []


def test_confirmations_hold_back_the_newest_blocks(deployment, history, db_url):
    anvil, _manifest, path = deployment
    history.token_and_treasury()
    indexer = make_indexer(anvil.url, db_url, path, confirmations=3)
    report = indexer.sync()
    assert report.last_block == anvil.w3.eth.block_number - 3


def test_log_ranges_shrink_to_the_node_limit_and_grow_back(deployment, history, proxy, db_url, tmp_path):
    anvil, _manifest, path = deployment
    history.token_and_treasury()
    anvil.mine(300)
    history.random_transfers(random.Random(2), 10)
    proxy.faults.max_log_range = 7
    indexer = make_indexer(proxy.url, db_url, path, log_range_initial=1000)
    indexer.sync()
    assert index_vs_chain(indexer.engine, history) == []
    blocks = anvil.w3.eth.block_number + 1
    # It learned the limit: a few refused calls (halving from 1,000), then ranges of at least
    # half the limit (halving may land there), without re-trying refused sizes.
    assert proxy.faults.calls["eth_getLogs"] <= blocks / 3.5 + 12
    proxy.faults.max_log_range = None
    for _ in range(50):  # 5,000 blocks; one anvil_mine of them all can outlast the RPC timeout
        anvil.mine(100)
    calls = proxy.faults.calls["eth_getLogs"]
    indexer.sync()
    # Grown back once the learned limit is forgotten: 5,000 blocks in far fewer than 5,000 / 7 calls.
    assert proxy.faults.calls["eth_getLogs"] - calls < 100

    # Same data as an index through the unlimited node.
    reference = make_indexer(anvil.url, f"sqlite:///{tmp_path / 'ref.db'}", path)
    _upgrade(reference.engine)
    reference.sync()
    assert diff(dump(reference.engine), dump(indexer.engine)) == []


def test_too_many_results_shrinks_the_range(deployment, history, proxy, db_url):
    anvil, _manifest, path = deployment
    history.token_and_treasury()
    history.random_transfers(random.Random(3), 12)
    per_block: dict[str, int] = {}
    for entry in anvil.w3.eth.get_logs({"fromBlock": 0, "toBlock": "latest"}):
        per_block[entry["blockNumber"]] = per_block.get(entry["blockNumber"], 0) + 1
    proxy.faults.max_logs = max(per_block.values())  # a block's logs always fit, two blocks' may not
    indexer = make_indexer(proxy.url, db_url, path)
    indexer.sync()
    assert index_vs_chain(indexer.engine, history) == []


def test_rate_limits_and_stalls_are_retried(deployment, history, proxy, db_url):
    _anvil, _manifest, path = deployment
    history.token_and_treasury()
    indexer = make_indexer(proxy.url, db_url, path)
    proxy.faults.rate_limit_next = 3
    proxy.faults.stall_next = 1
    proxy.faults.stall_seconds = 2.5  # past the 2 s client timeout
    indexer.sync()
    assert index_vs_chain(indexer.engine, history) == []


def test_a_node_that_keeps_failing_is_a_clear_error_with_nothing_applied(deployment, history, proxy, db_url):
    _anvil, _manifest, path = deployment
    history.token_and_treasury()
    indexer = make_indexer(proxy.url, db_url, path, log_range_max_failures=3)
    proxy.faults.rate_limit_next = 1000
    with pytest.raises(TransientRpcError, match="429"):
        indexer.sync()
    proxy.faults.rate_limit_next = 0
    assert rows(indexer.engine, "chain_events") == []
    assert indexer.sync().events > 0


def test_malformed_logs_are_refused_with_nothing_applied(deployment, history, proxy, db_url):
    _anvil, _manifest, path = deployment
    history.token_and_treasury()
    indexer = make_indexer(proxy.url, db_url, path)

    def truncate_a_transfer(logs):
        last = max(i for i, entry in enumerate(logs) if len(entry["data"]) > 2)
        return [*logs[:last], {**logs[last], "data": logs[last]["data"][:-2]}, *logs[last + 1 :]]

    proxy.faults.corrupt_logs = truncate_a_transfer
    with pytest.raises(MalformedLogError, match="bytes of data"):
        indexer.sync()
    assert rows(indexer.engine, "chain_events") == [] and rows(indexer.engine, "token_balances") == []
    assert rows(indexer.engine, "indexer_cursor")[0]["last_block"] == indexer.chain.manifest.block - 1

    proxy.faults.corrupt_logs = lambda logs: [{**entry, "topics": entry["topics"][:1]} for entry in logs]
    with pytest.raises(MalformedLogError, match="indexed"):
        indexer.sync()
    assert rows(indexer.engine, "chain_events") == []

    proxy.faults.corrupt_logs = None
    indexer.sync()
    assert index_vs_chain(indexer.engine, history) == []


def test_a_deployment_file_of_another_chain_is_refused(deployment, tmp_path):
    anvil, manifest, _path = deployment
    other = Manifest(chain_id=1, block=0, contracts=manifest.contracts)
    wrong_chain = tmp_path / "mainnet.json"
    other.write(wrong_chain)
    with pytest.raises(DeploymentMismatchError, match=r"for chain 1, but .* is chain 31337"):
        connect(Settings(rpc_url=anvil.url, deployment_file=wrong_chain))

    missing = Manifest(
        chain_id=31337, block=0, contracts={**manifest.contracts, "Treasury": "0x" + "11" * 20}
    )
    no_code = tmp_path / "stale.json"
    missing.write(no_code)
    with pytest.raises(DeploymentMismatchError, match="no contract code for Treasury at 0x1111"):
        connect(Settings(rpc_url=anvil.url, deployment_file=no_code))


def test_an_index_of_another_deployment_is_refused(deployment, history, db_url, tmp_path):
    anvil, _manifest, path = deployment
    make_indexer(anvil.url, db_url, path).sync()
    body = json.loads(path.read_text())
    body["contracts"] = {"DimoToken": body["contracts"]["DimoToken"]}
    other = tmp_path / "other.json"
    other.write_text(json.dumps(body))
    with pytest.raises(IndexerError, match="indexes another deployment"):
        make_indexer(anvil.url, db_url, other).sync()


def test_a_second_sync_at_the_same_time_steps_aside(deployment, history, db_url):
    anvil, _manifest, path = deployment
    history.token_and_treasury()
    indexer = make_indexer(anvil.url, db_url, path)
    with indexer._exclusive() as acquired:
        assert acquired
        assert make_indexer(anvil.url, db_url, path).sync().busy
    assert not indexer.sync().busy


def _upgrade(engine: Engine) -> None:
    upgrade(engine.url.render_as_string(hide_password=False))


def test_two_indexer_processes_taking_turns_agree_with_one(deployment, history, db_url, tmp_path):
    """Each keeps a row cache; after the other one applied blocks, that cache must not be used."""
    anvil, _manifest, path = deployment
    rng = random.Random(9)
    history.token_and_treasury()
    first, second = make_indexer(anvil.url, db_url, path), make_indexer(anvil.url, db_url, path)
    for turn in range(6):
        history.random_transfers(rng, 3)
        (first if turn % 2 else second).sync()
    reference = make_indexer(anvil.url, f"sqlite:///{tmp_path / 'ref.db'}", path)
    _upgrade(reference.engine)
    reference.sync()
    assert diff(dump(reference.engine), dump(first.engine)) == []
    assert index_vs_chain(first.engine, history) == []


def test_a_handler_failing_mid_batch_leaves_nothing_applied(deployment, history, db_url, monkeypatch):
    anvil, _manifest, path = deployment
    history.all()
    indexer = make_indexer(anvil.url, db_url, path)
    calls = {"n": 0}
    original = handler_registry._registry[("Staking", "Staked")]

    def failing(ev, s):
        calls["n"] += 1
        original(ev, s)
        if calls["n"] == 3:
            raise RuntimeError("database went away")

    monkeypatch.setitem(handler_registry._registry, ("Staking", "Staked"), failing)
    with pytest.raises(RuntimeError, match="went away"):
        indexer.sync()
    for table in ("chain_events", "token_balances", "vehicles", "stakes", "indexer_blocks"):
        assert rows(indexer.engine, table) == [], table
    monkeypatch.setitem(handler_registry._registry, ("Staking", "Staked"), original)
    indexer.sync()
    assert index_vs_chain(indexer.engine, history) == []


def test_terms_come_from_the_transaction_when_the_node_has_no_archive_state(
    deployment, history, proxy, db_url
):
    _anvil, _manifest, path = deployment
    history.all()
    proxy.faults.no_archive = True
    indexer = make_indexer(proxy.url, db_url, path)
    indexer.sync()
    assert index_vs_chain(indexer.engine, history) == []
    assert proxy.faults.calls["eth_getTransactionByHash"] >= 6  # 6 TermsUpdated, 1 BundleCreated
    terms = rows(indexer.engine, "product_terms")
    assert len(terms) == 6 and all(t["terms_uri"] for t in terms)
    assert {t["validity_seconds"] for t in terms if t["kind"] == Kind.API} == {DEFAULT_CREDIT_VALIDITY}
