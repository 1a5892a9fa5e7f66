"""The workers' transaction sender against a real anvil: fees from the chain's fee market, a
transaction held in the pool replaced at its nonce with fees raised by at least 12.5 % (and
mined under its new hash), a nonce gap reported, a nonce taken by another transaction seen as
dropped."""

from __future__ import annotations

import json
import logging

import pytest
from eth_account import Account
from prometheus_client import REGISTRY
from sqlalchemy import select

from tests.support.anvil import ANVIL_KEYS, AnvilNode
from tests.support.databases import get_engine, session_scope
from workers.chain.outbox import FEE_BUMP_DENOMINATOR, FEE_BUMP_NUMERATOR, TxSender, signed_gas, tx_hashes
from workers.chain.rpc import Rpc, TransientRpcError
from workers.chain.views import Chain
from workers.config import Settings
from workers.db.settlement import ChainTx

KEY = ANVIL_KEYS[3]
SENDER = Account.from_key(KEY).address
TO = Account.from_key(ANVIL_KEYS[5]).address
GWEI = 10**9
BASE_FEE = 40 * GWEI


@pytest.fixture
def node(tmp_path) -> AnvilNode:
    node = AnvilNode("--base-fee", str(BASE_FEE), log_dir=tmp_path)
    yield node
    node.stop()


def sender_for(node: AnvilNode, db_url: str, **overrides: object) -> TxSender:
    settings = Settings(rpc_url=node.url, database_url=db_url, **{"tx_replace_after": 0.3, **overrides})
    chain = Chain(
        rpc=Rpc(node.url, 5.0),
        w3=node.w3,
        manifest=None,  # type: ignore[arg-type] - no contract is called
        manifest_file=None,  # type: ignore[arg-type]
        chain_id=node.w3.eth.chain_id,
    )
    return TxSender(chain, KEY, settings)


def record(sender: TxSender, db_url: str, purpose: str = "test") -> ChainTx:
    with session_scope(db_url) as session:
        tx = sender.record(session, purpose, TO, "0x")
        session.expunge(tx)
    return tx


def stored(db_url: str, tx_id: int) -> ChainTx:
    with session_scope(db_url, read_only=True) as session:
        row = session.scalars(select(ChainTx).where(ChainTx.id == tx_id)).one()
        session.expunge(row)
        return row


def test_fees_come_from_the_fee_market(node, sqlite_db):
    sender = sender_for(node, sqlite_db)
    node.rpc("anvil_setNextBlockBaseFeePerGas", hex(3 * BASE_FEE))
    node.mine()
    tip = int(node.rpc("eth_maxPriorityFeePerGas"), 16)
    base = node.w3.eth.get_block("latest")["baseFeePerGas"]
    assert base == 3 * BASE_FEE
    tx = record(sender, sqlite_db)
    assert (tx.priority_fee, tx.max_fee) == (tip, 2 * base + tip)
    assert signed_gas(tx.raw) == 21_000 * 125 // 100  # eth_estimateGas plus the margin
    sender.broadcast(tx)
    receipt = sender.wait_receipt(tx)
    assert receipt is not None and int(receipt["status"], 16) == 1


def test_a_stuck_transaction_is_replaced_at_its_nonce_and_mined_once(node, sqlite_db):
    sender = sender_for(node, sqlite_db)
    engine = get_engine(sqlite_db)
    node.rpc("evm_setAutomine", False)  # the pool holds everything until a block is mined
    tx = record(sender, sqlite_db)
    first_hash, first_tip, first_max = tx.tx_hash, tx.priority_fee, tx.max_fee
    sender.broadcast(tx)
    replaced_before = REGISTRY.get_sample_value("workers_tx_replacements_total", {"sender": SENDER}) or 0
    with pytest.raises(TransientRpcError, match="not mined"):
        sender.wait_receipt(tx, timeout=1.0, poll=0.1, engine=engine)
    row = stored(sqlite_db, tx.id)
    assert row.tx_hash != first_hash and tx_hashes(row)[1:][-1] == first_hash
    assert row.nonce == tx.nonce and row.status == "sent"
    assert row.priority_fee * FEE_BUMP_DENOMINATOR >= first_tip * FEE_BUMP_NUMERATOR
    assert row.max_fee * FEE_BUMP_DENOMINATOR >= first_max * FEE_BUMP_NUMERATOR
    replaced = REGISTRY.get_sample_value("workers_tx_replacements_total", {"sender": SENDER})
    assert replaced >= replaced_before + 1
    # The node kept only the latest replacement in its pool.
    pending = {a.lower(): txs for a, txs in node.rpc("txpool_content")["pending"].items()}
    assert [t["hash"] for t in pending[SENDER.lower()].values()] == [row.tx_hash]

    node.mine()
    receipt = sender.wait_receipt(row, timeout=5)
    assert receipt is not None and receipt["transactionHash"] == row.tx_hash
    assert node.w3.eth.get_transaction_count(SENDER) == tx.nonce + 1
    for old in json.loads(row.replaced):
        assert sender.receipt(old) is None
    assert sender.mined_receipt(row)["transactionHash"] == row.tx_hash


def test_a_receipt_under_a_replaced_hash_still_counts(node, sqlite_db):
    sender = sender_for(node, sqlite_db, tx_replace_after=60)
    node.rpc("evm_setAutomine", False)
    tx = record(sender, sqlite_db)
    sender.broadcast(tx)
    node.mine()  # the original is mined …
    with session_scope(sqlite_db) as session:  # … while a (late) replacement was recorded
        row = session.get(ChainTx, tx.id)
        sender.replace(session, row)
        session.expunge(row)
    assert row.tx_hash != tx.tx_hash
    receipt = sender.wait_receipt(row, timeout=5)
    assert receipt is not None and receipt["transactionHash"] == tx.tx_hash


def test_a_nonce_gap_is_an_error_and_counted(node, sqlite_db, caplog):
    sender = sender_for(node, sqlite_db, tx_replace_after=60)
    first = record(sender, sqlite_db, "first")
    second = record(sender, sqlite_db, "second")
    assert second.nonce == first.nonce + 1
    sender.broadcast(second)  # the first was never sent: nothing at its nonce
    gaps = REGISTRY.get_sample_value("workers_tx_nonce_gaps_total", {"sender": SENDER}) or 0
    with caplog.at_level(logging.ERROR, logger="workers.chain.outbox"), pytest.raises(TransientRpcError):
        sender.wait_receipt(second, timeout=0.5, poll=0.1)
    assert "nonce gap" in caplog.text and "second" in caplog.text
    assert REGISTRY.get_sample_value("workers_tx_nonce_gaps_total", {"sender": SENDER}) == gaps + 1
    sender.broadcast(first)  # the gap filled: both are mined
    assert sender.wait_receipt(first, timeout=5) is not None
    assert sender.wait_receipt(second, timeout=5) is not None
    assert not sender.check_gap(second)


def test_a_nonce_taken_by_another_transaction_is_dropped(node, sqlite_db):
    sender = sender_for(node, sqlite_db)
    tx = record(sender, sqlite_db)
    other = Account.from_key(KEY).sign_transaction(
        {
            "chainId": node.w3.eth.chain_id,
            "nonce": tx.nonce,
            "to": TO,
            "value": 1,
            "gas": 21_000,
            "maxFeePerGas": 3 * BASE_FEE,
            "maxPriorityFeePerGas": GWEI,
            "type": 2,
        }
    )
    node.w3.eth.send_raw_transaction(other.raw_transaction)
    assert sender.wait_receipt(tx, timeout=5) is None


def test_a_late_send_never_overwrites_an_outcome(node, sqlite_db):
    """Two workers on one transaction: one sees it mined and records that; the other, which
    read the row before, sends the same bytes again. The row stays mined (a late "sent" over
    "mined" left a settled root's transaction looking unfinished forever)."""
    sender = sender_for(node, sqlite_db)
    tx = record(sender, sqlite_db)
    late = stored(sqlite_db, tx.id)  # the second worker's copy, still "signed"
    sender.send_recorded(get_engine(sqlite_db), tx)
    assert stored(sqlite_db, tx.id).status == "sent"
    receipt = sender.wait_receipt(tx)
    assert receipt is not None
    with session_scope(sqlite_db) as session:
        session.get(ChainTx, tx.id).status = "mined"
    sender.send_recorded(get_engine(sqlite_db), late)  # the node already has it: harmless
    assert stored(sqlite_db, tx.id).status == "mined"
