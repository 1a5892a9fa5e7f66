"""Delivering a dataset order on chain (SPEC15 §3): a Dataset order's member share vests all
at once when the settler calls `Marketplace.deliverDataset(orderId, resultHash)`; until then
nothing vests, and after DATASET_DELIVERY_WINDOW its buyer may take the payment back.

The workers deliver an order after its first published result (the first `done` job of the
order): `resultHash` is keccak256 of that job's released JSON, exactly as the gateway serves
it. The transaction goes through the workers' recorded-nonce sender (record, commit, then
broadcast): one purpose per order (`deliverDataset:<orderId>`), so a repeated or crashed task
re-sends the same transaction, and an order the chain already shows as delivered is left
alone. Bundle orders are subscriptions (they vest over their months): nothing to deliver.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from eth_utils import keccak
from sqlalchemy import select, update

from workers.chain.outbox import TxRevertError, TxSender
from workers.chain.views import Chain
from workers.db.gateway import DatasetJob
from workers.db.projections import Order, Product
from workers.db.session import Database
from workers.db.settlement import ChainTx
from workers.protocol import Kind

log = logging.getLogger(__name__)

#: ChainTx statuses of a delivery that is (or may still be) on its way: re-send, never re-sign
#: (a stuck one is replaced at its nonce with higher fees by the sender).
_LIVE = ("signed", "sent", "mined")


@dataclass(frozen=True)
class Delivery:
    """What `deliver_order` did: `status` is `delivered` (mined now or earlier), `not_dataset`
    (a bundle or other kind), `no_result` (no published result yet), `pending` (sent, not mined
    in time: the next run re-sends it) or `refused` (the chain would revert: `detail` says why)."""

    order_id: int
    status: str
    result_hash: str | None = None
    tx_hash: str | None = None
    detail: str | None = None


def purpose_of(order_id: int) -> str:
    """The ChainTx purpose of an order's delivery: one per order."""
    return f"deliverDataset:{order_id}"


def result_hash(result: str) -> str:
    """keccak256 of a job's released JSON (the text the gateway serves), 0x-hex."""
    return "0x" + keccak(text=result).hex()


def first_result(db: Database, order_id: int) -> str | None:
    """The released JSON of the order's first finished job, None when none is done yet."""
    with db.session() as session:
        return session.scalars(
            select(DatasetJob.result)
            .where(
                DatasetJob.order_id == order_id,
                DatasetJob.status == "done",
                DatasetJob.result.is_not(None),
            )
            .order_by(DatasetJob.finished_at, DatasetJob.created_at, DatasetJob.id)
            .limit(1)
        ).first()


def _is_dataset_order(db: Database, order_id: int) -> bool:
    with db.session() as session:
        kind = session.scalar(
            select(Product.kind)
            .join(Order, Order.product_id == Product.product_id)
            .where(Order.order_id == order_id)
        )
    return kind is not None and Kind(kind) == Kind.DATASET


def delivered_on_chain(chain: Chain, order_id: int) -> bool:
    """`Marketplace.orderVesting`: a delivered dataset's vesting times are set (never 0)."""
    _share, starts_at, _ends_at, _refunded_at, _version = (
        chain.contract("Marketplace").functions.orderVesting(order_id).call(block_identifier="latest")
    )
    return int(starts_at) != 0


def _recorded(db: Database, chain: Chain, sender: TxSender, order_id: int, digest: str) -> ChainTx | Delivery:
    """The order's delivery transaction: the one recorded before, or a new one; a Delivery
    when there is nothing to send (delivered already, or the chain would refuse it)."""
    purpose = purpose_of(order_id)
    with db.session() as session:
        tx = session.scalars(
            select(ChainTx).where(ChainTx.purpose == purpose, ChainTx.status.in_(_LIVE)).order_by(ChainTx.id)
        ).first()
        if tx is None:
            if delivered_on_chain(chain, order_id):
                return Delivery(order_id, "delivered", digest)
            marketplace = chain.contract("Marketplace")
            data = marketplace.encode_abi("deliverDataset", args=[order_id, digest])
            try:
                tx = sender.record(session, purpose, marketplace.address, data)
            except TxRevertError as exc:
                log.warning("deliverDataset(%d) would revert: %s", order_id, exc.reason)
                return Delivery(order_id, "refused", digest, detail=exc.reason)
        session.expunge(tx)
    return tx


def deliver_order(db: Database, chain: Chain, sender: TxSender, order_id: int) -> Delivery:
    """Sends (or re-sends) `deliverDataset` for one order after its first published result."""
    if not _is_dataset_order(db, order_id):
        return Delivery(order_id, "not_dataset")
    result = first_result(db, order_id)
    if result is None:
        return Delivery(order_id, "no_result")
    digest = result_hash(result)
    tx = _recorded(db, chain, sender, order_id, digest)
    if isinstance(tx, Delivery):
        return tx
    if tx.status != "mined":
        sender.send_recorded(db.engine, tx)
        receipt = sender.wait_receipt(tx, engine=db.engine)  # replaced at higher fees if stuck
        mined = receipt is not None and int(receipt["status"], 16) == 1
        status = "dropped" if receipt is None else "mined" if mined else "reverted"
        with db.session() as session:
            session.execute(update(ChainTx).where(ChainTx.id == tx.id).values(status=status))
        tx.status = status
    if tx.status == "mined":
        log.info("dataset order %d delivered (%s) in %s", order_id, digest, tx.tx_hash)
        return Delivery(order_id, "delivered", digest, tx.tx_hash)
    if tx.status == "reverted":
        return Delivery(order_id, "refused", digest, tx.tx_hash, "the delivery reverted on chain")
    return Delivery(order_id, "pending", digest, tx.tx_hash)
