"""A Dataset order is delivered on chain after its first published result: the settler sends
`Marketplace.deliverDataset(orderId, keccak256(result))` through the recorded-nonce sender,
once per order whatever the retries, and the order's whole member share vests at that block."""

from __future__ import annotations

import pytest
from eth_utils import keccak
from sqlalchemy import func, select

from tests.support.databases import get_engine, session_scope
from tests.support.history import CONSUMER, History
from tests.support.market import settings_for
from workers.chain import connect
from workers.chain.outbox import TxSender
from workers.config import use_settings
from workers.datasets.delivery import deliver_order, purpose_of, result_hash
from workers.db.gateway import DatasetJob
from workers.db.session import Database
from workers.db.settlement import ChainTx
from workers.indexer.sync import Indexer
from workers.protocol import ZERO_ADDRESS, Use

FIRST, LATER = '{"rows": [["all", 3, 91.5, 2.0]]}', '{"rows": [["all", 4, 90.0, 2.0]]}'


def _job(
    job_id: str, order_id: int, product_id: int, *, status: str, result: str | None, finished: int
) -> DatasetJob:
    return DatasetJob(
        id=job_id, order_id=order_id, product_id=product_id, buyer=CONSUMER.lower(), request="{}",
        status=status, result=result, epsilon=0.1, created_at=finished - 10, finished_at=finished,
    )  # fmt: skip


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_a_dataset_order_is_delivered_once_after_its_first_result(deployment, db_url) -> None:
    anvil, manifest, path = deployment
    settings = settings_for(anvil.url, db_url, path)
    use_settings(settings)
    history = History(anvil.w3, manifest)
    history.token_and_treasury()
    history.identity()
    history.staking()
    history.market()
    stream, _api, dataset, _bundle = history.products
    order = history.buy("purchaseDataset", dataset, keccak(text="soh by make"), ZERO_ADDRESS, Use.INSURANCE)
    Indexer(connect(settings), get_engine(db_url), settings).sync()
    db, chain = Database(db_url), connect(settings)
    sender = TxSender(chain, settings.settler_key.get_secret_value(), settings)
    market = history.contract("Marketplace").functions

    assert deliver_order(db, chain, sender, order).status == "no_result"
    with session_scope(db_url) as session:
        session.add(_job("refused", order, dataset, status="refused", result=None, finished=50))
        session.add(_job("later", order, dataset, status="done", result=LATER, finished=200))
        session.add(_job("first", order, dataset, status="done", result=FIRST, finished=100))
    assert market.orderVesting(order).call()[1:3] == [0, 0]  # nothing vests before delivery

    delivered = deliver_order(db, chain, sender, order)
    assert (delivered.status, delivered.result_hash) == ("delivered", result_hash(FIRST))
    assert result_hash(FIRST) == "0x" + keccak(text=FIRST).hex()
    receipt = anvil.w3.eth.get_transaction_receipt(delivered.tx_hash)
    (event,) = history.contract("Marketplace").events.DatasetDelivered().process_receipt(receipt)
    assert (event["args"]["orderId"], "0x" + event["args"]["resultHash"].hex()) == (order, result_hash(FIRST))
    block_time = anvil.w3.eth.get_block(receipt["blockNumber"])["timestamp"]
    share, starts, ends, _refunded, _version = market.orderVesting(order).call()
    assert share > 0 and starts == ends == block_time  # the whole member share vested at delivery

    # a retry, a crashed task's re-run: the recorded transaction, never a second one
    again = deliver_order(db, chain, sender, order)
    assert (again.status, again.tx_hash) == ("delivered", delivered.tx_hash)
    with session_scope(db_url, read_only=True) as session:
        sent = session.scalar(
            select(func.count()).select_from(ChainTx).where(ChainTx.purpose == purpose_of(order))
        )
    assert sent == 1
    # a subscription (or bundle) order vests over its months: nothing to deliver
    assert deliver_order(db, chain, sender, history.stream_order).status == "not_dataset"
    assert stream != dataset
